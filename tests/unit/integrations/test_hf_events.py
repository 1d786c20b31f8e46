"""The Hugging Face callback (pytest_optcheck.integrations.hf) given the events a real
``Trainer.train`` sends, in its order, with transformers' own ``TrainingArguments``,
``TrainerState`` and ``TrainerControl``: which epoch and batch each optimizer step gets, the
loss read from the log the callback asks for, and what it says when it cannot record. Fast:
no Trainer runs (tests/unit/integrations/test_integrations.py runs one)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from pytest_optcheck.errors import OptcheckError

transformers = pytest.importorskip("transformers")
from pytest_optcheck.integrations.hf import OptcheckCallback

from .test_base import X, setup, step  # the same tiny data, model, optimizer and step


@pytest.fixture(scope="module")
def args(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return transformers.TrainingArguments(output_dir=str(tmp_path_factory.mktemp("hf")), report_to=[], use_cpu=True,
                                          disable_tqdm=True, save_strategy="no", log_level="error")


class Run:
    """A callback, and the Trainer's state and control objects it is handed."""

    def __init__(self, args: Any, record: Any = ("loss", "lr"), **begin: Any) -> None:
        self.args, self.state, self.control = args, transformers.TrainerState(), transformers.TrainerControl()
        self.callback = OptcheckCallback(record=record)
        self.model, self.optimizer, self.scheduler = setup()
        self.callback.on_train_begin(args, self.state, self.control, model=self.model, optimizer=self.optimizer,
                                     lr_scheduler=self.scheduler, **begin)

    def event(self, name: str, **kwargs: Any) -> Any:
        return getattr(self.callback, name)(self.args, self.state, self.control, **kwargs)

    def optimizer_step(self, loss: float | None, accumulated: int = 0) -> None:
        """``accumulated`` micro-batches that only accumulate, then one that steps; then the
        Trainer's log (with the step's loss, when the callback asked for it)."""
        for _ in range(accumulated):
            self.event("on_substep_end")
        step(self.model, self.optimizer, self.scheduler)
        self.control.should_log = False
        assert self.event("on_step_end") is self.control
        if self.control.should_log and loss is not None:
            self.event("on_log", logs={"learning_rate": 0.1})  # another log first: no loss in it
            self.event("on_log", logs={"loss": loss, "grad_norm": 1.0})


def test_epochs_batches_and_the_logged_loss_per_step(args: Any) -> None:
    run = Run(args)
    run.event("on_epoch_begin")
    run.optimizer_step(0.5, accumulated=1)
    run.optimizer_step(0.25, accumulated=1)
    run.event("on_log", logs={"loss": 9.0})  # a log the callback did not ask for: not a step's loss
    run.event("on_epoch_begin")
    run.optimizer_step(0.125)
    run.optimizer_step(0.0625, accumulated=2)
    run.event("on_train_end")
    step(run.model, run.optimizer)  # after the end: not recorded
    trajectory = run.callback.trajectory
    np.testing.assert_array_equal(trajectory["loss"], [0.5, 0.25, 0.125, 0.0625])
    np.testing.assert_array_equal(trajectory.epoch, [0, 0, 1, 1])
    np.testing.assert_array_equal(trajectory.batch, [1, 3, 0, 3])
    np.testing.assert_array_equal(trajectory["lr"][:, 0], [0.1, 0.1, 0.05, 0.05])
    run_meta = trajectory.meta["run"]
    assert (run_meta["source"], run_meta["steps"], run_meta["epochs"]) == ("transformers", 4, 2)
    assert run_meta["scheduler"] == "StepLR(gamma=0.5, step_size=2)"
    assert "autocast" not in run_meta
    assert trajectory.meta["libraries"] == ["transformers", "accelerate"]


def test_the_callback_asks_for_a_log_only_after_a_step_when_it_records_the_loss(args: Any) -> None:
    run = Run(args)
    run.event("on_epoch_begin")
    run.control.should_log = False
    run.event("on_step_end")  # the optimizer did not step (an overflow the Trainer skipped without a scaler)
    assert run.control.should_log is False
    run.event("on_log", logs={"loss": 3.0})
    run.optimizer_step(None)  # stepped: asks for the log, which has not come yet
    assert run.control.should_log is True
    run.event("on_log", logs={})
    run.event("on_log", logs=None)
    run.event("on_log", logs={"loss": 0.5})
    run.event("on_log", logs={"loss": 7.0})  # only the first loss after the step
    np.testing.assert_array_equal(run.callback.trajectory["loss"], [0.5])
    np.testing.assert_array_equal(run.callback.trajectory.batch, [1])

    quiet = Run(args, record=["lr"])
    quiet.event("on_epoch_begin")
    quiet.optimizer_step(None)
    assert quiet.control.should_log is False  # no loss recorded: no log asked for
    assert quiet.callback.trajectory.names == ["lr"]


def test_a_step_s_loss_not_yet_logged_stays_nan(args: Any) -> None:
    run = Run(args)
    run.event("on_epoch_begin")
    run.optimizer_step(None)
    assert math.isnan(run.callback.trajectory["loss"][0])


def test_a_fresh_callback_ignores_logs_before_training(args: Any) -> None:
    callback = OptcheckCallback()
    callback.on_log(args, transformers.TrainerState(), transformers.TrainerControl(), logs={"loss": 1.0})
    callback.on_train_end(args, transformers.TrainerState(), transformers.TrainerControl())
    with pytest.raises(OptcheckError, match=r"and call trainer\.train\(\) first\.$"):
        callback.trajectory  # noqa: B018


def test_a_second_train_starts_a_new_recording(args: Any) -> None:
    run = Run(args)
    run.event("on_epoch_begin")
    run.optimizer_step(0.5, accumulated=2)
    first = run.callback._recording
    run.event("on_train_begin", model=run.model, optimizer=run.optimizer, lr_scheduler=None)
    step(run.model, run.optimizer)  # the new recording's step; the first recording's hooks are gone
    assert first.recorder.steps == 1
    run.event("on_log", logs={"loss": 2.0})  # still waiting for the first run's loss? no: a new run
    run.event("on_epoch_begin")
    run.optimizer_step(0.25)
    trajectory = run.callback.trajectory
    np.testing.assert_array_equal(trajectory.epoch, [0, 0])
    np.testing.assert_array_equal(trajectory.batch, [0, 0])  # both steps seen at the first batch's end
    np.testing.assert_array_equal(trajectory["loss"], [math.nan, 0.25])
    assert trajectory.meta["run"]["scheduler"] is None


@pytest.mark.parametrize(("bf16", "fp16", "autocast"), [(True, False, "bfloat16"), (False, True, "float16")])
def test_the_trainer_s_mixed_precision_is_the_run_s_autocast(args: Any, bf16: bool, fp16: bool,
                                                              autocast: str) -> None:
    mixed = transformers.TrainingArguments(output_dir=str(Path(args.output_dir) / "mixed"), report_to=[],
                                           use_cpu=True)
    mixed.bf16, mixed.fp16 = bf16, fp16
    run = Run(mixed)
    run.event("on_epoch_begin")
    run.optimizer_step(0.5)
    assert run.callback.trajectory.meta["run"]["autocast"] == autocast


def test_no_optimizer_to_watch_is_said(args: Any) -> None:
    callback = OptcheckCallback()
    with pytest.raises(OptcheckError) as error:
        callback.on_train_begin(args, transformers.TrainerState(), transformers.TrainerControl(),
                                model=setup()[0])
    assert str(error.value) == ("optcheck: the Trainer started training without an optimizer to watch "
                                "(on_train_begin got optimizer=None).")


def test_record_every_thins_the_trainer_s_run(args: Any) -> None:
    callback = OptcheckCallback(record="lr", record_every=3)
    state, control = transformers.TrainerState(), transformers.TrainerControl()
    model, optimizer, scheduler = setup()
    callback.on_train_begin(args, state, control, model=model, optimizer=optimizer, lr_scheduler=scheduler)
    callback.on_epoch_begin(args, state, control)
    for _ in range(4):
        step(model, optimizer, scheduler)
        callback.on_step_end(args, state, control)
    trajectory = callback.trajectory
    assert (trajectory.every, trajectory.total_steps, trajectory.steps.tolist()) == (3, 4, [0, 3])
    assert trajectory.meta["run"]["record_every"] == 3


def test_autocast_seen_in_the_model_s_forward(args: Any) -> None:
    run = Run(args)  # no bf16/fp16 in the arguments: the model enters autocast itself
    run.event("on_epoch_begin")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        run.model(X)
    run.optimizer_step(0.5)
    assert run.callback.trajectory.meta["run"]["autocast"] == "bfloat16"
