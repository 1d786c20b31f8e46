"""What the framework callbacks share (pytest_optcheck.integrations.base), driven directly:
a torch optimizer stepped by hand where a trainer would step it, the callback's events called
as the trainer calls them, and a real Lightning ``Trainer`` (built, not fitted) where the
callback reads one. Fast: no fit, a few steps of a 2-parameter model."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from pytest_optcheck.errors import OptcheckError, SpecError
from pytest_optcheck.integrations.base import (
    MIXED_PRECISION,
    FrameworkRecording,
    LightningRecordingCallback,
    RecordingCallback,
    _loss_of,
    check_record,
    trainer_scaler,
)

X = torch.linspace(-1, 1, 8).reshape(4, 2)


def setup(lr: float = 0.1) -> tuple[torch.nn.Module, torch.optim.Optimizer, Any]:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    return model, optimizer, torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)


def step(model: torch.nn.Module, optimizer: Any, scheduler: Any = None) -> float:
    loss = torch.nn.functional.mse_loss(model(X), X.sum(1, keepdim=True))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return loss.item()


def recording(record: tuple[str, ...] = ("loss", "lr"), **kwargs: Any) -> tuple[FrameworkRecording, Any, Any]:
    model, optimizer, scheduler = setup()
    rec = FrameworkRecording(optimizer, scheduler, model, record, "lightning", **kwargs)
    return rec, model, optimizer


# -- check_record, _loss_of ----------------------------------------------------------------------


def test_check_record_takes_one_name_or_several() -> None:
    assert check_record("loss") == ("loss",)
    assert check_record(["loss", "lr"]) == ("loss", "lr")
    assert check_record(name for name in ("lr", "loss")) == ("lr", "loss")
    with pytest.raises(SpecError, match=r"^optcheck: OptcheckCallback\(record=...\) names unknown series 'lrr'"):
        check_record("lrr")


def test_the_loss_of_training_step_outputs() -> None:
    assert _loss_of(torch.tensor(0.25)) == 0.25
    assert _loss_of({"loss": torch.tensor(0.5, dtype=torch.float16), "other": 1}) == 0.5
    assert type(_loss_of({"loss": torch.tensor(0.5, dtype=torch.bfloat16)})) is float
    for none in (None, {}, {"loss": None}, {"other": torch.tensor(1.0)}, 0.5):  # a skipped step, or no tensor
        assert math.isnan(_loss_of(none))
    loss = torch.tensor(2.0, requires_grad=True) * 1.5
    assert _loss_of(loss) == 3.0 and loss.requires_grad  # read, not detached in place


def test_mixed_precision_names_lightning_s_autocast_settings() -> None:
    assert MIXED_PRECISION == {"bf16-mixed": "bfloat16", "16-mixed": "float16"}


# -- trainer_scaler ------------------------------------------------------------------------------


class UpdateOnly:
    """A scaler of the user's own: step() and update(), no is_enabled()."""

    def step(self, optimizer: Any) -> None:
        optimizer.step()

    def update(self) -> None:
        pass


class Holder(torch.optim.SGD):
    """An optimizer that carries a scaler, as accelerate's AcceleratedOptimizer does."""

    scaler: Any = None


def holder(scaler: Any) -> Holder:
    optimizer = Holder([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    optimizer.scaler = scaler
    return optimizer


def test_the_scaler_of_a_lightning_trainer_or_of_the_optimizer() -> None:
    pl = pytest.importorskip("lightning.pytorch")
    from lightning.pytorch.plugins import MixedPrecision

    scaler = torch.amp.GradScaler("cpu")
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu",
                         plugins=[MixedPrecision("16-mixed", "cpu", scaler=scaler)])
    other = torch.amp.GradScaler("cpu")
    assert trainer_scaler(holder(other), trainer) is scaler  # the trainer's comes first
    assert trainer_scaler(holder(other), pl.Trainer(logger=False, accelerator="cpu")) is other
    assert trainer_scaler(holder(None), pl.Trainer(logger=False, accelerator="cpu")) is None
    assert trainer_scaler(holder(other)) is other
    assert trainer_scaler(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)) is None


def test_a_scaler_counts_when_it_updates_and_is_enabled() -> None:
    own = UpdateOnly()
    assert trainer_scaler(holder(own)) is own  # no is_enabled(): enabled
    assert trainer_scaler(holder(torch.amp.GradScaler("cpu", enabled=False))) is None
    assert trainer_scaler(holder("not a scaler")) is None  # no update()
    disabled = type("Trainer", (), {"precision_plugin": holder(torch.amp.GradScaler("cpu", enabled=False))})()
    enabled = torch.amp.GradScaler("cpu")
    assert trainer_scaler(holder(enabled), disabled) is enabled  # a disabled one is passed over


# -- FrameworkRecording ----------------------------------------------------------------------------


def test_a_recording_joins_the_trainer_s_steps_and_losses() -> None:
    rec, model, optimizer = recording()
    assert rec.stepped(0, 0, 9.0) == 0  # no step yet: nothing to attach the loss to
    rec.set_last_loss(5.0)  # nothing recorded: ignored
    losses = [step(model, optimizer, rec.scheduler)]
    assert rec.stepped(0, 1, 0.5) == 1
    losses.append(step(model, optimizer, rec.scheduler))
    losses.append(step(model, optimizer, rec.scheduler))
    assert rec.stepped(1.0, 3.0) == 2  # two steps since the last call (and no loss given: NaN)
    rec.set_last_loss(0.75)
    assert (rec.epochs, rec.batches) == ([0, 1, 1], [1, 3, 3])
    assert all(type(v) is int for v in rec.epochs + rec.batches)
    trajectory = rec.trajectory()
    assert trajectory.names == ["loss", "lr"]
    assert trajectory["loss"].dtype == np.float64
    np.testing.assert_array_equal(trajectory["loss"], [0.5, math.nan, 0.75])
    np.testing.assert_array_equal(trajectory["lr"][:, 0], [0.1, 0.1, 0.05])
    np.testing.assert_array_equal(trajectory.epoch, [0, 1, 1])
    np.testing.assert_array_equal(trajectory.batch, [1, 3, 3])
    assert trajectory.meta == {"run": {"source": "lightning", "optimizer": "SGD()",  # lr: a series
                                       "param_groups": ["2 tensors, 3 values"],
                                       "scheduler": "StepLR(gamma=0.5, step_size=2)", "epochs": 2, "steps": 3},
                               "libraries": []}
    assert losses  # the steps trained


def test_steps_after_the_last_trainer_event_are_left_out() -> None:
    rec, model, optimizer = recording(("lr", "loss"))
    step(model, optimizer)
    step(model, optimizer)
    rec.stepped(0, 1, 1.5)
    step(model, optimizer)  # the trainer never said which batch this was
    trajectory = rec.trajectory()
    assert trajectory.names == ["lr", "loss"]
    assert len(trajectory["lr"]) == 2 and trajectory.meta["run"]["steps"] == 2
    np.testing.assert_array_equal(trajectory["loss"], [1.5, 1.5])


def test_close_removes_the_hooks() -> None:
    rec, model, optimizer = recording()
    step(model, optimizer)
    rec.close()
    step(model, optimizer)
    assert rec.stepped(0, 0) == 1 and rec.recorder.steps == 1


def test_loss_alone_or_no_loss() -> None:
    rec, model, optimizer = recording(("loss",))
    step(model, optimizer)
    rec.stepped(0, 0, 0.5)
    trajectory = rec.trajectory()
    assert trajectory.names == ["loss"]
    assert trajectory.meta["run"]["optimizer"] == "SGD(lr=0.1)"  # the LR not recorded: in the description
    rec, model, optimizer = recording(("lr", "momentum"))
    step(model, optimizer)
    rec.stepped(0, 0, 0.5)
    trajectory = rec.trajectory()
    assert trajectory.names == ["lr", "momentum"]
    np.testing.assert_array_equal(trajectory["momentum"][:, 0], [0.0])
    assert trajectory.meta["run"]["optimizer"] == "SGD()"


def test_no_step_recorded_says_what_to_check() -> None:
    rec, _, _ = recording()
    with pytest.raises(OptcheckError) as error:
        rec.trajectory()
    assert str(error.value) == (
        "optcheck: the lightning run recorded no optimizer step: the watched SGD never stepped (did training run, "
        "and does the trainer step this optimizer?). Check that fit/train ran at least one batch with the "
        "callback attached.")


def test_a_trainer_optimizer_that_is_no_torch_optimizer_is_refused() -> None:
    model, _, _ = setup()
    with pytest.raises(OptcheckError) as error:
        FrameworkRecording(object(), None, model, ("loss",), "transformers")
    assert str(error.value) == (
        "optcheck: the transformers trainer's optimizer is a object, which is no torch optimizer and wraps none "
        "(no .optimizer); its steps cannot be watched.")


def test_record_every_thins_and_is_described() -> None:
    rec, model, optimizer = recording(record_every=2)
    for batch in range(5):
        step(model, optimizer)
        rec.stepped(0, batch, float(batch))
    trajectory = rec.trajectory()
    assert (trajectory.every, trajectory.total_steps, trajectory.steps.tolist()) == (2, 5, [0, 2, 4])
    assert trajectory.meta["run"]["record_every"] == 2
    rec, model, optimizer = recording(record_every=1)
    step(model, optimizer)
    rec.stepped(0, 0, 1.0)
    assert "record_every" not in rec.trajectory().meta["run"] and rec.trajectory().every == 1


def test_autocast_from_the_trainer_or_seen_in_the_forward() -> None:
    rec, model, optimizer = recording(autocast="float16")
    step(model, optimizer)
    rec.stepped(0, 0, 1.0)
    assert rec.trajectory().meta["run"]["autocast"] == "float16"
    rec, model, optimizer = recording()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(X)  # the recorder watches the model's forward: only that one sees autocast
    step(model, optimizer)
    rec.stepped(0, 0, 1.0)
    assert rec.trajectory().meta["run"]["autocast"] == "bfloat16"
    rec, model, optimizer = recording()
    step(model, optimizer)
    rec.stepped(0, 0, 1.0)
    assert "autocast" not in rec.trajectory().meta["run"]


@pytest.mark.parametrize("record", [("loss", "lr"), ("loss",)])
def test_a_scaler_marks_the_steps_it_skipped(record: tuple[str, ...]) -> None:
    model, optimizer, _ = setup()
    scaler = torch.amp.GradScaler("cpu", init_scale=4.0)
    rec = FrameworkRecording(optimizer, None, model, record, "lightning", scaler=scaler)
    for batch in range(3):
        loss = torch.nn.functional.mse_loss(model(X), X.sum(1, keepdim=True))
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        if batch == 1:
            model.weight.grad[0, 0] = float("inf")
        scaler.step(optimizer)
        scaler.update()
        rec.stepped(0, batch, float(batch))
    trajectory = rec.trajectory()
    assert trajectory.names == [*record, "skipped"]  # the loss alone too
    np.testing.assert_array_equal(trajectory["skipped"], [False, True, False])
    np.testing.assert_array_equal(trajectory["loss"], [0.0, 1.0, 2.0])


class OwnSGD(torch.optim.SGD):
    """An optimizer class of the user's own package (here: tests)."""


def test_modules_name_the_framework_and_the_optimizer_s_package() -> None:
    model = setup()[0]
    optimizer = OwnSGD(model.parameters(), lr=0.1)
    rec = FrameworkRecording(optimizer, None, model, ("loss",), "transformers",
                             libraries=["transformers", "accelerate"])
    assert rec.libraries == ("transformers", "accelerate")
    assert rec.modules() == ["transformers", "accelerate", "tests"]
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1)
    rec = FrameworkRecording(optimizer, scheduler, model, ("loss",), "lightning", libraries=("tests",))
    assert rec.modules() == ["tests"]  # once, though both the library and the optimizer name it
    rec = recording()[0]
    assert rec.modules() == []  # torch's own optimizer and scheduler: no third-party package


def test_a_wrapped_optimizer_and_scheduler_are_unwrapped() -> None:
    accelerate = pytest.importorskip("accelerate")
    from accelerate.optimizer import AcceleratedOptimizer
    from accelerate.scheduler import AcceleratedScheduler

    accelerate.state.AcceleratorState._reset_state()
    accelerate.Accelerator(cpu=True)
    try:
        model, optimizer, scheduler = setup()
        wrapped = AcceleratedOptimizer(optimizer, device_placement=False)
        rec = FrameworkRecording(wrapped, AcceleratedScheduler(scheduler, wrapped), model, ("loss", "lr"), "x")
        assert rec.optimizer is optimizer and rec.scheduler is scheduler
    finally:
        accelerate.state.AcceleratorState._reset_state()


# -- the callbacks' shared part ------------------------------------------------------------------


def test_a_callback_validates_what_it_records() -> None:
    callback = RecordingCallback()
    assert (callback.record, callback.record_every) == (("loss", "lr"), 1)
    assert RecordingCallback("lr", record_every=4).record_every == 4
    assert RecordingCallback("lr").record == ("lr",)
    with pytest.raises(SpecError, match=r"record_every=0 must be a whole number of steps >= 1"):
        RecordingCallback(record_every=0)


def test_a_callback_that_recorded_nothing_says_how_to_record() -> None:
    for cls, call in ((RecordingCallback, "the trainer"), (LightningRecordingCallback, "trainer.fit(...)")):
        with pytest.raises(OptcheckError) as error:
            cls().trajectory  # noqa: B018
        assert str(error.value) == ("optcheck: this OptcheckCallback has recorded nothing: pass it to the Trainer "
                                    f"(Trainer(..., callbacks=[callback])) and call {call} first.")


def test_a_new_start_closes_the_earlier_recording() -> None:
    callback = RecordingCallback(["loss", "lr", "weight_decay"], record_every=2)
    model, optimizer, scheduler = setup()
    callback._start(optimizer, scheduler, model, "lightning", libraries=("lightning",), autocast="bfloat16")
    first = callback._recording
    assert (first.record, first.record_every, first.source, first.libraries, first.autocast) == (
        ("loss", "lr", "weight_decay"), 2, "lightning", ("lightning",), "bfloat16")
    assert first.scheduler is first.recorder.scheduler is scheduler and first.recorder.scaler is None
    scaler = torch.amp.GradScaler("cpu")
    callback._start(holder(scaler), None, model, "transformers")  # accelerate's optimizer carries the scaler
    assert callback._recording.recorder.scaler is scaler
    callback._start(optimizer, scheduler, model, "lightning")
    assert callback._recording is not first and callback._recording.libraries == ()
    assert callback._recording.autocast is None
    step(model, optimizer)
    assert first.recorder.steps == 0 and callback._recording.recorder.steps == 1
    callback._close()
    step(model, optimizer)
    assert callback._recording.recorder.steps == 1
    for batch in range(3):
        callback._recording.stepped(0, batch, 1.0)
    assert callback.trajectory.meta["run"]["steps"] == 1


# -- the Lightning callback, its events called as a real Trainer calls them ----------------------------


@pytest.fixture(scope="module")
def pl() -> Any:
    return pytest.importorskip("lightning.pytorch")


def trainer_with(pl: Any, optimizers: list[Any], precision: str = "32-true", scheduler: Any = None) -> Any:
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", precision=precision)
    trainer.strategy.optimizers = optimizers
    if scheduler is not None:
        from lightning.pytorch.utilities.types import LRSchedulerConfig

        trainer.strategy.lr_scheduler_configs = [LRSchedulerConfig(scheduler)]
    return trainer


def test_lightning_records_one_optimizer(pl: Any) -> None:
    model, optimizer, _ = setup()
    callback = LightningRecordingCallback()
    other = torch.optim.Adam(model.parameters())
    with pytest.raises(OptcheckError) as error:
        callback.on_train_start(trainer_with(pl, [optimizer, other]), model)
    assert str(error.value) == ("optcheck: OptcheckCallback records one optimizer; configure_optimizers gave 2 "
                                "(SGD, Adam). Record a model that trains with one optimizer.")
    with pytest.raises(OptcheckError, match=r"configure_optimizers gave 0 \(none\)\. Record"):
        callback.on_train_start(trainer_with(pl, []), model)


def test_lightning_events_make_the_trajectory(pl: Any) -> None:
    model, optimizer, scheduler = setup()
    callback = LightningRecordingCallback(record=["loss", "lr"])
    callback._loss = 7.0  # what an earlier, interrupted fit left
    trainer = trainer_with(pl, [optimizer], precision="bf16-mixed", scheduler=scheduler)
    callback.on_train_start(trainer, model)
    recording = callback._recording
    assert recording.scheduler is scheduler and recording.libraries == ("lightning",)
    # two micro-batches per step: the first only accumulates
    callback.on_train_batch_end(trainer, model, {"loss": torch.tensor(0.25)}, None, 0)
    step(model, optimizer, scheduler)
    callback.on_train_batch_end(trainer, model, torch.tensor(0.5), None, 1)
    callback.on_train_batch_end(trainer, model, {"loss": torch.tensor(1.0)}, None, 2)
    step(model, optimizer, scheduler)
    callback.on_train_batch_end(trainer, model, {"loss": torch.tensor(2.0)}, None, 3)
    callback.on_train_end(trainer, model)
    step(model, optimizer, scheduler)  # after the end: not recorded
    trajectory = callback.trajectory
    np.testing.assert_array_equal(trajectory["loss"], [0.75, 3.0])
    np.testing.assert_array_equal(trajectory.batch, [1, 3])
    np.testing.assert_array_equal(trajectory["lr"][:, 0], [0.1, 0.1])
    assert trajectory.meta["run"]["autocast"] == "bfloat16"
    assert trajectory.meta["run"]["scheduler"] == "StepLR(gamma=0.5, step_size=2)"
    assert trajectory.meta["libraries"] == ["lightning"]


def test_lightning_16_mixed_finds_the_trainer_s_scaler(pl: Any) -> None:
    from lightning.pytorch.plugins import MixedPrecision

    model, optimizer, _ = setup()
    scaler = torch.amp.GradScaler("cpu")
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, accelerator="cpu",
                         plugins=[MixedPrecision("16-mixed", "cpu", scaler=scaler)])
    trainer.strategy.optimizers = [optimizer]
    callback = LightningRecordingCallback()
    callback.on_train_start(trainer, model)
    assert callback._recording.recorder.scaler is scaler
    assert callback._recording.autocast == "float16"
    assert callback._recording.scheduler is None


def test_lightning_on_exception_removes_the_hooks(pl: Any) -> None:
    model, optimizer, _ = setup()
    callback = LightningRecordingCallback()
    trainer = trainer_with(pl, [optimizer])
    callback.on_train_start(trainer, model)
    step(model, optimizer)
    callback.on_exception(trainer, model, RuntimeError("boom"))
    step(model, optimizer)
    assert callback._recording.recorder.steps == 1
    LightningRecordingCallback().on_exception(trainer, model, RuntimeError("before any start"))


def test_lightning_sees_autocast_in_the_module_s_forward(pl: Any) -> None:
    model, optimizer, _ = setup()
    callback = LightningRecordingCallback()
    trainer = trainer_with(pl, [optimizer])  # 32-true: the trainer says nothing of autocast
    callback.on_train_start(trainer, model)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = model(X)  # the user's own autocast, inside training_step
    step(model, optimizer)
    callback.on_train_batch_end(trainer, model, {"loss": output.float().mean()}, None, 0)
    assert callback.trajectory.meta["run"]["autocast"] == "bfloat16"
