"""The built-in problems and models, by their exact facts: refusals' words, reprs, the steps an
MLP applies, a problem's length and copies, rosenbrock's and sine's data, the loss table. Tiny
tensors only."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pytest_optcheck.declare import problems


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: problems.mlp(3), "mlp needs at least two sizes (inputs, outputs), got (3,)"),
    (lambda: problems.mlp(1, 0, 1), "sizes[1]=0 must be an integer >= 1"),
    (lambda: problems.mlp(1, True), "sizes[1]=True must be an integer >= 1"),
    (lambda: problems.mlp(1.0, 2), "sizes[0]=1.0 must be an integer >= 1"),
    (lambda: problems.mlp(1, 1, activation="rel"),
     "unknown activation 'rel'. Did you mean: relu, elu? Known: relu, tanh, sigmoid, gelu, silu, elu, leaky_relu, softplus."),
    (lambda: problems.quadratic(0, generator=_gen(), dtype=torch.float32), "n=0 must be an integer >= 1"),
    (lambda: problems.sparse_linear(4, 3, 5, generator=_gen(), dtype=torch.float32),
     "n_relevant=5 cannot exceed n_features=3"),
    (lambda: problems.point()(torch.zeros(4, 1)),
     ("point expects inputs of shape (batch, 2) holding the Rosenbrock constants (a, b), got (4, 1); "
     "use it with problem='rosenbrock'")),
    (lambda: problems.point()(torch.zeros(2)),
     ("point expects inputs of shape (batch, 2) holding the Rosenbrock constants (a, b), got (2,); "
     "use it with problem='rosenbrock'")),
])
def test_refusals_say_what_is_wrong(call: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        call()  # type: ignore[operator]
    assert str(info.value) == message


def test_the_smallest_sizes_are_accepted() -> None:
    model = problems.mlp(1, 1)
    assert [n for n, _ in model.named_children()] == ["predict"]
    assert problems.quadratic(1, generator=_gen(), dtype=torch.float32).inputs.shape == (1, 1)


def test_mlp_steps_are_its_forward_in_order_and_its_repr_names_the_activation() -> None:
    model = problems.mlp(1, 2, 3, 1, activation="tanh")
    steps = model.steps()
    assert steps == [model.hidden, torch.tanh, model.hidden2, torch.tanh, model.predict]
    x = torch.ones(2, 1)
    out = x
    for step in steps:
        out = step(out)
    assert torch.equal(out, model(x))
    assert repr(problems.mlp(1, 2, activation="tanh")) == (
        "MLP(\n  activation='tanh'\n  (predict): Linear(in_features=1, out_features=2, bias=True)\n)")
    assert model.extra_repr() == "activation='tanh'"
    single = problems.mlp(1, 1)
    assert single.steps() == [single.predict]


def test_linear_and_point_defaults() -> None:
    lin = problems.linear(3)
    assert (lin.in_features, lin.out_features, lin.bias is not None) == (3, 1, True)
    assert problems.linear(3, 2, bias=False).bias is None
    p = problems.point()
    assert (p.x.item(), p.y.item()) == (-1.5, 2.0)
    assert problems.point(0.5, 0.25).extra_repr() == "x=0.5, y=0.25"
    assert problems.point(1 / 3, 2).extra_repr() == "x=0.333333, y=2"
    assert p(torch.tensor([[1.0, 100.0], [2.0, 0.0]])).flatten().tolist() == [
        2.5**2 + 100 * (2.0 - 2.25) ** 2, 3.5**2]


def test_the_value_loss_is_the_mean_prediction() -> None:
    loss = problems.value()
    assert loss(torch.tensor([1.0, 2.0, 6.0]), torch.tensor([9.0, 9.0, 9.0])).item() == 3.0


def test_a_problem_has_its_length_and_moves_floats_only() -> None:
    prob = problems.Problem("p", torch.zeros(3, 2), torch.tensor([0, 1, 2]))
    assert len(prob) == 3 and prob.loss == "mse" and prob.model == "mlp(1, 10, 1)" and prob.info == {}
    moved = prob.to("cpu", torch.float16)
    assert moved.inputs.dtype == torch.float16 and moved.targets.dtype == torch.int64 and moved.name == "p"
    assert prob.inputs.dtype == torch.float32  # the original is left alone
    assert problems.cast(torch.tensor([True]), torch.float64).dtype == torch.bool


def test_rosenbrock_data_carries_the_constants() -> None:
    prob = problems.rosenbrock(2.0, 10.0, 3, generator=_gen(), dtype=torch.float64)
    assert prob.inputs.tolist() == [[2.0, 10.0]] * 3 and prob.inputs.dtype == torch.float64
    assert prob.targets.tolist() == [[0.0]] * 3 and prob.targets.dtype == torch.float64
    assert (prob.name, prob.loss, prob.model) == ("rosenbrock", "value", "point(-1.5, 2.0)")
    assert prob.info == {"minimum": (2.0, 4.0)}
    default = problems.rosenbrock(generator=_gen(), dtype=torch.float32)
    assert default.inputs.shape == (32, 2) and default.inputs[0].tolist() == [1.0, 100.0]
    with pytest.raises(ValueError, match=r"^n=0 must be an integer >= 1$"):
        problems.rosenbrock(n=0, generator=_gen(), dtype=torch.float32)


def test_sine_is_a_noisy_sine_on_minus_one_to_one() -> None:
    prob = problems.sine(5, 2.0, 0.0, generator=_gen(), dtype=torch.float64)
    x = torch.linspace(-1, 1, 5).unsqueeze(1)
    assert torch.equal(prob.inputs, x.double()) and prob.inputs.dtype == torch.float64
    assert torch.equal(prob.targets, torch.sin(2.0 * x).double())
    assert (prob.name, prob.loss, prob.model) == ("sine", "mse", "mlp(1, 64, 64, 1, activation='tanh')")
    default = problems.sine(generator=_gen(), dtype=torch.float32)
    assert default.inputs.shape == (1024, 1)
    noise = default.targets - torch.sin(6.0 * default.inputs)
    assert 0.08 < noise.std().item() < 0.12
    with pytest.raises(ValueError, match=r"^n=0 must be an integer >= 1$"):
        problems.sine(0, generator=_gen(), dtype=torch.float32)


def test_quadratic_names_itself_and_its_noise_scales() -> None:
    prob = problems.quadratic(200, 0.5, generator=_gen(), dtype=torch.float64)
    assert prob.name == "quadratic" and prob.targets.dtype == torch.float64
    noise = prob.targets - prob.inputs.pow(2)
    assert 0.4 < noise.std().item() < 0.6


def test_sparse_linear_and_blobs_are_named_and_drawn_in_float32() -> None:
    sparse = problems.sparse_linear(4, 6, 2, 0.0, generator=_gen(), dtype=torch.float64)
    assert sparse.name == "sparse_linear" and sparse.info["true_weights"].dtype == torch.float32
    assert torch.equal(sparse.targets[:, 0], (sparse.inputs.float() @ sparse.info["true_weights"]).double())
    signs = problems.sparse_linear(64, 64, 64, generator=_gen(), dtype=torch.float32).info["true_weights"]
    assert (signs > 0).any() and (signs < 0).any() and signs.abs().min() >= 1
    blobs = problems.blobs(9, 3, 2, 0.0, generator=_gen(), dtype=torch.float64)
    assert blobs.name == "blobs" and blobs.info["centers"].shape == (3, 2)
    assert torch.equal(blobs.inputs, blobs.info["centers"][blobs.targets].double())  # spread 0: on the centers
    for bad in ({"n_samples": 0}, {"n_features": 0}):
        with pytest.raises(ValueError, match=f"^{next(iter(bad))}=0 must be an integer >= 1$"):
            problems.blobs(**bad, generator=_gen(), dtype=torch.float32)
    for bad in ({"n_samples": 0}, {"n_features": 0}, {"n_relevant": 0}):
        with pytest.raises(ValueError, match=f"^{next(iter(bad))}=0 must be an integer >= 1$"):
            problems.sparse_linear(**bad, generator=_gen(), dtype=torch.float32)


def test_the_tables_the_catalog_registers() -> None:
    assert problems.MODELS == {"mlp": problems.mlp, "linear": problems.linear, "point": problems.point}
    assert list(problems.PROBLEMS) == ["quadratic", "rosenbrock", "sparse_linear", "blobs", "sine"]
    assert problems.LOSSES == {
        "mse": nn.MSELoss, "l1": nn.L1Loss, "smooth_l1": nn.SmoothL1Loss, "huber": nn.HuberLoss,
        "cross_entropy": nn.CrossEntropyLoss, "nll": nn.NLLLoss, "bce_with_logits": nn.BCEWithLogitsLoss,
        "value": problems.value}
    assert set(problems.ACTIVATIONS) == {"relu", "tanh", "sigmoid", "gelu", "silu", "elu", "leaky_relu", "softplus"}


def test_the_classes_own_defaults() -> None:
    assert problems.MLP(1, 2).activation == "relu"
    assert (problems.Point().x.item(), problems.Point().y.item()) == (-1.5, 2.0)


def test_rosenbrock_minimum_is_a_and_a_squared() -> None:
    assert problems.rosenbrock(3.0, generator=_gen(), dtype=torch.float32).info == {"minimum": (3.0, 9.0)}


def test_every_problem_draws_in_float32_whatever_torch_s_default_dtype() -> None:
    """The module's promise: a float64 run sees the float32 run's data points, cast."""
    factories = [problems.quadratic, problems.rosenbrock, problems.sine,
                 lambda **kw: problems.sparse_linear(6, 5, 2, **kw), lambda **kw: problems.blobs(6, **kw)]
    expected = [f(generator=_gen(), dtype=torch.float64) for f in factories]
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        got = [f(generator=_gen(), dtype=torch.float64) for f in factories]
    finally:
        torch.set_default_dtype(previous)
    for a, b in zip(expected, got, strict=True):
        assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets), a.name
        assert a.inputs.dtype == b.inputs.dtype == torch.float64
        assert a.targets.dtype == b.targets.dtype, a.name
    assert got[3].info["true_weights"].dtype == torch.float32


def test_blobs_draws_centers_then_the_shuffle_then_the_spread() -> None:
    g = _gen()
    centers = 4.0 * torch.randn(3, 2, generator=g)
    labels = (torch.arange(6) % 3)[torch.randperm(6, generator=g)]
    noise = torch.randn(6, 2, generator=g)
    prob = problems.blobs(6, 3, 2, 0.5, generator=_gen(), dtype=torch.float32)
    assert torch.equal(prob.info["centers"], centers) and torch.equal(prob.targets, labels)
    assert torch.equal(prob.inputs, centers[labels] + 0.5 * noise)
    default = problems.blobs(6, 3, 2, generator=_gen(), dtype=torch.float32)
    assert torch.equal(default.inputs, centers[labels] + noise)


def test_sine_and_sparse_linear_add_their_noise() -> None:
    noise = torch.randn(5, 1, generator=_gen())
    sine = problems.sine(5, 2.0, 0.5, generator=_gen(), dtype=torch.float64)
    x = torch.linspace(-1, 1, 5).unsqueeze(1)
    assert torch.equal(sine.targets, (torch.sin(2.0 * x) + 0.5 * noise).double())
    assert sine.inputs.dtype == sine.targets.dtype == torch.float64
    g = _gen()
    x = torch.randn(4, 6, generator=g)
    torch.randperm(6, generator=g), torch.rand(2, generator=g), torch.randint(0, 2, (2,), generator=g)
    noise = torch.randn(4, generator=g)
    sparse = problems.sparse_linear(4, 6, 2, 0.5, generator=_gen(), dtype=torch.float32)
    assert torch.equal(sparse.targets[:, 0], x @ sparse.info["true_weights"] + 0.5 * noise)


def test_quadratic_casts_both_tensors() -> None:
    prob = problems.quadratic(4, generator=_gen(), dtype=torch.float64)
    assert prob.inputs.dtype == prob.targets.dtype == torch.float64


def test_a_problem_moves_both_tensors_to_the_device() -> None:
    prob = problems.Problem("p", torch.zeros(3, 2), torch.zeros(3, 1)).to("meta", torch.float64)
    assert prob.inputs.is_meta and prob.targets.is_meta
    assert prob.inputs.dtype == prob.targets.dtype == torch.float64
