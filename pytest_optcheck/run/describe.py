"""What a recorded run was: the configuration a golden stores for it.

A run recorded from a user's loop or a framework's trainer was not built from the marker,
so the marker's keys say nothing about it. :func:`describe_run` reads the description off
the objects that ran — the optimizer, its param groups, the scheduler — into a flat,
JSON-ready dict. The golden stores it as its configuration, ``optcheck show`` prints it, and
a change in it (another optimizer class, a changed hyperparameter) is "configuration
changed", old -> new, key by key.

The learning rate is described only when the ``lr`` series is not recorded: a recorded
``lr`` is compared step by step, which names the first step that moved — a configuration
line cannot. So every hyperparameter is compared exactly once.
"""

from __future__ import annotations

import collections
import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from ..declare.spec import canonical_callable
from .record.watch import WRAPPED_AT, is_framework_wrapper

#: Where a recorded run came from (the golden's ``source``).
SOURCES = ("loop", "lightning", "transformers")

#: Scheduler constructor arguments that are state or plumbing, not configuration.
_SCHEDULER_SKIP = frozenset({"self", "optimizer", "last_epoch", "verbose"})


def describe_run(
    optimizer: Any,
    scheduler: Any = None,
    source: str = "loop",
    steps: int = 0,
    epochs: int = 0,
    record: Iterable[str] = (),
    optimizer_attr: str | None = None,
) -> dict[str, Any]:
    """The configuration of a recorded run, JSON-ready, every key always present but
    ``wrapper`` (only for an optimizer inside a wrapper that is part of the run).

    ``optimizer`` and ``scheduler`` may be wrapped: a framework's wrappers (a Lightning
    ``LightningOptimizer``, accelerate's ``AcceleratedOptimizer`` / ``AcceleratedScheduler``)
    are plumbing and unwrapped silently; any other wrapper (a Lookahead, SAM) is part of the
    run and described under ``wrapper`` with its settings (:func:`describe_wrapper`).
    ``record`` names the recorded series (``lr`` among them leaves the LR out).
    """
    if source not in SOURCES:
        raise ValueError(f"optcheck: source={source!r} is not one of {', '.join(SOURCES)}.")
    chain, optimizer = unwrap(optimizer, optimizer_attr)
    wrappers = [w for w in chain if not is_framework_wrapper(w)]
    scheduler = unwrap_scheduler(scheduler)
    common, groups = _hyperparameters(optimizer, with_lr="lr" not in tuple(record))
    described = {
        "source": source,
        "optimizer": _call_text(type(optimizer).__name__, _non_default(type(optimizer), common)),
        "param_groups": groups,
        "scheduler": describe_scheduler(scheduler) if scheduler is not None else None,
        "epochs": int(epochs),
        "steps": int(steps),
    }
    if wrappers:  # only then: goldens of unwrapped runs keep the keys they always had
        described["wrapper"] = " > ".join(describe_wrapper(w) for w in wrappers)
    return described


# -- unwrapping ----------------------------------------------------------------------------


def unwrap(optimizer: Any, optimizer_attr: str | None = None) -> tuple[list[Any], Any]:
    """(the wrappers, outermost first; the innermost optimizer). Each wrapper holds the next
    at ``optimizer_attr`` (the outermost only), ``.optimizer`` or ``.base_optimizer`` (a
    hand-written Lookahead, pytorch-optimizer's, SAM, accelerate's ``AcceleratedOptimizer``),
    or, for Lightning's ``LightningOptimizer``, ``._optimizer``."""
    chain: list[Any] = []
    while len(chain) < 8:
        names = (optimizer_attr,) if optimizer_attr and not chain else (*WRAPPED_AT, "_optimizer")
        inner = next((i for i in (getattr(optimizer, n, None) for n in names)
                      if i is not None and i is not optimizer and hasattr(i, "param_groups")), None)
        if inner is None:
            break
        chain.append(optimizer)
        optimizer = inner
    return chain, optimizer


def unwrap_optimizer(optimizer: Any, optimizer_attr: str | None = None) -> Any:
    """The innermost torch optimizer, inside every wrapper (:func:`unwrap`)."""
    return unwrap(optimizer, optimizer_attr)[1]


#: A wrapper's constructor arguments that are plumbing, not settings.
_WRAPPER_SKIP = frozenset({"self", "optimizer", "base_optimizer", "params", "model"})


def describe_wrapper(wrapper: Any) -> str:
    """``Name(k=5, alpha=0.5)``: the wrapper's class and its settings — every constructor
    argument kept on the instance (as ``arg`` or ``_arg``) that is a number, a bool or a
    string, defaults included (a wrapper's defaults are its library's, and may change); where
    that finds none, the instance's public attributes of those kinds."""
    cls = type(wrapper)
    try:
        names = [n for n, p in inspect.signature(cls.__init__).parameters.items()
                 if n not in _WRAPPER_SKIP and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    except (TypeError, ValueError):
        names = []
    settings = _settings(wrapper, names) or _settings(wrapper, [n for n in vars(wrapper) if not n.startswith("_")])
    return _call_text(cls.__name__, settings)


def _settings(wrapper: Any, names: Iterable[str]) -> dict[str, Any]:
    """The named attributes of ``wrapper`` that are numbers, bools or strings."""
    found = {}
    for name in names:
        value = _scheduler_attribute(wrapper, name)
        if isinstance(value, (bool, int, float, str)):
            found[name] = value
    return found


def unwrap_scheduler(scheduler: Any) -> Any:
    """The scheduler inside accelerate's ``AcceleratedScheduler`` (``.scheduler``)."""
    while scheduler is not None and hasattr(getattr(scheduler, "scheduler", None), "step"):
        scheduler = scheduler.scheduler
    return scheduler


# -- optimizer -------------------------------------------------------------------------------


def _hyperparameters(optimizer: Any, *, with_lr: bool) -> tuple[dict[str, Any], list[str]]:
    """The hyperparameters shared by every param group, and one line per group: its size and
    the hyperparameters that differ between groups."""
    accepted = _signature(type(optimizer))[0]
    keys = [k for k in getattr(optimizer, "defaults", {})
            if (with_lr or k != "lr") and (accepted is None or k in accepted)]
    values = [{k: _plain(_group_value(group, k)) for k in keys if k in group} for group in optimizer.param_groups]
    common = {k: v for k, v in values[0].items() if all(g.get(k, _MISSING) == v for g in values)} if values else {}
    lines = []
    for group, own in zip(optimizer.param_groups, values):
        params = list(group["params"])
        size = f"{len(params)} tensor{'s' if len(params) != 1 else ''}, {sum(p.numel() for p in params)} values"
        extra = ", ".join(f"{k}={v!r}" for k, v in sorted(own.items()) if k not in common)
        lines.append(f"{size}: {extra}" if extra else size)
    return common, lines


_MISSING = object()


def _group_value(group: Mapping[str, Any], key: str) -> Any:
    # A scheduler moves group["lr"] and keeps the configured value in "initial_lr".
    if key == "lr" and "initial_lr" in group:
        return group["initial_lr"]
    return group[key]


def _non_default(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """The values that differ from the defaults of ``cls``'s constructor (all of them when
    the signature cannot be read)."""
    defaults = _signature(cls)[1]
    return {k: v for k, v in values.items() if k not in defaults or _plain(defaults[k]) != v}


def _signature(cls: type) -> tuple[frozenset[str] | None, dict[str, Any]]:
    """The constructor's argument names (None when it takes ``**kwargs`` or cannot be read:
    then any key may be an argument) and their defaults. A key the constructor does not take
    (AdamW's ``decoupled_weight_decay``, set by the class itself) is not configuration."""
    try:
        parameters = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return None, {}
    open_ended = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    defaults = {n: p.default for n, p in parameters.items() if p.default is not inspect.Parameter.empty}
    return (None if open_ended else frozenset(parameters)), defaults


def _plain(value: Any) -> Any:
    """A comparable, JSON-ready, repr-stable stand-in: tensors as floats, lists as tuples."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if callable(value):
        return canonical_callable(value)
    return repr(value)


# -- scheduler -------------------------------------------------------------------------------


def describe_scheduler(scheduler: Any) -> str:
    """``Name(arg=value, ...)``: the constructor arguments found on the scheduler (as
    ``arg``, ``_arg`` or a per-group ``args``) that differ from their defaults; nested
    schedulers (``SequentialLR``, ``ChainedScheduler``) described the same way."""
    scheduler = unwrap_scheduler(scheduler)
    cls = type(scheduler)
    try:
        parameters = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return cls.__name__
    found: dict[str, str] = {}
    for name, parameter in parameters.items():
        if name in _SCHEDULER_SKIP or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        value = _scheduler_attribute(scheduler, name)
        if value is _MISSING:
            continue
        if parameter.default is not inspect.Parameter.empty and _plain(parameter.default) == _plain(value):
            continue
        found[name] = _scheduler_text(value)
    return f"{cls.__name__}({', '.join(f'{k}={v}' for k, v in sorted(found.items()))})"


def _scheduler_attribute(scheduler: Any, name: str) -> Any:
    for attribute in (name, "_" + name):
        if hasattr(scheduler, attribute):
            return getattr(scheduler, attribute)
    plural = getattr(scheduler, name + "s", _MISSING)  # LambdaLR keeps lr_lambda per group
    if isinstance(plural, (list, tuple)) and plural and all(v == plural[0] for v in plural):
        return plural[0]
    return plural


def _scheduler_text(value: Any) -> str:
    if hasattr(value, "step") and hasattr(value, "optimizer"):
        return describe_scheduler(value)
    if isinstance(value, collections.Counter):  # MultiStepLR's milestones
        return repr(sorted(value.elements()))
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_scheduler_text(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    plain = _plain(value)
    return plain if callable(value) and isinstance(plain, str) else repr(plain)


def _call_text(name: str, kwargs: Mapping[str, Any]) -> str:
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in sorted(kwargs.items()))})"
