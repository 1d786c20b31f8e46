"""What a recording watches: the torch optimizer found in what the user passed, the
arguments of ``Recorder`` / ``optcheck.record`` checked where they enter, and a GradScaler's
``update()`` observed so a step it skipped stays a row.

Kept apart from :mod:`.recorder` (which turns hook calls into series): these are the rules
for *what* is hooked, each with the sentence that refuses what cannot be.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ...errors import OptcheckError

#: Where wrappers keep the optimizer they wrap (a hand-written Lookahead, accelerate's
#: ``AcceleratedOptimizer`` and Lightning's ``LightningOptimizer``, a property over its
#: ``._optimizer``: ``.optimizer``; SAM: ``.base_optimizer``).
WRAPPED_AT = ("optimizer", "base_optimizer")

#: Packages whose optimizer wrappers are plumbing of a training framework, not part of the
#: run's configuration: watched (and described) through the optimizer they wrap.
FRAMEWORK_PACKAGES = ("accelerate", "lightning", "pytorch_lightning")


class RecordArgumentError(OptcheckError, TypeError):
    """An argument of ``Recorder`` / ``optcheck.record`` that cannot be what it should be."""


def describe_class(obj: Any) -> str:
    """The class of ``obj`` as a reader finds it: torch's by name, others with their module."""
    cls = type(obj)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" or module.split(".")[0] == "torch" \
        else f"{module}.{cls.__qualname__}"


def is_framework_wrapper(obj: Any) -> bool:
    """An optimizer wrapper a training framework adds (accelerate, Lightning)."""
    return type(obj).__module__.split(".")[0] in FRAMEWORK_PACKAGES


def _wrapped(obj: Any, attr: str | None) -> tuple[str, Any] | None:
    """(attribute, optimizer) one level inside ``obj``, or None."""
    names = (attr,) if attr else WRAPPED_AT
    for name in names:
        inner = getattr(obj, name, None)
        if inner is not None and inner is not obj and hasattr(inner, "param_groups"):
            return name, inner
    return None


def watched_optimizer(given: Any, optimizer_attr: str | None = None) -> tuple[Any, list[Any]]:
    """The torch optimizer whose step hooks a recording registers, and the wrappers around it
    (outermost first).

    A ``torch.optim.Optimizer`` is watched itself: its ``step()`` runs the hooks, also when it
    wraps another (pytorch-optimizer's ``Lookahead``, SAM). Anything else — a hand-written
    wrapper, a framework's (accelerate's ``AcceleratedOptimizer`` subclasses ``Optimizer`` but
    runs no hooks of its own) — is watched through the optimizer it holds, found at
    ``optimizer_attr`` when given, else at ``.optimizer`` or ``.base_optimizer``. What holds no
    optimizer is refused, saying what was expected."""
    check_optimizer_argument(given)
    if optimizer_attr is not None and not isinstance(optimizer_attr, str):
        raise RecordArgumentError(f"optcheck: optimizer_attr={optimizer_attr!r} must be the name of the attribute that "
                        f"holds the wrapped optimizer, e.g. optimizer_attr='optimizer'.")
    wrappers: list[Any] = []
    current = given
    for _ in range(8):
        plain = isinstance(current, torch.optim.Optimizer) and not is_framework_wrapper(current)
        if plain and not (optimizer_attr and current is given):
            return current, wrappers
        found = _wrapped(current, optimizer_attr if current is given else None)
        if found is None:
            break
        wrappers.append(current)
        current = found[1]
    raise RecordArgumentError(_not_recordable(given, current, optimizer_attr))


def _not_recordable(given: Any, reached: Any, optimizer_attr: str | None) -> str:
    what = describe_class(given)
    if optimizer_attr is not None:
        inner = getattr(given, optimizer_attr, None)
        held = "nothing" if inner is None else f"a {describe_class(inner)}"
        return (f"optcheck: record(..., optimizer_attr={optimizer_attr!r}): {what}.{optimizer_attr} holds {held}, "
                f"not a torch.optim.Optimizer. Name the attribute that holds the optimizer whose step() runs "
                f"the update.")
    inside = "" if reached is given else f" (it wraps a {describe_class(reached)}, which is not one either)"
    return (f"optcheck: cannot record a {what}: expected a torch.optim.Optimizer, or a wrapper that holds one "
            f"as .optimizer or .base_optimizer{inside}. If your wrapper keeps it elsewhere, say where: "
            f"optcheck.record(wrapper, optimizer_attr='<attribute>').")


def check_optimizer_argument(given: Any) -> None:
    """Refuse the usual slips at the boundary, before anything is hooked: a model or a
    scheduler where the optimizer goes (``record(model, optimizer)``)."""
    if isinstance(given, torch.nn.Module):
        raise RecordArgumentError(
            f"optcheck: record()'s first argument is the optimizer; got a model ({describe_class(given)}, a "
            f"torch.nn.Module). Pass the optimizer first: optcheck.record(optimizer, scheduler, model).")
    if hasattr(given, "get_last_lr") or hasattr(given, "base_lrs"):
        raise RecordArgumentError(
            f"optcheck: record()'s first argument is the optimizer; got a scheduler ({describe_class(given)}). "
            f"Pass the optimizer first: optcheck.record(optimizer, scheduler, model).")


def check_arguments(scheduler: Any, model: Any, scaler: Any) -> None:
    """The other arguments of ``Recorder`` / ``optcheck.record``, each refused with what it
    should be when it is clearly something else."""
    if model is not None and not isinstance(model, torch.nn.Module):
        swapped = " (an optimizer: did you swap the arguments?)" if hasattr(model, "param_groups") else ""
        raise RecordArgumentError(f"optcheck: record(..., model=...) takes a torch.nn.Module (its parameters are the norms' "
                        f"ones); got a {describe_class(model)}{swapped}. "
                        f"Write optcheck.record(optimizer, scheduler, model).")
    if scheduler is not None and (isinstance(scheduler, torch.nn.Module) or not callable(getattr(scheduler, "step",
                                                                                                   None))):
        raise RecordArgumentError(f"optcheck: record()'s second argument is the LR scheduler (an object with step(), or "
                        f"None); got a {describe_class(scheduler)}. Write optcheck.record(optimizer, scheduler, "
                        f"model) or pass model=... by name.")
    if scaler is not None and not (callable(getattr(scaler, "update", None))
                                   and callable(getattr(scaler, "step", None))):
        raise RecordArgumentError(f"optcheck: record(..., scaler=...) takes the torch.amp.GradScaler the loop steps "
                        f"through (scaler.step(optimizer); scaler.update()); got a {describe_class(scaler)}.")


class UpdateWatch:
    """Calls ``on_update`` after each ``scaler.update()`` while the recording lasts.

    GradScaler has no hooks, and a skipped step leaves no trace on the optimizer: its
    ``step()`` is simply not called; ``update()`` then backs the scale off. So the recording
    wraps the scaler's public ``update`` method on that one instance (an attribute of the
    instance, shadowing the class's method) and removes the wrapper when it ends; the
    scaler's behaviour is unchanged. An ``update()`` with no optimizer step since the
    previous one is a skipped step. Same interface as a hook's handle: ``remove()``."""

    def __init__(self, scaler: Any, on_update: Callable[[], None]) -> None:
        self.scaler = scaler
        self.active = True
        original = scaler.update

        def update(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            if self.active:
                on_update()
            return result

        self.wrapper = update
        scaler.update = update

    def remove(self) -> None:
        self.active = False  # also when something wrapped update() again after us
        if vars(self.scaler).get("update") is self.wrapper:
            del self.scaler.update
