"""The sentences of two runs that should agree and do not (resume, parity, distributed):
which run differs, from which step, in which series or tensor, and by how much.

Shared by the three checks without goldens; each words its own headline beside its
decision (``resume.py``, ``parity.py``, ``distributed.py``). The numbers are formatted as
the golden checks' messages format them (:mod:`pytest_optcheck.engine.messages`).
"""

from __future__ import annotations

from ...engine.compare import SeriesVerdict
from ...engine.messages import (
    describe_tolerance,
    error_cells,
    format_number,
    format_pair,
    series_reason,
    step_where,
    steps_outside_text,
)
from ...engine.stepwise import RunComparison, TensorDifference
from ...engine.trajectory import Trajectory, as_2d


def tensor_difference_text(diff: TensorDifference, where: Trajectory, labels: tuple[str, str]) -> str:
    """One line: the first tensor outside tolerance (or what is structurally different)."""
    ref, oth = labels
    step = step_where(diff.step, where)  # a step past the run's rows: its number alone (row_of is None)
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
    a_err, r_err = error_cells(a, b)
    group_text = f", group {group}" if as_2d(reference[sv.name]).shape[1] > 1 else ""
    return (f"{sv.name} at step {step_where(step, reference)}{group_text}: {ref} {ref_text}, {oth} {oth_text} "
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


def from_step_text(comparison: RunComparison, where: Trajectory) -> str:
    step = first_difference_step(comparison)
    return f" from step {step_where(step, where)} on" if step is not None else ""
