"""Recording a framework's trainer: what the Lightning and Hugging Face callbacks share.

A trainer owns the loop, so the callback cannot call ``rec.log`` where a user would. The
split: a :class:`~.record.Recorder` on the *unwrapped* optimizer records the hooked series
(``lr``, ``momentum``, norms) at each optimizer step, exactly as for a user's own loop; the
framework's callback events say, per step, the loss as the framework computed it and the
epoch and batch as the trainer counts them (:meth:`FrameworkRecording.stepped`). The
trajectory joins both and describes the run (:mod:`.describe`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..declare.spec import _record as validate_record
from ..declare.spec import record_every as validate_every
from ..engine.thinning import thin
from ..engine.trajectory import Trajectory
from ..errors import OptcheckError
from ..run.describe import describe_run, unwrap_optimizer, unwrap_scheduler
from ..run.record import HOOKED_SERIES, Recorder


def check_record(record: Iterable[str] | str) -> tuple[str, ...]:
    """The series a callback records, validated like the marker's ``record`` key."""
    return validate_record(record if isinstance(record, str) else list(record), "OptcheckCallback(record=...)")


def trainer_scaler(optimizer: Any, trainer: Any = None) -> Any:
    """The ``torch.amp.GradScaler`` a trainer steps through, or None (no fp16 scaler), so a
    step it skips stays a row of the trajectory, marked in ``skipped`` (see the Recorder).

    Lightning keeps it as ``trainer.precision_plugin.scaler``; the Hugging Face Trainer steps
    through accelerate's ``AcceleratedOptimizer``, whose ``.scaler`` it is. Both call the
    scaler's public ``update()`` after each ``scaler.step(optimizer)``, which is what the
    recording observes."""
    for owner in (getattr(trainer, "precision_plugin", None), optimizer):
        scaler = getattr(owner, "scaler", None)
        if scaler is not None and callable(getattr(scaler, "update", None)) and getattr(scaler, "is_enabled",
                                                                                        lambda: True)():
            return scaler
    return None


class FrameworkRecording:
    """One trainer run being recorded; made when training starts, closed when it ends."""

    def __init__(self, optimizer: Any, scheduler: Any, model: Any, record: tuple[str, ...], source: str,
                 record_every: int = 1, scaler: Any = None) -> None:
        self.record_every = record_every
        self.optimizer = unwrap_optimizer(optimizer)
        self.scheduler = unwrap_scheduler(scheduler)
        self.record = record
        self.source = source
        if not callable(getattr(self.optimizer, "register_step_pre_hook", None)):
            raise OptcheckError(
                f"optcheck: the {source} trainer's optimizer is a {type(optimizer).__name__}, which is no torch "
                f"optimizer and wraps none (no .optimizer); its steps cannot be watched.")
        hooked = [name for name in record if name in HOOKED_SERIES]
        self.recorder = Recorder(self.optimizer, self.scheduler, model, record=hooked, scaler=scaler)
        self.recorder.__enter__()
        self.losses: list[float] = []
        self.epochs: list[int] = []
        self.batches: list[int] = []

    def close(self) -> None:
        """Remove the hooks (training ended, or raised)."""
        self.recorder.close()

    def stepped(self, epoch: int, batch: int, loss: float = math.nan) -> int:
        """Called after each batch: give the optimizer steps taken since the last call (0 when
        the batch only accumulated gradients) this epoch, batch and loss; return how many."""
        new = self.recorder.steps - len(self.epochs)
        for _ in range(new):
            self.epochs.append(int(epoch))
            self.batches.append(int(batch))
            self.losses.append(float(loss))
        return new

    def set_last_loss(self, loss: float) -> None:
        """The loss of the latest step, known only after it (the Hugging Face Trainer's log)."""
        if self.losses:
            self.losses[-1] = float(loss)

    def trajectory(self) -> Trajectory:
        """The series in the order of ``record``, one row per optimizer step."""
        steps = len(self.epochs)
        if steps == 0:
            raise OptcheckError(
                f"optcheck: the {self.source} run recorded no optimizer step: the watched "
                f"{type(self.optimizer).__name__} never stepped (did training run, and does the trainer step "
                f"this optimizer?). Check that fit/train ran at least one batch with the callback attached.")
        hooked = self.recorder.trajectory
        series: dict[str, Any] = {}
        for name in self.record:
            if name == "loss":
                series[name] = np.asarray(self.losses, dtype=np.float64)
            elif name in hooked:
                series[name] = hooked[name][:steps]
        if "skipped" in hooked:  # a scaler was found: the steps it skipped
            series["skipped"] = hooked["skipped"][:steps]
        epochs = len(set(self.epochs))
        run = describe_run(self.optimizer, self.scheduler, self.source, steps, epochs, self.record)
        if self.record_every > 1:
            run["record_every"] = self.record_every
        return thin(Trajectory(series, self.epochs, self.batches, meta={"run": run}), self.record_every)



class RecordingCallback:
    """What the Lightning and Hugging Face callbacks share: the series they record, the
    recording they start when training starts (closing an earlier one), and its trajectory.
    Mixed in before the framework's own callback class."""

    #: The call that trains (``trainer.fit(...)``), for the error when nothing was recorded.
    TRAINS = "the trainer"

    def __init__(self, record: Iterable[str] | str = ("loss", "lr"), record_every: int = 1) -> None:
        super().__init__()
        self.record = check_record(record)
        #: keep every k-th step and each bucket's min/max/mean (docs/long-runs.md)
        self.record_every = validate_every(record_every)
        self._recording: FrameworkRecording | None = None

    def _start(self, optimizer: Any, scheduler: Any, model: Any, framework: str, trainer: Any = None) -> None:
        self._close()
        self._recording = FrameworkRecording(optimizer, scheduler, model, self.record, framework,
                                             self.record_every, scaler=trainer_scaler(optimizer, trainer))

    def _close(self) -> None:
        if self._recording is not None:
            self._recording.close()

    @property
    def trajectory(self) -> Trajectory:
        """The recorded run, for ``optcheck.check(callback.trajectory)``."""
        return self._require().trajectory()

    def _require(self) -> FrameworkRecording:
        """The recording, or the error that says how to make one."""
        if self._recording is None:
            raise OptcheckError("optcheck: this OptcheckCallback has recorded nothing: pass it to the Trainer "
                                f"(Trainer(..., callbacks=[callback])) and call {self.TRAINS} first.")
        return self._recording
