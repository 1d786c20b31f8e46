"""The interrupted run of the resume check: train, checkpoint, rebuild, load, continue.

The checkpoint is what a training script saves: ``state_dict()`` of the model, the
optimizer and the scheduler, and the batch order (the reference loop's
:class:`~.train.LoopState`, holding its generator's state) — written with the real
``torch.save`` into an in-memory buffer and read back with
``torch.load(weights_only=True)``, the loader PyTorch recommends and defaults to. The
objects it is loaded into are built from the spec afresh, as after a restart.

To say *what* did not survive, the state is captured right before saving and right after
loading: the three ``state_dict()`` trees, and the plain attributes (numbers, strings,
tensors) of the optimizer and the scheduler — where a step count kept outside
``self.state`` lives, invisible to ``state_dict()``.
"""

from __future__ import annotations

import dataclasses
import io
import math
import pickle
from collections.abc import Mapping
from typing import Any

import torch

from ...declare.build import Built, build
from ...declare.spec import Spec
from ...engine.stepwise import Run
from ...engine.trajectory import Trajectory
from ...run.train import LoopState, train, train_until
from .states import StepStates

#: Attributes that differ after loading by design: torch's flag that ``step()`` was called
#: (set on the first step of the resumed run; it only silences a warning).
IGNORED_ATTRIBUTES = frozenset({"_opt_called"})


class CheckpointError(Exception):
    """``torch.save`` or ``torch.load(weights_only=True)`` refused the checkpoint."""


@dataclasses.dataclass(frozen=True)
class Lost:
    """A piece of state that is not the same after loading as before saving."""

    where: str
    before: str
    after: str
    in_state_dict: bool


@dataclasses.dataclass(frozen=True)
class Interrupted:
    """The run cut after ``stop`` steps and continued from the checkpoint, as one Run."""

    run: Run
    lost: list[Lost]


def interrupted_run(spec: Spec, stop: int, device: str = "cpu", threads: int | None = None) -> Interrupted:
    """Train ``stop`` steps, checkpoint, load into fresh objects, train the rest."""
    built = build(spec, device)
    with StepStates(built.model, built.optimizer) as first_states:
        first, loop = train_until(spec, stop, device, built=built, threads=threads)
    before = captured_state(built)
    data = save_checkpoint(built, loop)
    fresh = build(spec, device)
    loop = load_checkpoint(data, fresh)
    lost = differences(before, captured_state(fresh))
    with StepStates(fresh.model, fresh.optimizer) as second_states:
        second = train(spec, device, built=fresh, threads=threads, start=loop)
    return Interrupted(Run(_concatenate(first, second), first_states.steps + second_states.steps), lost)


def save_checkpoint(built: Built, loop: LoopState) -> bytes:
    state = {
        "model": built.model.state_dict(),
        "optimizer": built.optimizer.state_dict(),
        "scheduler": built.scheduler.state_dict() if built.scheduler is not None else None,
        "loop": loop.state_dict(),
    }
    buffer = io.BytesIO()
    try:
        torch.save(state, buffer)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"torch.save failed: {type(exc).__name__}: {exc}") from exc
    return buffer.getvalue()


def load_checkpoint(data: bytes, built: Built) -> LoopState:
    """Load the checkpoint into ``built``'s fresh objects; return where the loop stood."""
    try:
        state = torch.load(io.BytesIO(data), weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"torch.load(weights_only=True) refused the checkpoint: {_reason(exc)}. Keep "
                              f"tensors, numbers, strings and containers of them in state_dict().") from exc
    built.model.load_state_dict(state["model"])
    built.optimizer.load_state_dict(state["optimizer"])
    if built.scheduler is not None:
        built.scheduler.load_state_dict(state["scheduler"])
    return LoopState.from_state_dict(state["loop"])


def _reason(exc: BaseException) -> str:
    """torch's own reason (``WeightsUnpickler error: Unsupported global: ...``), without the
    paragraphs around it."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reason = next((line for line in lines if "WeightsUnpickler error" in line), lines[0] if lines else repr(exc))
    return reason.removeprefix("WeightsUnpickler error: ").split(". Please use")[0].rstrip(".")


def _concatenate(first: Trajectory, second: Trajectory) -> Trajectory:
    """The two parts as one trajectory. Positions are renumbered as in one run: the
    recorder of the second part counts its batches from the resume point."""
    series = {n: [*first[n], *second[n]] for n in first.names}
    epochs = [*first.epoch, *second.epoch]
    batches = list(first.batch)
    for i in range(len(first), len(epochs)):
        batches.append(batches[-1] + 1 if epochs[i] == epochs[i - 1] else 0)
    return Trajectory(series, epochs, batches, meta=first.meta)


# -- what survived the round trip ---------------------------------------------------------


def captured_state(built: Built) -> dict[str, Any]:
    """The state trees and plain attributes compared before saving and after loading."""
    names = _state_names(built)
    optimizer = built.optimizer.state_dict()
    optimizer = {**optimizer, "state": {names.get(k, k): v for k, v in optimizer["state"].items()}}
    scheduler = built.scheduler.state_dict() if built.scheduler is not None else {}
    return {
        "model": built.model.state_dict(),
        "optimizer": optimizer,
        "scheduler": scheduler,
        "optimizer attribute": _plain_attributes(built.optimizer, {"state", "param_groups", "defaults"}),
        "scheduler attribute": _plain_attributes(built.scheduler, set(scheduler)) if built.scheduler else {},
    }


def _state_names(built: Built) -> dict[int, str]:
    """state_dict() index of a parameter -> its name in the model."""
    names = {id(p): name for name, p in built.model.named_parameters()}
    params = [p for group in built.optimizer.param_groups for p in group["params"]]
    return {i: names.get(id(p), str(i)) for i, p in enumerate(params)}


def _plain_attributes(obj: Any, skip: set[str]) -> dict[str, Any]:
    """Attributes holding numbers, strings, tensors (or short lists of them): state a
    step may change. Hooks, references to other objects and callables are left out."""
    out = {}
    for key, value in vars(obj).items():
        if key in skip or key in IGNORED_ATTRIBUTES:
            continue
        if _plain(value) or (isinstance(value, (list, tuple)) and all(_plain(v) for v in value)):
            out[key] = value
    return out


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str, torch.Tensor))


def differences(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Lost]:
    """What is not the same after loading as before saving, by path."""
    out: list[Lost] = []
    for part in before:
        if "attribute" in part:
            keys = list(before[part]) + [k for k in after[part] if k not in before[part]]
            for key in keys:
                a, b = before[part].get(key, _ABSENT), after[part].get(key, _ABSENT)
                out += [Lost(f"{part} {key}{where}", x, y, False) for where, x, y in _tree_differences(a, b, "")]
        else:
            out += [Lost(f"{part} state_dict(){where}", x, y, True)
                    for where, x, y in _tree_differences(before[part], after[part], "")]
    return out


_ABSENT = "(absent)"


def _tree_differences(a: Any, b: Any, path: str) -> list[tuple[str, str, str]]:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        out = []
        for key in list(a) + [k for k in b if k not in a]:
            if key not in b:
                out.append((f"{path}[{key!r}]", _show(a[key]), _ABSENT))
            elif key not in a:
                out.append((f"{path}[{key!r}]", _ABSENT, _show(b[key])))
            else:
                out += _tree_differences(a[key], b[key], f"{path}[{key!r}]")
        return out
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _tree_differences(x, y, f"{path}[{i}]")]
    return [] if _same(a, b) else [(path, _show(a), _show(b))]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        a, b = a.detach().cpu(), b.detach().cpu()
        if a.is_floating_point():
            return bool(((a == b) | (a.isnan() & b.isnan())).all())
        return bool((a == b).all())
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    try:
        return bool(a == b) and type(a) is type(b)
    except (RuntimeError, TypeError, ValueError):
        return False


def _show(value: Any) -> str:
    if value is _ABSENT:
        return _ABSENT
    if isinstance(value, torch.Tensor):
        if value.numel() <= 4:
            return f"tensor({value.detach().cpu().tolist()})"
        return f"tensor of shape {tuple(value.shape)}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
