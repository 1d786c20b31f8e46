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
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from ..errors import OptcheckError, SpecError, suggest
from .catalog import resolve_loss, resolve_model, resolve_optimizer, resolve_problem, resolve_scheduler
from .problems import SEED_MODEL, Problem
from .spec import DTYPES, RECORDABLE, Spec, parse_call, run_sizes

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


def build(spec: Spec, device: str | torch.device = "cpu",
          prepare: Callable[[nn.Module], Any] | None = None) -> Built:
    """A fresh ``Built`` for ``spec`` on ``device``: seeded, isolated, bit-reproducible.

    ``prepare(model)`` runs before the optimizer is made, for what replaces the model's
    parameters (FSDP2's ``fully_shard``), so the optimizer holds the parameters trained."""
    dev = resolve_device(device)
    dtype = torch_dtype(spec.dtype)
    # Optimizer and scheduler names fail before any data is generated; the model waits
    # for the problem, whose default model may follow its arguments.
    resolve_optimizer(spec.optimizer)
    resolve_scheduler(spec.scheduler)
    problem = _make_problem(spec, dtype).to(dev, dtype)
    sizes = run_sizes(problem.inputs.shape[0], spec.batch_size, spec.epochs)
    make_optimizer = resolve_optimizer(spec.optimizer, sizes)
    make_scheduler = resolve_scheduler(spec.scheduler, sizes)
    make_model = resolve_model(_model_value(spec, problem))
    loss_fn = resolve_loss(spec.loss, problem)
    if isinstance(loss_fn, nn.Module):
        loss_fn = loss_fn.to(dev)
    with seeded(init_seed(spec.seed), dev):
        model = make_model().to(device=dev, dtype=dtype)
        if prepare is not None:
            prepare(model)
        optimizer = make_optimizer(_optimizer_argument(spec, model, make_optimizer.wants_model))
        scheduler = make_scheduler(optimizer) if make_scheduler is not None else None
    check_group_keys(spec, optimizer)
    return Built(model, optimizer, scheduler, problem, loss_fn, dev, dtype)


def _optimizer_argument(spec: Spec, model: nn.Module, wants_model: bool) -> Any:
    """What the optimizer builder receives: the model (a model-aware factory), the
    ``param_groups`` the spec declares, or the model's parameters."""
    if wants_model:
        if spec.param_groups is not None:
            raise SpecError(
                f"optcheck: param_groups={spec.param_groups!r} cannot be combined with optimizer="
                f"{spec.optimizer!r}: that factory receives the model and makes its own parameter groups. "
                f"Drop one of the two."
            )
        return model
    if spec.param_groups is None:
        return model.parameters()
    return param_groups(model, spec.param_groups)


def param_groups(model: nn.Module, declared: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Parameter groups from ``{regex: overrides}``: a parameter joins the group of the first
    regex that ``re.search``es its qualified name; the rest form group 0 with the optimizer's
    own arguments (left out when every parameter matched). A regex that matches nothing is
    an error: it is a typo or a model change, and silently ignoring it would test less."""
    named = list(model.named_parameters())
    members: dict[str, list[Tensor]] = {regex: [] for regex in declared}
    rest: list[Tensor] = []
    for name, param in named:
        regex = next((r for r in declared if re.search(r, name)), None)
        (members[regex] if regex is not None else rest).append(param)
    for regex, params in members.items():
        if not params:
            names = ", ".join(n for n, _ in named)
            raise SpecError(
                f"optcheck: param_groups regex {regex!r} matches no parameter of the model (an earlier regex "
                f"may have taken them). Parameter names: {names}."
            )
    groups = [{"params": rest}] if rest else []
    return groups + [{"params": params, **declared[regex]} for regex, params in members.items()]


def check_group_keys(spec: Spec, optimizer: Optimizer) -> None:
    """Every ``record`` name that is not a series must be a numeric key of every param
    group ("d" for Prodigy), known only once the optimizer exists."""
    for name in spec.record:
        if name in RECORDABLE:
            continue
        numeric = sorted({k for g in optimizer.param_groups for k, v in g.items()
                          if isinstance(v, (int, float, Tensor)) and not isinstance(v, bool)})
        if not all(name in g for g in optimizer.param_groups) or name not in numeric:
            raise SpecError(
                f"optcheck: record names {name!r}, which is neither a recordable series ({', '.join(RECORDABLE)}) "
                f"nor a numeric key of the param groups of {type(optimizer).__name__} "
                f"({', '.join(numeric)}).{suggest(name, [*RECORDABLE, *numeric])}"
            )
