"""A user's own loop, recorded: the :class:`~.record.Recorder` whose trajectory describes
the run it watched (``meta["run"]``, see :mod:`.describe`), so its golden names the real
optimizer and scheduler rather than the marker's defaults.

The plain Recorder describes nothing: the reference loop describes its run by the spec that
built it, and the framework callbacks by what the framework ran.
"""

from __future__ import annotations

from ..engine.trajectory import Trajectory
from .describe import describe_run
from .record import Recorder


class LoopRecorder(Recorder):
    """A Recorder for a user's own loop (``optcheck.record(...)``)."""

    @property
    def trajectory(self) -> Trajectory:
        trajectory = super().trajectory
        epochs = len(set(self._epochs))
        run = describe_run(self.given, self.scheduler, "loop", trajectory.total_steps, epochs, self.record,
                           self.optimizer_attr)
        if self.record_every > 1:  # part of what the golden holds: a change is a changed configuration
            run["record_every"] = self.record_every
        if self.autocast:  # part of the run: never described as plain float32 (absent when unused)
            run["autocast"] = self.autocast
        trajectory.meta["run"] = run
        return trajectory
