"""run/conventions.py: how the reference loop calls an optimizer and a scheduler, by the
convention each follows, and what a failure inside such a call says."""

from __future__ import annotations

import pytest
import torch

from pytest_optcheck.errors import RunError
from pytest_optcheck.run import conventions as cv


class TimmLike:
    """The calls a timm-style scheduler (``step_update``, ``step(epoch, metric=)``) receives."""

    def __init__(self, with_metric: bool = True) -> None:
        self.calls: list[tuple] = []
        if not with_metric:
            self.step = self._step_plain

    def step_update(self, num_updates: int) -> None:
        self.calls.append(("step_update", num_updates))

    def step(self, epoch: int, metric: float | None = None) -> None:
        self.calls.append(("step", epoch, metric))

    def _step_plain(self, epoch: int) -> None:
        self.calls.append(("step", epoch))


class ClosureOptimizer(torch.optim.SGD):
    """A third-party optimizer (not torch's module) whose step takes a closure, as SAM's."""

    __module__ = "sam_like"

    def __init__(self, params, evaluations: int = 1) -> None:
        super().__init__(params, lr=0.1)
        self.evaluations, self.losses = evaluations, []

    def step(self, closure=None):
        for _ in range(self.evaluations):
            self.losses.append(closure())
            with torch.no_grad():
                for group in self.param_groups:
                    for p in group["params"]:
                        p.add_(1.0)


def test_conventions_are_detected_from_the_objects() -> None:
    param = [torch.zeros(1, requires_grad=True)]
    sgd = torch.optim.SGD(param, lr=0.1)
    assert cv.detect(sgd, None) == cv.Conventions(cv.Closure.NONE, False, cv.Schedule.NONE)
    assert cv.detect(torch.optim.LBFGS(param), torch.optim.lr_scheduler.StepLR(sgd, 2)) == cv.Conventions(
        cv.Closure.ONLY, False, cv.Schedule.TORCH)
    assert cv.detect(ClosureOptimizer(param), torch.optim.lr_scheduler.ReduceLROnPlateau(sgd)) == cv.Conventions(
        cv.Closure.READY, False, cv.Schedule.PLATEAU)
    assert cv.detect(sgd, TimmLike()).schedule is cv.Schedule.TIMM

    class NoClosure(torch.optim.SGD):
        __module__ = "elsewhere"

        def step(self):
            pass

    class Modes(NoClosure):
        def train(self):
            self.mode = "train"

        def eval(self):
            self.mode = "eval"

    assert cv.detect(NoClosure(param, lr=0.1), None).closure is cv.Closure.NONE
    modes = Modes(param, lr=0.1)
    assert cv.detect(modes, None).modes is True
    cv.prepare(cv.detect(modes, None), modes)
    assert modes.mode == "train"


def test_a_timm_scheduler_is_driven_as_timm_s_script_drives_it() -> None:
    timm = TimmLike()
    conventions = cv.detect(torch.optim.SGD([torch.zeros(1)], lr=0.1), timm)
    cv.after_step(conventions, timm, "epoch", 3, 0.5, "step 2")
    cv.end_of_epoch(conventions, timm, "step", 0, 0.25)
    cv.schedule_step(conventions, timm, "epoch", 1, 0.125)
    cv.schedule_step(conventions, timm, "step", 4, 0.125)
    assert timm.calls == [("step_update", 3), ("step", 1, 0.25), ("step", 2, 0.125), ("step_update", 5)]
    plain = TimmLike(with_metric=False)
    cv.end_of_epoch(conventions, plain, "epoch", 2, 0.25)
    assert plain.calls == [("step", 3)]


@pytest.mark.filterwarnings("ignore:Detected call of")  # no optimizer step here: the schedule only
def test_torch_schedulers_step_on_their_interval_only_and_plateau_gets_the_metric() -> None:
    optimizer = torch.optim.SGD([torch.zeros(1)], lr=1.0)
    step_lr = torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.5)
    conventions = cv.detect(optimizer, step_lr)
    cv.after_step(conventions, step_lr, "epoch", 1, 0.0, "step 0")
    cv.end_of_epoch(conventions, step_lr, "step", 0, 0.0)
    assert optimizer.param_groups[0]["lr"] == 1.0  # neither was the scheduler's interval
    cv.after_step(conventions, step_lr, "step", 1, 0.0, "step 0")
    cv.end_of_epoch(conventions, step_lr, "epoch", 0, 0.0)
    cv.schedule_step(conventions, step_lr, "step", 0, 0.0)
    assert optimizer.param_groups[0]["lr"] == 0.125
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=0, factor=0.5)
    conventions = cv.detect(optimizer, plateau)
    for metric in (1.0, 2.0):
        cv.after_step(conventions, plateau, "step", 1, metric, "step 0")
    assert optimizer.param_groups[0]["lr"] == 0.0625  # the second metric did not improve


def test_a_ready_closure_reuses_the_loss_until_the_parameters_move() -> None:
    param = torch.zeros(1, requires_grad=True)
    computed = []

    def compute() -> torch.Tensor:
        loss = (param * 2).sum()
        loss.backward()
        computed.append(loss.item())
        return loss

    optimizer = ClosureOptimizer([param], evaluations=2)
    loss = cv.optimizer_step(cv.detect(optimizer, None), optimizer, compute, [param], "at step 0")
    assert loss.item() == 0.0 and [x.item() for x in optimizer.losses] == [0.0, 2.0] and computed == [0.0, 2.0]
    lbfgs = torch.optim.LBFGS([param], max_iter=1)
    assert cv.optimizer_step(cv.detect(lbfgs, None), lbfgs, compute, [param], "at step 1").item() == 4.0  # the loss LBFGS evaluated


def test_a_failing_call_names_the_call_and_where_and_keeps_the_cause() -> None:
    optimizer = torch.optim.SGD([torch.zeros(1)], lr=0.1)

    def compute() -> torch.Tensor:
        raise KeyError("x")

    with pytest.raises(RunError) as caught:
        cv.optimizer_step(cv.detect(optimizer, None), optimizer, compute, [], "at step 3 of epoch 0")
    assert str(caught.value) == ("optcheck: KeyError: 'x'\n  while calling the loss and backward (model forward, "
                                 "loss function, backward) at step 3 of epoch 0")
    assert isinstance(caught.value.__cause__, KeyError)
    with pytest.raises(RunError) as caught, cv.calling("optimizer.step()", "at step 1", create_graph=False):
        raise RuntimeError("element 0 of tensors does not require grad")
    assert str(caught.value).endswith(f"while calling optimizer.step() at step 1\n  {cv.CREATE_GRAPH_HINT}")
    with pytest.raises(RunError) as caught, cv.calling("scheduler.step()", "at step 1"):
        raise RuntimeError("element 0 of tensors does not require grad")
    assert str(caught.value).endswith("while calling scheduler.step() at step 1")
    timm = TimmLike()
    timm.step_update = None
    with pytest.raises(RunError, match=r"while calling scheduler.step_update\(num_updates=2\) after step 1$"):
        cv.schedule_step(cv.Conventions(cv.Closure.NONE, False, cv.Schedule.TIMM), timm, "step", 1, 0.0)


class Broken:
    """A scheduler or optimizer whose every call fails."""

    def __getattr__(self, name):
        def fails(*args, **kwargs):
            raise ValueError(name)
        return fails


def _text(call) -> str:
    with pytest.raises(RunError) as caught:
        call()
    return str(caught.value)


def test_every_call_of_the_loop_is_named_when_it_fails() -> None:
    torch_, plateau, timm = (cv.Conventions(cv.Closure.NONE, True, s)
                             for s in (cv.Schedule.TORCH, cv.Schedule.PLATEAU, cv.Schedule.TIMM))
    assert _text(lambda: cv.after_step(torch_, Broken(), "step", 1, 0.0, "step 0 of epoch 0")) == (
        "optcheck: ValueError: step\n  while calling scheduler.step() after step 0 of epoch 0")
    assert _text(lambda: cv.end_of_epoch(plateau, Broken(), "epoch", 2, 0.0)) == (
        "optcheck: ValueError: step\n  while calling scheduler.step(metric) at the end of epoch 2")
    assert _text(lambda: cv.end_of_epoch(timm, Broken(), "step", 2, 0.0)) == (
        "optcheck: ValueError: step\n  while calling scheduler.step(3) at the end of epoch 2")
    assert _text(lambda: cv.after_step(timm, Broken(), "step", 4, 0.0, "step 3 of epoch 0")) == (
        "optcheck: ValueError: step_update\n  while calling scheduler.step_update(num_updates=4) after step 3 of epoch 0")
    assert _text(lambda: cv.prepare(torch_, Broken())) == (
        "optcheck: ValueError: train\n  while calling optimizer.train() before training")
    assert _text(lambda: cv.optimizer_step(torch_, Broken(), lambda: torch.zeros(()), [], "at step 0")) == (
        "optcheck: ValueError: step\n  while calling optimizer.step() at step 0")
    ready = cv.Conventions(cv.Closure.READY, False, cv.Schedule.NONE)
    assert _text(lambda: cv.optimizer_step(ready, Broken(), lambda: torch.zeros(()), [], "at step 0")) == (
        "optcheck: ValueError: step\n  while calling optimizer.step(closure) at step 0")
    only = cv.Conventions(cv.Closure.ONLY, False, cv.Schedule.NONE)
    assert _text(lambda: cv.optimizer_step(only, Broken(), lambda: torch.zeros(()), [], "at step 0")) == (
        "optcheck: ValueError: step\n  while calling optimizer.step(closure) at step 0")


def test_a_convention_needs_all_of_its_signs() -> None:
    param = [torch.zeros(1)]

    class TrainOnly(torch.optim.SGD):
        def train(self):
            pass

    class StepUpdateTorch(torch.optim.lr_scheduler.StepLR):
        def step_update(self, num_updates):
            pass

    assert cv.detect(TrainOnly(param, lr=0.1), None).modes is False  # no eval(): not schedule-free
    sgd = torch.optim.SGD(param, lr=0.1)
    assert cv.detect(sgd, StepUpdateTorch(sgd, 2)).schedule is cv.Schedule.TORCH  # a torch scheduler stays one
    assert cv.detect(Broken(), None).closure is cv.Closure.NONE  # a step whose signature cannot be read
