"""Stage 1 of the pipeline: the spec — what to build and run, as the markers declare it.

Everything here is plain Python (no torch): marker keywords are merged across levels,
validated by key and type, and turned into a frozen :class:`Spec` with a canonical,
JSON-ready form that golden files store to detect "configuration changed".
Names (an optimizer, a model) are checked against torch later, in :mod:`catalog`.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import linecache
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..engine.tolerance import parse_tolerance
from ..errors import SpecError, suggest

#: Series that a run can record (the marker key ``record``).
RECORDABLE = (
    "loss",
    "lr",
    "momentum",
    "grad_norm",
    "param_norm",
    "update_norm",
    "sparsity",
)
INTERVALS = ("epoch", "step")

#: Bare names that may stand for an argument value in call syntax and take the run's
#: values (a real training setup's schedule): schedules sized to the run follow
#: ``epochs``/``batch_size`` overrides instead of a hand-computed step count.
RUN_SIZE_NAMES = ("total_steps", "steps_per_epoch", "epochs")
DTYPES = ("float32", "float64", "float16", "bfloat16")

#: Every key the marker accepts, with its default (``tolerance`` and ``calibrate`` are not
#: part of the run's configuration: they say how to compare, so they are kept out of
#: ``canonical()`` and existing goldens keep their configuration). ``calibrate`` None:
#: not set here, the ini's ``optcheck_calibrate`` (default 0, off) decides.
DEFAULTS: dict[str, Any] = {
    "model": "mlp(1, 10, 1)",
    "problem": "quadratic",
    "loss": None,
    "optimizer": "SGD(lr=0.01)",
    "scheduler": None,
    "interval": "epoch",
    "epochs": 12,
    "batch_size": 32,
    "seed": 0,
    "dtype": "float32",
    "l1": 0.0,
    "clip_grad_norm": None,
    "record": ("loss", "lr"),
    "create_graph": False,
    "param_groups": None,
    "record_every": 1,
    "tolerance": None,
    "calibrate": None,
}

#: Keys added after goldens were first recorded: left out of ``canonical()`` while at their
#: default, so existing goldens' specs stay the same.
_OMITTED_AT_DEFAULT = ("create_graph", "param_groups", "record_every")
#: Keys that say how to compare, not what to run: left out of ``Spec.canonical()``.
COMPARISON_KEYS = ("tolerance", "calibrate")
KEYS = tuple(DEFAULTS)


@dataclasses.dataclass(frozen=True, repr=False)
class RunSize:
    """A bare run-size name (``total_steps``) in call syntax, resolved when the run is built."""

    name: str

    def __repr__(self) -> str:
        return self.name


@dataclasses.dataclass(frozen=True, repr=False)
class Call:
    """A parsed ``"Name(arg, key=value)"`` string: literal arguments, nested calls
    (``SequentialLR(schedulers=[LinearLR(...), ...])``) and :class:`RunSize` names."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()

    @property
    def kwargs_dict(self) -> dict[str, Any]:
        return dict(self.kwargs)

    def __str__(self) -> str:
        parts = [repr(a) for a in self.args]
        parts += [f"{k}={v!r}" for k, v in sorted(self.kwargs)]
        return f"{self.name}({', '.join(parts)})"

    __repr__ = __str__


def run_sizes(n_examples: int, batch_size: int, epochs: int) -> dict[str, int]:
    """The values of :data:`RUN_SIZE_NAMES` for a run over ``n_examples`` (last batch partial)."""
    steps_per_epoch = math.ceil(n_examples / batch_size)
    return {"total_steps": steps_per_epoch * epochs, "steps_per_epoch": steps_per_epoch, "epochs": epochs}


def parse_call(text: str, *, key: str) -> Call:
    """Parse call syntax with :mod:`ast`; literal arguments only, never ``eval``.

    ``"Adam"`` and ``"Adam()"`` are the same call. A non-literal argument (a name, an
    expression) is a :class:`SpecError` that names the key and shows the text.
    """
    source = text.strip()
    try:
        node = ast.parse(source, mode="eval").body
    except SyntaxError as exc:
        raise SpecError(
            f"optcheck: {key}={text!r} is not valid call syntax ({exc.msg}). "
            f"Write it like {key}=\"Name(arg=1, other=0.5)\"."
        ) from None
    if isinstance(node, (ast.Name, ast.Attribute)):
        return Call(_dotted(node, text, key))
    if not isinstance(node, ast.Call):
        raise SpecError(
            f"optcheck: {key}={text!r} must be a name or a call like \"Name(arg=1)\"."
        )
    return _call(node, text, key)


def _call(node: ast.Call, text: str, key: str) -> Call:
    name = _dotted(node.func, text, key)
    args = tuple(_value(a, text, key) for a in node.args)
    kwargs = []
    for kw in node.keywords:
        if kw.arg is None:
            raise SpecError(f"optcheck: {key}={text!r}: '**' is not allowed; name each argument.")
        kwargs.append((kw.arg, _value(kw.value, text, key)))
    return Call(name, args, tuple(kwargs))


def _value(node: ast.AST, text: str, key: str) -> Any:
    """An argument: a literal, a nested call, a run-size name, or a container of those."""
    if isinstance(node, ast.Call) and _is_dotted(node.func):
        return _call(node, text, key)
    if isinstance(node, ast.Name) and node.id in RUN_SIZE_NAMES:
        return RunSize(node.id)
    if isinstance(node, ast.List):
        return [_value(e, text, key) for e in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_value(e, text, key) for e in node.elts)
    if isinstance(node, ast.Dict) and all(k is not None for k in node.keys):
        return {_literal(k, text, key): _value(v, text, key) for k, v in zip(node.keys, node.values)}
    return _literal(node, text, key)


def _is_dotted(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) or (isinstance(node, ast.Attribute) and _is_dotted(node.value))


def _dotted(node: ast.AST, text: str, key: str) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value, text, key)}.{node.attr}"
    raise SpecError(f"optcheck: {key}={text!r}: the callee must be a plain name.")


def _literal(node: ast.AST, text: str, key: str) -> Any:
    try:
        value = ast.literal_eval(node)
    except ValueError:
        raise SpecError(
            f"optcheck: {key}={text!r}: argument `{ast.unparse(node)}` is not a literal. "
            f"Call syntax takes literals (numbers, strings, tuples, lists, dicts, True/False/None), "
            f"nested scheduler calls and the run-size names {', '.join(RUN_SIZE_NAMES)}; pass a "
            f"callable (e.g. functools.partial) for anything else."
        ) from None
    return value


@dataclasses.dataclass(frozen=True)
class Spec:
    """The resolved, read-only description of one optcheck run."""

    model: Any = DEFAULTS["model"]
    problem: Any = DEFAULTS["problem"]
    loss: Any = DEFAULTS["loss"]
    optimizer: Any = DEFAULTS["optimizer"]
    scheduler: Any = DEFAULTS["scheduler"]
    interval: str = DEFAULTS["interval"]
    epochs: int = DEFAULTS["epochs"]
    batch_size: int = DEFAULTS["batch_size"]
    seed: int = DEFAULTS["seed"]
    dtype: str = DEFAULTS["dtype"]
    l1: float = DEFAULTS["l1"]
    clip_grad_norm: float | None = DEFAULTS["clip_grad_norm"]
    record: tuple[str, ...] = DEFAULTS["record"]
    create_graph: bool = DEFAULTS["create_graph"]
    param_groups: Mapping[str, Mapping[str, Any]] | None = DEFAULTS["param_groups"]
    record_every: int = DEFAULTS["record_every"]
    tolerance: Mapping[str, Any] | None = None
    calibrate: int | None = None

    def __post_init__(self) -> None:
        # ``Spec(optimizer=...)`` validates exactly like a marker: every value goes through
        # its key's validator and is stored normalised (``record`` as a tuple, ``l1`` a float).
        for key in KEYS:
            object.__setattr__(self, key, _VALIDATORS[key](getattr(self, key), key))

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any], *, where: str = "marker") -> Spec:
        """Check the keys of merged marker keywords (unknown ones fail, with a guess) and
        build a Spec, which validates the values."""
        check_keys(kwargs, where=where)
        return cls(**{k: kwargs[k] for k in KEYS if k in kwargs})

    def replace(self, **changes: Any) -> Spec:
        return Spec.from_kwargs({**self.as_dict(), **changes})

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in KEYS}

    def canonical(self) -> dict[str, Any]:
        """JSON-ready form stored in golden headers and compared for staleness.

        Call strings are normalised (kwargs sorted, literals by repr), callables are
        named by module and qualified name (and a partial's arguments; a lambda's
        source line), so two specs that run the same thing compare equal.
        """
        out: dict[str, Any] = {}
        for key in KEYS:
            if key in COMPARISON_KEYS:
                continue
            value = getattr(self, key)
            if key in _OMITTED_AT_DEFAULT and value == DEFAULTS[key]:
                continue
            if key == "param_groups":
                # A list of pairs, not a dict: the first matching regex wins, so order matters.
                value = [[regex, canonical_value(overrides)] for regex, overrides in value.items()]
            elif key in _CALL_KEYS and isinstance(value, str):
                value = str(parse_call(value, key=key))
            elif key == "record":
                value = list(value)
            else:
                value = canonical_value(value)
            out[key] = value
        return out


_CALL_KEYS = ("model", "problem", "loss", "optimizer", "scheduler")


def check_keys(kwargs: Iterable[str], *, where: str) -> None:
    for key in kwargs:
        if key not in DEFAULTS:
            raise SpecError(
                f"optcheck: unknown key {key!r} in the {where}.{suggest(key, KEYS)} "
                f"Valid keys: {', '.join(KEYS)}."
            )


def merge_levels(levels: Iterable[tuple[tuple[Any, ...], Mapping[str, Any]]], *, where: str = "marker") -> dict[str, Any]:
    """Merge marker keywords from the farthest level to the closest; closest wins per key.

    ``levels`` yields ``(args, kwargs)`` of each ``optcheck`` marker, module first,
    then class, function and ``pytest.param``. Positional arguments are rejected.
    """
    merged: dict[str, Any] = {}
    for args, kwargs in levels:
        if args:
            raise SpecError(
                f"optcheck: the {where} got positional arguments {args!r}; "
                f"use keywords, e.g. @pytest.mark.optcheck(optimizer=\"Adam(lr=0.01)\")."
            )
        check_keys(kwargs, where=where)
        merged.update(kwargs)
    return merged


# -- per-key validation ------------------------------------------------------------


def _name_or_callable(value: Any, key: str) -> Any:
    if isinstance(value, str):
        parse_call(value, key=key)  # syntax now; the name is checked by the catalog
        return value
    if callable(value):
        return value
    raise SpecError(
        f"optcheck: {key}={value!r} must be a name in call syntax (a string) or a callable; "
        f"got {type(value).__name__}."
    )


def _optional_name_or_callable(value: Any, key: str) -> Any:
    return None if value is None else _name_or_callable(value, key)


def _choice(choices: tuple[str, ...]) -> Callable[[Any, str], str]:
    def validate(value: Any, key: str) -> str:
        if value not in choices:
            raise SpecError(
                f"optcheck: {key}={value!r} is not one of {', '.join(choices)}."
                f"{suggest(str(value), choices)}"
            )
        return str(value)

    return validate


def _int(minimum: int) -> Callable[[Any, str], int]:
    def validate(value: Any, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise SpecError(f"optcheck: {key}={value!r} must be an integer >= {minimum}.")
        return value

    return validate


def _non_negative(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise SpecError(f"optcheck: {key}={value!r} must be a number >= 0.")
    return float(value)


def _optional_positive(value: Any, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise SpecError(f"optcheck: {key}={value!r} must be a number > 0, or None for no clipping.")
    return float(value)


def _record(value: Any, key: str) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not names:
        raise SpecError(
            f"optcheck: {key}={value!r} must be a non-empty list of series names from "
            f"{', '.join(RECORDABLE)}."
        )
    aliases = {"beta1": "momentum"}
    out: list[str] = []
    for name in names:
        name = aliases.get(name, name)
        if name not in RECORDABLE and (not isinstance(name, str) or not name.isidentifier()
                                       or suggest(name, RECORDABLE)):
            # Any other identifier may be a numeric key of the optimizer's param groups
            # ("d" for Prodigy), checked when the optimizer is built; one close to a series
            # name is taken for a typo now.
            raise SpecError(
                f"optcheck: {key} names unknown series {name!r}.{suggest(str(name), RECORDABLE)} "
                f"Recordable series: {', '.join(RECORDABLE)}, or a numeric key of the optimizer's "
                f"param groups (e.g. 'd', 'weight_decay')."
            )
        if name not in out:
            out.append(name)
    return tuple(out)


def _tolerance(value: Any, key: str) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise SpecError(
            f"optcheck: {key}={value!r} must be a dict of series name to tolerance, e.g. "
            f"tolerance={{\"loss\": {{\"rtol\": 1e-3}}}} or {{\"loss\": \"rtol=1e-3, mode=final\"}}."
        )
    try:
        return {str(series): parse_tolerance(tol, where=f"marker key 'tolerance' for {series!r}")
                for series, tol in value.items()}
    except ValueError as exc:
        raise SpecError(str(exc)) from None


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise SpecError(f"optcheck: {key}={value!r} must be True or False.")
    return value


def _param_groups(value: Any, key: str) -> dict[str, dict[str, Any]] | None:
    """``{regex: {hyperparameter: value}}``; each regex must compile (matching is checked
    against the model's parameter names when the optimizer is built)."""
    if value is None:
        return None
    example = f'{key}={{"bias|norm": {{"weight_decay": 0.0}}}}'
    if not isinstance(value, Mapping) or not value:
        raise SpecError(
            f"optcheck: {key}={value!r} must be a non-empty dict of regex to hyperparameter overrides, "
            f"e.g. {example}."
        )
    out: dict[str, dict[str, Any]] = {}
    for regex, overrides in value.items():
        if not isinstance(regex, str):
            raise SpecError(f"optcheck: {key} has the key {regex!r}, which is not a regex string; e.g. {example}.")
        try:
            re.compile(regex)
        except re.error as exc:
            raise SpecError(f"optcheck: {key} regex {regex!r} does not compile: {exc}.") from None
        if not isinstance(overrides, Mapping) or not all(isinstance(k, str) for k in overrides):
            raise SpecError(
                f"optcheck: {key}[{regex!r}]={overrides!r} must be a dict of hyperparameter name to value, "
                f"e.g. {example}."
            )
        if "params" in overrides:
            raise SpecError(
                f"optcheck: {key}[{regex!r}] sets 'params'; the regex chooses the parameters, the dict "
                f"holds only hyperparameters (lr, weight_decay...)."
            )
        out[regex] = dict(overrides)
    return out


def record_every(value: Any, key: str = "record_every") -> int:
    """``record_every=k``: keep every k-th step and each bucket's min/max/mean (docs/long-runs.md)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(
            f"optcheck: {key}={value!r} must be a whole number of steps >= 1 (1: every step), e.g. {key}=100 "
            f"to keep every 100th step and, per bucket of 100 steps, each series' min, max and mean."
        )
    return value


def _calibrate(value: Any, key: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SpecError(
            f"optcheck: {key}={value!r} must be a whole number of replicas >= 0 (0: off), "
            f"e.g. {key}=8 to record the golden with the noise envelope of 8 ulp-perturbed replicas."
        )
    return value


_VALIDATORS: dict[str, Callable[[Any, str], Any]] = {
    "model": _name_or_callable,
    "problem": _name_or_callable,
    "loss": _optional_name_or_callable,
    "optimizer": _name_or_callable,
    "scheduler": _optional_name_or_callable,
    "interval": _choice(INTERVALS),
    "epochs": _int(1),
    "batch_size": _int(1),
    "seed": _int(0),
    "dtype": _choice(DTYPES),
    "l1": _non_negative,
    "clip_grad_norm": _optional_positive,
    "record": _record,
    "create_graph": _bool,
    "param_groups": _param_groups,
    "record_every": record_every,
    "tolerance": _tolerance,
    "calibrate": _calibrate,
}


# -- canonical forms ---------------------------------------------------------------


def canonical_value(value: Any) -> Any:
    """A JSON-ready, comparable stand-in for a spec value (see :meth:`Spec.canonical`)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [canonical_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): canonical_value(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if callable(value):
        return canonical_callable(value)
    return repr(value)


def canonical_callable(obj: Any) -> str:
    """Name a callable stably: ``module.qualname``; a partial with its arguments;
    a lambda with its source line (its qualified name alone says nothing)."""
    if isinstance(obj, functools.partial):
        parts = [canonical_callable(obj.func)]
        parts += [_canonical_arg(a) for a in obj.args]
        parts += [f"{k}={_canonical_arg(v)}" for k, v in sorted(obj.keywords.items())]
        return f"partial({', '.join(parts)})"
    module = _stable_module_name(getattr(obj, "__module__", None) or "?")
    qualname = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    name = f"{module}.{qualname}"
    if "<lambda>" in qualname:
        name += f" = {_lambda_source(obj)}"
    return name


def _stable_module_name(module: str) -> str:
    """A test file's module is named by its file's stem, whatever pytest's import mode.

    ``--import-mode=importlib`` imports ``examples/test_x.py`` as ``examples.test_x``,
    ``prepend`` as ``test_x``: naming by the module would turn every golden whose spec holds
    a callable from a test file into "configuration changed". The stem is what the default
    mode gives (so existing goldens keep their names) and is unique within the test file
    that a golden belongs to. Other modules (torch, a library, the project's package) are
    imported under one name whatever the mode and keep it."""
    file = getattr(sys.modules.get(module), "__file__", None)
    if not file:
        return module
    base = os.path.basename(file)
    if base == "conftest.py" or (base.endswith(".py") and (base.startswith("test_") or base.endswith("_test.py"))):
        return base[:-3]
    return module


def _canonical_arg(value: Any) -> str:
    if callable(value) and not isinstance(value, type) or isinstance(value, functools.partial):
        return canonical_callable(value)
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_canonical_arg(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, type):
        return canonical_callable(value)
    return repr(value)


def _lambda_source(fn: Any) -> str:
    """``lambda args: body``, sliced out of the source by the code object's positions.

    ``inspect.getsource`` returns whole lines, and for a lambda inside a decorator or a
    call spanning lines that drags in unrelated code (a test body): any edit to it would
    read as "configuration changed". The body's exact span comes from ``co_positions``."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return "<source unavailable>"
    spans = [p for p in code.co_positions() if None not in p and not (p[0] == p[1] and p[2] == p[3] == 0)]
    linecache.checkcache(code.co_filename)  # the file may have changed since it was cached (inspect does this too)
    lines = linecache.getlines(code.co_filename)
    if not spans or not lines:
        return "<source unavailable>"
    (line0, col0), (line1, col1) = min((p[0], p[2]) for p in spans), max((p[1], p[3]) for p in spans)
    chunk = [line.encode("utf-8") for line in lines[line0 - 1 : line1]]  # columns are UTF-8 offsets
    chunk[-1] = chunk[-1][:col1]
    chunk[0] = chunk[0][col0:] if len(chunk) > 1 else chunk[0][col0:col1]
    body = " ".join(b"".join(chunk).decode("utf-8", "replace").split())
    try:
        params = str(inspect.signature(fn))[1:-1]
    except (TypeError, ValueError):
        params = "..."
    return f"lambda {params}: {body}"[:200]
