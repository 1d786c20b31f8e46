"""The built-in problems (data + default loss + default model) and models.

Every problem is generated on the CPU from an explicit :class:`torch.Generator`, never
the global RNG, so building one neither depends on nor disturbs what other tests drew.
Numbers are drawn in float32 (the seed's dtype) and then cast to the requested dtype:
a float64 run sees the *same* data points as a float32 run, so comparing dtypes
isolates arithmetic instead of mixing in different samples. Integer class labels stay
int64 whatever the dtype.

This module registers nothing itself: :mod:`.catalog` registers the tables at the
bottom (``MODELS``, ``PROBLEMS``, ``LOSSES``), which keeps the import graph acyclic.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import suggest

#: The seed's net, in call syntax: also the default of the marker key ``model``.
SEED_MODEL = "mlp(1, 10, 1)"

#: Activations ``mlp`` accepts, by name (functions of :mod:`torch.nn.functional`).
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "gelu": F.gelu,
    "silu": F.silu,
    "elu": F.elu,
    "leaky_relu": F.leaky_relu,
    "softplus": F.softplus,
}


@dataclasses.dataclass
class Problem:
    """Data of one run with the loss and model that suit it by default.

    ``loss`` and ``model`` are names in call syntax (or callables) resolved by the
    catalog, so a problem can say ``model="linear(128, 1)"`` following its own
    arguments. ``info`` carries ground truth that tests may inspect (the true weights
    of ``sparse_linear``, the centers of ``blobs``); it never influences training.
    """

    name: str
    inputs: Tensor
    targets: Tensor
    loss: Any = "mse"
    model: Any = SEED_MODEL
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def to(self, device: torch.device | str, dtype: torch.dtype) -> Problem:
        """A copy on ``device``; floating tensors in ``dtype``, integer labels unchanged."""
        return dataclasses.replace(
            self, inputs=cast(self.inputs, dtype).to(device), targets=cast(self.targets, dtype).to(device)
        )


def cast(tensor: Tensor, dtype: torch.dtype) -> Tensor:
    """Cast floating tensors to ``dtype``; leave integer/bool tensors (class labels) alone."""
    return tensor.to(dtype) if tensor.is_floating_point() else tensor


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} must be an integer >= 1")


# -- models --------------------------------------------------------------------------


class MLP(nn.Module):
    """``mlp(1, 10, 1)`` is exactly the seed's ``Net``: Linear(1,10) -> ReLU -> Linear(10,1).

    The layers are named like the seed's (``hidden``, then ``hidden2``... for deeper
    nets, and ``predict`` last) and created in the same order, so under the same seed
    the parameters are bit-identical to the seed script's ``Net(1, 10, 1)`` (tests/test_build.py).
    """

    def __init__(self, *sizes: int, activation: str = "relu") -> None:
        super().__init__()
        if len(sizes) < 2:
            raise ValueError(f"mlp needs at least two sizes (inputs, outputs), got {sizes!r}")
        _check_positive(**{f"sizes[{i}]": s for i, s in enumerate(sizes)})
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}.{suggest(str(activation), ACTIVATIONS)} "
                f"Known: {', '.join(ACTIVATIONS)}."
            )
        self.activation = activation
        self._act = ACTIVATIONS[activation]
        pairs = list(itertools.pairwise(sizes))
        self._hidden_names: list[str] = []
        for i, (n_in, n_out) in enumerate(pairs[:-1]):
            name = "hidden" if i == 0 else f"hidden{i + 1}"
            self.add_module(name, nn.Linear(n_in, n_out))
            self._hidden_names.append(name)
        self.predict = nn.Linear(*pairs[-1])

    def steps(self) -> list[Callable[[Tensor], Tensor]]:
        """What :meth:`forward` applies, in order: each hidden ``Linear`` then the activation,
        and ``predict`` last. Public so that calibration's replicas can run the same net
        stacked (:mod:`pytest_optcheck.run.replicas`) without reading this class's internals."""
        out: list[Callable[[Tensor], Tensor]] = []
        for name in self._hidden_names:
            out += [getattr(self, name), self._act]
        return [*out, self.predict]

    def forward(self, x: Tensor) -> Tensor:
        for name in self._hidden_names:
            x = self._act(getattr(self, name)(x))
        return self.predict(x)

    def extra_repr(self) -> str:
        return f"activation={self.activation!r}"


def mlp(*sizes: int, activation: str = "relu") -> MLP:
    """A fully connected net; ``mlp(1, 10, 1)`` is the seed's net."""
    return MLP(*sizes, activation=activation)


def linear(n_in: int, n_out: int = 1, bias: bool = True) -> nn.Linear:
    """A linear model (``sparse_linear``'s default: where L1 vs L2 shows)."""
    return nn.Linear(n_in, n_out, bias=bias)


class Point(nn.Module):
    """Two scalar parameters ``x``, ``y``: the point an optimizer moves on Rosenbrock.

    ``forward(inputs)`` evaluates ``(a - x)**2 + b * (y - x**2)**2`` for every input row
    ``(a, b)``, so the constants travel with the data and the model stays generic in
    them. Every row gives the same value, hence the ``value`` loss (the mean of the
    predictions) *is* the Rosenbrock function and the ordinary loop — forward, loss,
    backward, step — minimises it with any optimizer, for any batch size.
    """

    def __init__(self, x0: float = -1.5, y0: float = 2.0) -> None:
        super().__init__()
        self.x = nn.Parameter(torch.tensor(float(x0)))
        self.y = nn.Parameter(torch.tensor(float(y0)))

    def forward(self, inputs: Tensor) -> Tensor:
        if inputs.ndim != 2 or inputs.shape[1] != 2:
            raise ValueError(
                f"point expects inputs of shape (batch, 2) holding the Rosenbrock constants "
                f"(a, b), got {tuple(inputs.shape)}; use it with problem='rosenbrock'"
            )
        a, b = inputs[:, :1], inputs[:, 1:]
        return (a - self.x) ** 2 + b * (self.y - self.x**2) ** 2

    def extra_repr(self) -> str:
        return f"x={self.x.item():.6g}, y={self.y.item():.6g}"


def point(x0: float = -1.5, y0: float = 2.0) -> Point:
    """A 2-parameter model starting at ``(x0, y0)`` (Rosenbrock's classic start)."""
    return Point(x0, y0)


# -- losses --------------------------------------------------------------------------


def _mean_of_predictions(pred: Tensor, target: Tensor) -> Tensor:
    return pred.mean()


def value() -> Callable[[Tensor, Tensor], Tensor]:
    """The loss is the model's output itself (its mean); the target is ignored.

    For problems whose model computes the objective (``rosenbrock``'s ``point``).
    """
    return _mean_of_predictions


# -- problems ------------------------------------------------------------------------

_GEN_DTYPE = torch.float32


def quadratic(n: int = 1000, noise: float = 0.1, *, generator: torch.Generator, dtype: torch.dtype) -> Problem:
    """The seed's data, exactly: x = 1000 points in [-1, 1], y = x² + 0.1·N(0, 1).

    Same formula as the seed script (``torch.normal(zeros, ones)``, tests/test_build.py), drawn
    from ``generator``.
    """
    _check_positive(n=n)
    x = torch.unsqueeze(torch.linspace(-1, 1, n, dtype=_GEN_DTYPE), dim=1)
    # zeros_like/ones_like: float32 like x, whatever torch's default dtype (the seed's zeros(*x.size()) under the
    # default float32): the same numbers as the seed's script
    y = x.pow(2) + noise * torch.normal(torch.zeros_like(x), torch.ones_like(x), generator=generator)
    return Problem("quadratic", cast(x, dtype), cast(y, dtype), loss="mse", model=SEED_MODEL)


def rosenbrock(
    a: float = 1.0, b: float = 100.0, n: int = 32, *, generator: torch.Generator, dtype: torch.dtype
) -> Problem:
    """Minimise Rosenbrock's function of the ``point`` model's two parameters.

    The inputs are ``n`` identical rows ``(a, b)`` (dummy data carrying the constants,
    see :class:`Point`); targets are zeros, the minimum value at ``(a, a²)``. The default
    loss ``value`` makes the loop's loss the function value itself. ``n`` only sets
    how many batches an epoch has.
    """
    _check_positive(n=n)
    inputs = torch.tensor([[float(a), float(b)]], dtype=_GEN_DTYPE).repeat(n, 1)
    targets = torch.zeros(n, 1, dtype=_GEN_DTYPE)
    return Problem(
        "rosenbrock",
        cast(inputs, dtype),
        cast(targets, dtype),
        loss="value",
        model="point(-1.5, 2.0)",
        info={"minimum": (float(a), float(a) ** 2)},
    )


def sparse_linear(
    n_samples: int = 64,
    n_features: int = 128,
    n_relevant: int = 8,
    noise: float = 0.01,
    *,
    generator: torch.Generator,
    dtype: torch.dtype,
) -> Problem:
    """Linear regression with few relevant features among many: where L1 beats L2.

    The seed: when features far outnumber samples and the relevant ones are fewer than
    the samples, L1 recovers the sparse solution and L2 cannot. The true weights
    (exactly ``n_relevant`` nonzero, magnitudes in [1, 2)) are in ``info``.
    """
    _check_positive(n_samples=n_samples, n_features=n_features, n_relevant=n_relevant)
    if n_relevant > n_features:
        raise ValueError(f"n_relevant={n_relevant} cannot exceed n_features={n_features}")
    x = torch.randn(n_samples, n_features, generator=generator, dtype=_GEN_DTYPE)
    support = torch.randperm(n_features, generator=generator)[:n_relevant].sort().values
    magnitude = 1.0 + torch.rand(n_relevant, generator=generator, dtype=_GEN_DTYPE)
    sign = torch.randint(0, 2, (n_relevant,), generator=generator).to(_GEN_DTYPE) * 2 - 1
    weights = torch.zeros(n_features, dtype=_GEN_DTYPE)
    weights[support] = sign * magnitude
    y = x @ weights + noise * torch.randn(n_samples, generator=generator, dtype=_GEN_DTYPE)
    return Problem(
        "sparse_linear",
        cast(x, dtype),
        cast(y.unsqueeze(1), dtype),
        loss="mse",
        model=f"linear({n_features}, 1)",
        info={"true_weights": weights, "support": support},
    )


def blobs(
    n_samples: int = 600,
    n_classes: int = 3,
    n_features: int = 2,
    spread: float = 1.0,
    *,
    generator: torch.Generator,
    dtype: torch.dtype,
) -> Problem:
    """Gaussian blobs: ``n_classes`` clusters (centers ~ N(0, 4²)) of std ``spread``.

    Classes are balanced (label ``i % n_classes``) and the rows are shuffled once with
    the generator, so an unshuffled loop still sees mixed batches. Targets are int64.
    """
    _check_positive(n_samples=n_samples, n_classes=n_classes, n_features=n_features)
    centers = 4.0 * torch.randn(n_classes, n_features, generator=generator, dtype=_GEN_DTYPE)
    labels = torch.arange(n_samples) % n_classes
    labels = labels[torch.randperm(n_samples, generator=generator)]
    x = centers[labels] + spread * torch.randn(n_samples, n_features, generator=generator, dtype=_GEN_DTYPE)
    return Problem(
        "blobs",
        cast(x, dtype),
        labels.to(torch.int64),
        loss="cross_entropy",
        model=f"mlp({n_features}, 16, {n_classes})",
        info={"centers": centers},
    )


def sine(n: int = 1024, frequency: float = 6.0, noise: float = 0.1, *, generator: torch.Generator,
         dtype: torch.dtype) -> Problem:
    """y = sin(frequency·x) + noise·N(0, 1) on ``n`` points of [-1, 1]: with ``mlp(1, 64, 64, 1,
    activation='tanh')`` and SGD(lr=0.1, momentum=0.9) a run chaotic enough to amplify one
    ulp past the default tolerance (docs/tolerances.md, "Calibrated tolerances")."""
    _check_positive(n=n)
    x = torch.unsqueeze(torch.linspace(-1, 1, n, dtype=_GEN_DTYPE), dim=1)
    y = torch.sin(frequency * x) + noise * torch.randn(x.shape, generator=generator, dtype=_GEN_DTYPE)
    return Problem("sine", cast(x, dtype), cast(y, dtype), loss="mse", model="mlp(1, 64, 64, 1, activation='tanh')")


# -- the tables the catalog registers ------------------------------------------------

MODELS: dict[str, Callable[..., nn.Module]] = {"mlp": mlp, "linear": linear, "point": point}
PROBLEMS: dict[str, Callable[..., Problem]] = {
    "quadratic": quadratic,
    "rosenbrock": rosenbrock,
    "sparse_linear": sparse_linear,
    "blobs": blobs,
    "sine": sine,
}
LOSSES: dict[str, Callable[..., Any]] = {
    "mse": nn.MSELoss,
    "l1": nn.L1Loss,
    "smooth_l1": nn.SmoothL1Loss,
    "huber": nn.HuberLoss,
    "cross_entropy": nn.CrossEntropyLoss,
    "nll": nn.NLLLoss,
    "bce_with_logits": nn.BCEWithLogitsLoss,
    "value": value,
}
