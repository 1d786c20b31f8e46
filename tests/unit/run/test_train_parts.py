"""The reference loop's parts (run/train.py): stopping after a step and starting again from a
:class:`LoopState`, the batch order, what the scheduler is called with, the texts of the
loop's errors, and ``lr_schedule``'s axes.

Tiny runs only: 10 examples in batches of 4 (3 steps an epoch, the last of 2 examples), or
:func:`run_epochs` driven with plain numbers instead of a model. Nothing here consumes the
global RNG (builds and the loop use their own generators; the batch order is re-drawn from
its own ``torch.Generator``)."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch

from pytest_optcheck.declare.build import build
from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.errors import OptcheckError, RunError
from pytest_optcheck.run import conventions as cv
from pytest_optcheck.run.conventions import CREATE_GRAPH_HINT
from pytest_optcheck.run.train import (
    SHUFFLE_SEED_OFFSET,
    LoopState,
    l1_penalty,
    lr_schedule,
    run_epochs,
    train,
    train_until,
)

TINY = {"problem": "quadratic(n=10)", "batch_size": 4, "epochs": 2, "optimizer": "SGD(lr=0.1)"}


def tiny(**kw) -> Spec:
    return Spec.from_kwargs({**TINY, **kw})


class SeenPlateau(torch.optim.lr_scheduler.ReduceLROnPlateau):
    """torch's plateau scheduler, keeping the metrics the loop hands it."""

    def __init__(self, optimizer) -> None:
        super().__init__(optimizer, factor=0.5, patience=0)
        self.seen: list[float] = []

    def step(self, metrics, epoch=None) -> None:
        self.seen.append(float(metrics))
        super().step(metrics)


class TimmLike:
    """The calls a timm-style scheduler (``step_update(num_updates=)``, ``step(epoch)``) receives."""

    def __init__(self, optimizer=None) -> None:
        self.calls: list[tuple] = []

    def step_update(self, num_updates: int) -> None:
        self.calls.append(("step_update", num_updates))

    def step(self, epoch: int) -> None:
        self.calls.append(("step", epoch))


class ReadyClosureSGD(torch.optim.SGD):
    """A third-party optimizer (not torch's module) whose ``step`` takes a closure, as SAM's:
    it remembers the intra-op threads in force and fails at the step given."""

    __module__ = "sam_like"

    def __init__(self, params, fail_at: int | None = None, message: str = "boom") -> None:
        super().__init__(params, lr=0.1)
        self.fail_at, self.message, self.threads = fail_at, message, []

    def step(self, closure=None):
        self.threads.append(torch.get_num_threads())
        if len(self.threads) - 1 == self.fail_at:
            raise RuntimeError(self.message)
        return super().step(closure)


class HessianSGD(torch.optim.SGD):
    """Differentiates the gradients (a Hessian-vector product, as SophiaH and AdaHessian do):
    only possible when backward ran with ``create_graph=True``."""

    __module__ = "hessian_like"

    def step(self):
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        grads = [p.grad for p in params]
        torch.autograd.grad(grads, params, grad_outputs=[torch.ones_like(g) for g in grads], allow_unused=True)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p.add_(g, alpha=-self.param_groups[0]["lr"])


def resumed(spec: Spec, stop: int, through_state_dict: bool = True):
    """The run cut after ``stop`` steps and continued in the same objects: (head, tail, state)."""
    built = build(spec)
    head, state = train_until(spec, stop, built=built)
    if through_state_dict:  # as the resume check saves it with the checkpoint
        buffer = io.BytesIO()
        torch.save(state.state_dict(), buffer)
        buffer.seek(0)
        state = LoopState.from_state_dict(torch.load(buffer, weights_only=True))
    tail = train(spec, built=built, start=state)
    return head, tail, state, built


# -- LoopState -------------------------------------------------------------------------


def test_loop_state_dict_holds_plain_values_that_load_back() -> None:
    shuffle = torch.Generator().manual_seed(5).get_state()
    state = LoopState(1, 2, shuffle, 5, (0.5, 0.25))
    saved = state.state_dict()
    assert set(saved) == {"epoch", "batch", "shuffle", "updates", "epoch_losses"}
    assert (saved["epoch"], saved["batch"], saved["updates"], saved["epoch_losses"]) == (1, 2, 5, [0.5, 0.25])
    assert torch.equal(saved["shuffle"], shuffle)
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    buffer.seek(0)
    back = LoopState.from_state_dict(torch.load(buffer, weights_only=True))
    assert (back.epoch, back.batch, back.updates, back.epoch_losses) == (1, 2, 5, (0.5, 0.25))
    assert torch.equal(back.shuffle, shuffle)
    assert LoopState(0, 0, shuffle, 0).state_dict()["epoch_losses"] == []


# -- stop and start ----------------------------------------------------------------------


@pytest.mark.parametrize("stop", [1, 2, 3, 4, 5])
def test_a_run_cut_after_any_step_and_resumed_is_the_whole_run(stop: int) -> None:
    """Mid-epoch (1, 2, 4, 5) and at an epoch's end (3): the two parts, joined, are the whole
    run step by step: losses, LRs (a plateau scheduler fed each epoch's mean loss, so the
    losses of the epoch before the cut count) and epochs."""
    spec = tiny(scheduler=SeenPlateau, optimizer="SGD(lr=0.5)")
    whole_built = build(spec)
    whole = train(spec, built=whole_built)
    head, tail, state, built = resumed(spec, stop)
    assert (len(head), len(tail)) == (stop, 6 - stop)
    for name in ("loss", "lr"):
        np.testing.assert_array_equal(np.concatenate([head[name], tail[name]]), whole[name])
    np.testing.assert_array_equal(np.concatenate([head.epoch, tail.epoch]), [0, 0, 0, 1, 1, 1])
    assert built.scheduler.seen == whole_built.scheduler.seen  # the same epoch means, exactly
    assert len(whole_built.scheduler.seen) == 2
    assert state.updates == stop


def test_where_a_run_stops_mid_epoch_and_at_an_epochs_end() -> None:
    spec = tiny()
    head, state = train_until(spec, 2)
    assert (state.epoch, state.batch, state.updates) == (0, 2, 2)
    assert state.epoch_losses == tuple(float(v) for v in head["loss"])
    first = torch.Generator().manual_seed(spec.seed + SHUFFLE_SEED_OFFSET)
    assert torch.equal(state.shuffle, first.get_state())  # the order of epoch 0 is drawn again
    _, state = train_until(spec, 3)
    torch.randperm(10, generator=first)
    assert (state.epoch, state.batch, state.updates, state.epoch_losses) == (1, 0, 3, ())
    assert torch.equal(state.shuffle, first.get_state())  # the order of epoch 1 is still to draw
    _, state = train_until(spec, 6)  # the last step: where the whole run ends
    assert (state.epoch, state.batch, state.updates, state.epoch_losses) == (2, 0, 6, ())


def test_stopping_past_the_runs_end_says_how_long_it_is() -> None:
    with pytest.raises(ValueError) as info:
        train_until(tiny(), 7)
    assert str(info.value) == "train_until(stop=7): the run has only 6 steps"


def test_the_parts_of_a_cut_run_are_not_thinned() -> None:
    """``record_every`` thins a whole run; a cut run's parts stay whole, to be joined step by step."""
    spec = tiny(record_every=2)
    assert len(train(spec)) == 3
    head, tail, _, _ = resumed(spec, 2)
    assert (len(head), len(tail)) == (2, 4)
    whole = train(spec.replace(record_every=1))
    np.testing.assert_array_equal(np.concatenate([head["loss"], tail["loss"]]), whole["loss"])


# -- run_epochs: the schedule with plain numbers ------------------------------------------


def schedule_run(spec: Spec, n: int, scheduler=None, **kw):
    """run_epochs with a step that returns 1, 2, 3... and notes its batch and where-text."""
    taken: list[tuple[list[int], str]] = []
    epochs: list[int] = []

    def step(index: torch.Tensor, where: str) -> float:
        taken.append((index.tolist(), where))
        return float(len(taken))

    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = scheduler(optimizer) if scheduler is not None else None
    conv = cv.detect(optimizer, scheduler)
    state = run_epochs(spec, n, torch.device("cpu"), step, scheduler, epochs.append, conv, **kw)
    return taken, epochs, state, scheduler


def test_the_batch_order_is_drawn_per_epoch_from_the_seed_plus_an_offset() -> None:
    spec = tiny(seed=3)
    taken, epochs, state, _ = schedule_run(spec, 10)
    shuffle = torch.Generator().manual_seed(3 + SHUFFLE_SEED_OFFSET)
    expected = []
    for epoch in range(2):
        order = torch.randperm(10, generator=shuffle).tolist()
        expected += [(order[b : b + 4], f"step {b // 4} of epoch {epoch}") for b in (0, 4, 8)]
    assert taken == expected
    assert epochs == [0, 1]
    assert state is None


def test_the_batch_indices_are_on_the_datas_device() -> None:
    """The order is drawn on the CPU (from its generator) and moved to the data's device once
    an epoch, so that taking a batch copies no index between devices at every step."""
    devices: list[torch.device] = []

    def step(index: torch.Tensor, where: str) -> float:
        devices.append(index.device)
        return 0.0

    none = cv.Conventions(cv.Closure.NONE, False, cv.Schedule.NONE)
    run_epochs(tiny(), 10, torch.device("meta"), step, None, lambda epoch: None, none)
    assert devices == [torch.device("meta")] * 6


def test_a_timm_scheduler_counts_the_updates_over_a_resumed_run() -> None:
    spec = tiny()
    _, _, _, whole = schedule_run(spec, 10, TimmLike)
    assert whole.calls == [("step_update", 1), ("step_update", 2), ("step_update", 3), ("step", 1),
                           ("step_update", 4), ("step_update", 5), ("step_update", 6), ("step", 2)]
    _, _, state, head = schedule_run(spec, 10, TimmLike, stop=4)
    assert state.updates == 4 and head.calls == whole.calls[:5]
    taken_tail, epochs, end, tail = schedule_run(spec, 10, TimmLike, start=state)
    assert tail.calls == whole.calls[5:] and end is None
    assert [w for _, w in taken_tail] == ["step 1 of epoch 1", "step 2 of epoch 1"]
    assert epochs == [1]


@pytest.mark.parametrize(("n", "stop", "fields"), [
    (10, 2, (0, 2, 2, (1.0, 2.0))),  # mid-epoch: the batch to take next, this epoch's losses so far
    (10, 3, (1, 0, 3, ())),  # the epoch's last (short) batch: the next epoch
    (8, 2, (1, 0, 2, ())),  # the last batch of an epoch that batches evenly
])
def test_the_state_a_schedule_stops_in(n: int, stop: int, fields: tuple) -> None:
    spec = tiny()
    _, _, state, _ = schedule_run(spec, n, stop=stop)
    assert (state.epoch, state.batch, state.updates, state.epoch_losses) == fields
    shuffle = torch.Generator().manual_seed(spec.seed + SHUFFLE_SEED_OFFSET)
    if state.epoch == 1:
        torch.randperm(n, generator=shuffle)
    assert torch.equal(state.shuffle, shuffle.get_state())


def test_a_plateau_scheduler_gets_each_epochs_mean_also_across_a_cut() -> None:
    spec = tiny()
    _, _, _, whole = schedule_run(spec, 10, SeenPlateau)
    assert whole.seen == [2.0, 5.0]  # mean(1, 2, 3), mean(4, 5, 6)
    _, _, state, head = schedule_run(spec, 10, SeenPlateau, stop=4)
    _, _, _, tail = schedule_run(spec, 10, SeenPlateau, start=state)
    assert head.seen == [2.0] and tail.seen == [(4.0 + 1.0 + 2.0) / 3]  # the cut's loss 4, then the tail's 1, 2
    per_step = tiny(interval="step")
    _, _, _, stepped = schedule_run(per_step, 10, SeenPlateau)
    assert stepped.seen == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # each step's loss, no epoch means


# -- the closure ---------------------------------------------------------------------


def test_the_l1_penalty_adds_its_factor_times_the_sum_of_absolute_weights() -> None:
    spec = tiny()
    weights = l1_penalty(build(spec).model.parameters()).item()
    plain = train(spec)["loss"][0]
    penalised = train(spec.replace(l1=0.01))["loss"][0]
    assert penalised == pytest.approx(plain + 0.01 * weights, rel=1e-6)


def test_create_graph_gives_the_optimizer_the_gradients_graph_and_silences_only_its_warning() -> None:
    """Declared create_graph=True: backward keeps the graph (a Hessian-based optimizer can
    differentiate the gradients), torch's reference-cycle warning is silenced, and the
    model's own warnings from backward still come through."""

    class WarnsInBackward(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.inner(x)
            out.register_hook(self._warn)
            return out

        @staticmethod
        def _warn(grad: torch.Tensor) -> torch.Tensor:
            warnings.warn("a backward hook of the user's model", UserWarning, stacklevel=1)
            return grad

    hessian = tiny(optimizer=lambda params: HessianSGD(params, lr=0.1), create_graph=True)
    assert len(train(hessian)) == 6
    spec = tiny(create_graph=True)
    built = build(spec)
    built.model = WarnsInBackward(built.model)
    warn_always = torch.is_warn_always_enabled()
    torch.set_warn_always(True)  # torch's warning is a warn-once: an earlier run must not hide it
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            trained = train(spec, built=built)
    finally:
        torch.set_warn_always(warn_always)
    assert len(trained) == 6
    assert [str(w.message) for w in seen] == ["a backward hook of the user's model"] * 6


def test_an_optimizer_that_needs_the_graph_without_create_graph_is_told_to_declare_it() -> None:
    spec = tiny(optimizer=lambda params: HessianSGD(params, lr=0.1))
    with pytest.raises(RunError) as info:
        train(spec)
    assert str(info.value) == (
        "optcheck: RuntimeError: element 0 of tensors does not require grad and does not have a grad_fn\n"
        "  while calling optimizer.step() at step 0 of epoch 0\n"
        f"  {CREATE_GRAPH_HINT}")


def test_a_run_that_declared_create_graph_is_not_told_to_declare_it() -> None:
    message = "element 0 of tensors does not require grad"
    spec = tiny(optimizer=lambda params: ReadyClosureSGD(params, fail_at=0, message=message), create_graph=True)
    with pytest.raises(RunError) as info:
        train(spec)
    assert str(info.value) == f"optcheck: RuntimeError: {message}\n  while calling optimizer.step(closure) at step 0 of epoch 0"


# -- the texts of the loop's errors ---------------------------------------------------------


def test_a_failing_optimizer_step_is_named_with_its_step_and_epoch() -> None:
    spec = tiny(optimizer=lambda params: ReadyClosureSGD(params, fail_at=4))
    with pytest.raises(RunError) as info:
        train(spec)
    assert str(info.value) == "optcheck: RuntimeError: boom\n  while calling optimizer.step(closure) at step 1 of epoch 1"


def _fails_at(bad: int):
    def factor(count: int) -> float:
        if count == bad:
            raise ArithmeticError(f"no factor for {count}")
        return 1.0

    return lambda optimizer: torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def test_a_failing_scheduler_step_is_named_with_where_the_loop_was() -> None:
    # LambdaLR asks for factor(k) at its k-th step (factor(0) when made)
    with pytest.raises(RunError) as info:
        train(tiny(scheduler=_fails_at(5), interval="step"))
    assert str(info.value) == "optcheck: ArithmeticError: no factor for 5\n  while calling scheduler.step() after step 1 of epoch 1"
    with pytest.raises(RunError) as info:
        train(tiny(scheduler=_fails_at(1)))
    assert str(info.value) == "optcheck: ArithmeticError: no factor for 1\n  while calling scheduler.step() at the end of epoch 0"
    with pytest.raises(RunError) as info:
        lr_schedule(tiny(scheduler=_fails_at(3)), 5)
    assert str(info.value) == "optcheck: ArithmeticError: no factor for 3\n  while calling scheduler.step() after interval 2"


def test_an_unknown_device_is_refused_before_anything_runs() -> None:
    for run in (lambda: train(tiny(), device="nowhere"), lambda: lr_schedule(tiny(), 2, device="nowhere")):
        with pytest.raises(OptcheckError, match="^optcheck: device 'nowhere' is not a torch device"):
            run()


# -- what the loop passes on --------------------------------------------------------------


def test_the_trajectory_says_what_ran() -> None:
    spec = tiny()
    assert train(spec).meta == {"kind": "train", "device": "cpu", "run": spec.canonical()}
    assert lr_schedule(spec, 2).meta == {"kind": "lr_schedule", "run": spec.canonical()}


def test_a_schedule_free_optimizer_is_put_in_train_mode() -> None:
    class Modes(torch.optim.SGD):
        __module__ = "schedulefree_like"

        def train(self) -> None:
            self.mode = "train"

        def eval(self) -> None:
            self.mode = "eval"

    built = build(tiny(optimizer=lambda params: Modes(params, lr=0.1)))
    train(tiny(), built=built)
    assert built.optimizer.mode == "train"


def test_norms_are_over_the_models_parameters_not_only_the_optimizers() -> None:
    """A model-aware optimizer factory that trains only the last layer: ``param_norm`` is the
    whole model's (the frozen first layer included)."""

    def last_layer_sgd(model: torch.nn.Module) -> torch.optim.Optimizer:
        return torch.optim.SGD(list(model.parameters())[-2:], lr=0.1)

    spec = tiny(optimizer=last_layer_sgd, record=["loss", "param_norm"])
    built = build(spec)
    trained = train(spec, built=built)
    whole = torch.cat([p.detach().flatten() for p in built.model.parameters()]).norm().item()
    assert trained["param_norm"][-1] == pytest.approx(whole, rel=1e-6)


@pytest.mark.parametrize("cut", [False, True])
def test_threads_are_set_for_the_run(cut: bool) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        spec = tiny(optimizer=lambda params: ReadyClosureSGD(params))
        built = build(spec)
        if cut:
            train_until(spec, 2, built=built, threads=2)
        else:
            train(spec, built=built, threads=2)
        assert set(built.optimizer.threads) == {2}
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


# -- lr_schedule ---------------------------------------------------------------------------


def test_lr_schedule_rows_are_epochs_or_steps_by_interval() -> None:
    spec = tiny(scheduler="StepLR(step_size=1, gamma=0.5)")
    per_epoch = lr_schedule(spec, 3)
    np.testing.assert_array_equal(per_epoch.epoch, [0, 1, 2])
    np.testing.assert_array_equal(per_epoch.batch, [0, 0, 0])
    per_step = lr_schedule(spec.replace(interval="step"), 3)
    np.testing.assert_array_equal(per_step.epoch, [0, 0, 0])
    np.testing.assert_array_equal(per_step.batch, [0, 1, 2])
    np.testing.assert_array_equal(per_step["lr"][:, 0], [0.1, 0.05, 0.025])


def test_lr_schedule_of_one_interval_and_its_error_text() -> None:
    traj = lr_schedule(tiny(), 1)
    np.testing.assert_array_equal(traj["lr"], [[0.1]])
    with pytest.raises(ValueError) as info:
        lr_schedule(tiny(), 0)
    assert str(info.value) == "lr_schedule(steps=0): steps must be >= 1"


def test_lr_schedule_records_momentum_when_asked() -> None:
    spec = tiny(optimizer="SGD(lr=0.1, momentum=0.9)", scheduler="OneCycleLR(max_lr=1.0, total_steps=4)",
                interval="step", record=["lr", "momentum"])
    traj = lr_schedule(spec, 4)
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    one_cycle = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1.0, total_steps=4)
    expected = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(4):
            expected.append(optimizer.param_groups[0]["momentum"])
            one_cycle.step()
    np.testing.assert_array_equal(traj["momentum"][:, 0], expected)
    assert len(set(expected)) > 1
    assert "momentum" not in lr_schedule(spec.replace(record=["lr"]), 4)


def test_lr_schedule_takes_metrics_as_a_function_of_the_interval() -> None:
    spec = tiny(scheduler="ReduceLROnPlateau(mode='min', factor=0.1, patience=0)")
    metrics = [1.0, 1.0, 1.0, 0.5]
    traj = lr_schedule(spec, 4, metrics=lambda e: metrics[e])
    np.testing.assert_allclose(traj["lr"][:, 0], [0.1, 0.1, 0.01, 0.001], rtol=1e-12)


def test_lr_schedule_drives_a_timm_scheduler_by_its_interval() -> None:
    """Per epoch: ``step(epoch + 1, metric=)`` with the metric given, or the constant 0.0 (a
    plateau); per step: ``step_update(num_updates=step + 1)``."""

    class TimmWithMetric(TimmLike):
        def step(self, epoch: int, metric: float | None = None) -> None:
            self.calls.append(("step", epoch, metric))

    spec = tiny(scheduler=TimmWithMetric)
    built = build(spec)
    lr_schedule(spec, 2, built=built)
    assert built.scheduler.calls == [("step", 1, 0.0), ("step", 2, 0.0)]
    built = build(spec)
    lr_schedule(spec, 2, built=built, metrics=[0.5, 0.25])
    assert built.scheduler.calls == [("step", 1, 0.5), ("step", 2, 0.25)]
    built = build(spec.replace(interval="step"))
    lr_schedule(spec.replace(interval="step"), 2, built=built)
    assert built.scheduler.calls == [("step_update", 1), ("step_update", 2)]


def test_lr_schedule_silences_only_torchs_step_order_warning() -> None:
    def warning_factor(count: int) -> float:
        if count == 2:
            warnings.warn("a factor of the user's schedule", UserWarning, stacklevel=1)
        return 0.5**count

    spec = tiny(scheduler=lambda optimizer: torch.optim.lr_scheduler.LambdaLR(optimizer, warning_factor))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        traj = lr_schedule(spec, 3)
    np.testing.assert_allclose(traj["lr"][:, 0], [0.1, 0.05, 0.025])
    assert [str(w.message) for w in seen] == ["a factor of the user's schedule"]
