"""The comparison engine: is a current trajectory within tolerance of its golden?

Pure numpy + stdlib (no torch, pytest or matplotlib), so ``optcheck diff`` and the
report can use it without paying for those imports. Everything is vectorised: a
100 000-step trajectory compares in a few milliseconds.

The element rule is the one of ``np.isclose`` and ``torch.testing.assert_close``::

    |current - golden| > atol + rtol * |golden|   ->  outside tolerance

NaN equals NaN and an infinity equals the same-signed infinity; a non-finite current
value where the golden is finite is always a failure, whatever the tolerance.

A calibrated golden (``calibrate=N``, :mod:`.envelope`) widens the rule per step: the
right-hand side becomes ``max(atol + rtol * |golden|, factor * envelope[step])``
(:func:`.bound.allowed`, the one place the rule is written).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .bound import allowed
from .envelope import Calibration
from .thinning import BucketVerdict, align, compare_buckets
from .tolerance import Tolerance, resolve_tolerances
from .trajectory import Trajectory, as_2d, json_ready

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
    groups_golden: int = 1
    groups_current: int = 1
    first_failure_group: int | None = None
    nonfinite_value: str | None = None  # "NaN", "inf" or "-inf" at nonfinite_step
    nonfinite_epoch: int | None = None
    nonfinite_batch: int | None = None
    #: Calibrated goldens: the envelope's factor, and the envelope at the first failure.
    noise_factor: float | None = None
    noise_envelope_at_failure: float | None = None
    #: Thinned runs (``record_every``): how the per-bucket min/max/mean compare. Steps in
    #: this verdict are then real step indices, not rows.
    buckets: BucketVerdict | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["tolerance"] = self.tolerance.to_dict()
        return json_ready(data)


@dataclass
class Verdict:
    """The result of comparing a trajectory with its golden, series by series."""

    series: list[SeriesVerdict]
    missing_series: list[str] = field(default_factory=list)
    extra_series: list[str] = field(default_factory=list)
    #: The per-epoch series (``rec.log_epoch``), compared epoch by epoch: their "steps" are epochs.
    epoch_series: list[SeriesVerdict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.missing_series and not self.extra_series and not self.failed and not self.epoch_failed

    @property
    def failed(self) -> list[SeriesVerdict]:
        """The per-step series that fail."""
        return [s for s in self.series if not s.passed]

    @property
    def epoch_failed(self) -> list[SeriesVerdict]:
        """The per-epoch series that fail."""
        return [s for s in self.epoch_series if not s.passed]

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
            **({"epoch_series": [s.to_dict() for s in self.epoch_series]} if self.epoch_series else {}),
        }


# -- the engine ----------------------------------------------------------------------


def compare(
    golden: Trajectory,
    current: Trajectory,
    tolerances: Mapping[str, Tolerance] | None = None,
    calibration: Calibration | None = None,
) -> Verdict:
    """Compare every series of ``golden`` with the same series of ``current``.

    Series without an entry in ``tolerances`` get their built-in default. A series in
    only one of the two is a failure (missing: the run no longer records it; extra:
    the record changed and the golden must be updated). ``calibration`` (the golden's
    noise envelope) widens each step's allowance where it is larger than the tolerance.
    """
    tolerances = dict(tolerances or {})
    golden, current = align(golden, current)
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
            allowance=calibration.allowance(name) if calibration is not None else None,
            factor=calibration.factor if calibration is not None else None,
        )
        for name in names
    ]
    if golden.buckets is not None:
        verdicts = [with_buckets(v, golden, current) for v in verdicts]
    per_epoch = [n for n in golden.epoch_series if n in current.epoch_series]
    epoch_defaults = resolve_tolerances([n for n in per_epoch if n not in tolerances])
    epoch_verdicts = [
        compare_series(name, golden.epoch_series[name], current.epoch_series[name],
                       tolerances.get(name) or epoch_defaults[name])
        for name in per_epoch
    ]
    return Verdict(
        series=verdicts,
        missing_series=[n for n in golden.names if n not in current]
        + [n for n in golden.epoch_series if n not in current.epoch_series],
        extra_series=[n for n in current.names if n not in golden]
        + [n for n in current.epoch_series if n not in golden.epoch_series],
        epoch_series=epoch_verdicts,
    )


def with_buckets(v: SeriesVerdict, golden: Trajectory, current: Trajectory) -> SeriesVerdict:
    """A thinned run's verdict: rows named by their real steps, and the buckets judged.

    The kept rows were compared as for a full run; each bucket's min, max and mean are
    compared with the same tolerance (:func:`~.thinning.compare_buckets`), so a one-step
    spike between kept rows fails. Failing buckets count against the step budget like
    failing rows. Lengths are the runs' real step counts."""
    assert golden.buckets is not None and current.buckets is not None
    steps = current.steps

    def real(row: int | None) -> int | None:
        return None if row is None or row >= len(steps) else int(steps[row])

    def real_at(at: tuple[int, int] | None) -> tuple[int, int] | None:
        return None if at is None else (int(steps[at[0]]), at[1])

    buckets = compare_buckets(v.name, golden.buckets, current.buckets, v.tolerance)
    out = dataclasses.replace(
        v, buckets=buckets, first_failure=real(v.first_failure), nonfinite_step=real(v.nonfinite_step),
        max_abs_at=real_at(v.max_abs_at), max_rel_at=real_at(v.max_rel_at),
        steps_golden=golden.total_steps, steps_current=current.total_steps,
        length_mismatch=v.length_mismatch or golden.total_steps != current.total_steps)
    if buckets is not None and buckets.n_failed:
        allowed = math.floor(v.tolerance.budget * buckets.n_checked * (1 + 1e-12) + 1e-9)
        out.passed = out.passed and buckets.n_failed <= allowed
    out.passed = out.passed and not structural_failure(out)
    return out


def outside_tolerance(golden: np.ndarray, current: np.ndarray, tol: Tolerance,
                      allowance: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask, same shape as the inputs: which elements are outside tolerance.

    Both-finite elements follow the rtol/atol rule (one-sided for direction lower or
    higher), or ``allowance`` (a calibrated golden's absolute bound, same shape) where that
    is larger; a non-finite current where the golden is finite always fails; where the
    golden is non-finite, only the same value (NaN, same-signed inf) passes.
    """
    g = np.asarray(golden, dtype=np.float64)
    c = np.asarray(current, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = c - g
        excess = np.abs(diff) if tol.direction == "both" else (diff if tol.direction == "lower" else -diff)
        bad = excess > allowed(tol, g, allowance)
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
    allowance: np.ndarray | None = None,
    factor: float | None = None,
) -> SeriesVerdict:
    """Compare one series (1-D, or 2-D steps x groups) and explain the result.

    Statistics always cover the common prefix of steps and common groups; a length or
    group-count mismatch fails the series whatever the values say. ``allowance`` (steps x
    groups, from a calibrated golden: ``factor`` times its envelope) widens each step.
    """
    g_all = as_2d(golden)
    c_all = as_2d(current)
    n = min(g_all.shape[0], c_all.shape[0])
    k = min(g_all.shape[1], c_all.shape[1])
    g, c = g_all[:n, :k], c_all[:n, :k]
    allow = _fit(allowance, n, k)
    bad = outside_tolerance(g, c, tol, allow)
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
        groups_golden=int(g_all.shape[1]),
        groups_current=int(c_all.shape[1]),
        first_failure_group=None if first is None else int(np.argmax(bad[first])),
        nonfinite_value=None if nonfinite is None else _nonfinite_name(c[nonfinite], g[nonfinite]),
        nonfinite_epoch=_position(nonfinite, epoch, batch)[0],
        nonfinite_batch=_position(nonfinite, epoch, batch)[1],
        noise_factor=factor if allow is not None else None,
        noise_envelope_at_failure=(float(allow[first, int(np.argmax(bad[first]))]) / factor
                                   if allow is not None and first is not None and factor else None),
    )
    values_ok = _judge_values(v, tol, g_all, c_all, k, allow)
    v.passed = values_ok and not structural_failure(v)
    return v


def _fit(allowance: np.ndarray | None, n: int, k: int) -> np.ndarray | None:
    """The allowance over the compared ``n`` steps x ``k`` groups; steps it lacks get 0
    (the tolerance alone), so a golden whose envelope is short is never looser."""
    if allowance is None:
        return None
    a = as_2d(allowance)
    out = np.zeros((n, k))
    m, j = min(n, a.shape[0]), min(k, a.shape[1])
    out[:m, :j] = a[:m, :j]
    if j < k and j > 0:
        out[:m, j:] = a[:m, j - 1 : j]
    return out


def structural_failure(v: SeriesVerdict) -> bool:
    """Whether the series fails whatever the values say: NaN/inf, length, param groups."""
    return v.nonfinite_step is not None or v.length_mismatch or v.groups_golden != v.groups_current


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


def _judge_values(v: SeriesVerdict, tol: Tolerance, g_all: np.ndarray, c_all: np.ndarray, k: int,
                  allow: np.ndarray | None = None) -> bool:
    """Apply the mode's rule (setting ``v.summary`` for summary modes); pass or fail.

    A calibrated golden's allowance carries over to the ``final`` and ``auc`` summaries
    (the mean / area of the allowed per-step deviation bounds the summary's deviation)."""
    if tol.mode == "step":
        allowed = math.floor(tol.budget * v.n_checked * (1 + 1e-12) + 1e-9)
        return v.n_failed <= allowed
    g_val, c_val = _summaries(tol, g_all[:, :k], c_all[:, :k])
    summary_allow = None
    if allow is not None and tol.mode != "reach" and allow.shape[0]:
        summary_allow = _summaries(tol, allow, allow)[0]
    if tol.mode == "reach":
        bad = _reach_bad(g_val, c_val, tol)
    else:
        bad = outside_tolerance(g_val, c_val, tol, summary_allow)
    group = _worst_group(g_val, c_val, bad)
    v.summary = _summary_dict(g_val[group], c_val[group], tol, group if k > 1 else None,
                              None if summary_allow is None else float(summary_allow[group]))
    v.summary["failed"] = bool(bad.any())
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
        bad = excess > allowed(tol, g)
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


def _summary_dict(g: float, c: float, tol: Tolerance, group: int | None,
                  allowance: float | None = None) -> dict[str, float]:
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = abs(float(c) - float(g)) if math.isfinite(g) and math.isfinite(c) else math.nan
        rel = diff / abs(g) if g else (0.0 if diff == 0 else math.inf)
    out = {"golden": float(g), "current": float(c), "abs": diff, "rel": rel,
           "allowed": float(allowed(tol, float(g), allowance))}
    if group is not None:
        out["group"] = group
    return out


def relative_error(golden: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Per step over the common prefix, the largest |c - g| / |g| among the groups.

    A zero golden gives 0 where current is also zero and inf otherwise; NaN against NaN
    and same-signed infinities count as equal (0), as in :func:`outside_tolerance`.
    """
    g, c = as_2d(golden), as_2d(current)
    n, k = min(g.shape[0], c.shape[0]), min(g.shape[1], c.shape[1])
    g, c = g[:n, :k], c[:n, :k]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        diff = np.abs(c - g)
        rel = np.where(g != 0, diff / np.abs(g), np.where(diff == 0, 0.0, np.inf))
    same = (g == c) | (np.isnan(g) & np.isnan(c))
    rel = np.where(same, 0.0, np.where(np.isnan(rel), np.inf, rel))
    return rel.max(axis=1) if k else np.zeros(n)
