"""The comparison engine: is a current trajectory within tolerance of its golden?

Pure numpy + stdlib (no torch, pytest or matplotlib), so ``optcheck diff`` and the
report can use it without paying for those imports. Everything is vectorised: a
100 000-step trajectory compares in a few milliseconds.

The element rule is the one of ``np.isclose`` and ``torch.testing.assert_close``::

    |current - golden| > atol + rtol * |golden|   ->  outside tolerance

NaN equals NaN and an infinity equals the same-signed infinity; a non-finite current
value where the golden is finite is always a failure, whatever the tolerance.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import OptcheckError, suggest
from .trajectory import Trajectory

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

    def describe(self) -> str:
        """One line for failure messages, e.g. 'rtol=1e-05, atol=0, step by step'."""
        parts = [f"rtol={self.rtol:g}", f"atol={self.atol:g}", self._mode_text()]
        if self.direction != "both":
            parts.append(self._direction_text())
        return ", ".join(parts)

    def _mode_text(self) -> str:
        if self.mode == "step":
            if self.budget:
                return f"step by step, up to {self.budget:.4g} of steps may fail"
            return "step by step"
        if self.mode == "final":
            return "final value" if self.last == 1 else f"mean of last {self.last} steps"
        if self.mode == "auc":
            return "area under the curve"
        op = ">=" if self.direction == "higher" else "<="
        return f"first step with value {op} {self.target:g}"

    def _direction_text(self) -> str:
        if self.mode == "reach":
            return "reaching the target earlier is never a regression"
        return f"{self.direction} is never a regression"

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

SERIES_DEFAULTS: dict[str, Tolerance] = {
    "lr": EXACT_SCHEDULE,
    "momentum": EXACT_SCHEDULE,
    "loss": TRAINING_METRIC,
    "grad_norm": TRAINING_METRIC,
    "param_norm": TRAINING_METRIC,
    "update_norm": TRAINING_METRIC,
    "sparsity": SPARSITY,
}

#: For a series with no entry in SERIES_DEFAULTS.
FALLBACK_DEFAULT = Tolerance(rtol=1e-5, atol=1e-8)


# -- verdicts ------------------------------------------------------------------------


@dataclass
class SeriesVerdict:
    """One series' result; every number is a plain Python value (JSON-ready).

    ``n_checked`` / ``n_failed`` count STEPS of the common prefix (a step of a 2-D
    series fails when any of its groups does); ``max_*_at`` is ``(step, group)``.
    """

    name: str
    tolerance: Tolerance
    passed: bool
    steps_golden: int
    steps_current: int
    n_checked: int
    n_failed: int
    fraction_failed: float
    max_abs: float
    max_abs_at: tuple[int, int] | None
    max_rel: float
    max_rel_at: tuple[int, int] | None
    first_failure: int | None
    first_failure_epoch: int | None
    first_failure_batch: int | None
    nonfinite_step: int | None
    length_mismatch: bool
    summary: dict[str, float] | None
    reason: str
    groups_golden: int = 1
    groups_current: int = 1
    first_failure_group: int | None = None
    nonfinite_value: str | None = None  # "NaN", "inf" or "-inf" at nonfinite_step

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["tolerance"] = self.tolerance.to_dict()
        data["tolerance_text"] = self.tolerance.describe()
        return _json_ready(data)


@dataclass
class Verdict:
    """The result of comparing a trajectory with its golden, series by series."""

    series: list[SeriesVerdict]
    missing_series: list[str] = field(default_factory=list)
    extra_series: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.missing_series and not self.extra_series and not self.failed

    @property
    def failed(self) -> list[SeriesVerdict]:
        return [s for s in self.series if not s.passed]

    def worst(self) -> SeriesVerdict | None:
        """The series with the largest relative error, among failing ones if any fail."""
        pool = self.failed or self.series
        return max(pool, key=lambda s: s.max_rel, default=None)

    def to_dict(self) -> dict[str, Any]:
        worst = self.worst()
        return {
            "passed": self.passed,
            "missing_series": list(self.missing_series),
            "extra_series": list(self.extra_series),
            "worst": worst.name if worst else None,
            "series": [s.to_dict() for s in self.series],
        }


def _json_ready(value: Any) -> Any:
    """Non-finite floats as 'NaN'/'Infinity'/'-Infinity' (the golden files' convention)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    return value


# -- the engine ----------------------------------------------------------------------


def compare(
    golden: Trajectory, current: Trajectory, tolerances: Mapping[str, Tolerance] | None = None
) -> Verdict:
    """Compare every series of ``golden`` with the same series of ``current``.

    Series without an entry in ``tolerances`` get their built-in default. A series in
    only one of the two is a failure (missing: the run no longer records it; extra:
    the record changed and the golden must be updated).
    """
    tolerances = dict(tolerances or {})
    names = [n for n in golden.names if n in current]
    defaults = resolve_tolerances([n for n in names if n not in tolerances])
    verdicts = [
        compare_series(
            name,
            golden[name],
            current[name],
            tolerances.get(name) or defaults[name],
            epoch=current.epoch,
            batch=current.batch,
        )
        for name in names
    ]
    return Verdict(
        series=verdicts,
        missing_series=[n for n in golden.names if n not in current],
        extra_series=[n for n in current.names if n not in golden],
    )


def outside_tolerance(golden: np.ndarray, current: np.ndarray, tol: Tolerance) -> np.ndarray:
    """Boolean mask, same shape as the inputs: which elements are outside tolerance.

    Both-finite elements follow the rtol/atol rule (one-sided for direction lower or
    higher); a non-finite current where the golden is finite always fails; where the
    golden is non-finite, only the same value (NaN, same-signed inf) passes.
    """
    g = np.asarray(golden, dtype=np.float64)
    c = np.asarray(current, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = c - g
        excess = np.abs(diff) if tol.direction == "both" else (diff if tol.direction == "lower" else -diff)
        bad = excess > tol.atol + tol.rtol * np.abs(g)
    fin_g = np.isfinite(g)
    fin_c = np.isfinite(c)
    bad &= fin_c
    bad |= fin_g & ~fin_c
    if not fin_g.all():
        same = (g == c) | (np.isnan(g) & np.isnan(c))
        bad |= ~fin_g & ~same
    return bad


def compare_series(
    name: str,
    golden: np.ndarray,
    current: np.ndarray,
    tol: Tolerance,
    epoch: np.ndarray | None = None,
    batch: np.ndarray | None = None,
) -> SeriesVerdict:
    """Compare one series (1-D, or 2-D steps x groups) and explain the result.

    Statistics always cover the common prefix of steps and common groups; a length or
    group-count mismatch fails the series whatever the values say.
    """
    g_all = _as_2d(golden)
    c_all = _as_2d(current)
    n = min(g_all.shape[0], c_all.shape[0])
    k = min(g_all.shape[1], c_all.shape[1])
    g, c = g_all[:n, :k], c_all[:n, :k]
    bad = outside_tolerance(g, c, tol)
    bad_steps = bad.any(axis=1)
    n_failed = int(np.count_nonzero(bad_steps))
    first = _first(bad_steps)
    nonfinite = _first((np.isfinite(g) & ~np.isfinite(c)).any(axis=1))
    stats = _error_stats(g, c)
    position = _position(first, epoch, batch)
    v = SeriesVerdict(
        name=name,
        tolerance=tol,
        passed=False,
        steps_golden=int(g_all.shape[0]),
        steps_current=int(c_all.shape[0]),
        n_checked=n,
        n_failed=n_failed,
        fraction_failed=n_failed / n if n else 0.0,
        **stats,
        first_failure=first,
        first_failure_epoch=position[0],
        first_failure_batch=position[1],
        nonfinite_step=nonfinite,
        length_mismatch=g_all.shape[0] != c_all.shape[0],
        summary=None,
        reason="",
        groups_golden=int(g_all.shape[1]),
        groups_current=int(c_all.shape[1]),
        first_failure_group=None if first is None else int(np.argmax(bad[first])),
        nonfinite_value=None if nonfinite is None else _nonfinite_name(c[nonfinite], g[nonfinite]),
    )
    values_ok = _judge_values(v, tol, g_all, c_all, k)
    structural = _structural_reason(v, epoch, batch)
    v.passed = values_ok and not structural
    v.reason = "within tolerance" if v.passed else (structural or v.reason)
    return v


def _as_2d(values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    return arr.reshape(arr.shape[0], -1) if arr.ndim != 2 else arr


def _first(mask: np.ndarray) -> int | None:
    """Index of the first True, or None (argmax stops scanning at the first hit)."""
    if mask.size == 0:
        return None
    i = int(np.argmax(mask))
    return i if mask[i] else None


def _position(step: int | None, epoch: Any, batch: Any) -> tuple[int | None, int | None]:
    """(epoch, batch) of a step, when known."""
    if step is None:
        return None, None
    e = int(epoch[step]) if epoch is not None and step < len(epoch) else None
    b = int(batch[step]) if batch is not None and step < len(batch) else None
    return e, b


def _nonfinite_name(row_c: np.ndarray, row_g: np.ndarray) -> str:
    value = row_c[np.isfinite(row_g) & ~np.isfinite(row_c)][0]
    return "NaN" if np.isnan(value) else ("inf" if value > 0 else "-inf")


def _error_stats(g: np.ndarray, c: np.ndarray) -> dict[str, Any]:
    """Largest absolute and relative error over elements finite on both sides."""
    both = np.isfinite(g) & np.isfinite(c)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        absdiff = np.where(both, np.abs(c - g), -1.0)
        rel = absdiff / np.abs(g)
    rel = np.where(absdiff == 0, 0.0, rel)  # 0/0: equal values, no error
    rel = np.where(both, rel, -1.0)
    out: dict[str, Any] = {}
    for key, arr in (("max_abs", absdiff), ("max_rel", rel)):
        flat = int(np.argmax(arr)) if arr.size else 0
        if not arr.size or arr.flat[flat] <= 0:  # nothing finite, or no difference at all
            out[key], out[f"{key}_at"] = 0.0, None
            continue
        step, group = divmod(flat, arr.shape[1])
        out[key], out[f"{key}_at"] = float(arr.flat[flat]), (step, group)
    return out


def _structural_reason(v: SeriesVerdict, epoch: Any, batch: Any) -> str:
    """Why the series fails regardless of the value rule: NaN/inf, length, groups."""
    if v.nonfinite_step is not None:
        e, b = _position(v.nonfinite_step, epoch, batch)
        where = f" (epoch {e}, batch {b})" if e is not None and b is not None else ""
        return (
            f"{v.nonfinite_value} first appeared at step {v.nonfinite_step}{where} "
            f"where the golden is finite"
        )
    if v.length_mismatch:
        delta = v.steps_current - v.steps_golden
        how = f"shorter by {-delta}" if delta < 0 else f"longer by {delta}"
        return (
            f"current trajectory has {v.steps_current} steps, the golden {v.steps_golden} "
            f"({how}): the run stopped early or epochs/batch size changed"
        )
    if v.groups_golden != v.groups_current:
        return (
            f"current has {v.groups_current} param groups, the golden {v.groups_golden}: "
            f"the optimizer's param groups changed"
        )
    return ""


def _judge_values(v: SeriesVerdict, tol: Tolerance, g_all: np.ndarray, c_all: np.ndarray, k: int) -> bool:
    """Apply the mode's rule; set ``v.summary`` and ``v.reason`` and return pass/fail."""
    if tol.mode == "step":
        allowed = math.floor(tol.budget * v.n_checked * (1 + 1e-12) + 1e-9)
        if v.n_failed:
            budget = f", budget {format_percent(tol.budget)}" if tol.budget else ""
            v.reason = steps_outside_text(v) + budget
        return v.n_failed <= allowed
    g_val, c_val = _summaries(tol, g_all[:, :k], c_all[:, :k])
    if tol.mode == "reach":
        bad = _reach_bad(g_val, c_val, tol)
    else:
        bad = outside_tolerance(g_val, c_val, tol)
    group = _worst_group(g_val, c_val, bad)
    v.summary = _summary_dict(g_val[group], c_val[group], tol, group if k > 1 else None)
    if bad.any():
        g_text, c_text = _summary_texts(float(g_val[group]), float(c_val[group]), tol)
        v.reason = f"{_summary_label(tol)}: golden {g_text}, current {c_text}"
        if k > 1:
            v.reason += f" (group {group})"
    return not bad.any()


def _summaries(tol: Tolerance, g: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-group summary values of golden and current (each on its own full length)."""
    if tol.mode == "final":
        return g[-tol.last :].mean(axis=0), c[-tol.last :].mean(axis=0)
    if tol.mode == "auc":
        return np.trapezoid(g, axis=0), np.trapezoid(c, axis=0)
    return _reach_step(g, tol), _reach_step(c, tol)


def _reach_step(values: np.ndarray, tol: Tolerance) -> np.ndarray:
    """First step per group reaching the target, inf where never reached."""
    with np.errstate(invalid="ignore"):
        hit = values >= tol.target if tol.direction == "higher" else values <= tol.target
    if hit.shape[0] == 0:
        return np.full(hit.shape[1], np.inf)
    first = np.argmax(hit, axis=0).astype(np.float64)
    return np.where(hit.any(axis=0), first, np.inf)


def _reach_bad(g: np.ndarray, c: np.ndarray, tol: Tolerance) -> np.ndarray:
    """Reach steps compared with rtol/atol; one-sided directions let earlier pass."""
    one_sided = tol.direction != "both"
    with np.errstate(invalid="ignore"):
        diff = c - g
        excess = diff if one_sided else np.abs(diff)
        bad = excess > tol.atol + tol.rtol * np.abs(g)
    never_c, never_g = np.isinf(c), np.isinf(g)
    # Golden never reached it: current reaching it is a change, fine when one-sided.
    bad = np.where(never_g, ~never_c & (not one_sided), bad)
    return np.where(never_c & ~never_g, True, bad)


def _worst_group(g: np.ndarray, c: np.ndarray, bad: np.ndarray) -> int:
    """The failing group with the largest difference (or the largest overall)."""
    with np.errstate(invalid="ignore"):
        diff = np.abs(c - g)
    diff = np.where(np.isnan(diff), np.inf, diff)
    if bad.any():
        diff = np.where(bad, diff, -1.0)
    return int(np.argmax(diff)) if diff.size else 0


def _summary_dict(g: float, c: float, tol: Tolerance, group: int | None) -> dict[str, float]:
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = abs(float(c) - float(g)) if math.isfinite(g) and math.isfinite(c) else math.nan
        rel = diff / abs(g) if g else (0.0 if diff == 0 else math.inf)
    out = {"golden": float(g), "current": float(c), "abs": diff, "rel": rel,
           "allowed": tol.atol + tol.rtol * abs(float(g))}
    if group is not None:
        out["group"] = group
    return out


def _summary_label(tol: Tolerance) -> str:
    if tol.mode == "final":
        return "final value differs" if tol.last == 1 else f"mean of last {tol.last} steps differs"
    if tol.mode == "auc":
        return "area under the curve differs"
    return f"first step reaching {tol.target:g} differs"


def format_percent(fraction: float) -> str:
    """0.09635 -> '9.6%'; small fractions keep two significant digits ('0.0012%')."""
    pct = 100.0 * fraction
    return f"{pct:.1f}%" if pct >= 1 or pct == 0 else f"{pct:.2g}%"


def steps_outside_text(v: SeriesVerdict) -> str:
    """'37 of 384 steps (9.6%) outside tolerance' (shared by reasons and messages)."""
    return f"{v.n_failed} of {v.n_checked} steps ({format_percent(v.fraction_failed)}) outside tolerance"


def format_pair(golden: float, current: float) -> tuple[str, str]:
    """Both values with the fewest digits (9..17) that show they differ; 17 round-trips."""
    for digits in range(9, 18):
        g_text, c_text = f"{golden:.{digits}g}", f"{current:.{digits}g}"
        if g_text != c_text or golden == current or (math.isnan(golden) and math.isnan(current)):
            break
    return g_text, c_text


def _summary_texts(golden: float, current: float, tol: Tolerance) -> tuple[str, str]:
    if tol.mode == "reach":
        return _step_text(golden), _step_text(current)
    return format_pair(golden, current)


def _step_text(step: float) -> str:
    return "never" if math.isinf(step) else str(int(step))
