"""Resume from a checkpoint: the run cut after step ``at``, saved, rebuilt from the spec,
loaded and continued must be the run without a cut.

What it catches (a golden cannot: both runs of a broken optimizer are reproducible): a
custom optimizer keeping its step count in an attribute instead of ``self.state``, a
scheduler whose ``state_dict()`` misses a field, a data order that is not restored. The
straight and the resumed run are compared on every recorded series and on every
parameter and optimizer-state tensor after every step; by default exactly on the CPU (the
same arithmetic in the same order must give the same bits), with the series' defaults on
other devices. A failure names the first step that differs and what did not survive the
round trip (state right after loading against state right before saving).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...declare.spec import Spec
from ...engine.outcome import Outcome, Status
from ...engine.stepwise import compare_runs
from ...errors import OptcheckError
from .differences import from_step_text, run_difference_lines
from .tolerances import EXACT, differential_tolerances

if TYPE_CHECKING:
    from ...engine.stepwise import RunComparison
    from ...engine.trajectory import Trajectory


def resume_step(at: float, total: int) -> int:
    """Steps run before the checkpoint: ``at`` itself (an int) or that fraction of ``total``."""
    if total < 2:
        raise OptcheckError(f"optcheck: check_resume() needs a run of at least 2 steps; this spec trains "
                            f"{total}. Raise epochs or lower batch_size.")
    if isinstance(at, bool) or not isinstance(at, numbers.Real):
        raise OptcheckError(f"optcheck: check_resume(at={at!r}): give a step (an int) or a fraction of the "
                            f"run (a float between 0 and 1).")
    stop = int(at) if isinstance(at, numbers.Integral) else round(float(at) * total)
    if isinstance(at, numbers.Integral) and not 1 <= stop < total:
        raise OptcheckError(f"optcheck: check_resume(at={at!r}): the step must be between 1 and {total - 1} "
                            f"(the run has {total} steps; at=N checkpoints after N steps).")
    if not isinstance(at, numbers.Integral) and not 0 < float(at) < 1:
        raise OptcheckError(f"optcheck: check_resume(at={at!r}): a fraction must be between 0 and 1 "
                            f"(exclusive); or give the step as an int.")
    return min(max(stop, 1), total - 1)


def check_resume(spec: Spec, device: str = "cpu", at: float = 0.5, threads: int | None = None,
                 **tolerances: Any) -> Outcome:
    """Train straight through and with a checkpoint after ``at``; the two must agree."""
    from .checkpoint import CheckpointError, interrupted_run
    from .states import record_run

    straight = record_run(spec, device, threads)
    total = len(straight.trajectory)
    stop = resume_step(at, total)
    tols = differential_tolerances(straight.trajectory.names, EXACT if device == "cpu" else {}, tolerances,
                                   where="check_resume()")
    try:
        interrupted = interrupted_run(spec, stop, device, threads)
    except CheckpointError as exc:
        return Outcome(Status.FAILED, f"optcheck: the checkpoint taken after {stop} steps does not round-trip: {exc}")
    comparison = compare_runs(straight, interrupted.run, tols)
    if comparison.passed:
        return Outcome(Status.PASSED, resume_passed_text(stop, total), tolerances=tols)
    lost = [lost_value_text(x.where, x.before, x.after, x.in_state_dict) for x in interrupted.lost]
    message = resume_failed_text(stop, total, comparison, straight.trajectory,
                                 interrupted.run.trajectory, lost)
    return Outcome(Status.FAILED, message, verdict=comparison.series, tolerances=tols)


# -- the sentences of this check ------------------------------------------------------


def resume_failed_text(stop: int, total: int, comparison: RunComparison, straight: Trajectory,
                       resumed: Trajectory, lost: Sequence[str]) -> str:
    """Resume changed the run: where, in what, and what the checkpoint did not bring back."""
    lines = [(f"optcheck: resuming from a checkpoint taken after {stop} of {total} steps changes the run"
             f"{from_step_text(comparison, straight)} (checkpoint: state_dict() of the model, optimizer and "
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
