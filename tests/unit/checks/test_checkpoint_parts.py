"""The resume check's pure parts (checks/differential/checkpoint.py, resume.py): what did not
survive the round trip, how it is shown, torch's reason for a refused checkpoint, the two
halves stitched into one run, and the sentences."""

from __future__ import annotations

import functools
import math
import pickle
from typing import Any

import pytest
import torch

from pytest_optcheck.checks.differential import checkpoint as c
from pytest_optcheck.checks.differential.checkpoint import Lost, differences
from pytest_optcheck.checks.differential.resume import (
    check_resume,
    lost_value_text,
    resume_failed_text,
    resume_passed_text,
    resume_step,
)
from pytest_optcheck.declare.build import build
from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.engine.compare import compare
from pytest_optcheck.engine.outcome import Status
from pytest_optcheck.engine.stepwise import RunComparison, TensorDifference, TensorVerdict
from pytest_optcheck.engine.tolerance import Tolerance
from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.errors import OptcheckError
from pytest_optcheck.run.train import train_until


def test_values_are_shown_short() -> None:
    assert c._show(torch.tensor([1.0, 2.0])) == "tensor([1.0, 2.0])"
    assert c._show(torch.zeros(4)) == "tensor([0.0, 0.0, 0.0, 0.0])"
    assert c._show(torch.zeros(5, 2)) == "tensor of shape (5, 2)"
    assert c._show("x" * 58) == "'" + "x" * 58 + "'"  # 60 characters: whole
    assert c._show("x" * 59) == "'" + "x" * 56 + "..."
    assert c._show(c._ABSENT) == "(absent)" and c._show(3) == "3"


def test_tree_differences_name_the_path_of_each_change() -> None:
    before = {"a": 1, "b": [1, 2], "c": {"d": torch.ones(2)}, "g": 7}
    after = {"a": 1.0, "b": [1, 3], "c": {"d": torch.ones(2), "e": 5}, "f": 2}
    assert c._tree_differences(before, after, "") == [
        ("['a']", "1", "1.0"), ("['b'][1]", "2", "3"), ("['c']['e']", "(absent)", "5"), ("['g']", "7", "(absent)"),
        ("['f']", "(absent)", "2")]
    assert c._tree_differences([1, 2], [1], "") == [("", "[1, 2]", "[1]")]
    assert c._tree_differences((1, 2), [1, 2], "x") == []


def test_same_compares_tensors_bit_for_bit_nan_included() -> None:
    assert c._same(torch.tensor([math.nan, 1.0]), torch.tensor([math.nan, 1.0]))
    assert not c._same(torch.tensor([math.nan]), torch.tensor([1.0]))
    assert not c._same(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5]))
    assert not c._same(torch.ones(2), torch.ones(3))
    assert not c._same(torch.ones(2), torch.ones(1, 2))
    assert not c._same(torch.ones(2), torch.ones(2, dtype=torch.float64))
    assert c._same(torch.tensor([1, 2]), torch.tensor([1, 2]))
    assert not c._same(torch.tensor([1, 2]), torch.tensor([1, 3]))
    assert c._same(math.nan, math.nan) and not c._same(math.nan, 1.0) and not c._same(1.0, math.nan)
    assert not c._same(1, True) and not c._same(1, 1.0) and c._same("a", "a")
    assert not c._same(torch.ones(2), [1.0, 1.0])  # an ambiguous comparison is a difference


def test_differences_mark_what_state_dict_holds() -> None:
    before = {"model": {"w": torch.ones(1)}, "optimizer attribute": {"step_count": 5, "gone": 1}}
    after = {"model": {"w": torch.zeros(1)}, "optimizer attribute": {"step_count": 0, "new": 2}}
    assert differences(before, after) == [
        Lost("model state_dict()['w']", "tensor([1.0])", "tensor([0.0])", True),
        Lost("optimizer attribute step_count", "5", "0", False),
        Lost("optimizer attribute gone", "1", "(absent)", False),
        Lost("optimizer attribute new", "(absent)", "2", False),
    ]
    assert differences({"model": {"w": torch.ones(1)}}, {"model": {"w": torch.ones(1)}}) == []


def test_plain_attributes_keep_numbers_strings_tensors_and_lists_of_them() -> None:
    class Holder:
        pass

    obj = Holder()
    obj.n, obj.s, obj.t, obj.l, obj.none, obj.tup, obj.b = 1, "a", torch.ones(1), [1, 2], None, (1.0,), False
    obj.mixed, obj.f, obj._opt_called, obj.state, obj.d = [1, object()], print, True, {}, {"k": 1}
    assert list(c._plain_attributes(obj, {"state"})) == ["n", "s", "t", "l", "none", "tup", "b"]


def test_torchs_reason_is_cut_to_its_one_line() -> None:
    error = pickle.UnpicklingError(
        "Weights only load failed.\n\n WeightsUnpickler error: Unsupported global: GLOBAL foo.Bar was not an "
        "allowed global by default. Please use `torch.serialization.add_safe_globals` ok.\n\nmore")
    assert c._reason(error) == "Unsupported global: GLOBAL foo.Bar was not an allowed global by default"
    assert c._reason(pickle.UnpicklingError("\n first line.\nsecond")) == "first line"
    assert c._reason(pickle.UnpicklingError("")) == "UnpicklingError('')"


def test_the_halves_are_one_run_with_batches_counted_as_in_one_run() -> None:
    first = Trajectory({"loss": [1.0, 2.0, 3.0]}, epoch=[0, 0, 1], batch=[0, 1, 0], meta={"k": 1})
    second = Trajectory({"loss": [4.0, 5.0, 6.0]}, epoch=[1, 2, 2], batch=[0, 0, 1])
    run = c._concatenate(first, second)
    assert run["loss"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert run.epoch.tolist() == [0, 0, 1, 1, 2, 2] and run.batch.tolist() == [0, 1, 0, 1, 0, 1]
    assert run.meta == {"k": 1}


def test_resume_step_takes_a_step_or_a_fraction() -> None:
    assert resume_step(3, 10) == 3 and resume_step(1, 2) == 1 and resume_step(9, 10) == 9
    assert resume_step(0.5, 10) == 5 and resume_step(0.26, 10) == 3
    assert resume_step(0.01, 10) == 1 and resume_step(0.99, 10) == 9  # rounded inside the run
    with pytest.raises(OptcheckError, match=r"^optcheck: check_resume\(\) needs a run of at least 2 steps; this "
                                            r"spec trains 1\. Raise epochs or lower batch_size\.$"):
        resume_step(1, 1)
    with pytest.raises(OptcheckError, match=r"^optcheck: check_resume\(at=True\): give a step \(an int\) or a "
                                            r"fraction of the run \(a float between 0 and 1\)\.$"):
        resume_step(True, 10)
    with pytest.raises(OptcheckError, match=r"at='x'\): give a step"):
        resume_step("x", 10)  # type: ignore[arg-type]
    for at in (0, 10):
        with pytest.raises(OptcheckError, match=rf"^optcheck: check_resume\(at={at}\): the step must be between 1 "
                                                r"and 9 \(the run has 10 steps; at=N checkpoints after N steps\)\.$"):
            resume_step(at, 10)
    for at in (0.0, 1.0):
        with pytest.raises(OptcheckError, match=rf"^optcheck: check_resume\(at={at}\): a fraction must be between "
                                                r"0 and 1 \(exclusive\); or give the step as an int\.$"):
            resume_step(at, 10)


def test_the_resume_sentences() -> None:
    assert resume_passed_text(3, 8) == "optcheck: resuming from a checkpoint taken after 3 of 8 steps gives the same run"
    assert lost_value_text("model state_dict()['w']", "1", "2", True) == "model state_dict()['w']: 1 -> 2"
    assert lost_value_text("optimizer attribute n", "5", "0", False) == (
        "optimizer attribute n: 5 -> 0 (not in state_dict(): keep it in the optimizer's self.state, or save it "
        "in state_dict() and restore it in load_state_dict())")
    straight = Trajectory({"loss": [1.0, 0.5]}, epoch=[0, 0], batch=[0, 1])
    resumed = Trajectory({"loss": [1.0, 0.6]}, epoch=[0, 0], batch=[0, 1])
    series = compare(straight, resumed, {"loss": Tolerance(rtol=0.0, atol=0.0)})
    comparison = RunComparison(series, TensorVerdict(TensorDifference(1, "w", "missing")))
    head = ("optcheck: resuming from a checkpoint taken after 1 of 2 steps changes the run from step 1 (epoch 0, "
            "batch 1) on (checkpoint: state_dict() of the model, optimizer and scheduler and the batch-order "
            "generator, through torch.save / torch.load(weights_only=True))")
    body = [("  loss at step 1 (epoch 0, batch 1): straight 0.5, resumed 0.6 (abs err 0.1, rel err 0.2; tolerance "
            "rtol=0, atol=0, step by step; 1 of 2 steps (50.0%) outside tolerance)"),
            ("  first tensor outside tolerance: w: in the straight run after step 1 (epoch 0, batch 1), absent in the "
            "resumed run")]
    assert resume_failed_text(1, 2, comparison, straight, resumed, ["a: 1 -> 2"]).split("\n") == [
        head, *body, "not the same right after loading (before saving -> after loading into fresh objects):",
        "  a: 1 -> 2"]
    assert resume_failed_text(1, 2, comparison, straight, resumed, []).split("\n") == [
        head, *body, ("everything state_dict() holds came back identical: what differs lives elsewhere (a global, a "
        "cache rebuilt on first use, an attribute of an object not checkpointed)")]


class UnpicklableStepLR(torch.optim.lr_scheduler.StepLR):
    """A scheduler whose state_dict() holds a local function: torch.save cannot pickle it."""

    def state_dict(self) -> dict[str, Any]:
        def local() -> None: ...

        return {**super().state_dict(), "hook": local}


def test_a_checkpoint_torch_save_refuses_is_a_checkpoint_error_with_its_reason() -> None:
    spec = Spec(epochs=1, batch_size=500, scheduler=functools.partial(UnpicklableStepLR, step_size=2),
                interval="step")
    built = build(spec)
    _, loop = train_until(spec, 1, built=built)
    with pytest.raises(c.CheckpointError, match=r"^torch\.save failed: (AttributeError|PicklingError|TypeError): "):
        c.save_checkpoint(built, loop)
    outcome = check_resume(spec, at=1)
    assert outcome.status is Status.FAILED
    assert outcome.message.startswith(
        "optcheck: the checkpoint taken after 1 steps does not round-trip: torch.save failed: ")


def test_a_checkpoint_round_trips_into_fresh_objects() -> None:
    spec = Spec(epochs=1, batch_size=500, scheduler="StepLR(step_size=1, gamma=0.5)", interval="step")
    built = build(spec)
    _, loop = train_until(spec, 1, built=built)
    fresh = build(spec)
    restored = c.load_checkpoint(c.save_checkpoint(built, loop), fresh)
    assert restored.state_dict().keys() == loop.state_dict().keys()
    assert c.differences(c.captured_state(built), c.captured_state(fresh)) == []
    assert fresh.scheduler is not None and fresh.scheduler.last_epoch == built.scheduler.last_epoch == 1
    names = list(c.captured_state(fresh)["optimizer"]["state"])
    assert names == [] or names[0] == "hidden.weight"


def test_the_captured_state_names_optimizer_state_by_parameter_and_keeps_plain_attributes() -> None:
    from pytest_optcheck.checks.differential.checkpoint import captured_state
    from pytest_optcheck.declare.build import build
    from pytest_optcheck.declare.spec import Spec

    built = build(Spec(epochs=1, batch_size=250, optimizer="Adam(lr=0.01)", scheduler="StepLR(step_size=1)"), "cpu")
    extra = torch.nn.Parameter(torch.zeros(1))  # a parameter the model does not hold: named by its index
    built.optimizer.add_param_group({"params": [extra]})
    for p in built.model.parameters():
        p.grad = torch.ones_like(p)
    extra.grad = torch.ones(1)
    built.optimizer.step()
    built.scheduler.step()
    state = captured_state(built)
    names = [name for name, _ in built.model.named_parameters()]
    assert list(state) == ["model", "optimizer", "scheduler", "optimizer attribute", "scheduler attribute"]
    assert list(state["model"]) == names
    assert list(state["optimizer"]["state"]) == [*names, str(len(names))]
    assert set(state["optimizer"]) == {"state", "param_groups"}
    assert state["scheduler"]["last_epoch"] == 1 and state["scheduler attribute"] == {}
    assert "state" not in state["optimizer attribute"] and "param_groups" not in state["optimizer attribute"]
    assert "defaults" not in state["optimizer attribute"]
    no_scheduler = build(Spec(epochs=1, batch_size=250, optimizer="SGD(lr=0.1)"), "cpu")
    assert captured_state(no_scheduler)["scheduler"] == {} and captured_state(no_scheduler)["scheduler attribute"] == {}
