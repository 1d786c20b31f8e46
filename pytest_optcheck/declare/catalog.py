"""Stage 2a: the catalog — what a name in a marker means (models, problems, losses,
optimizers, schedulers) and how to build it.

Resolution is split from construction on purpose: ``resolve_*`` looks the name up,
imports a dotted path, and checks the literal arguments against the target's signature
(``inspect.signature(...).bind``), all without building anything, so the plugin can
call it at setup and report a bad spec before any training. It returns a builder that
constructs on demand and turns any exception into a :class:`SpecError` naming the key
and the value.

Lookup order for a name: registered names first (so a project may shadow torch), then
what torch provides — discovered from ``torch.optim``, ``torch.optim.lr_scheduler`` and
``torch.nn`` rather than kept in a list, so a new torch's optimizers work unchanged —
then a dotted path ``"package.module.Name"`` imported with :mod:`importlib` (the way to
reach a third-party optimizer without registering it).

Scheduler calls may nest (``SequentialLR(schedulers=[LinearLR(...), CosineAnnealingLR(...)])``):
each nested call is resolved like a scheduler and built on the same optimizer, before the
call that holds it. Optimizer and scheduler arguments may be run-size names
(``total_steps``), filled in from the run when the builder is given its ``sizes``.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from ..errors import SpecError, suggest
from . import problems as _builtin
from .problems import Problem
from .signatures import Lead, argument_hint, check_call, check_class, check_result, signature
from .spec import Call, RunSize, canonical_callable, parse_call

Factory = Callable[..., Any]

# -- registries ------------------------------------------------------------------------

_REGISTRIES: dict[str, dict[str, Factory]] = {
    "model": {},
    "problem": {},
    "loss": {},
    "optimizer": {},
    "scheduler": {},
}


def _register(kind: str, name: str) -> Callable[[Factory], Factory]:
    if not isinstance(name, str) or not all(part.isidentifier() for part in name.split(".")):
        raise ValueError(f"register_{kind}({name!r}): the name must be an identifier usable in call syntax")

    def decorator(factory: Factory) -> Factory:
        if not callable(factory):
            raise TypeError(f"register_{kind}({name!r}) decorates a callable, got {factory!r}")
        _REGISTRIES[kind][name] = factory
        return factory

    return decorator


def register_model(name: str) -> Callable[[Factory], Factory]:
    """Register ``factory(*args, **kwargs) -> nn.Module`` as model ``name``."""
    return _register("model", name)


def register_problem(name: str) -> Callable[[Factory], Factory]:
    """Register ``factory(*args, generator, dtype, **kwargs) -> Problem`` as ``name``.

    The factory must draw only from ``generator`` (never the global RNG) and return
    CPU tensors; floating ones in ``dtype``.
    """
    return _register("problem", name)


def register_loss(name: str) -> Callable[[Factory], Factory]:
    """Register ``factory(*args, **kwargs) -> loss_fn(pred, target)`` as loss ``name``."""
    return _register("loss", name)


def register_optimizer(name: str) -> Callable[[Factory], Factory]:
    """Register ``factory(params, *args, **kwargs) -> Optimizer`` as optimizer ``name``."""
    return _register("optimizer", name)


def register_scheduler(name: str) -> Callable[[Factory], Factory]:
    """Register ``factory(optimizer, *args, **kwargs) -> scheduler`` as ``name``."""
    return _register("scheduler", name)


# -- what torch provides (discovered, not listed) ----------------------------------------


def _classes(module: Any, base: tuple[type, ...], exclude: tuple[type, ...] = ()) -> dict[str, type]:
    return {
        name: obj
        for name, obj in sorted(vars(module).items())
        if not name.startswith("_")
        and inspect.isclass(obj)
        and issubclass(obj, base)
        and obj not in exclude
    }


@functools.cache
def torch_optimizers() -> dict[str, type]:
    """Every public ``torch.optim`` class subclassing ``Optimizer`` (the base excluded)."""
    return _classes(torch.optim, (Optimizer,), exclude=(Optimizer,))


@functools.cache
def torch_schedulers() -> dict[str, type]:
    """Every public ``torch.optim.lr_scheduler`` class that is a scheduler (bases excluded)."""
    return _classes(torch.optim.lr_scheduler, (LRScheduler, ReduceLROnPlateau), exclude=(LRScheduler,))


@functools.cache
def torch_modules() -> dict[str, type]:
    """Every public ``torch.nn`` module class (``"Linear(1, 1)"`` as a model)."""
    return _classes(nn, (nn.Module,))


@functools.cache
def torch_losses() -> dict[str, type]:
    """Every public ``torch.nn`` loss class (``"MSELoss(reduction='sum')"``)."""
    return _classes(nn, (nn.modules.loss._Loss,))


_TORCH: dict[str, Callable[[], dict[str, type]]] = {
    "model": torch_modules,
    "problem": dict,
    "loss": torch_losses,
    "optimizer": torch_optimizers,
    "scheduler": torch_schedulers,
}


def _names(kind: str) -> list[str]:
    registered = list(_REGISTRIES[kind])
    return registered + [n for n in _TORCH[kind]() if n not in _REGISTRIES[kind]]


def optimizer_names() -> list[str]:
    """Registered optimizer names, then every discovered ``torch.optim`` optimizer."""
    return _names("optimizer")


def scheduler_names() -> list[str]:
    """Registered scheduler names, then every discovered ``torch.optim.lr_scheduler`` one."""
    return _names("scheduler")


def model_names() -> list[str]:
    return _names("model")


def problem_names() -> list[str]:
    return _names("problem")


def loss_names() -> list[str]:
    return _names("loss")


# -- name lookup ---------------------------------------------------------------------------


def _lookup(kind: str, name: str, text: str) -> Factory:
    """The target a name denotes: registered, then torch, then a dotted import."""
    if name in _REGISTRIES[kind]:
        return _REGISTRIES[kind][name]
    found = _TORCH[kind]().get(name)
    if found is not None:
        return found
    if "." in name:
        return _import_dotted(kind, name, text)
    raise SpecError(
        f"optcheck: unknown {kind} {name!r} in {kind}={text!r}.{suggest(name, _names(kind))} "
        f"Known {'losses' if kind == 'loss' else kind + 's'}: {_known(kind)}; or give a dotted path ('package.module.Name') "
        f"or a callable."
    )


_TORCH_SOURCE = {"model": "torch.nn module", "loss": "torch.nn loss class"}


def _known(kind: str) -> str:
    """The names to list in an error: all of them, unless torch.nn would flood the line."""
    if kind not in _TORCH_SOURCE:
        return ", ".join(_names(kind))
    return f"{', '.join(_REGISTRIES[kind])}, or any {_TORCH_SOURCE[kind]} by name"


def _import_dotted(kind: str, name: str, text: str) -> Any:
    """Import ``package.module.Attr`` (the longest importable module prefix, then attributes)."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # this prefix is not a module: try a shorter one
            raise _import_failed(kind, name, text, module_name, exc) from exc
        except Exception as exc:
            raise _import_failed(kind, name, text, module_name, exc) from exc
        for depth, attr in enumerate(parts[cut:], start=cut):
            if not hasattr(obj, attr):
                where = ".".join(parts[:depth])
                choices = [a for a in dir(obj) if not a.startswith("_")]
                raise SpecError(
                    f"optcheck: cannot find {attr!r} in {where!r} for {kind}={text!r}."
                    f"{suggest(attr, choices)}"
                )
            obj = getattr(obj, attr)
        return obj
    raise SpecError(
        f"optcheck: unknown {kind} {name!r} in {kind}={text!r}: no module {parts[0]!r} can be "
        f"imported.{suggest(name, _names(kind))}"
    )


def _import_failed(kind: str, name: str, text: str, module: str, exc: BaseException) -> SpecError:
    return SpecError(
        f"optcheck: cannot import {name!r} for {kind}={text!r}: importing {module!r} raised "
        f"{type(exc).__name__}: {exc}"
    )


# -- builders ---------------------------------------------------------------------------------


#: First-parameter names that mark a model-aware optimizer factory.
MODEL_PARAMETER_NAMES = ("model", "model_or_params")


class Builder:
    """A resolved, checked target with its arguments: call it to construct.

    Arguments may hold nested scheduler builders (built first, on the same lead argument:
    the optimizer) and run-size names (filled in from ``sizes``; see :meth:`with_sizes`).
    Any exception while constructing becomes a :class:`SpecError` that names the key and
    the value and quotes the original message (torch's ``Invalid learning rate: -1``),
    with the original kept as ``__cause__`` for whoever debugs their own factory.
    """

    def __init__(self, target: Any, kind: str, text: str, args: tuple[Any, ...] = (),
                 kwargs: dict[str, Any] | None = None, lead_keyword: str | None = None,
                 sizes: Mapping[str, int] | None = None) -> None:
        self.target = target
        self.kind = kind
        self.text = text
        self.args = args
        self.kwargs = dict(kwargs or {})
        self.lead_keyword = lead_keyword
        self.sizes = sizes

    @property
    def wants_model(self) -> bool:
        """A model-aware optimizer factory: its first parameter is named ``model`` (or, as
        in timm's ``create_optimizer_v2``, ``model_or_params``), so it gets the model — to
        make its own parameter groups — not ``model.parameters()``."""
        if self.kind != "optimizer":
            return False
        sig = signature(self.target)
        return sig is not None and next(iter(sig.parameters), None) in MODEL_PARAMETER_NAMES

    def with_sizes(self, sizes: Mapping[str, int]) -> Builder:
        """The same builder with the run's sizes for its run-size names."""
        return Builder(self.target, self.kind, self.text, self.args, self.kwargs, self.lead_keyword, sizes)

    def _fill(self, value: Any, lead: tuple[Any, ...]) -> Any:
        if isinstance(value, Builder):
            return value.with_sizes(self.sizes)(*lead) if self.sizes is not None else value(*lead)
        if isinstance(value, RunSize):
            if self.sizes is None:
                raise SpecError(
                    f"optcheck: {self.kind}={self.text!r} uses the run-size name {value.name!r}, which only "
                    f"a run (train, lr_schedule, build) can give a value."
                )
            return self.sizes[value.name]
        if isinstance(value, list):
            return [self._fill(v, lead) for v in value]
        if isinstance(value, tuple):
            return tuple(self._fill(v, lead) for v in value)
        if isinstance(value, dict):
            return {k: self._fill(v, lead) for k, v in value.items()}
        return value

    def __call__(self, *lead: Any) -> Any:
        args = self._fill(self.args, lead)
        kwargs = self._fill(self.kwargs, lead)
        lead_kwargs: dict[str, Any] = {}
        if self.lead_keyword is not None and lead:
            lead_kwargs, lead = {self.lead_keyword: lead[0]}, lead[1:]
        try:
            result = self.target(*lead, *args, **lead_kwargs, **kwargs)
        except Exception as exc:
            hint = argument_hint(self.target, kwargs)
            if hint:
                raise SpecError(f"optcheck: could not build {self.kind}={self.text!r}: {hint} "
                                f"({getattr(self.target, '__name__', self.text)} raised {type(exc).__name__}: {exc})") from exc
            raise SpecError(
                f"optcheck: could not build {self.kind}={self.text!r}: {type(exc).__name__}: {exc}"
            ) from exc
        return check_result(result, self.kind, self.text)

    def nested(self) -> list[Builder]:
        """This builder, then every builder nested in its arguments (at any depth)."""
        found = [self]
        stack: list[Any] = [self.args, list(self.kwargs.values())]
        while stack:
            value = stack.pop()
            if isinstance(value, Builder):
                found += value.nested()
            elif isinstance(value, (list, tuple)):
                stack.extend(value)
            elif isinstance(value, dict):
                stack.extend(value.values())
        return found

    def __repr__(self) -> str:
        return f"Builder({self.kind}={self.text!r})"


def _split(value: str | Callable[..., Any], kind: str) -> tuple[Any, str, tuple[Any, ...], dict[str, Any]]:
    """(target, text shown in errors, args, kwargs) of a string in call syntax or a callable."""
    if isinstance(value, str):
        call: Call = parse_call(value, key=kind)
        return _lookup(kind, call.name, value), value, call.args, call.kwargs_dict
    if callable(value):
        return value, canonical_callable(value), (), {}
    raise SpecError(
        f"optcheck: {kind}={value!r} must be a name in call syntax (a string) or a callable; "
        f"got {type(value).__name__}."
    )


def _resolve(value: str | Callable[..., Any], kind: str, lead: tuple[Any, ...] = ()) -> Builder:
    target, text, args, kwargs = _split(value, kind)
    args, kwargs = _nest(args, kind, text), _nest(kwargs, kind, text)
    check_class(target, kind, text)
    lead_keyword = _scheduler_lead_keyword(target) if kind == "scheduler" else None
    lead_kwargs = {lead_keyword: lead[0]} if lead_keyword else {}
    check_call(target, kind, text, lead if not lead_keyword else (), lead_kwargs, args, kwargs)
    return Builder(target, kind, text, args, kwargs, lead_keyword)


def _nest(value: Any, kind: str, text: str) -> Any:
    """Resolve nested calls in arguments (schedulers only) and allow run-size names only
    where the run gives them (optimizer and scheduler arguments)."""
    if isinstance(value, Call):
        if kind != "scheduler":
            raise SpecError(
                f"optcheck: {kind}={text!r}: the nested call {value} is not allowed here; only scheduler "
                f"calls nest (SequentialLR(schedulers=[LinearLR(...), CosineAnnealingLR(...)]))."
            )
        return _resolve(str(value), "scheduler", (_LEAD,))
    if isinstance(value, RunSize) and kind not in ("optimizer", "scheduler"):
        raise SpecError(
            f"optcheck: {kind}={text!r}: the run-size name {value.name!r} is only for optimizer and scheduler "
            f"arguments."
        )
    if isinstance(value, list):
        return [_nest(v, kind, text) for v in value]
    if isinstance(value, tuple):
        return tuple(_nest(v, kind, text) for v in value)
    if isinstance(value, dict):
        return {k: _nest(v, kind, text) for k, v in value.items()}
    return value


def _scheduler_lead_keyword(target: Any) -> str | None:
    """Pass the optimizer by keyword when the target names it but not first.

    ``ChainedScheduler(schedulers, optimizer=None)`` would otherwise receive the
    optimizer as its list of schedulers.
    """
    sig = signature(target)
    if sig is None or "optimizer" not in sig.parameters:
        return None
    first = next(iter(sig.parameters))
    return None if first == "optimizer" else "optimizer"


_LEAD = Lead()


def resolve_model(value: str | Callable[..., Any]) -> Callable[[], nn.Module]:
    """A builder ``f() -> nn.Module``: a registered/``torch.nn`` name in call syntax, a
    dotted path, or any callable (a class is called with no arguments)."""
    return _resolve(value, "model")


def resolve_optimizer(value: str | Callable[..., Any], sizes: Mapping[str, int] | None = None) -> Builder:
    """A builder ``f(params) -> Optimizer`` (params: parameters or param-group dicts; the
    model for a model-aware factory, see :attr:`Builder.wants_model`). ``sizes`` gives the
    run-size names (:data:`~.spec.RUN_SIZE_NAMES`) their values."""
    builder = _resolve(value, "optimizer", (_LEAD,))
    return builder.with_sizes(sizes) if sizes is not None else builder


def resolve_scheduler(value: str | Callable[..., Any] | None, sizes: Mapping[str, int] | None = None) -> Builder | None:
    """A builder ``f(optimizer) -> scheduler``, or ``None`` for no scheduler."""
    if value is None:
        return None
    builder = _resolve(value, "scheduler", (_LEAD,))
    return builder.with_sizes(sizes) if sizes is not None else builder


def library_modules(spec: Any) -> list[str]:
    """Top-level modules, other than torch's, that the spec's optimizer, scheduler and model
    come from (``pytorch_optimizer`` for ``"pytorch_optimizer.Lion"`` or a partial of SAM):
    their versions go into the golden's environment, since a new release can change a run."""
    targets: list[Any] = []
    for key, resolve in (("optimizer", resolve_optimizer), ("scheduler", resolve_scheduler), ("model", resolve_model)):
        value = getattr(spec, key)
        if value is None:
            continue
        builder = resolve(value)
        targets += [b.target for b in builder.nested()]
    modules: list[str] = []
    while targets:
        target = targets.pop(0)
        if isinstance(target, functools.partial):
            targets += [target.func, *target.args, *target.keywords.values()]
            continue
        if not callable(target):
            continue
        top = (getattr(target, "__module__", None) or "").split(".")[0]
        if top and top not in ("torch", "pytest_optcheck") and top not in sys.stdlib_module_names and top not in modules:
            modules.append(top)
    return sorted(modules)


def resolve_loss(value: str | Callable[..., Any] | None, problem: Problem | None = None) -> Callable[[Tensor, Tensor], Tensor]:
    """The loss function: ``None`` means the problem's default loss (``problem`` needed).

    A name is built now (losses are cheap); a class (or a ``functools.partial`` of one,
    like ``partial(nn.MSELoss, reduction="sum")``) is instantiated; any other callable is
    the loss itself, ``f(pred, target) -> scalar``.
    """
    if value is None:
        if problem is None:
            raise TypeError("resolve_loss(None) needs the problem whose default loss to use")
        value = problem.loss
    if callable(value) and not isinstance(value, str) and not _is_class_factory(value):
        return value
    return _resolve(value, "loss")()


def _is_class_factory(value: Any) -> bool:
    if isinstance(value, functools.partial):
        return _is_class_factory(value.func)
    return inspect.isclass(value)


def resolve_problem(value: str | Callable[..., Any]) -> Callable[[torch.Generator, torch.dtype], Problem]:
    """A builder ``f(generator, dtype) -> Problem``.

    Registered problems receive ``generator=`` and ``dtype=``. Other callables (and
    dotted paths) receive them only if their signature names them, and may return a
    :class:`Problem`, an ``(inputs, targets)`` pair or a ``torch.utils.data.Dataset``,
    which is wrapped (default loss ``mse``, or ``cross_entropy`` for integer targets).
    """
    target, text, args, kwargs = _split(value, "problem")
    args, kwargs = _nest(args, "problem", text), _nest(kwargs, "problem", text)
    registered = isinstance(value, str) and parse_call(value, key="problem").name in _REGISTRIES["problem"]
    sig = signature(target)
    wants = [k for k in ("generator", "dtype") if registered or (sig is not None and k in sig.parameters)]
    check_call(target, "problem", text, (), {k: _LEAD for k in wants}, args, kwargs)
    name = parse_call(value, key="problem").name if isinstance(value, str) else text

    def build_problem(generator: torch.Generator, dtype: torch.dtype) -> Problem:
        extra = {"generator": generator, "dtype": dtype}
        builder = Builder(target, "problem", text, args, {**kwargs, **{k: extra[k] for k in wants}})
        return as_problem(builder(), name=name, dtype=dtype, text=text)

    return build_problem


def as_problem(result: Any, *, name: str, dtype: torch.dtype, text: str) -> Problem:
    """Wrap what a problem callable returned: a Problem, an (inputs, targets) pair, or a Dataset."""
    if isinstance(result, Problem):
        return result
    if isinstance(result, tuple) and len(result) == 2 and all(isinstance(t, Tensor) for t in result):
        inputs, targets = result
    elif isinstance(result, torch.utils.data.Dataset):
        inputs, targets = _stack_dataset(result, text)
    else:
        raise SpecError(
            f"optcheck: problem={text!r} returned {type(result).__name__}; a problem callable "
            f"returns a Problem, an (inputs, targets) pair of tensors, or a torch Dataset."
        )
    if inputs.shape[0] != targets.shape[0]:
        raise SpecError(
            f"optcheck: problem={text!r} gave {inputs.shape[0]} inputs but {targets.shape[0]} targets."
        )
    inputs, targets = _builtin.cast(inputs.cpu(), dtype), _builtin.cast(targets.cpu(), dtype)
    classify = not targets.is_floating_point()
    return Problem(name, inputs, targets, loss="cross_entropy" if classify else "mse",
                   model=_default_model_for(inputs, targets))


def _stack_dataset(dataset: Any, text: str) -> tuple[Tensor, Tensor]:
    """All items of a map-style or iterable Dataset, stacked; scalars become columns."""
    try:
        items = [dataset[i] for i in range(len(dataset))] if hasattr(dataset, "__len__") else list(dataset)
        xs = torch.stack([torch.as_tensor(item[0]) for item in items])
        ys = torch.stack([torch.as_tensor(item[1]) for item in items])
    except Exception as exc:
        raise SpecError(
            f"optcheck: problem={text!r}: cannot stack the Dataset's (input, target) items: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if xs.ndim == 1:
        xs = xs.unsqueeze(1)
    if ys.ndim == 1 and ys.is_floating_point():
        ys = ys.unsqueeze(1)
    return xs, ys


def _default_model_for(inputs: Tensor, targets: Tensor) -> str:
    """``mlp(n_in, 10, n_out)``: the seed's net shape fitted to a user's data."""
    if inputs.ndim != 2:
        return _builtin.SEED_MODEL
    if targets.is_floating_point():
        n_out = targets.shape[1] if targets.ndim == 2 else 1
    else:
        n_out = int(targets.max().item()) + 1 if targets.numel() else 1
    return f"mlp({inputs.shape[1]}, 10, {n_out})"


def validate_names(spec: Any) -> None:
    """Resolve every name of a spec now, so a typo fails at set-up with its key — before
    any data is made or any step is trained."""
    resolve_model(spec.model)
    resolve_problem(spec.problem)
    resolve_optimizer(spec.optimizer)
    resolve_scheduler(spec.scheduler)
    if spec.loss is not None:
        resolve_loss(spec.loss)


# -- the built-ins ------------------------------------------------------------------------------

for _name, _factory in _builtin.MODELS.items():
    register_model(_name)(_factory)
for _name, _factory in _builtin.PROBLEMS.items():
    register_problem(_name)(_factory)
for _name, _factory in _builtin.LOSSES.items():
    register_loss(_name)(_factory)
