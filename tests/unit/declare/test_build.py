"""Unit tests of the built-in problems/models and of ``build``: seed fidelity,
determinism, RNG isolation, devices and dtypes."""

from __future__ import annotations

import functools
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pytest_optcheck.declare import problems
from pytest_optcheck.declare.build import (
    Built,
    build,
    data_seed,
    derive_seed,
    init_seed,
    resolve_device,
    torch_dtype,
)
from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.errors import OptcheckError, SpecError


class SeedNet(torch.nn.Module):
    """The seed script's net, verbatim (the 1-10-1 ReLU net of examples/test_seed_*.py)."""

    def __init__(self, n_features: int, n_hidden: int, n_output: int) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(n_features, n_hidden)
        self.predict = torch.nn.Linear(n_hidden, n_output)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.hidden(x))
        return self.predict(x)


def _seed_data(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The seed script's data, with the noise drawn from ``generator``."""
    x = torch.unsqueeze(torch.linspace(-1, 1, 1000), dim=1)
    y = x.pow(2) + 0.1 * torch.normal(torch.zeros(*x.size()), torch.ones(*x.size()), generator=generator)
    return x, y


def _state(built: Built) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in built.model.state_dict().items()}


def _assert_same_build(a: Built, b: Built) -> None:
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    assert torch.equal(a.problem.inputs, b.problem.inputs)
    assert torch.equal(a.problem.targets, b.problem.targets)


# -- the seed ---------------------------------------------------------------------------


def test_mlp_1_10_1_is_the_seed_net() -> None:
    model = problems.mlp(1, 10, 1)
    assert [name for name, _ in model.named_parameters()] == [
        "hidden.weight", "hidden.bias", "predict.weight", "predict.bias",
    ]
    assert [tuple(p.shape) for p in model.parameters()] == [(10, 1), (10,), (1, 10), (1,)]
    children = list(model.children())
    assert [type(c) for c in children] == [nn.Linear, nn.Linear]
    x = torch.linspace(-1, 1, 7).unsqueeze(1)
    expected = model.predict(torch.relu(model.hidden(x)))
    assert torch.equal(model(x), expected)


def test_mlp_init_is_torch_default_linear_init() -> None:
    torch.manual_seed(123)
    seed = SeedNet(1, 10, 1)
    torch.manual_seed(123)
    ours = problems.mlp(1, 10, 1)
    for (name, a), b in zip(seed.state_dict().items(), ours.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_deeper_mlp_and_activation() -> None:
    model = problems.mlp(2, 8, 4, 3, activation="tanh")
    assert [n for n, _ in model.named_children()] == ["hidden", "hidden2", "predict"]
    x = torch.randn(5, 2)
    expected = model.predict(torch.tanh(model.hidden2(torch.tanh(model.hidden(x)))))
    assert torch.allclose(model(x), expected)
    with pytest.raises(ValueError, match="at least two sizes"):
        problems.mlp(3)


def test_build_reproduces_the_seed_script() -> None:
    """seed=0 here == ``torch.manual_seed(0); Net(1, 10, 1)`` there; the data == the seed script's
    formula with the data generator."""
    built = build(Spec())
    torch.manual_seed(init_seed(0))
    net = SeedNet(1, 10, 1)
    for (name, a), b in zip(net.state_dict().items(), built.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    x, y = _seed_data(torch.Generator().manual_seed(data_seed(0)))
    assert torch.equal(built.problem.inputs, x) and torch.equal(built.problem.targets, y)
    assert isinstance(built.optimizer, torch.optim.SGD) and built.optimizer.param_groups[0]["lr"] == 0.01
    assert built.scheduler is None
    assert isinstance(built.loss_fn, nn.MSELoss)
    assert built.device == torch.device("cpu") and built.dtype == torch.float32


def test_quadratic_is_the_seed_formula() -> None:
    problem = problems.quadratic(generator=torch.Generator().manual_seed(5), dtype=torch.float32)
    x, y = _seed_data(torch.Generator().manual_seed(5))
    assert torch.equal(problem.inputs, x) and torch.equal(problem.targets, y)
    assert problem.inputs.shape == (1000, 1) and problem.inputs.dtype == torch.float32
    assert problem.loss == "mse" and problem.model == "mlp(1, 10, 1)"
    noise = problem.targets - problem.inputs.pow(2)
    assert 0.08 < noise.std().item() < 0.12


# -- seeds, determinism, isolation ---------------------------------------------------------


def test_seed_streams_are_distinct() -> None:
    assert data_seed(0) != init_seed(0)
    assert len({derive_seed(s, stream) for s in range(50) for stream in ("data", "shuffle")}) == 100
    assert derive_seed(3, "data") == derive_seed(3, "data") < 2**63


def test_two_builds_are_bit_identical() -> None:
    spec = Spec(optimizer="Adam(lr=0.01)", scheduler="StepLR(step_size=4, gamma=0.5)")
    a, b = build(spec), build(spec)
    _assert_same_build(a, b)
    assert a.model is not b.model and a.optimizer is not b.optimizer


def test_different_seeds_differ() -> None:
    a, b = build(Spec(seed=0)), build(Spec(seed=1))
    assert not torch.equal(a.model.hidden.weight, b.model.hidden.weight)
    assert not torch.equal(a.problem.targets, b.problem.targets)


def test_build_leaves_the_global_rng_untouched() -> None:
    torch.manual_seed(42)
    before = torch.get_rng_state()
    build(Spec(problem="blobs"))
    assert torch.equal(torch.get_rng_state(), before)


def test_other_tests_draws_do_not_change_a_build() -> None:
    first = build(Spec())
    torch.rand(1000)  # "another test" uses the global RNG in between
    second = build(Spec())
    _assert_same_build(first, second)


def _global_rng_problem() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(8, 1)  # a user's problem that draws from the global RNG
    return x, 3 * x


def test_user_problem_on_the_global_rng_is_isolated_and_deterministic() -> None:
    before = torch.get_rng_state()
    a = build(Spec(problem=_global_rng_problem))
    torch.rand(10)
    b = build(Spec(problem=_global_rng_problem))
    assert torch.equal(a.problem.inputs, b.problem.inputs)
    torch.rand(10)
    after = torch.get_rng_state()
    torch.set_rng_state(before)
    torch.rand(10)
    torch.rand(10)
    assert torch.equal(torch.get_rng_state(), after)


# -- dtypes, defaults, devices -------------------------------------------------------------


def test_float64_build() -> None:
    f32, f64 = build(Spec()), build(Spec(dtype="float64"))
    assert all(p.dtype == torch.float64 for p in f64.model.parameters())
    assert f64.problem.inputs.dtype == torch.float64 and f64.dtype == torch.float64
    assert torch.equal(f64.model.hidden.weight, f32.model.hidden.weight.double())
    assert torch.equal(f64.problem.targets, f32.problem.targets.double())


def test_torch_dtype() -> None:
    assert torch_dtype("float64") is torch.float64 and torch_dtype("bfloat16") is torch.bfloat16
    with pytest.raises(SpecError, match=r"dtype='flaot32'.*Did you mean: float32"):
        torch_dtype("flaot32")


def test_default_model_follows_the_problem() -> None:
    blobs = build(Spec(problem="blobs"))
    assert [tuple(p.shape) for p in blobs.model.parameters()] == [(16, 2), (16,), (3, 16), (3,)]
    assert isinstance(blobs.loss_fn, nn.CrossEntropyLoss)
    sparse = build(Spec(problem="sparse_linear(n_features=20, n_samples=10, n_relevant=3)"))
    assert isinstance(sparse.model, nn.Linear) and sparse.model.in_features == 20
    rosen = build(Spec(problem="rosenbrock"))
    assert isinstance(rosen.model, problems.Point)


def test_explicit_model_and_loss_win() -> None:
    built = build(Spec(problem="blobs", model="mlp(2, 4, 3)", loss="nll"))
    assert built.model.hidden.out_features == 4 and isinstance(built.loss_fn, nn.NLLLoss)
    quad = build(Spec(model="linear(1, 1)", loss="l1"))
    assert isinstance(quad.model, nn.Linear) and isinstance(quad.loss_fn, nn.L1Loss)


def test_optimizer_and_scheduler_are_wired() -> None:
    built = build(Spec(optimizer="SGD(lr=0.1, momentum=0.9)", scheduler="ExponentialLR(gamma=0.5)"))
    assert built.optimizer.param_groups[0]["params"] == list(built.model.parameters())
    assert built.scheduler.optimizer is built.optimizer


def test_build_reports_bad_names_before_building() -> None:
    with pytest.raises(SpecError, match="unknown optimizer 'Adamm'"):
        build(Spec(optimizer="Adamm(lr=0.1)"))
    with pytest.raises(SpecError, match="Invalid learning rate"):
        build(Spec(optimizer="Adam(lr=-1)"))


def test_lbfgs_and_muon_errors_are_spec_errors() -> None:
    assert isinstance(build(Spec(optimizer="LBFGS(lr=0.01, max_iter=10, max_eval=10)")).optimizer,
                      torch.optim.LBFGS)
    with pytest.raises(SpecError, match="optimizer='Muon'"):  # Muon takes 2-D parameters only
        build(Spec(optimizer="Muon"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_unavailable_is_a_clear_error() -> None:
    with pytest.raises(OptcheckError, match=r"device 'cuda'.*CUDA is not available.*--optcheck-device=cpu"):
        build(Spec(), "cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_build_matches_cpu_and_isolates_the_cuda_rng() -> None:
    cuda_before = torch.cuda.get_rng_state()
    cpu_before = torch.get_rng_state()
    on_gpu, on_cpu = build(Spec(), "cuda"), build(Spec())
    assert on_gpu.device.type == "cuda" and on_gpu.problem.inputs.is_cuda
    assert all(p.is_cuda for p in on_gpu.model.parameters())
    assert torch.equal(on_gpu.model.hidden.weight.cpu(), on_cpu.model.hidden.weight)
    assert torch.equal(torch.cuda.get_rng_state(), cuda_before)
    assert torch.equal(torch.get_rng_state(), cpu_before)


def test_bad_device() -> None:
    with pytest.raises(OptcheckError, match="not a torch device"):
        resolve_device("gpu0")


# -- problems -------------------------------------------------------------------------------


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def test_problems_use_only_their_generator() -> None:
    before = torch.get_rng_state()
    for factory in problems.PROBLEMS.values():
        a = factory(generator=_gen(), dtype=torch.float32)
        b = factory(generator=_gen(), dtype=torch.float32)
        assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert torch.equal(torch.get_rng_state(), before)


def test_sparse_linear() -> None:
    problem = problems.sparse_linear(generator=_gen(), dtype=torch.float64)
    assert problem.inputs.shape == (64, 128) and problem.targets.shape == (64, 1)
    assert problem.inputs.dtype == problem.targets.dtype == torch.float64
    weights = problem.info["true_weights"]
    assert int((weights != 0).sum()) == 8
    assert torch.equal(torch.nonzero(weights).flatten(), problem.info["support"])
    assert weights.abs().max() < 2 and weights[weights != 0].abs().min() >= 1
    residual = problem.targets[:, 0] - problem.inputs @ weights.double()
    assert residual.abs().max() < 0.1  # noise=0.01
    assert problem.model == "linear(128, 1)" and problem.loss == "mse"
    small = problems.sparse_linear(10, 30, 2, generator=_gen(), dtype=torch.float32)
    assert int((small.info["true_weights"] != 0).sum()) == 2 and small.model == "linear(30, 1)"


def test_blobs() -> None:
    problem = problems.blobs(generator=_gen(), dtype=torch.float64)
    assert problem.inputs.shape == (600, 2) and problem.inputs.dtype == torch.float64
    assert problem.targets.shape == (600,) and problem.targets.dtype == torch.int64
    assert problem.targets.min() == 0 and problem.targets.max() == 2
    assert torch.bincount(problem.targets).tolist() == [200, 200, 200]
    assert problem.loss == "cross_entropy" and problem.model == "mlp(2, 16, 3)"
    wide = problems.blobs(100, 5, 7, generator=_gen(), dtype=torch.float32)
    assert wide.inputs.shape == (100, 7) and int(wide.targets.max()) == 4 and wide.model == "mlp(7, 16, 5)"


def test_rosenbrock_value_at_start_and_minimum() -> None:
    built = build(Spec(problem="rosenbrock"))
    x, y = -1.5, 2.0
    expected = (1 - x) ** 2 + 100 * (y - x**2) ** 2
    loss = built.loss_fn(built.model(built.problem.inputs), built.problem.targets)
    assert loss.item() == pytest.approx(expected)
    assert built.problem.inputs.shape == (32, 2)
    at_min = problems.point(1.0, 1.0)
    assert at_min(built.problem.inputs).abs().max().item() == 0.0


def _minimise(spec: Spec, steps: int) -> tuple[float, float]:
    built = build(spec)
    x, y = built.problem.inputs[:8], built.problem.targets[:8]
    first = last = 0.0
    for step in range(steps):
        def closure() -> torch.Tensor:
            built.optimizer.zero_grad()
            loss = built.loss_fn(built.model(x), y)
            loss.backward()
            return loss

        loss = closure()
        built.optimizer.step(closure) if isinstance(built.optimizer, torch.optim.LBFGS) else built.optimizer.step()
        first = loss.item() if step == 0 else first
        last = loss.item()
    return first, last


@pytest.mark.parametrize("optimizer", ["Adam(lr=0.05)", "SGD(lr=0.0005, momentum=0.9)", "LBFGS(lr=0.5)"])
def test_reference_loop_minimises_rosenbrock(optimizer: str) -> None:
    """forward, loss(pred, target), backward, step walks the point down the valley to (1, 1)."""
    first, last = _minimise(Spec(problem="rosenbrock", optimizer=optimizer), 1000)
    assert first == pytest.approx(12.5) and last < 0.01


def test_point_rejects_other_inputs() -> None:
    with pytest.raises(ValueError, match="rosenbrock"):
        problems.point()(torch.zeros(4, 1))


def test_problem_to_keeps_labels_integer() -> None:
    problem = problems.blobs(30, generator=_gen(), dtype=torch.float32).to("cpu", torch.float64)
    assert problem.inputs.dtype == torch.float64 and problem.targets.dtype == torch.int64


def test_quadratic_arguments() -> None:
    problem = problems.quadratic(50, 0.0, generator=_gen(), dtype=torch.float32)
    assert problem.inputs.shape == (50, 1)
    assert torch.equal(problem.targets, problem.inputs.pow(2))


@pytest.mark.parametrize("bad", [functools.partial(problems.quadratic, 0), functools.partial(problems.blobs, 10, 0)])
def test_problem_argument_validation(bad: Any) -> None:
    with pytest.raises(ValueError, match="must be an integer >= 1"):
        bad(generator=_gen(), dtype=torch.float32)
