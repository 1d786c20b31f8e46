"""calibrate=N at the run layer: the perturbed replicas and their two paths (issue 11's
acceptance case, a chaotic MLP, is in test_replicas_acceptance.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pytest_optcheck.declare.build import build
from pytest_optcheck.declare.problems import MLP
from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.run.replicas import STACKED, perturb_, replicas, replicas_of, unperturbed
from pytest_optcheck.run.train import train

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))]
SMALL = Spec(epochs=2, batch_size=100, optimizer="SGD(lr=0.05, momentum=0.9)", record=("loss", "lr"))


def test_perturbation_is_one_ulp_deterministic_and_leaves_the_global_rng_alone() -> None:
    state = torch.get_rng_state()
    a, b, c = (build(SMALL).model for _ in range(3))
    perturb_(a, 0, 0)
    perturb_(b, 0, 0)
    perturb_(c, 0, 1)
    assert torch.equal(torch.get_rng_state(), state)
    base = build(SMALL).model
    inf = torch.tensor(float("inf"))
    for pa, pb, p0 in zip(a.parameters(), b.parameters(), base.parameters()):
        assert torch.equal(pa, pb)  # same replica, same start
        assert torch.all((pa == torch.nextafter(p0, inf)) | (pa == torch.nextafter(p0, -inf)))  # one ulp
    flat = [torch.cat([p.detach().flatten() for p in m.parameters()]) for m in (a, c)]
    assert not torch.equal(*flat)  # another replica, other signs


class Quad(torch.nn.Module):
    """Not an MLP nor a Sequential: stacked through vmap(functional_call)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Linear(1, 6)
        self.b = torch.nn.Linear(6, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.tanh(self.a(x)) * x)


@pytest.mark.parametrize("spec", [SMALL, SMALL.replace(l1=1e-3),
                                  SMALL.replace(model=Quad, optimizer="Adam(lr=0.01)", l1=1e-3)],
                         ids=["batched-matmuls", "batched-matmuls-l1", "vmap"])
@pytest.mark.parametrize("device", DEVICES)
def test_stacked_replicas_reproduce_sequential_ones(spec: Spec, device: str) -> None:
    stacked, path = replicas(spec, 3, device)
    sequential, other = replicas(spec, 3, device, stacked=False)
    assert path == STACKED and other.startswith("sequential")
    for s, q in zip(stacked, sequential):
        assert s.names == q.names and np.array_equal(s.epoch, q.epoch) and np.array_equal(s.batch, q.batch)
        np.testing.assert_array_equal(s["lr"], q["lr"])
        np.testing.assert_allclose(s["loss"], q["loss"], rtol=2e-6)  # batched vs plain matmuls: ulps
    # and the replicas differ from each other (each has its own start)
    assert not np.array_equal(stacked[0]["loss"], stacked[1]["loss"])


@pytest.mark.parametrize("model", [
    lambda: MLP(1, 6, 5, 1, activation="tanh"),
    lambda: MLP(2, 7, 3, activation="relu"),
    lambda: MLP(1, 4, 1, activation="sigmoid"),
    lambda: torch.nn.Sequential(torch.nn.Linear(1, 5, bias=False), torch.nn.Tanh(), torch.nn.Identity(),
                                torch.nn.Linear(5, 2)),
    lambda: torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(3, 4), torch.nn.Sigmoid(), torch.nn.Linear(4, 1)),
], ids=["tanh", "relu-2d", "sigmoid", "sequential-no-bias", "activation-first"])
@pytest.mark.parametrize("device", DEVICES)
def test_the_batched_stack_gives_each_replica_its_own_loss_and_gradient(model, device) -> None:
    """A plain stack of layers runs stacked as batched matmuls (in-place activations after
    each linear): per replica, the loss and autograd's gradient of that model alone."""
    from pytest_optcheck.run.replicas import _batched_losses, _layers, _transposed_storage

    generator = torch.Generator().manual_seed(3)
    nets = [model().to(device) for _ in range(3)]
    layers = _layers(nets[0])
    params, _ = torch.func.stack_module_state(nets)
    first = next(p for p in params.values() if p.dim() == 3)
    x = torch.randn(9, first.shape[2], generator=generator).to(device)
    y = torch.randn(*nets[0](x).shape, generator=generator).to(device)
    data = x.clone(), y.clone()
    _transposed_storage(params, layers)
    values = _batched_losses(layers, torch.nn.MSELoss(), 0.0)(params, x, y)
    values.sum().backward()
    assert torch.equal(x, data[0]) and torch.equal(y, data[1])  # in-place activations leave the data alone
    for r, net in enumerate(nets):
        loss = torch.nn.functional.mse_loss(net(x), y)
        loss.backward()
        torch.testing.assert_close(values[r], loss.detach(), rtol=1e-6, atol=0)
        for name, p in net.named_parameters():
            torch.testing.assert_close(params[name].grad[r], p.grad, rtol=1e-5, atol=1e-7, msg=name)


def test_the_catalogs_mlp_is_read_through_its_public_steps() -> None:
    """``MLP.steps()`` is what its forward applies: the stacked replicas run the activation
    the model has (here replaced by an algebraically equal one), not the one its name says."""
    from pytest_optcheck.run.replicas import _layers

    model = _tanh_as_sigmoid()
    x = torch.linspace(-1, 1, 5).unsqueeze(1)
    h = x
    for step in model.steps():
        h = step(h)
    assert torch.equal(h, model(x))
    assert [name for name, _ in _layers(model)] == ["hidden", None, "hidden2", None, "predict"]
    assert _layers(model)[1][1] is model.steps()[1]


def test_the_package_calls_no_private_torch_ops() -> None:
    """Issue 18: public torch only (the package claims a range of torch versions); the
    stacked replicas once ran a backward by hand through aten ops and torch._C."""
    import pathlib
    import re

    import pytest_optcheck

    root = pathlib.Path(pytest_optcheck.__file__).parent
    private = re.compile(r"torch\._C\b|torch\.ops\b|\baten\b")
    offenders = [f"{path.relative_to(root)}:{number}: {line.strip()}" for path in sorted(root.rglob("*.py"))
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if private.search(line)]
    assert offenders == []


def test_a_frozen_layer_stays_frozen_in_the_replicas() -> None:
    """A frozen layer's stacked parameters get no gradient, and the optimizer leaves them
    alone, like the reference."""
    def model() -> torch.nn.Module:
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(1, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
        net[0].requires_grad_(False)
        return net

    spec = SMALL.replace(epochs=1, model=model)
    stacked, path = replicas(spec, 2)
    sequential, _ = replicas(spec, 2, stacked=False)
    assert path == STACKED
    for s, q in zip(stacked, sequential):
        np.testing.assert_allclose(s["loss"], q["loss"], rtol=2e-6)


def test_a_sequential_with_a_module_used_twice_is_not_taken_for_a_shorter_net() -> None:
    """``named_children()`` lists a shared module once: read as layers, Sequential(lin, tanh,
    lin) would lose its last layer, and the replicas would train another net than the run."""
    from pytest_optcheck.run.replicas import _layers

    shared = torch.nn.Linear(3, 3)
    assert _layers(torch.nn.Sequential(shared, torch.nn.Tanh(), shared)) is None
    assert len(_layers(torch.nn.Sequential(shared, torch.nn.Tanh(), torch.nn.Linear(3, 1)))) == 3


@pytest.mark.parametrize(("changes", "why"), [
    ({"optimizer": "LBFGS(lr=0.1)"}, "optimizer LBFGS"),
    ({"clip_grad_norm": 1.0}, "clip_grad_norm"),
    ({"scheduler": "ReduceLROnPlateau(patience=1)"}, "ReduceLROnPlateau"),
    ({"record": ("loss", "grad_norm")}, "grad_norm"),
    ({"model": lambda: torch.nn.Sequential(torch.nn.Linear(1, 4), torch.nn.Dropout(0.1), torch.nn.Linear(4, 1))},
     "dropout"),
])
def test_what_stacking_cannot_express_runs_sequentially(changes: dict, why: str) -> None:
    spec = SMALL.replace(epochs=1, **changes)
    runs, path = replicas(spec, 1)
    assert path.startswith("sequential (") and why in path
    assert runs[0].names == train(spec).names


def test_a_users_loop_is_replicated_through_perturb() -> None:
    def loop(perturb):  # a user's own loop, recorded with the plugin's Recorder
        built = build(SMALL)
        perturb(built.model)
        return train(SMALL, built=built)

    runs, path = replicas_of(loop, SMALL.seed, 2)
    assert path == "sequential (your loop)"
    np.testing.assert_array_equal(loop(unperturbed)["loss"], train(SMALL)["loss"])
    np.testing.assert_array_equal(runs[0]["loss"], replicas(SMALL, 1, stacked=False)[0][0]["loss"])


def _tanh_as_sigmoid() -> MLP:
    model = MLP(1, 64, 64, 1, activation="tanh")
    model._act = lambda x: 2 * torch.sigmoid(2 * x) - 1  # algebraically tanh, other rounding
    return model


def test_the_sensitivity_probe_judges_with_the_goldens_envelope() -> None:
    """--optcheck-sensitivity asks whether *this* check would notice lr x1.01: a calibrated
    check allows its envelope, so a (planted) envelope wider than the change makes it vacuous."""
    from pytest_optcheck.checks.sensitivity import probe
    from pytest_optcheck.engine.envelope import Calibration
    from pytest_optcheck.engine.outcome import Outcome, Status
    from pytest_optcheck.golden.format import Golden

    spec = SMALL.replace(epochs=1)
    run = train(spec)
    plain = Golden(run)
    wide = Golden(run, calibration=Calibration(8, {"loss": np.ones(len(run))}))
    assert probe(spec, "cpu", run, Outcome(Status.PASSED, "", golden=plain)) is None
    assert "stays within tolerance" in probe(spec, "cpu", run, Outcome(Status.PASSED, "", golden=wide))
