"""The ``optcheck`` fixture's object without pytest: a handle built on a spec, with a checker
and a reporter of the test's own. What it trains, what it hands the checker, how a failing
check ends (raised outside pytest, returned when deferred), and what each check without a
golden receives. The checks themselves are tested in tests/unit/checks; here the handle's
wiring is: the arguments it passes are captured where a real run would spawn processes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from pytest_optcheck.checks.differential import distributed, parity, resume
from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.engine.outcome import Outcome, Status
from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.errors import OptcheckError, SpecError
from pytest_optcheck.handle import OptcheckHandle
from pytest_optcheck.run import replicas as replicas_module
from pytest_optcheck.run import train as train_module

SPEC = Spec(epochs=2, batch_size=64)
PASSED = Outcome(Status.PASSED, "all good")
FAILED = Outcome(Status.FAILED, "loss drifted: 3 of 8 steps outside tolerance")


class Checker:
    """Keeps what check() handed it and answers with a fixed outcome."""

    def __init__(self, outcome: Outcome = PASSED) -> None:
        self.outcome = outcome
        self.calls: list[dict[str, Any]] = []

    def __call__(self, current: Trajectory, name: str | None, layer: dict[str, Any], declarative: bool, *,
                 calibrate: int | None = None, replicate: Any = None) -> Outcome:
        self.calls.append({"current": current, "name": name, "layer": layer, "declarative": declarative,
                           "calibrate": calibrate, "replicate": replicate})
        return self.outcome


def _same(a: Trajectory, b: Trajectory) -> bool:
    return a.names == b.names and all(np.array_equal(a[n], b[n], equal_nan=True) for n in a.names)


# -- what the handle is ----------------------------------------------------------------------


def test_the_handle_shows_its_device_and_spec() -> None:
    handle = OptcheckHandle(SPEC, device="cpu")
    assert handle.spec is SPEC and handle.device == "cpu"
    assert repr(handle) == f"OptcheckHandle(device='cpu', spec={SPEC.canonical()!r})"


def test_with_spec_replaces_keys_for_one_call_only() -> None:
    handle = OptcheckHandle(SPEC)
    assert handle.with_spec() is SPEC
    changed = handle.with_spec(optimizer="Adam(lr=0.1)")
    assert changed.optimizer == "Adam(lr=0.1)" and changed.epochs == 2 and handle.spec is SPEC
    with pytest.raises(SpecError, match="optimizer"):
        handle.with_spec(optimizer=3)


def test_build_returns_the_model_optimizer_and_scheduler_of_the_overridden_spec() -> None:
    handle = OptcheckHandle(SPEC)
    model, optimizer, scheduler = handle.build(optimizer="Adam(lr=0.1)", scheduler="StepLR(step_size=1)")
    assert isinstance(model, torch.nn.Module)
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.param_groups[0]["initial_lr"] == 0.1
    assert isinstance(scheduler, torch.optim.lr_scheduler.StepLR) and scheduler.optimizer is optimizer
    assert handle.build()[2] is None


def test_build_and_lr_schedule_use_the_handles_device(monkeypatch) -> None:
    from pytest_optcheck.declare import build as build_module

    seen: list[tuple[Any, ...]] = []
    monkeypatch.setattr(build_module, "build", lambda *args: seen.append(args))
    monkeypatch.setattr(train_module, "lr_schedule", lambda *args, **kwargs: seen.append((*args, kwargs)))
    handle = OptcheckHandle(SPEC, device="meta")
    with pytest.raises(AttributeError):  # the captured build returns nothing to unpack
        handle.build()
    handle.lr_schedule(4, metrics=[1.0])
    assert seen == [(SPEC, "meta"), (SPEC, 4, "meta", {"metrics": [1.0]})]


# -- runs -----------------------------------------------------------------------------------------


def test_train_runs_the_reference_loop_of_the_overridden_spec_with_the_handles_threads(monkeypatch) -> None:
    handle = OptcheckHandle(SPEC, threads=1)
    expected = train_module.train(SPEC.replace(optimizer="SGD(lr=0.1)"), "cpu", threads=1)
    assert _same(handle.train(optimizer="SGD(lr=0.1)"), expected)
    seen: list[tuple[Spec, str, Any]] = []
    monkeypatch.setattr(train_module, "train", lambda spec, device, threads: seen.append((spec, device, threads)))
    OptcheckHandle(SPEC, device="meta", threads=3).train(seed=5)
    assert seen == [(SPEC.replace(seed=5), "meta", 3)]


def test_lr_schedule_follows_the_overridden_scheduler_with_the_given_metrics() -> None:
    handle = OptcheckHandle(SPEC)
    schedule = handle.lr_schedule(3, scheduler="StepLR(step_size=1, gamma=0.5)", optimizer="SGD(lr=1.0)")
    assert schedule["lr"][:, 0].tolist() == [1.0, 0.5, 0.25]
    plateau = "ReduceLROnPlateau(patience=0, factor=0.5)"
    flat = handle.lr_schedule(3, metrics=[1.0, 1.0, 1.0], optimizer="SGD(lr=1.0)", scheduler=plateau)
    falling = handle.lr_schedule(3, metrics=[3.0, 2.0, 1.0], optimizer="SGD(lr=1.0)", scheduler=plateau)
    assert flat["lr"][:, 0].tolist() == [1.0, 1.0, 0.5]  # no better metric: the LR halves
    assert falling["lr"][:, 0].tolist() == [1.0, 1.0, 1.0]


# -- check() --------------------------------------------------------------------------------


def test_check_without_a_checker_says_to_use_the_fixture() -> None:
    with pytest.raises(RuntimeError) as info:
        OptcheckHandle(SPEC).check(Trajectory({"loss": [1.0]}))
    assert str(info.value) == "optcheck: this handle has no checker; use the `optcheck` fixture."


def test_check_refuses_a_trajectory_and_run_together() -> None:
    with pytest.raises(OptcheckError) as info:
        OptcheckHandle(SPEC, checker=Checker()).check(Trajectory({"loss": [1.0]}), run=lambda perturb: None)
    assert str(info.value) == (
        "optcheck: check() got both a trajectory and run=; pass one: run=fn to let optcheck run (and calibrate) "
        "your loop, or the trajectory you recorded.")


def test_check_refuses_what_is_not_a_trajectory_showing_it_cut_short() -> None:
    handle = OptcheckHandle(SPEC, checker=Checker())
    with pytest.raises(OptcheckError) as short:
        handle.check([1.0, 2.0])
    assert str(short.value) == (
        "optcheck: check() takes a Trajectory; got a list: [1.0, 2.0]. Make one with optcheck.train(), "
        "optcheck.lr_schedule(n), rec.trajectory of optcheck.record(...), callback.trajectory, or from your own "
        "numbers: Trajectory({\"loss\": values}) (from pytest_optcheck import Trajectory).")
    with pytest.raises(OptcheckError) as long:
        handle.check("x" * 70)
    assert f"got a str: '{'x' * 56}...." in str(long.value)
    with pytest.raises(OptcheckError, match=r"got a str: 'x{58}'\. Make one"):
        handle.check("x" * 58)  # a repr of exactly 60 characters is shown whole
    with pytest.raises(OptcheckError, match=r"got a str: 'x{56}\.\.\.\. Make one"):
        handle.check("x" * 59)  # one more, and it is cut to 57 and an ellipsis


def test_check_names_itself_in_a_bad_tolerance_and_a_bad_run() -> None:
    handle = OptcheckHandle(SPEC, checker=Checker())
    with pytest.raises(OptcheckError) as tolerance:
        handle.check(Trajectory({"loss": [1.0]}), tolerance={"loss": "rtol=abc"})
    assert str(tolerance.value) == (
        "optcheck: check() tolerance for 'loss': rtol='abc' is not usable: give a number >= 0, e.g. rtol=1e-5.")

    def my_run(perturb: Any) -> int:
        return 3

    with pytest.raises(OptcheckError) as run:
        handle.check(run=my_run)
    assert str(run.value) == ("optcheck: check(run='my_run') returned int; run(perturb) must return the "
                              "Trajectory it recorded (rec.trajectory).")


def test_a_failing_check_shows_the_users_line_not_the_handles_frames(captured: Captured) -> None:
    """pytest hides frames that set __tracebackhide__: the failure points at the test's line."""
    captured.answer = FAILED
    handle = OptcheckHandle(SPEC, checker=Checker(FAILED))
    for call in (lambda: handle.check(Trajectory({"loss": [1.0]})), handle.check_resume, handle.check_parity,
                 handle.check_distributed):
        with pytest.raises(AssertionError) as info:
            call()
        shown = info.traceback.filter(info)
        assert not [entry for entry in shown if entry.path.name == "handle.py"], call


def test_a_declarative_check_trains_the_spec_and_can_replicate_it(monkeypatch) -> None:
    checker = Checker()
    handle = OptcheckHandle(SPEC, checker=checker, threads=1)
    outcome = handle.check(name="first", tolerance={"loss": "rtol=1e-3"}, calibrate=3)
    assert outcome is PASSED
    (call,) = checker.calls
    assert _same(call["current"], train_module.train(SPEC, "cpu", threads=1))
    assert (call["name"], call["declarative"], call["calibrate"]) == ("first", True, 3)
    assert call["layer"] == {"loss": {"rtol": 1e-3}}
    seen: list[Any] = []
    monkeypatch.setattr(replicas_module, "replicas", lambda *args: seen.append(args) or "replicas")
    assert call["replicate"](4) == "replicas"
    assert seen == [(SPEC, 4, "cpu", 1)]


def test_a_recorded_trajectory_is_checked_as_it_is_and_cannot_be_replicated() -> None:
    checker = Checker()
    mine = Trajectory({"loss": [3.0, 2.0]})
    OptcheckHandle(SPEC, checker=checker).check(mine, loss="atol=0.5")
    (call,) = checker.calls
    assert call["current"] is mine
    assert (call["name"], call["declarative"], call["calibrate"], call["replicate"]) == (None, False, None, None)
    assert call["layer"] == {"loss": {"atol": 0.5}}


def test_a_run_function_is_run_unperturbed_and_replicated_from_its_seed(monkeypatch) -> None:
    checker = Checker()
    given: list[Any] = []

    def run(perturb: Any) -> Trajectory:
        given.append(perturb)
        return Trajectory({"loss": [1.0, 0.5]})

    OptcheckHandle(SPEC.replace(seed=7), checker=checker, threads=2).check(run=run)
    (call,) = checker.calls
    assert given == [replicas_module.unperturbed] and call["current"]["loss"].tolist() == [1.0, 0.5]
    assert call["declarative"] is False
    seen: list[Any] = []
    monkeypatch.setattr(replicas_module, "replicas_of", lambda *args: seen.append(args) or "loop replicas")
    assert call["replicate"](5) == "loop replicas"
    assert seen == [(run, 7, 5, 2)]


def test_a_failing_check_raises_its_message_unless_the_plugin_defers_it() -> None:
    mine = Trajectory({"loss": [1.0]})
    with pytest.raises(AssertionError) as info:
        OptcheckHandle(SPEC, checker=Checker(FAILED)).check(mine)
    assert str(info.value) == FAILED.message
    assert OptcheckHandle(SPEC, checker=Checker(FAILED), defer=True).check(mine) is FAILED


# -- record() and callback() ----------------------------------------------------------------


def test_record_takes_the_markers_series_and_every_unless_given() -> None:
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    handle = OptcheckHandle(SPEC.replace(record=("loss", "lr", "grad_norm"), record_every=2))
    recorder = handle.record(optimizer, model=model)
    assert (recorder.record, recorder.record_every) == (("loss", "lr", "grad_norm"), 2)
    wrapper = type("Wrapper", (), {"inner": optimizer})()  # a wrapper that keeps its optimizer at .inner
    mine = handle.record(wrapper, model=model, record=["loss"], record_every=3, optimizer_attr="inner")
    assert (mine.record, mine.record_every, mine.optimizer_attr) == (("loss",), 3, "inner")
    assert mine.given is wrapper and mine.optimizer is optimizer and mine.model is model
    with pytest.raises(OptcheckError) as info:
        handle.record(optimizer, model=model, reduce="median")
    assert str(info.value) == ("optcheck: record(reduce='median'): 'median' for '*' is no way to combine the ranks' "
                               "values. Did you mean: mean, min? Known: mean, sum, first, last, min, max.")


def test_record_passes_the_scheduler_and_scaler_on() -> None:
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
    scaler = torch.amp.GradScaler("cpu")
    recorder = OptcheckHandle(SPEC).record(optimizer, scheduler, model, scaler=scaler)
    assert recorder.scheduler is scheduler and recorder.scaler is scaler


def test_callback_refuses_an_unknown_framework_naming_the_known_ones() -> None:
    with pytest.raises(ValueError) as info:
        OptcheckHandle(SPEC).callback("keras")
    assert str(info.value) == ("optcheck: callback('keras'): no integration for 'keras'; use one of 'lightning', "
                               "'pytorch_lightning', 'hf'.")


def test_callback_records_the_markers_series_unless_given() -> None:
    handle = OptcheckHandle(SPEC.replace(record=("loss", "lr", "momentum"), record_every=4))
    callback = handle.callback("lightning")
    assert type(callback).__module__ == "pytest_optcheck.integrations.lightning"
    assert (callback.record, callback.record_every) == (("loss", "lr", "momentum"), 4)
    mine = handle.callback("lightning", record=["loss"], record_every=2)
    assert (mine.record, mine.record_every) == (("loss",), 2)


# -- checks without a golden ---------------------------------------------------------------


class Captured:
    """The handle's calls into the checks without a golden; each answers ``answer``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.answer = PASSED

    def check(self, label: str) -> Any:
        def check(*args: Any, **kwargs: Any) -> Outcome:
            self.calls.append((label, args, kwargs))
            return self.answer
        return check


@pytest.fixture
def captured(monkeypatch) -> Captured:
    """The checks without a golden, replaced by ones that keep what the handle passed: the
    real ones train (resume, parity) or spawn processes (distributed) and are tested in
    tests/unit/checks."""
    captured = Captured()
    monkeypatch.setattr(resume, "check_resume", captured.check("resume"))
    monkeypatch.setattr(parity, "check_parity", captured.check("parity"))
    monkeypatch.setattr(distributed, "check_distributed", captured.check("distributed"))
    monkeypatch.setattr(distributed, "check_distributed_loop", captured.check("loop"))
    return captured


def test_the_checks_without_a_golden_get_the_handles_spec_device_threads_and_tolerances(captured: Captured) -> None:
    reported: list[tuple[str | None, Outcome]] = []
    handle = OptcheckHandle(SPEC, device="cpu", threads=2, reporter=lambda name, o: reported.append((name, o)))
    assert handle.check_resume(at=3, rtol=1e-6) is PASSED
    assert handle.check_parity({"fused": {"optimizer": "Adam(fused=True)"}}, name="mine", atol=0.0) is PASSED
    handle.check_distributed(world_size=3, backend="nccl", timeout=9.0, strategy="fsdp", loss="rtol=1e-5")
    handle.check_distributed()
    assert captured.calls == [
        ("resume", (SPEC, "cpu"), {"at": 3, "threads": 2, "rtol": 1e-6}),
        ("parity", (SPEC, "cpu"), {"variants": {"fused": {"optimizer": "Adam(fused=True)"}}, "threads": 2,
                                   "atol": 0.0}),
        ("distributed", (SPEC, "cpu"), {"world_size": 3, "backend": "nccl", "timeout": 9.0, "threads": 2,
                                        "strategy": "fsdp", "loss": "rtol=1e-5"}),
        ("distributed", (SPEC, "cpu"), {"world_size": 2, "backend": "gloo", "timeout": 300.0, "threads": 2,
                                        "strategy": "ddp"}),
    ]
    assert reported == [("resume", PASSED), ("mine", PASSED), ("distributed", PASSED), ("distributed", PASSED)]


def test_a_distributed_loop_gets_the_markers_series(captured: Captured) -> None:
    def loop(ctx: Any) -> Trajectory:
        raise AssertionError("not run here")

    handle = OptcheckHandle(SPEC.replace(record=("loss", "grad_norm")), threads=1)
    handle.check_distributed(world_size=4, backend="gloo", timeout=5.0, run=loop, name="ddp", rtol=0.1)
    assert captured.calls == [("loop", (loop, "cpu"), {"world_size": 4, "backend": "gloo", "timeout": 5.0,
                                                 "threads": 1, "record": ("loss", "grad_norm"), "rtol": 0.1})]
    with pytest.raises(OptcheckError) as info:
        handle.check_distributed(run=loop, strategy="ddp")
    assert str(info.value) == (
        "optcheck: check_distributed(run=..., strategy='ddp'): strategy says how optcheck distributes a "
        "spec-declared run; a loop of your own wraps its model itself (DDP, fully_shard). Leave strategy out.")


def test_a_failing_check_without_a_golden_is_reported_then_raised_unless_deferred(captured: Captured) -> None:
    captured.answer = FAILED
    reported: list[tuple[str | None, Outcome]] = []
    handle = OptcheckHandle(SPEC, reporter=lambda name, o: reported.append((name, o)))
    with pytest.raises(AssertionError) as info:
        handle.check_parity()
    assert str(info.value) == FAILED.message and reported == [("parity", FAILED)]
    deferred = OptcheckHandle(SPEC, defer=True)
    assert deferred.check_resume() is FAILED
    assert captured.calls[-1] == ("resume", (SPEC, "cpu"), {"at": 0.5, "threads": None})
