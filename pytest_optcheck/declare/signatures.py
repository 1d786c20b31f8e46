"""A call in a marker checked against what it calls, before anything is built: the keywords
the target takes, the arguments it binds (``inspect.signature(...).bind``), the kind of
class it is, and, once built, the kind of object it returned. Each failure is a
:class:`SpecError` naming the key, the value and what the target accepts. Used by the
builders of :mod:`.catalog`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from torch import nn
from torch.optim import Optimizer

from ..errors import SpecError, suggest
from .spec import canonical_callable

# -- signature checks (before anything is built) -------------------------------------------


class Lead:
    """Stand-in for the argument the builder supplies later (params, optimizer...)."""

    def __repr__(self) -> str:
        return "<supplied by optcheck>"


def signature(target: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(target)
    except (TypeError, ValueError):
        return None  # builtins and C callables: checked when called instead


def _display(target: Any) -> str:
    return getattr(target, "__name__", None) or canonical_callable(target)


def argument_hint(target: Any, kwargs: Mapping[str, Any]) -> str | None:
    """Why a call most likely failed, when an argument is of another kind than the target's
    default for it — ``betas=0.9`` where AdamW's default is the tuple ``(0.9, 0.999)`` — so the
    user reads the argument and the fix, not torch's ``'float' object is not subscriptable``."""
    sig = signature(target)
    if sig is None:
        return None
    for name, value in kwargs.items():
        parameter = sig.parameters.get(name)
        default = parameter.default if parameter is not None else inspect.Parameter.empty
        if value is None:  # no default (empty), a None default: neither is a sequence or a number, skipped below
            continue
        sequence = (tuple, list)
        if isinstance(default, sequence) and not isinstance(value, sequence):
            kind = "a tuple" if isinstance(default, tuple) else "a list"
            example = repr(default) if len(default) else f"({value!r},)"
            return (f"argument {name!r} of {_display(target)} takes {kind}, like its default {default!r}; "
                    f"got {value!r} (a {type(value).__name__}). Write {name}={example}, with your values.")
        number = (int, float)
        if isinstance(default, number) and not isinstance(default, bool) and not isinstance(value, number):
            return (f"argument {name!r} of {_display(target)} takes a number, like its default {default!r}; "
                    f"got {value!r} (a {type(value).__name__}).")
    return None


def _check_keywords(sig: inspect.Signature, target: Any, kind: str, text: str,
                    kwargs: dict[str, Any], supplied: Iterable[str]) -> None:
    """Reject a keyword the target does not take, listing those it does (with a guess)."""
    params = sig.parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    skip = set(supplied)
    accepted = [
        p.name for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in skip
    ]
    for key in kwargs:
        if key not in accepted:
            raise SpecError(
                f"optcheck: {_display(target)} does not accept the keyword {key!r} in "
                f"{kind}={text!r}.{suggest(key, accepted)} "
                f"Accepted keywords: {', '.join(accepted) or '(none)'}."
            )


def check_call(target: Any, kind: str, text: str, lead: tuple[Any, ...], lead_kwargs: dict[str, Any],
                args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Bind the call the builder will make, so a bad argument fails now, by name."""
    sig = signature(target)
    if sig is None:
        return
    supplied = list(lead_kwargs)
    positional = [p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    supplied += [p.name for p in positional[: len(lead)]]
    _check_keywords(sig, target, kind, text, kwargs, supplied)
    try:
        sig.bind(*lead, *args, **lead_kwargs, **kwargs)
    except TypeError as exc:
        raise SpecError(
            f"optcheck: {kind}={text!r} does not fit {_display(target)}{_public_signature(sig, supplied)}: "
            f"{exc}."
        ) from None


def _public_signature(sig: inspect.Signature, supplied: Iterable[str]) -> str:
    """``(step_size, gamma=0.1, last_epoch=-1)``: what the user may pass, no annotations."""
    skip = set(supplied)
    parts = []
    for p in sig.parameters.values():
        if p.name in skip:
            continue
        prefix = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        default = "" if p.default is p.empty else f"={p.default!r}"
        parts.append(f"{prefix}{p.name}{default}")
    return f"({', '.join(parts)})"


# -- type checks ------------------------------------------------------------------------------


def _is_scheduler_class(target: type) -> bool:
    return callable(getattr(target, "step", None)) and not issubclass(target, (Optimizer, nn.Module))


_CLASS_CHECKS: dict[str, tuple[Callable[[type], bool], str]] = {
    "optimizer": (lambda c: issubclass(c, Optimizer), "a torch.optim.Optimizer subclass"),
    "scheduler": (_is_scheduler_class, "an LR scheduler (a class with a step() method)"),
    "model": (lambda c: issubclass(c, nn.Module), "a torch.nn.Module subclass"),
}


def check_class(target: Any, kind: str, text: str) -> None:
    """A class of the wrong kind (an nn.Module given as optimizer) fails at resolution."""
    if not inspect.isclass(target) or kind not in _CLASS_CHECKS:
        return
    ok, what = _CLASS_CHECKS[kind]
    if not ok(target):
        raise SpecError(
            f"optcheck: {kind}={text!r} is {canonical_callable(target)}, which is not {what}."
        )


def check_result(result: Any, kind: str, text: str) -> Any:
    checks: dict[str, tuple[Callable[[Any], bool], str]] = {
        "optimizer": (lambda r: isinstance(r, Optimizer), "a torch.optim.Optimizer"),
        "scheduler": (lambda r: callable(getattr(r, "step", None)), "a scheduler (with a step() method)"),
        "model": (lambda r: isinstance(r, nn.Module), "a torch.nn.Module"),
        "loss": (callable, "a callable loss(pred, target)"),
    }
    if kind in checks:
        ok, what = checks[kind]
        if not ok(result):
            raise SpecError(
                f"optcheck: {kind}={text!r} returned {type(result).__name__}, not {what}."
            )
    return result
