"""Recording a Hugging Face ``Trainer.train``: one callback, no other change to the user's code.

    callback = OptcheckCallback()            # or optcheck.callback("hf"): the marker's record
    Trainer(model=..., args=..., train_dataset=..., callbacks=[callback]).train()
    optcheck.check(callback.trajectory)

Per optimizer step it records:

* ``loss`` — the Trainer's own loss for the step: the sum of the micro-batch losses it
  back-propagated (each divided by ``gradient_accumulation_steps`` unless the model takes
  ``num_items_in_batch``), i.e. their mean over an accumulation window. The Trainer hands a
  callback no loss; it computes the step's loss only when it logs. So the callback asks it to
  log after every optimizer step (``control.should_log``) and reads ``logs["loss"]`` in
  ``on_log``: the log history and any reporter get one entry per step.
* ``lr`` (per param group) and the other hooked series, from step hooks on the torch
  optimizer inside accelerate's ``AcceleratedOptimizer`` (which has no step hooks of its own).
* epoch and batch as the Trainer counts them: the epoch index, and the index within the epoch
  of the micro-batch on which the optimizer stepped.

``transformers`` is imported when this module is, never by the plugin itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from transformers import TrainerCallback

from ..errors import OptcheckError
from .base import RecordingCallback


class OptcheckCallback(RecordingCallback, TrainerCallback):
    """A ``transformers.TrainerCallback`` recording one ``Trainer.train`` for optcheck."""

    TRAINS = "trainer.train()"

    def __init__(self, record: Iterable[str] | str = ("loss", "lr"), record_every: int = 1) -> None:
        super().__init__(record, record_every)
        self._epoch = -1
        self._batch = 0
        self._awaiting_loss = False

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, optimizer: Any = None,
                       lr_scheduler: Any = None, **kwargs: Any) -> None:
        self._close()
        if optimizer is None:
            raise OptcheckError("optcheck: the Trainer started training without an optimizer to watch "
                                "(on_train_begin got optimizer=None).")
        autocast = "bfloat16" if args.bf16 else "float16" if args.fp16 else None  # the Trainer's mixed precision
        self._start(optimizer, lr_scheduler, model, "transformers", libraries=("transformers", "accelerate"),
                    autocast=autocast)
        self._epoch, self._batch, self._awaiting_loss = -1, 0, False

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._epoch += 1
        self._batch = 0

    def on_substep_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._batch += 1  # a micro-batch that only accumulated gradients

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        recording = self._require()
        stepped = recording.stepped(self._epoch, self._batch)
        self._batch += 1
        if stepped and "loss" in self.record:
            self._awaiting_loss = True
            control.should_log = True  # the Trainer computes the step's loss only when it logs
        return control

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
               **kwargs: Any) -> None:
        if self._awaiting_loss and logs and "loss" in logs:
            self._require().set_last_loss(logs["loss"])
            self._awaiting_loss = False

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._close()
