"""Recording a Lightning ``Trainer.fit``: one callback, no other change to the user's code.

    callback = OptcheckCallback()            # or optcheck.callback("lightning"): the marker's record
    Trainer(..., callbacks=[callback]).fit(model, data)
    optcheck.check(callback.trajectory)

Per optimizer step it records:

* ``loss`` — Lightning's own loss for the step: the sum of the micro-batch losses it
  back-propagated (``training_step``'s loss divided by ``accumulate_grad_batches``), i.e.
  their mean over an accumulation window; read from ``on_train_batch_end``'s outputs.
* ``lr`` (per param group) and the other hooked series, from step hooks on the torch
  optimizer itself (``trainer.optimizers``; a ``LightningOptimizer`` is unwrapped).
* epoch and batch as the Trainer counts them: ``current_epoch``, and the ``batch_idx`` of the
  batch on which the optimizer stepped.

The model must configure one optimizer (the one Lightning steps in automatic optimization).
``lightning`` is imported when this module is, never by the plugin itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from lightning.pytorch.callbacks import Callback

from ..errors import OptcheckError
from .base import RecordingCallback


class OptcheckCallback(RecordingCallback, Callback):
    """A Lightning ``Callback`` recording one ``Trainer.fit`` for optcheck."""

    TRAINS = "trainer.fit(...)"

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
        self._start(optimizers[0], scheduler, pl_module, "lightning", trainer)
        self._loss = 0.0

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._loss += _loss_of(outputs)
        if self._require().stepped(trainer.current_epoch, batch_idx, self._loss):
            self._loss = 0.0

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self._require().close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._close()


def _loss_of(outputs: Any) -> float:
    """The loss in ``training_step``'s outputs as Lightning passes them on (NaN when there is
    none: a skipped step)."""
    loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
    if loss is None or not hasattr(loss, "detach"):
        return math.nan
    return float(loss.detach().float().item())
