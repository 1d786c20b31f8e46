"""Every sentence a user reads about a check: verdicts, reasons, tolerances, missing and
stale goldens, environments.

One module, so the same fact is worded once — the reason of a series in the failure
message, in the report and in ``optcheck diff`` is the same string — and a change of
wording is one edit. Plain text, no colours (it also lands in CI logs). For a failing
series it answers the questions asked when a training regression shows up: which series,
under what tolerance, how many steps, how large, where it started (step, epoch, batch),
what the numbers look like there, and how to update the golden.

(Errors about bad *input* — a marker key, a tolerance string, a damaged golden file — are
written next to the parser that finds them, with the value and the fix.)
Pure numpy + stdlib, like the engine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .compare import SeriesVerdict, Verdict, outside_tolerance
from .envelope import Calibration
from .stepwise import RunComparison, TensorDifference
from .tolerance import Tolerance
from .trajectory import Trajectory, as_2d

#: Stands for a spec key one side does not have (a key added in a newer version).
ABSENT = "(absent)"


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
        details.append(f"first step outside tolerance: {_where(sv.first_failure, current, sv)}")
    if sv.nonfinite_step is not None:
        details.append(
            f"{sv.nonfinite_value} first appeared at step {_where(sv.nonfinite_step, current)}; "
            f"the golden is finite there"
        )
    details += _shape_lines(sv)
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
        rows.append((stat, g_text, c_text, *_errors(gv, cv), "!" if bad else ""))
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
        tolerance_wins = sv.tolerance.atol + sv.tolerance.rtol * g > sv.noise_factor * sv.noise_envelope_at_failure
        lines.append(noise_failure_text(sv.noise_factor, sv.noise_envelope_at_failure, step, tolerance_wins))
    return lines


def noise_failure_text(factor: float, envelope: float, step: int, tolerance_wins: bool = False) -> str:
    """'outside 4 x noise envelope (2.1e-04) at step 140', saying so when the tolerance is
    the larger allowance there (the envelope is tiny where the run is not chaotic yet)."""
    text = f"outside {format_number(factor)} x noise envelope ({envelope:.2g}) at step {step}"
    return text + " (and outside the tolerance, the larger there)" if tolerance_wins else text


def not_repeatable_text(calibrate: int, source: str) -> str:
    """calibrate asked of a check that was handed a recorded trajectory."""
    return (f"optcheck: calibrate={calibrate!r} (from {source}) needs a run it can repeat from perturbed "
            f"starts, but this check was given a trajectory already recorded. Let optcheck train it "
            f"(optcheck.check() with no trajectory), pass your loop as optcheck.check(run=fn) where fn(perturb) "
            f"builds the model, calls perturb(model) and returns the recorded trajectory, or set calibrate=0.")


def unstable_text(facts: Mapping[str, Any], shown: str | None) -> str:
    """The replicas of calibrate=N say the run is unstable at the rounding level."""
    parts = []
    if facts["diverged"]:
        first = min(step for _, _, step in facts["diverged"])
        parts.append(f"{len(facts['diverged'])} of {facts['replicas']} ulp-perturbed replicas went NaN/inf where "
                     f"the run did not (first at step {first})")
    for name, median in facts["wide"].items():
        parts.append(f"{name}'s noise envelope is {median:.2g} x its value on the median step")
    return (f"optcheck: calibrate={facts['replicas']}: {'; '.join(parts)}. The run is unstable at the rounding "
            f"level: one ulp changes its outcome, so a calibrated golden would allow almost anything and no golden "
            f"can tell noise from a change. Make the run stable (a smaller learning rate, more damping), or record "
            f"it without calibrate. No golden was written" + (f" at {shown}." if shown else "."))


def calibration_notes(calibration: Calibration | None, asked: int = 0) -> tuple[str, ...]:
    """What a check says about calibration in the report: how the golden's envelope was
    measured, or that the envelope asked for is not in the golden yet."""
    notes = []
    if calibration is not None:
        how = f", {calibration.path}" if calibration.path else ""
        notes.append(f"calibrated golden: allows {format_number(calibration.factor)} x the noise envelope of "
                     f"{calibration.replicas} ulp-perturbed replicas{how}")
    if asked and (calibration is None or calibration.replicas != asked):
        held = f"an envelope of {calibration.replicas} replicas" if calibration is not None else "no noise envelope"
        notes.append(f"calibrate={asked} asked, but the golden holds {held}: re-record it with --snapshot-update")
    return tuple(notes)


def _where(step: int, traj: Trajectory, sv: SeriesVerdict | None = None) -> str:
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
            *_errors(gv, cv), "!" if bad[i - lo] else "",
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


def _errors(golden: float, current: float) -> tuple[str, str]:
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


# -- outcomes that are not a numeric verdict --------------------------------------------


def missing_text(path: str | None, update_command: str | None, other_keys: Sequence[str] = (),
                 key: str | None = None) -> str:
    """No golden: where it is expected, the exact command that creates it, and under which
    other keys (torch versions) this check does have one."""
    create = update_command or "pytest --optcheck --snapshot-update"
    lines = [f"optcheck: no golden for this check yet; expected at {path}.", f"Create it with: {create}"]
    if other_keys:
        lines.append(f"goldens of this test exist for: {', '.join(other_keys)} (optcheck_golden_key = "
                     f"{'torch-minor' if key else 'none'} looks under {key or 'the root'})")
    return "\n".join(lines)


def config_changed_text(changes: Sequence[tuple[str, Any, Any]], tail: Sequence[str]) -> str:
    lines = ["optcheck: configuration changed since the golden was recorded (the numbers were not compared):"]
    lines += spec_change_lines(changes)
    lines.append("Re-record the golden if the change is intended.")
    return "\n".join([*lines, *tail])


def spec_change_lines(changes: Sequence[tuple[str, Any, Any]]) -> list[str]:
    """'  optimizer: 'SGD(lr=0.01)' -> 'SGD(lr=0.02)'' per changed key."""
    return [f"  {key}: {_show(old)} -> {_show(new)}" for key, old, new in changes]


def _show(value: Any) -> str:
    return ABSENT if value == ABSENT else repr(value)


def environment_text(old: Mapping[str, Any], new: Mapping[str, Any], changes: Sequence[str]) -> str:
    return (f"environment differs: recorded with {describe_environment(old)}; "
            f"now {describe_environment(new)} ({'; '.join(changes)})")


def describe_environment(env: Mapping[str, Any]) -> str:
    return (f"torch {env.get('torch')} on {env.get('device_name') or env.get('device')} "
            f"({env.get('device')}, {env.get('dtype')})")


def loop_call_text(call: str, where: str, exc: BaseException, hint: str | None = None) -> str:
    """An exception raised by user or library code inside the reference loop."""
    text = f"optcheck: {type(exc).__name__}: {exc}\n  while calling {call} {where}"
    return f"{text}\n  {hint}" if hint else text


#: Said when an optimizer step fails for want of the gradients' graph (SophiaH, AdaHessian).
CREATE_GRAPH_HINT = ("an optimizer that differentiates the gradients (Hessian-based: SophiaH, AdaHessian) "
                     "needs backward(create_graph=True): declare create_graph=True in the marker")


def library_change_text(changes: Sequence[str]) -> str:
    """A failure that coincides with a new release of the library the run's optimizer,
    scheduler or model comes from: the likeliest cause, so it is said first."""
    return (f"the run uses third-party code whose version changed since the golden was recorded "
            f"({'; '.join(changes)}): check its release notes before suspecting your own change")


def duplicate_golden_text(path: str) -> str:
    return (f"optcheck: two checks in this test use the same golden {path}; the second would overwrite "
            f"the first. Give each check its own name: check(name=...) / trajectory_snapshot(name=...).")


PASSED_TEXT = "optcheck: within tolerance"


# ======================================================================================
# Checks without goldens (differential): resume, parity, distributed.
# One run is the reference, another must agree with it step by step; the sentences say
# which run differs, from which step, in which series or tensor, and by how much.
# ======================================================================================


def tensor_difference_text(diff: TensorDifference, where: Trajectory, labels: tuple[str, str]) -> str:
    """One line: the first tensor outside tolerance (or what is structurally different)."""
    ref, oth = labels
    step = _where(diff.step, where) if diff.step < len(where) else str(diff.step)
    if diff.reason == "missing":
        return f"{diff.name}: in the {ref} run after step {step}, absent in the {oth} run"
    if diff.reason == "extra":
        return f"{diff.name}: in the {oth} run after step {step}, absent in the {ref} run"
    if diff.reason == "shape":
        ref_shape, oth_shape = diff.detail.split(" | ")
        return f"{diff.name} after step {step}: shape {ref_shape} in the {ref} run, {oth_shape} in the {oth} run"
    if diff.reason == "steps":
        return f"tensors: {int(diff.reference)} steps in the {ref} run, {int(diff.other)} in the {oth} run"
    element = f"[{', '.join(map(str, diff.index))}]" if diff.index else ""
    ref_text, oth_text = format_pair(diff.reference, diff.other)
    tol = f"; tolerance {describe_tolerance(diff.tolerance)}" if diff.tolerance is not None else ""
    return (f"{diff.name}{element} after step {step}: {ref} {ref_text}, {oth} {oth_text} "
            f"(abs err {diff.abs_err:.3g}, rel err {format_number(diff.rel_err)}{tol})")


def series_difference_text(sv: SeriesVerdict, reference: Trajectory, other: Trajectory,
                           labels: tuple[str, str]) -> str:
    """One line: a series' first step outside tolerance, with both values there."""
    ref, oth = labels
    if sv.first_failure is None or sv.length_mismatch:
        return f"{sv.name}: {series_reason(sv)}"
    step, group = sv.first_failure, sv.first_failure_group or 0
    a, b = float(as_2d(reference[sv.name])[step, group]), float(as_2d(other[sv.name])[step, group])
    ref_text, oth_text = format_pair(a, b)
    a_err, r_err = _errors(a, b)
    group_text = f", group {group}" if as_2d(reference[sv.name]).shape[1] > 1 else ""
    return (f"{sv.name} at step {_where(step, reference)}{group_text}: {ref} {ref_text}, {oth} {oth_text} "
            f"(abs err {a_err}, rel err {r_err}; tolerance {describe_tolerance(sv.tolerance)}; "
            f"{steps_outside_text(sv)})")


def run_difference_lines(comparison: RunComparison, reference: Trajectory, other: Trajectory,
                         labels: tuple[str, str]) -> list[str]:
    """Every series that differs (its first step), then the first tensor that does."""
    lines = [series_difference_text(sv, reference, other, labels) for sv in comparison.series.failed]
    lines += [f"{n}: recorded by the {labels[0]} run only" for n in comparison.series.missing_series]
    lines += [f"{n}: recorded by the {labels[1]} run only" for n in comparison.series.extra_series]
    if comparison.tensors.first is not None:
        lines.append("first tensor outside tolerance: "
                     + tensor_difference_text(comparison.tensors.first, reference, labels))
    return [f"  {line}" for line in lines]


def first_difference_step(comparison: RunComparison) -> int | None:
    """The earliest step where anything differs (a tensor after step i counts at step i)."""
    steps = [sv.first_failure for sv in comparison.series.failed if sv.first_failure is not None]
    if comparison.tensors.first is not None:
        steps.append(comparison.tensors.first.step)
    return min(steps, default=None)


def _from_step(comparison: RunComparison, where: Trajectory) -> str:
    step = first_difference_step(comparison)
    return f" from step {_where(step, where)} on" if step is not None else ""


def resume_failed_text(stop: int, total: int, comparison: RunComparison, straight: Trajectory,
                       resumed: Trajectory, lost: Sequence[str]) -> str:
    """Resume changed the run: where, in what, and what the checkpoint did not bring back."""
    lines = [(f"optcheck: resuming from a checkpoint taken after {stop} of {total} steps changes the run"
             f"{_from_step(comparison, straight)} (checkpoint: state_dict() of the model, optimizer and "
             f"scheduler and the batch-order generator, through torch.save / torch.load(weights_only=True))")]
    lines += run_difference_lines(comparison, straight, resumed, ("straight", "resumed"))
    if lost:
        lines.append("not the same right after loading (before saving -> after loading into fresh objects):")
        lines += [f"  {item}" for item in lost]
    else:
        lines.append("everything state_dict() holds came back identical: what differs lives elsewhere "
                     "(a global, a cache rebuilt on first use, an attribute of an object not checkpointed)")
    return "\n".join(lines)


def resume_passed_text(stop: int, total: int) -> str:
    return f"optcheck: resuming from a checkpoint taken after {stop} of {total} steps gives the same run"


def lost_value_text(where: str, before: str, after: str, in_state_dict: bool) -> str:
    """One piece of state that did not survive the round trip."""
    hint = "" if in_state_dict else (" (not in state_dict(): keep it in the optimizer's self.state, or save it "
                                     "in state_dict() and restore it in load_state_dict())")
    return f"{where}: {before} -> {after}{hint}"


def parity_failed_text(variant: str, setup: str, reference_setup: str, comparison: RunComparison,
                       reference: Trajectory, other: Trajectory, others: Sequence[str]) -> str:
    lines = [(f"optcheck: implementation {variant!r} ({setup}) differs from the reference ({reference_setup})"
             f"{_from_step(comparison, reference)}")]
    lines += run_difference_lines(comparison, reference, other, ("reference", variant))
    if others:
        lines.append(f"other implementations: {'; '.join(others)}")
    return "\n".join(lines)


def parity_variant_text(variant: str, comparison: RunComparison) -> str:
    """'foreach: within tolerance (largest rel diff 0)' for the other variants' summary."""
    verdict = "within tolerance" if comparison.passed else "differs"
    return f"{variant}: {verdict} (largest rel diff {format_number(comparison.max_rel)})"


def parity_skipped_text(variant: str, reason: str) -> str:
    return f"{variant}: skipped, {reason}"


def parity_passed_text(checked: Sequence[str], skipped: Sequence[str]) -> str:
    lines = [f"optcheck: {len(checked)} implementation(s) agree with the reference step by step"]
    lines += [f"  {line}" for line in [*checked, *skipped]]
    return "\n".join(lines)


def parity_none_text(optimizer: str, skipped: Sequence[str]) -> str:
    """No variant to compare: the optimizer offers none here (or all were skipped)."""
    reason = "; ".join(skipped) if skipped else "its signature has neither foreach nor fused"
    return (f"optcheck: optimizer={optimizer} has no other implementation to compare on this device ({reason}); "
            f"pass variants={{name: {{spec overrides}}}} to compare your own")


def distributed_failed_text(world_size: int, backend: str, comparison: RunComparison, single: Trajectory,
                            distributed: Trajectory, ranks: Sequence[str]) -> str:
    lines = [f"optcheck: DistributedDataParallel over {world_size} processes ({backend}) differs from the "
             f"one-process run{_from_step(comparison, single)}"
             if not comparison.passed else
             f"optcheck: the {world_size} processes ({backend}) hold different parameters"]
    lines += run_difference_lines(comparison, single, distributed, ("one-process", "distributed"))
    if ranks:
        lines.append("ranks disagree (every rank must hold the same parameters after each step):")
        lines += [f"  {line}" for line in ranks]
    lines.append("(loss: each rank's loss weighted by its shard's size, summed: the one-process loss when "
                 "the loss is a mean over the batch; a summed loss or a wrongly scaled gradient shows here)")
    return "\n".join(lines)


def distributed_passed_text(world_size: int, backend: str, comparison: RunComparison) -> str:
    return (f"optcheck: DistributedDataParallel over {world_size} processes ({backend}) trains like one process "
            f"(largest rel diff {format_number(comparison.max_rel)}); ranks agree exactly")
