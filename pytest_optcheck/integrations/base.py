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
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..declare.spec import _record as validate_record
from ..declare.spec import record_every as validate_every
from ..engine.thinning import thin
from ..engine.trajectory import Trajectory
from ..errors import OptcheckError
from ..run.describe import describe_run, unwrap_optimizer, unwrap_scheduler
from ..run.record import Recorder


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
                 record_every: int = 1, scaler: Any = None, libraries: Iterable[str] = (),
                 autocast: str | None = None) -> None:
        self.record_every = record_every
        self.optimizer = unwrap_optimizer(optimizer)
        self.scheduler = unwrap_scheduler(scheduler)
        self.record = record
        self.source = source
        #: The framework's packages (``pytorch_lightning``; ``transformers``, ``accelerate``): their
        #: versions go into the golden's environment, as a marker run's third-party libraries do.
        self.libraries = tuple(libraries)
        #: The autocast dtype the trainer's precision setting says it trains in (it enters
        #: autocast inside its own step, where the recorder's hooks cannot see it).
        self.autocast = autocast
        if not callable(getattr(self.optimizer, "register_step_pre_hook", None)):
            raise OptcheckError(
                f"optcheck: the {source} trainer's optimizer is a {type(optimizer).__name__}, which is no torch "
                f"optimizer and wraps none (no .optimizer); its steps cannot be watched.")
        # every series but the loss comes from the optimizer: the hooked ones and any numeric
        # key of its param groups (weight_decay, Prodigy's d), as optcheck.record keeps them;
        # the Recorder leaves the loss to whoever logs it: here, the trainer's events
        self.recorder = Recorder(self.optimizer, self.scheduler, model, record=record, scaler=scaler)
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
        # the recorder's series: those of ``record`` but the loss, and ``skipped`` with a scaler
        # (for the loss alone and no scaler it has none, and says so)
        wanted = set(self.record) - {"loss"} or self.recorder.scaler is not None
        hooked = self.recorder.trajectory if wanted else None
        series: dict[str, Any] = {}
        for name in self.record:
            if name == "loss":
                series[name] = np.asarray(self.losses, dtype=np.float64)
            elif hooked is not None:  # always, for a name other than the loss
                series[name] = hooked[name][:steps]
        if hooked is not None and "skipped" in hooked:  # a scaler was found: the steps it skipped
            series["skipped"] = hooked["skipped"][:steps]
        epochs = len(set(self.epochs))
        run = describe_run(self.optimizer, self.scheduler, self.source, steps, epochs, self.record)
        if self.record_every > 1:
            run["record_every"] = self.record_every
        if autocast := self.autocast or self.recorder.autocast:  # the trainer's mixed precision is part of the run
            run["autocast"] = autocast
        meta = {"run": run, "libraries": self.modules()}
        return thin(Trajectory(series, self.epochs, self.batches, meta=meta), self.record_every)

    def modules(self) -> list[str]:
        """The third-party packages the run depends on: the framework's, and those the
        optimizer and scheduler classes come from (``pytorch_optimizer``)."""
        modules = list(self.libraries)
        for obj in (self.optimizer, self.scheduler):
            top = type(obj).__module__.split(".")[0]  # no scheduler: None's, builtins
            if top not in ("torch", "builtins", *modules):
                modules.append(top)
        return modules



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

    def _start(self, optimizer: Any, scheduler: Any, model: Any, framework: str, trainer: Any = None,
               libraries: Iterable[str] = (), autocast: str | None = None) -> None:
        self._close()
        self._recording = FrameworkRecording(optimizer, scheduler, model, self.record, framework,
                                             self.record_every, scaler=trainer_scaler(optimizer, trainer),
                                             libraries=libraries, autocast=autocast)

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


class LightningRecordingCallback(RecordingCallback):
    """The Lightning callback's behaviour, free of any Lightning import: mixed in before the
    ``Callback`` of the package the user's Trainer comes from — ``lightning.pytorch``
    (:mod:`.lightning`) or the standalone ``pytorch_lightning`` (:mod:`.pytorch_lightning`);
    each Trainer accepts only its own package's ``Callback``."""

    TRAINS = "trainer.fit(...)"
    #: The package the Trainer comes from, whose version the golden's environment keeps.
    PACKAGE = "lightning"

    def __init__(self, record: Iterable[str] | str = ("loss", "lr"), record_every: int = 1) -> None:
        super().__init__(record, record_every)
        self._loss = 0.0

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        optimizers = list(trainer.optimizers)
        if len(optimizers) != 1:
            names = ", ".join(type(o).__name__ for o in optimizers) or "none"
            raise OptcheckError(f"optcheck: OptcheckCallback records one optimizer; configure_optimizers gave "
                                f"{len(optimizers)} ({names}). Record a model that trains with one optimizer.")
        configs = list(trainer.lr_scheduler_configs)
        scheduler = configs[0].scheduler if configs else None
        self._start(optimizers[0], scheduler, pl_module, "lightning", trainer, libraries=(self.PACKAGE,),
                    autocast=MIXED_PRECISION.get(str(trainer.precision)))
        self._loss = 0.0

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        recording = self._require()  # started: on_train_start has reset the sum
        self._loss += _loss_of(outputs)
        if recording.stepped(trainer.current_epoch, batch_idx, self._loss):
            self._loss = 0.0

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self._require().close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._close()


#: Lightning's ``Trainer(precision=...)`` values that train under autocast, and its dtype.
MIXED_PRECISION = {"bf16-mixed": "bfloat16", "16-mixed": "float16"}


def _loss_of(outputs: Any) -> float:
    """The loss in ``training_step``'s outputs as Lightning passes them on (NaN when there is
    none: a skipped step)."""
    loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
    if loss is None or not hasattr(loss, "detach"):
        return math.nan
    return float(loss.detach().float().item())
