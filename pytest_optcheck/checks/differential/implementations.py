"""The implementations an optimizer offers — for-loop, ``foreach``, ``fused`` — found from
its signature, as spec overrides for the parity check.

torch's optimizers take ``foreach`` (one kernel per list of tensors) and some ``fused``
(one kernel for the whole update); a third-party optimizer that takes the same keywords
is treated the same way. Which ones a device supports is asked of the optimizer itself:
it is built with the flag on a one-element parameter of the device and dtype, and a
refusal (``fused=True`` where no fused kernel exists) skips that variant with torch's
own reason.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import torch

from ...declare.build import resolve_device, torch_dtype
from ...declare.catalog import resolve_optimizer
from ...declare.spec import Call, Spec, parse_call
from ...errors import SpecError

#: Variant name -> the flags that select it (None: leave the keyword out / at its default).
IMPLEMENTATIONS: dict[str, dict[str, bool | None]] = {
    "for-loop": {"foreach": False, "fused": None},
    "foreach": {"foreach": True, "fused": None},
    "fused": {"fused": True, "foreach": None},
}


def _keywords(value: Any) -> tuple[set[str], dict[str, Any]]:
    """(keywords the optimizer accepts, the values the spec sets) of a spec's optimizer."""
    builder = resolve_optimizer(value)
    target: Any = builder.target
    given: dict[str, Any] = dict(builder.kwargs)
    while isinstance(target, functools.partial):
        given = {**target.keywords, **given}
        target = target.func
    try:
        accepted = set(inspect.signature(target).parameters)
    except (TypeError, ValueError):
        accepted = set()
    return accepted, given


def reference_implementation(value: Any) -> str | None:
    """The implementation the spec names explicitly (None: the optimizer's default)."""
    _, given = _keywords(value)
    if given.get("fused"):
        return "fused"
    if given.get("foreach") is not None:
        return "foreach" if given["foreach"] else "for-loop"
    return None


def with_flags(value: Any, flags: dict[str, bool | None], accepted: set[str]) -> Any:
    """The optimizer value with the flags set: a call string stays a call string."""
    flags = {k: v for k, v in flags.items() if k in accepted}
    if isinstance(value, str):
        call = parse_call(value, key="optimizer")
        kwargs = {k: v for k, v in call.kwargs if k not in flags}
        kwargs.update({k: v for k, v in flags.items() if v is not None})
        return str(Call(call.name, call.args, tuple(kwargs.items())))
    return functools.partial(value, **flags)


def implementation_variants(spec: Spec, device: str = "cpu") -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """``({variant: spec overrides}, {skipped variant: reason})`` for the spec's optimizer."""
    accepted, _ = _keywords(spec.optimizer)
    reference = reference_implementation(spec.optimizer)
    variants: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for name, flags in IMPLEMENTATIONS.items():
        selecting = [k for k, v in flags.items() if v is not None]
        if name == reference or not all(k in accepted for k in selecting):
            continue
        value = with_flags(spec.optimizer, flags, accepted)
        reason = _unsupported(value, device, spec.dtype)
        if reason:
            skipped[name] = reason
        else:
            variants[name] = {"optimizer": value}
    return variants, skipped


def _unsupported(value: Any, device: str, dtype: str) -> str | None:
    """Why the optimizer refuses to be built with these flags on this device (None: it accepts)."""
    dev = resolve_device(device)
    probe = torch.zeros(2, 2, device=dev, dtype=torch_dtype(dtype), requires_grad=True)
    try:
        resolve_optimizer(value)([probe])
    except SpecError as exc:
        cause = exc.__cause__ or exc
        return f"not available on {dev.type} ({dtype}): {str(cause).strip().splitlines()[0]}"
    return None
