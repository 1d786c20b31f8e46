"""Tolerances: how each series is compared, parsed from every place a user can write one.

Pure Python — no numpy, no torch — because the plugin parses the command line and the ini
file at ``pytest_configure`` of every session, optcheck tests or not, and must stay as cheap
as pytest itself there. Validation errors are written here, next to the parser that finds
them; the sentences of a verdict live in :mod:`.messages`.

Precedence, field by field: ``check()`` > marker ``tolerance`` > ``--optcheck-tolerance`` >
ini ``optcheck_tolerance`` > the per-series defaults below (measured: docs/tolerances.md).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import OptcheckError, suggest

MODES = ("step", "final", "auc", "reach")
DIRECTIONS = ("both", "lower", "higher")
FIELDS = ("rtol", "atol", "mode", "direction", "budget", "last", "target")


class ToleranceError(OptcheckError, ValueError):
    """A tolerance that cannot be used; the message names where it came from and the fix."""


@dataclass(frozen=True)
class Tolerance:
    """How one series is compared with its golden.

    ``mode`` picks what is compared: every step ("step"), the mean of the last ``last``
    steps ("final"), the trapezoid area over steps ("auc"), or the first step whose value
    reaches ``target`` ("reach"). ``direction="lower"`` makes a current value below the
    golden never a regression (``"higher"`` mirrored); in "reach" mode either one-sided
    direction means reaching the target earlier is never a regression. ``budget`` is the
    fraction of steps allowed outside tolerance in "step" mode (Megatron's habit).
    """

    rtol: float = 1e-5
    atol: float = 0.0
    mode: str = "step"
    direction: str = "both"
    budget: float = 0.0
    last: int = 1
    target: float | None = None

    def __post_init__(self) -> None:
        # Validate through the same code as user input, so a bad Tolerance(...) reads the same;
        # store the normalised values, so Tolerance(rtol=1) == Tolerance(rtol=1.0).
        for key, value in parse_tolerance(dataclasses.asdict(self), where="Tolerance()").items():
            object.__setattr__(self, key, value)
        if self.mode == "reach" and self.target is None:
            raise ToleranceError(
                "optcheck: Tolerance(): mode='reach' compares the first step reaching a target, "
                "but no target is set. Add target=<value>, e.g. 'mode=reach, target=0.1'."
            )

    def merged(self, overrides: Mapping[str, Any]) -> Tolerance:
        """A copy with the fields given in ``overrides`` replaced (validated)."""
        fields = parse_tolerance(overrides, where="Tolerance.merged()")
        return dataclasses.replace(self, **fields)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# -- parsing -------------------------------------------------------------------------


def parse_tolerance(value: Any, *, where: str) -> dict[str, Any]:
    """Validate a tolerance given as a dict, a Tolerance or a 'rtol=1e-4, mode=final' string.

    Returns only the fields given, so layers (ini < command line < marker < check())
    can be merged field by field. Errors name ``where`` so users find the bad setting.
    """
    if value is None:
        return {}
    if isinstance(value, Tolerance):
        return dataclasses.asdict(value)
    if isinstance(value, str):
        items = _split_string(value, where)
    elif isinstance(value, Mapping):
        items = list(value.items())
    else:
        raise ToleranceError(
            f"optcheck: {where}: a tolerance must be a dict like {{'rtol': 1e-4, 'mode': 'final'}}"
            f" or a string like 'rtol=1e-4, mode=final'; got {value!r}."
        )
    return {str(key): _check_field(str(key), val, where) for key, val in items}


def _split_string(text: str, where: str) -> list[tuple[str, str]]:
    """'rtol=1e-4, atol=0' -> [('rtol', '1e-4'), ('atol', '0')]; commas or spaces separate."""
    items = []
    for part in re.split(r"[,\s]+", text.strip()):
        if not part:
            continue
        key, sep, val = part.partition("=")
        if not sep or not key or not val:
            raise ToleranceError(
                f"optcheck: {where}: cannot read {part!r} in {text!r}: write field=value "
                f"pairs separated by commas, e.g. 'rtol=1e-4, atol=0, mode=final'."
            )
        items.append((key.strip(), val.strip().strip("'\"")))
    return items


def _check_field(key: str, value: Any, where: str) -> Any:
    if key not in FIELDS:
        hint = ""
        if isinstance(value, Mapping) or (isinstance(value, str) and "=" in value):
            hint = f" If {key!r} is a series name, give its fields under that series name."
        raise ToleranceError(
            f"optcheck: {where}: unknown tolerance field {key!r} (value {value!r}).{suggest(key, FIELDS)}"
            f" Valid fields: {', '.join(FIELDS)}.{hint}"
        )
    if key in ("mode", "direction"):
        return _check_choice(key, value, MODES if key == "mode" else DIRECTIONS, where)
    if key == "last":
        return _check_last(value, where)
    if key == "target":
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            return None
        return _number(key, value, where, "a finite number, e.g. target=0.1")
    number = _number(key, value, where, f"a number >= 0, e.g. {key}=1e-5")
    if key == "budget" and not 0.0 <= number < 1.0:
        raise ToleranceError(
            f"optcheck: {where}: budget={value!r} is out of range: it is the fraction of steps "
            f"allowed outside tolerance, 0 <= budget < 1 (for 5% write budget=0.05)."
        )
    if number < 0:
        raise ToleranceError(
            f"optcheck: {where}: {key}={value!r} is negative; tolerances must be >= 0 "
            f"(e.g. {key}={abs(number):g})."
        )
    return number


def _check_choice(key: str, value: Any, choices: tuple[str, ...], where: str) -> str:
    if isinstance(value, str) and value in choices:
        return value
    raise ToleranceError(
        f"optcheck: {where}: {key}={value!r} is not a valid {key}.{suggest(str(value), choices)}"
        f" Use one of: {', '.join(choices)}."
    )


def _check_last(value: Any, where: str) -> int:
    try:
        integral = isinstance(value, float) and value.is_integer()
        number = int(value) if integral or not isinstance(value, (bool, float)) else None
    except (TypeError, ValueError):
        number = None
    if number is None or number < 1:
        raise ToleranceError(
            f"optcheck: {where}: last={value!r} must be a whole number of steps >= 1 "
            f"(the final value is the mean of the last `last` steps), e.g. last=10."
        )
    return number


def _number(key: str, value: Any, where: str, fix: str) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise ToleranceError(f"optcheck: {where}: {key}={value!r} is not usable: give {fix}.")
    return number


def parse_tolerance_lines(lines: Iterable[str], *, where: str) -> dict[str, dict[str, Any]]:
    """Read the ini / command-line form, one 'SERIES: rtol=1e-4, mode=final' per entry.

    '*' as SERIES means every series. Blank entries and '#' comments are skipped; a
    series given twice merges, the later entry winning field by field.
    """
    out: dict[str, dict[str, Any]] = {}
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        series, sep, rest = line.partition(":")
        series = series.strip()
        if not sep or not series or "=" in series:
            raise ToleranceError(
                f"optcheck: {where}: cannot read {line!r}: each entry is 'SERIES: field=value, ...', "
                f"e.g. 'loss: rtol=1e-4, mode=final' (or '*: rtol=1e-4' for every series)."
            )
        fields = parse_tolerance(rest, where=f"{where} entry {line!r}")
        out.setdefault(series, {}).update(fields)
    return out


def resolve_tolerances(
    series_names: Iterable[str], *layers: Mapping[str, Mapping[str, Any]] | None
) -> dict[str, Tolerance]:
    """The Tolerance of every series after merging layers, lowest precedence first.

    Layers are ini, command line, marker, check(); each maps series name (or '*') to
    partial fields. Within a layer '*' applies before the named series, and a later
    layer only overrides the fields it sets. Keys naming no series are ignored here
    (see :func:`unknown_series`).
    """
    out: dict[str, Tolerance] = {}
    for name in series_names:
        fields = dataclasses.asdict(SERIES_DEFAULTS.get(name, FALLBACK_DEFAULT))
        for layer in layers:
            for key in ("*", name):
                if layer and key in layer:
                    fields.update(parse_tolerance(layer[key], where=f"tolerance for {key!r}"))
        try:
            out[name] = Tolerance(**fields)
        except ToleranceError as exc:
            raise ToleranceError(str(exc).replace("Tolerance()", f"series {name!r}")) from None
    return out


def unknown_series(
    series_names: Iterable[str], *layers: Mapping[str, Mapping[str, Any]] | None
) -> list[str]:
    """Layer keys that name no series (a typo like 'loos'), for the caller to report."""
    known = set(series_names) | {"*"}
    return sorted({key for layer in layers if layer for key in layer if key not in known})


# -- defaults ------------------------------------------------------------------------

#: LR and momentum are exact arithmetic: the recursive and closed-form cosine schedules
#: agree to 8.2e-16 relative over 200 steps, 1.2e-13 over 20 000 and 6.2e-13 over
#: 100 000 (docs/tolerances.md).
EXACT_SCHEDULE = Tolerance(rtol=1e-12, atol=0.0)

#: Loss and norms of a training run, step by step. Measured (docs/tolerances.md,
#: benchmarks/measure_tolerances.py; torch 2.13 CPU): reruns, another run first, foreach
#: vs for-loop are bit-identical; 1 vs 2 threads moves a series by <= 3.2e-6 relative,
#: fused vs for-loop by <= 2.8e-5 (update_norm; loss <= 1.1e-6); LR x1.01 moves the
#: loss by >= 2.2e-3 (Adadelta; >= 6.8e-3 for the others) on every case measured.
#: rtol 1e-4 sits between: >= 30x over thread noise, 20x under the smallest LR signal.
#: atol 1e-7 only matters for a series near zero (a converged loss, LBFGS's 0 updates).
TRAINING_METRIC = Tolerance(rtol=1e-4, atol=1e-7)

#: Sparsity is the fraction of parameters with |w| <= 1e-3 (record.SPARSITY_EPS): one
#: parameter crossing the threshold is a change, so only float noise is tolerated.
SPARSITY = Tolerance(rtol=0.0, atol=1e-9)

#: ``skipped`` marks the steps a GradScaler skipped (0 or 1): a step that skips now and did
#: not (or the reverse) is a change of the run, never noise.
EXACT = Tolerance(rtol=0.0, atol=0.0)

SERIES_DEFAULTS: dict[str, Tolerance] = {
    "lr": EXACT_SCHEDULE,
    "momentum": EXACT_SCHEDULE,
    "loss": TRAINING_METRIC,
    "grad_norm": TRAINING_METRIC,
    "param_norm": TRAINING_METRIC,
    "update_norm": TRAINING_METRIC,
    "sparsity": SPARSITY,
    "skipped": EXACT,
}

#: For a series with no entry in SERIES_DEFAULTS.
FALLBACK_DEFAULT = Tolerance(rtol=1e-5, atol=1e-8)


# -- the check() keywords -------------------------------------------------------------


def check_layer(
    tolerance: Mapping[str, Any] | None, short: Mapping[str, Any], series_names: Iterable[str], *, where: str
) -> dict[str, dict[str, Any]]:
    """``check()``'s tolerances as one precedence layer ``{series or '*': fields}``.

    The unambiguous form is ``tolerance={"loss": {...}, "*": {...}}`` (the marker key's
    form). The short form — ``check(loss=..., rtol=...)`` — puts series names and field
    names in one namespace; it is read where that is unambiguous: a field name (``rtol``)
    applies to every series unless the trajectory records a series of that very name, and
    then the call is refused with the fix, never guessed.
    """
    names = set(series_names)
    layer: dict[str, dict[str, Any]] = {}
    if tolerance is not None:
        if not isinstance(tolerance, Mapping):
            raise ToleranceError(
                f"optcheck: {where}: tolerance={tolerance!r} must be a dict of series name (or '*') "
                f"to tolerance, e.g. tolerance={{'loss': {{'rtol': 1e-3}}, '*': 'atol=1e-9'}}."
            )
        for series, value in tolerance.items():
            layer[str(series)] = parse_tolerance(value, where=f"{where} tolerance for {series!r}")
    clash = sorted(k for k in short if k in FIELDS and k in names)
    if clash:
        raise ToleranceError(
            f"optcheck: {where}: {clash[0]}={short[clash[0]]!r} is ambiguous: this trajectory records a "
            f"series named {clash[0]!r}, which is also a tolerance field. Write "
            f"tolerance={{{clash[0]!r}: ...}} for the series, or tolerance={{'*': {{{clash[0]!r}: ...}}}} "
            f"for the field on every series."
        )
    shared = {k: v for k, v in short.items() if k in FIELDS}
    if shared:
        fields = parse_tolerance(shared, where=where)
        layer["*"] = {**fields, **layer.get("*", {})}
    for series, value in short.items():
        if series in FIELDS:
            continue
        fields = parse_tolerance(value, where=f"{where} for series {series!r}")
        layer[series] = {**fields, **layer.get(series, {})}
    return layer
