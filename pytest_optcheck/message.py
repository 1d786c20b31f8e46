"""Turn a Verdict into the failure text a user reads in the pytest report.

Plain text, no colours (it also lands in CI logs and ``optcheck diff``). It answers,
for each failing series, the questions asked when a training regression shows up:
which series, under what tolerance, how many steps, how large, where it started
(step, epoch, batch), what the numbers look like there, and how to update the golden.
Pure numpy + stdlib, like the engine.
"""

from __future__ import annotations

import math

import numpy as np

from .compare import (
    SeriesVerdict,
    Tolerance,
    Verdict,
    format_pair,
    outside_tolerance,
    steps_outside_text,
)
from .trajectory import Trajectory


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
) -> str:
    """The whole failure message: headline, one block per failing series, then where to act."""
    lines = [*(header or []), _headline(verdict)]
    for sv in verdict.failed:
        lines += ["", *_series_block(sv, golden, current, context)]
    lines += _missing_extra(verdict)
    footer = [
        f"{label}: {value}"
        for label, value in (("golden", golden_path), ("update with", update_command), ("picture", picture))
        if value
    ]
    if footer:
        lines += ["", *footer]
    return "\n".join(lines)


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
    differ = [s.name for s in verdict.failed] + verdict.missing_series + verdict.extra_series
    total = len(verdict.series) + len(verdict.missing_series) + len(verdict.extra_series)
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


def _series_block(sv: SeriesVerdict, golden: Trajectory, current: Trajectory, context: int) -> list[str]:
    """Every fact about one failing series, most telling first, then a table."""
    details = [f"tolerance: {sv.tolerance.describe()}", f"rule: {rule_text(sv.tolerance)}"]
    details += _summary_lines(sv)
    if sv.n_failed:
        info = " (per step, for information)" if sv.tolerance.mode != "step" else ""
        details.append(steps_outside_text(sv) + info)
    details += _error_lines(sv)
    if sv.first_failure is not None:
        details.append(f"first step outside tolerance: {_where(sv.first_failure, current, sv)}")
    if sv.nonfinite_step is not None:
        details.append(
            f"{sv.nonfinite_value} first appeared at step {_where(sv.nonfinite_step, current)}; "
            f"the golden is finite there"
        )
    details += _shape_lines(sv)
    lines = [f"{sv.name}: {sv.reason}", *(f"  {d}" for d in details if d != sv.reason)]
    for center, group in _table_centers(sv, golden[sv.name], current[sv.name], context):
        lines += render_table(
            sv.name, golden[sv.name], current[sv.name], current.epoch, current.batch,
            center, context, sv.tolerance, group=group,
        )
    return lines


def _where(step: int, traj: Trajectory, sv: SeriesVerdict | None = None) -> str:
    """'17 (epoch 0, batch 17)', plus the group for a 2-D series."""
    text = f"{step}"
    if step < len(traj):
        text += f" (epoch {int(traj.epoch[step])}, batch {int(traj.batch[step])})"
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
        f"largest rel error {_num(sv.max_rel)}{at(sv.max_rel_at)}"
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
        f"abs diff {_num(s['abs'])}, rel diff {_num(s['rel'])}, allowed {s['allowed']:.3g}"
    )
    return [line]


def _shape_lines(sv: SeriesVerdict) -> list[str]:
    lines = []
    if sv.length_mismatch:
        delta = sv.steps_current - sv.steps_golden
        how = f"shorter by {-delta}" if delta < 0 else f"longer by {delta}"
        lines.append(
            f"current trajectory has {sv.steps_current} steps, the golden {sv.steps_golden} "
            f"({how}): the run stopped early or epochs/batch size changed"
        )
        lines.append(f"(the statistics above cover the first {sv.n_checked} steps, common to both)")
    if sv.groups_golden != sv.groups_current:
        lines.append(
            f"current has {sv.groups_current} param groups, the golden {sv.groups_golden}: "
            f"the optimizer's param groups changed"
        )
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
    bad = outside_tolerance(g[lo:hi], c[lo:hi], tol) if tol is not None else np.zeros(hi - lo, bool)
    rows = [("step", "epoch", "batch", "golden", "current", "abs err", "rel err", "")]
    for i in range(lo, hi):
        gv, cv = float(g[i]), float(c[i])
        g_text, c_text = format_pair(gv, cv)
        rows.append((
            str(i), _index(epoch, i), _index(batch, i), g_text, c_text,
            *_errors(gv, cv), "!" if bad[i - lo] else "",
        ))
    label = f"{name}[group {group}]" if np.ndim(golden_values) == 2 else name
    return [f"  {label} around step {center}:", *_align(rows)]


def _column(values: np.ndarray, group: int) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    return arr[:, group] if arr.ndim == 2 else arr


def _index(values: np.ndarray | None, i: int) -> str:
    return str(int(values[i])) if values is not None and i < len(values) else "-"


def _align(rows: list[tuple[str, ...]]) -> list[str]:
    """Right-aligned columns (numbers line up), two spaces apart, indented by four."""
    widths = [max(len(r[j]) for r in rows) for j in range(len(rows[0]))]
    return ["    " + "  ".join(cell.rjust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]


def _errors(golden: float, current: float) -> tuple[str, str]:
    """Absolute and relative error cells ('-' where one side is not finite)."""
    if not (math.isfinite(golden) and math.isfinite(current)):
        return "-", "-"
    diff = abs(current - golden)
    if golden == 0:
        return f"{diff:.3g}", "0" if diff == 0 else "inf"
    return f"{diff:.3g}", f"{diff / abs(golden):.3g}"


def _num(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else str(value)


def _step_or_never(value: float) -> str:
    return "never reached it" if math.isinf(value) else f"step {int(value)}"

