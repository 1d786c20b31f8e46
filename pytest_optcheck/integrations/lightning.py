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
``lightning`` is imported when this module is, never by the plugin itself. A project on the
standalone ``pytorch_lightning`` package uses :mod:`.pytorch_lightning`'s callback, the same
recording on that package's ``Callback`` (each Trainer accepts only its own package's).
"""

from __future__ import annotations

from lightning.pytorch.callbacks import Callback

from .base import LightningRecordingCallback


class OptcheckCallback(LightningRecordingCallback, Callback):
    """A ``lightning.pytorch`` ``Callback`` recording one ``Trainer.fit`` for optcheck."""

    PACKAGE = "lightning"
