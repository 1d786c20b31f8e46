"""Stage 2b: build — turn a :class:`Spec` into a seeded model, optimizer, scheduler and data.

Determinism and isolation are the point of this module:

* **Initialisation** runs under :func:`torch.random.fork_rng` with the CPU generator (and
  the target CUDA device's) seeded with ``spec.seed`` itself. So ``torch.manual_seed(0);
  Net(1, 10, 1)`` in the seed's script gives the same parameters as ``seed=0`` here, and
  the global RNG state is exactly the same after :func:`build` as before: other tests
  neither influence a build nor are influenced by it.
* **Data** is drawn from a private ``torch.Generator`` seeded with :func:`data_seed`, a
  different stream derived from ``spec.seed`` by hashing. Seeding data and init with the
  same number would replay one Mersenne-Twister sequence in both, correlating noise
  and weights. The problem factory also runs inside a fork whose global RNG is seeded
  with that data seed, so a user's problem callable that draws from the global RNG is
  deterministic and isolated too.
* Models are constructed on the CPU, then moved: the same spec gives the same initial
  parameters on every device and dtype (a float64 run starts from the float32 init, cast).

Two builds of the same spec therefore give bit-identical parameters and data.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from ..errors import OptcheckError, SpecError, suggest
from .catalog import (
    resolve_loss,
    resolve_model,
    resolve_optimizer,
    resolve_problem,
    resolve_scheduler,
)
from .problems import SEED_MODEL, Problem
from .spec import DTYPES, Spec, parse_call

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
assert set(_DTYPES) == set(DTYPES), "spec.DTYPES and build._DTYPES must agree"


@dataclasses.dataclass
class Built:
    """Everything one run needs, fresh, seeded and on its device."""

    model: nn.Module
    optimizer: Optimizer
    scheduler: Any | None
    problem: Problem
    loss_fn: Callable[[Tensor, Tensor], Tensor]
    device: torch.device
    dtype: torch.dtype


def torch_dtype(name: str) -> torch.dtype:
    """``"float64"`` -> ``torch.float64``; an unknown name is a SpecError for key ``dtype``."""
    try:
        return _DTYPES[name]
    except (KeyError, TypeError):
        raise SpecError(
            f"optcheck: dtype={name!r} is not one of {', '.join(_DTYPES)}.{suggest(str(name), _DTYPES)}"
        ) from None


def derive_seed(seed: int, stream: str) -> int:
    """An independent 63-bit seed for ``stream`` ("data", "shuffle"...) from ``seed``.

    Hash-based (stable across Python versions and platforms, unlike ``hash()``), so
    nearby seeds and different streams never share a generator sequence.
    """
    digest = hashlib.sha256(f"pytest-optcheck:{stream}:{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def init_seed(seed: int) -> int:
    """The seed of model initialisation: ``spec.seed`` itself, as in the seed's script."""
    return seed


def data_seed(seed: int) -> int:
    """The seed of the problem's data generator: a stream derived from ``spec.seed``."""
    return derive_seed(seed, "data")


def resolve_device(device: str | torch.device) -> torch.device:
    """Parse ``device`` and check that it exists here, with a message that says what to do."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise OptcheckError(f"optcheck: device {device!r} is not a torch device ({exc}).") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise OptcheckError(
                f"optcheck: device {device!r} was requested but CUDA is not available here "
                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'}). "
                f"Run with --optcheck-device=cpu, or on a machine with a GPU."
            )
        index = torch.cuda.current_device() if dev.index is None else dev.index
        if index >= torch.cuda.device_count():
            raise OptcheckError(
                f"optcheck: device {device!r} does not exist: {torch.cuda.device_count()} CUDA "
                f"device(s) visible."
            )
        dev = torch.device("cuda", index)
    return dev


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed the CPU generator (and ``device``'s, if CUDA) inside a fork of the RNG state.

    Not ``torch.manual_seed``: that also seeds every CUDA device — lazily, when CUDA is
    not initialised yet, i.e. *after* the fork is restored — which would leak into later
    tests. Seeding exactly the forked generators keeps the global state untouched.
    """
    cuda = [device.index] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda, device_type="cuda"):
        torch.default_generator.manual_seed(seed)
        for index in cuda:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield


def _model_value(spec: Spec, problem: Problem) -> Any:
    """The default model is the problem's (for ``quadratic``: the seed's net).

    ``spec.model`` at its default value (``mlp(1, 10, 1)``, however spelled) means "no
    model chosen", so ``blobs`` gets ``mlp(2, 16, 3)`` and ``sparse_linear`` a linear
    model sized to its features. Any other model is used as given.
    """
    if isinstance(spec.model, str) and _same_call(spec.model, SEED_MODEL):
        return problem.model
    return spec.model


def _same_call(a: str, b: str) -> bool:
    return str(parse_call(a, key="model")) == str(parse_call(b, key="model"))


def _make_problem(spec: Spec, dtype: torch.dtype) -> Problem:
    make = resolve_problem(spec.problem)
    seed = data_seed(spec.seed)
    with seeded(seed, torch.device("cpu")):
        return make(torch.Generator().manual_seed(seed), dtype)


def build(spec: Spec, device: str | torch.device = "cpu") -> Built:
    """A fresh ``Built`` for ``spec`` on ``device``: seeded, isolated, bit-reproducible."""
    dev = resolve_device(device)
    dtype = torch_dtype(spec.dtype)
    # Optimizer and scheduler names fail before any data is generated; the model waits
    # for the problem, whose default model may follow its arguments.
    make_optimizer = resolve_optimizer(spec.optimizer)
    make_scheduler = resolve_scheduler(spec.scheduler)
    problem = _make_problem(spec, dtype).to(dev, dtype)
    make_model = resolve_model(_model_value(spec, problem))
    loss_fn = resolve_loss(spec.loss, problem)
    if isinstance(loss_fn, nn.Module):
        loss_fn = loss_fn.to(dev)
    with seeded(init_seed(spec.seed), dev):
        model = make_model().to(device=dev, dtype=dtype)
        optimizer = make_optimizer(model.parameters())
        scheduler = make_scheduler(optimizer) if make_scheduler is not None else None
    return Built(model, optimizer, scheduler, problem, loss_fn, dev, dtype)
