"""The sentences of a verdict: why each series passed or failed, under what tolerance, the
table around the first failure, and the one way numbers are formatted.

One module for the words of a comparison, so the same fact is worded once — the reason
of a series in the failure message, in the report and in ``optcheck diff`` is the same
string — and a change of wording is one edit. Plain text, no colours (it also lands in
CI logs). For a failing series it answers the questions asked when a training
regression shows up: which series, under what tolerance, how many steps, how large,
where it started (step, epoch, batch), what the numbers look like there, and how to
update the golden.

Each layer words its own other outcomes beside the decision: a missing golden or an
unstable calibration in ``checks/golden_check.py``, the checks without goldens in
``checks/differential/``, a changed environment in ``golden/environment.py``, a failing
call of the reference loop in ``run/conventions.py``; errors about bad *input* (a marker
key, a tolerance string, a damaged golden file) next to the parser that finds them. They
format numbers with :func:`format_number` and :func:`format_pair` from here.
Pure numpy + stdlib, like the engine.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .bound import allowed
from .compare import SeriesVerdict, Verdict, outside_tolerance
from .envelope import Calibration
from .tolerance import Tolerance
from .trajectory import Trajectory, as_2d


def render_verdict(
    verdict: Verdict,
    golden: Trajectory,
    current: Trajectory,
    *,
    golden_path: str | None = None,
    update_command: str | None = None,
    picture: str | None = None,
    context: int = 3,
    header: list[str] | None = None,
    calibration: Calibration | None = None,
) -> str:
    """The whole failure message: headline, one block per failing series, then where to act."""
    lines = [*(header or []), _headline(verdict)]
    for sv in verdict.failed:
        lines += ["", *_series_block(sv, golden, current, context, calibration)]
    if verdict.epoch_failed:
        from .per_epoch import epoch_block

        for sv in verdict.epoch_failed:
            lines += ["", *epoch_block(sv, golden.epoch_series[sv.name], current.epoch_series[sv.name])]
    lines += _missing_extra(verdict)
    footer = where_lines(golden_path, update_command, picture)
    if footer:
        lines += ["", *footer]
    return "\n".join(lines)


def where_lines(path: str | None, update_command: str | None, picture: str | None) -> list[str]:
    """Where to act: the golden's path, the command that rewrites it, the picture."""
    pairs = (("golden", path), ("update with", update_command), ("picture", picture))
    return [f"{label}: {value}" for label, value in pairs if value]


def _missing_extra(verdict: Verdict) -> list[str]:
    """Series present on one side only: the record changed, so the golden must follow."""
    lines = [
        f"{name}: in the golden but not recorded by this run (record it again, or update the golden)"
        for name in verdict.missing_series
    ]
    lines += [
        f"{name}: recorded by this run but not in the golden (the record changed: update the golden)"
        for name in verdict.extra_series
    ]
    return ["", *lines] if lines else []


def _headline(verdict: Verdict) -> str:
    differ = ([s.name for s in verdict.failed] + [s.name for s in verdict.epoch_failed]
              + verdict.missing_series + verdict.extra_series)
    total = (len(verdict.series) + len(verdict.epoch_series)
             + len(verdict.missing_series) + len(verdict.extra_series))
    if not differ:
        return f"optcheck: all {total} series within tolerance of the golden"
    return f"optcheck: {len(differ)} of {total} series differ from the golden ({', '.join(differ)})"


def rule_text(tol: Tolerance) -> str:
    """The failure rule in words, so users can check the arithmetic themselves."""
    if tol.mode == "reach":
        lhs = "|step_current - step_golden|" if tol.direction == "both" else "step_current - step_golden"
        return f"{lhs} > atol + rtol*step_golden (never reaching it fails)"
    lhs = {
        "both": "|current - golden|",
        "lower": "current - golden",
        "higher": "golden - current",
    }[tol.direction]
    rule = f"{lhs} > atol + rtol*|golden|"
    return f"a step fails when {rule}" if tol.mode == "step" else f"fails when {rule} on the summary"


def _series_block(sv: SeriesVerdict, golden: Trajectory, current: Trajectory, context: int,
                  calibration: Calibration | None = None) -> list[str]:
    """Every fact about one failing series, most telling first, then a table."""
    details = [f"tolerance: {describe_tolerance(sv.tolerance)}", f"rule: {rule_text(sv.tolerance)}"]
    details += _noise_lines(sv, calibration, golden[sv.name])
    details += _summary_lines(sv)
    if sv.n_failed:
        info = " (per step, for information)" if sv.tolerance.mode != "step" else ""
        details.append(steps_outside_text(sv) + info)
    details += _error_lines(sv)
    details += bucket_lines(sv)
    if sv.first_failure is not None:
        details.append(f"first step outside tolerance: {step_where(sv.first_failure, current, sv)}")
    if sv.nonfinite_step is not None:
        details.append(
            f"{sv.nonfinite_value} first appeared at step {step_where(sv.nonfinite_step, current)}; "
            f"the golden is finite there"
        )
    details += _shape_lines(sv)
    if sv.name == "skipped":
        details.append("the GradScaler skipped other steps than when the golden was recorded (1: skipped, for "
                       "inf/NaN gradients)")
    reason = series_reason(sv)
    lines = [f"{sv.name}: {reason}", *(f"  {d}" for d in details if d != reason)]
    allowance = calibration.allowance(sv.name) if calibration is not None else None
    rows = _in_rows(sv, current)  # a thinned run's verdict names real steps; its arrays hold rows
    for center, group in _table_centers(rows, golden[sv.name], current[sv.name], context):
        lines += render_table(
            sv.name, golden[sv.name], current[sv.name], current.epoch, current.batch,
            center, context, sv.tolerance, group=group, allowance=allowance, steps=current.steps,
        )
    lines += bucket_table(sv, golden, current)
    return lines


def _in_rows(sv: SeriesVerdict, current: Trajectory) -> SeriesVerdict:
    """``sv`` with its steps turned into rows of ``current`` (the same for a full run)."""
    if current.buckets is None:
        return sv
    import dataclasses

    def row(step: int | None) -> int | None:
        return None if step is None else current.row_of(step)

    return dataclasses.replace(sv, first_failure=row(sv.first_failure), nonfinite_step=row(sv.nonfinite_step))


def bucket_lines(sv: SeriesVerdict) -> list[str]:
    """A thinned run: how many buckets fail, and the first one (min, max or mean)."""
    b = sv.buckets
    if b is None or not b.n_failed or b.first is None:
        return []
    f = b.first
    g_text, c_text = format_pair(f.golden, f.current)
    group = f", group {f.group}" if sv.groups_golden > 1 else ""
    share = format_percent(b.n_failed / b.n_checked)
    lines = [f"{b.n_failed} of {b.n_checked} buckets of {b.every} steps ({share}) outside tolerance"] if sv.n_failed else []
    return [*lines, (f"first bucket outside tolerance: steps {f.first_step}-{f.last_step}{group}, {f.stat}: golden "
                     f"{g_text}, current {c_text} (a bucket's min, max and mean cover every step in it, kept or not)")]


def bucket_table(sv: SeriesVerdict, golden: Trajectory, current: Trajectory) -> list[str]:
    """The first failing bucket's min, max and mean, golden beside current."""
    b = sv.buckets
    if b is None or b.first is None or golden.buckets is None or current.buckets is None:
        return []
    f = b.first
    if sv.first_failure is not None and sv.first_failure <= f.first_step:
        return []  # the kept rows' table shows it first
    rows = [("stat", "golden", "current", "abs err", "rel err", "")]
    for stat in ("min", "max", "mean"):
        gv = float(as_2d(golden.buckets.stats[sv.name][stat])[f.bucket, f.group])
        cv = float(as_2d(current.buckets.stats[sv.name][stat])[f.bucket, f.group])
        g_text, c_text = format_pair(gv, cv)
        bad = bool(outside_tolerance(np.array([gv]), np.array([cv]), sv.tolerance)[0])
        rows.append((stat, g_text, c_text, *error_cells(gv, cv), "!" if bad else ""))
    return [f"  {sv.name} over steps {f.first_step}-{f.last_step} (bucket {f.bucket} of {b.every} steps):",
            *_align(rows)]


def _noise_lines(sv: SeriesVerdict, calibration: Calibration | None, golden: np.ndarray) -> list[str]:
    """A calibrated golden: the widened rule, and the envelope where the series left it."""
    if sv.noise_factor is None or calibration is None:
        return []
    factor = format_number(sv.noise_factor)
    rule = (f"calibrated: a step may also differ by up to {factor} x the noise envelope of "
            f"{calibration.replicas} ulp-perturbed replicas, when that is larger")
    lines = [rule]
    step = sv.first_failure
    if step is not None and sv.noise_envelope_at_failure is not None and step < len(golden):
        g = float(np.max(np.abs(as_2d(golden)[step])))
        tolerance_wins = allowed(sv.tolerance, g) > sv.noise_factor * sv.noise_envelope_at_failure
        lines.append(noise_failure_text(sv.noise_factor, sv.noise_envelope_at_failure, step, tolerance_wins))
    return lines


def noise_failure_text(factor: float, envelope: float, step: int, tolerance_wins: bool = False) -> str:
    """'outside 4 x noise envelope (2.1e-04) at step 140', saying so when the tolerance is
    the larger allowance there (the envelope is tiny where the run is not chaotic yet)."""
    text = f"outside {format_number(factor)} x noise envelope ({envelope:.2g}) at step {step}"
    return text + " (and outside the tolerance, the larger there)" if tolerance_wins else text


def step_where(step: int, traj: Trajectory, sv: SeriesVerdict | None = None) -> str:
    """'17 (epoch 0, batch 17)', plus the group for a 2-D series."""
    text = f"{step}"
    row = traj.row_of(step)
    if row is not None:
        text += f" (epoch {int(traj.epoch[row])}, batch {int(traj.batch[row])})"
    if sv is not None and sv.groups_golden > 1 and sv.first_failure_group is not None:
        text += f", group {sv.first_failure_group}"
    return text


def _error_lines(sv: SeriesVerdict) -> list[str]:
    def at(pos: tuple[int, int] | None) -> str:
        if pos is None:
            return ""
        return f" at step {pos[0]}" + (f", group {pos[1]}" if sv.groups_golden > 1 else "")

    if sv.max_abs_at is None:
        return []
    line = (
        f"largest abs error {sv.max_abs:.3g}{at(sv.max_abs_at)}; "
        f"largest rel error {format_number(sv.max_rel)}{at(sv.max_rel_at)}"
    )
    return [line]


def _summary_lines(sv: SeriesVerdict) -> list[str]:
    """Golden vs current summary value for the 'final', 'auc' and 'reach' modes."""
    s = sv.summary
    if s is None:
        return []
    tol = sv.tolerance
    group = f" (group {int(s['group'])})" if "group" in s else ""
    if tol.mode == "reach":
        op = ">=" if tol.direction == "higher" else "<="
        line = (
            f"first step with value {op} {tol.target:g}{group}: golden {_step_or_never(s['golden'])}, "
            f"current {_step_or_never(s['current'])}, allowed difference {s['allowed']:.3g} steps"
        )
        return [line]
    label = {"final": "final value" if tol.last == 1 else f"mean of last {tol.last} steps",
             "auc": "area under the curve"}[tol.mode]
    golden_text, current_text = format_pair(s["golden"], s["current"])
    line = (
        f"{label}{group}: golden {golden_text}, current {current_text}, "
        f"abs diff {format_number(s['abs'])}, rel diff {format_number(s['rel'])}, allowed {s['allowed']:.3g}"
    )
    return [line]


def _shape_lines(sv: SeriesVerdict) -> list[str]:
    lines = []
    if sv.length_mismatch:
        lines.append(length_text(sv))
        lines.append(f"(the statistics above cover the first {sv.n_checked} steps, common to both)")
    if sv.groups_golden != sv.groups_current:
        lines.append(groups_text(sv))
    return lines


def _table_centers(
    sv: SeriesVerdict, golden: np.ndarray, current: np.ndarray, context: int
) -> list[tuple[int, int]]:
    """Where to show tables: the first failure, and the first NaN/inf if it is further on."""
    centers = []
    if sv.first_failure is not None:
        centers.append((sv.first_failure, sv.first_failure_group or 0))
    step = sv.nonfinite_step
    if step is not None and (not centers or step - centers[0][0] > 2 * context):
        g_row, c_row = np.atleast_1d(golden[step]), np.atleast_1d(current[step])
        group = int(np.argmax(np.isfinite(g_row) & ~np.isfinite(c_row)))
        centers.append((step, group))
    return centers


def render_table(
    name: str,
    golden_values: np.ndarray,
    current_values: np.ndarray,
    epoch: np.ndarray,
    batch: np.ndarray,
    center: int,
    context: int = 3,
    tol: Tolerance | None = None,
    *,
    group: int = 0,
    allowance: np.ndarray | None = None,
    steps: np.ndarray | None = None,
) -> list[str]:
    """Side-by-side rows of the steps around ``center``; '!' marks rows outside ``tol``.

    For a 2-D series, ``group`` picks the column shown. Values get as many digits as
    needed to see that golden and current differ (at least 9 significant).
    """
    g = _column(golden_values, group)
    c = _column(current_values, group)
    n = min(len(g), len(c))
    lo, hi = max(0, center - context), min(n, center + context + 1)
    if lo >= hi:
        return []
    fits = allowance is not None and len(allowance) >= hi and group < as_2d(allowance).shape[1]
    allow = _column(allowance, group)[lo:hi] if fits else None
    bad = outside_tolerance(g[lo:hi], c[lo:hi], tol, allow) if tol is not None else np.zeros(hi - lo, bool)
    rows = [("step", "epoch", "batch", "golden", "current", "abs err", "rel err", "")]
    for i in range(lo, hi):
        gv, cv = float(g[i]), float(c[i])
        g_text, c_text = format_pair(gv, cv)
        rows.append((
            _index(steps, i) if steps is not None else str(i), _index(epoch, i), _index(batch, i), g_text, c_text,
            *error_cells(gv, cv), "!" if bad[i - lo] else "",
        ))
    label = f"{name}[group {group}]" if np.ndim(golden_values) == 2 else name
    shown = _index(steps, center) if steps is not None else str(center)
    return [f"  {label} around step {shown}:", *_align(rows)]


def _column(values: np.ndarray, group: int) -> np.ndarray:
    return as_2d(values)[:, group]


def _index(values: np.ndarray | None, i: int) -> str:
    return str(int(values[i])) if values is not None and i < len(values) else "-"


def _align(rows: list[tuple[str, ...]]) -> list[str]:
    """Right-aligned columns (numbers line up), two spaces apart, indented by four."""
    widths = [max(len(r[j]) for r in rows) for j in range(len(rows[0]))]
    return ["    " + "  ".join(cell.rjust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]


def error_cells(golden: float, current: float) -> tuple[str, str]:
    """Absolute and relative error cells ('-' where one side is not finite)."""
    if not (math.isfinite(golden) and math.isfinite(current)):
        return "-", "-"
    diff = abs(current - golden)
    if golden == 0:
        return f"{diff:.3g}", "0" if diff == 0 else "inf"
    return f"{diff:.3g}", f"{diff / abs(golden):.3g}"


def _step_or_never(value: float) -> str:
    return "never reached it" if math.isinf(value) else f"step {int(value)}"



# -- a series' reason, and the tolerance in words ------------------------------------


def series_reason(sv: SeriesVerdict) -> str:
    """Why a series passed or failed, in one line (the headline of its block)."""
    if sv.passed:
        return "within tolerance"
    if sv.nonfinite_step is not None:
        where = ""
        if sv.nonfinite_epoch is not None and sv.nonfinite_batch is not None:
            where = f" (epoch {sv.nonfinite_epoch}, batch {sv.nonfinite_batch})"
        return f"{sv.nonfinite_value} first appeared at step {sv.nonfinite_step}{where} where the golden is finite"
    if sv.length_mismatch:
        return length_text(sv)
    if sv.groups_golden != sv.groups_current:
        return groups_text(sv)
    tol = sv.tolerance
    if tol.mode == "step":
        budget = f", budget {format_percent(tol.budget)}" if tol.budget else ""
        if sv.buckets is not None and sv.buckets.n_failed and not sv.n_failed:
            b = sv.buckets
            return (f"{b.n_failed} of {b.n_checked} buckets of {b.every} steps ({format_percent(b.n_failed / b.n_checked)}) "
                    f"outside tolerance{budget}")
        return steps_outside_text(sv) + budget
    s = sv.summary or {}
    g_text, c_text = _summary_texts(float(s.get("golden", math.nan)), float(s.get("current", math.nan)), tol)
    group = f" (group {int(s['group'])})" if "group" in s else ""
    return f"{_summary_label(tol)}: golden {g_text}, current {c_text}{group}"


def length_text(sv: SeriesVerdict) -> str:
    delta = sv.steps_current - sv.steps_golden
    how = f"shorter by {-delta}" if delta < 0 else f"longer by {delta}"
    return (f"current trajectory has {sv.steps_current} steps, the golden {sv.steps_golden} "
            f"({how}): the run stopped early or epochs/batch size changed")


def groups_text(sv: SeriesVerdict) -> str:
    return (f"current has {sv.groups_current} param groups, the golden {sv.groups_golden}: "
            f"the optimizer's param groups changed")


def describe_tolerance(tol: Tolerance) -> str:
    """One line for failure messages, e.g. 'rtol=1e-05, atol=0, step by step'."""
    parts = [f"rtol={tol.rtol:g}", f"atol={tol.atol:g}", _mode_text(tol)]
    if tol.direction != "both":
        parts.append("reaching the target earlier is never a regression" if tol.mode == "reach"
                     else f"{tol.direction} is never a regression")
    return ", ".join(parts)


def _mode_text(tol: Tolerance) -> str:
    if tol.mode == "step":
        return f"step by step, up to {tol.budget:.4g} of steps may fail" if tol.budget else "step by step"
    if tol.mode == "final":
        return "final value" if tol.last == 1 else f"mean of last {tol.last} steps"
    if tol.mode == "auc":
        return "area under the curve"
    op = ">=" if tol.direction == "higher" else "<="
    return f"first step with value {op} {tol.target:g}"


def _summary_label(tol: Tolerance) -> str:
    if tol.mode == "final":
        return "final value differs" if tol.last == 1 else f"mean of last {tol.last} steps differs"
    if tol.mode == "auc":
        return "area under the curve differs"
    return f"first step reaching {tol.target:g} differs"


def _summary_texts(golden: float, current: float, tol: Tolerance) -> tuple[str, str]:
    if tol.mode == "reach":
        return _step_text(golden), _step_text(current)
    return format_pair(golden, current)


def _step_text(step: float) -> str:
    return "never" if math.isinf(step) else str(int(step))


def format_percent(fraction: float) -> str:
    """0.09635 -> '9.6%'; small fractions keep two significant digits ('0.0012%')."""
    pct = 100.0 * fraction
    return f"{pct:.1f}%" if pct >= 1 or pct == 0 else f"{pct:.2g}%"


def steps_outside_text(v: SeriesVerdict) -> str:
    """'37 of 384 steps (9.6%) outside tolerance'."""
    kept = f" kept steps (one in {v.buckets.every}," if v.buckets is not None else " steps ("
    return f"{v.n_failed} of {v.n_checked}{kept} {format_percent(v.fraction_failed)}) outside tolerance".replace("( ", "(")


def format_pair(golden: float, current: float) -> tuple[str, str]:
    """Both values with the fewest digits (9..17) that show they differ; 17 round-trips."""
    for digits in range(9, 18):
        g_text, c_text = f"{golden:.{digits}g}", f"{current:.{digits}g}"
        if g_text != c_text or golden == current or (math.isnan(golden) and math.isnan(current)):
            break
    return g_text, c_text


def format_number(value: Any) -> str:
    """'3.2e-05' style for errors; non-finite and missing values as words."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.3g}"
