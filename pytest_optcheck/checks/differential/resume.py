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
from typing import Any

from ...declare.spec import Spec
from ...engine import messages
from ...engine.outcome import Outcome, Status
from ...engine.stepwise import compare_runs
from ...errors import OptcheckError
from .tolerances import EXACT, differential_tolerances


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
        return Outcome(Status.PASSED, messages.resume_passed_text(stop, total), tolerances=tols)
    lost = [messages.lost_value_text(x.where, x.before, x.after, x.in_state_dict) for x in interrupted.lost]
    message = messages.resume_failed_text(stop, total, comparison, straight.trajectory,
                                          interrupted.run.trajectory, lost)
    return Outcome(Status.FAILED, message, verdict=comparison.series, tolerances=tols)
