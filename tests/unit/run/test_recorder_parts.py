"""The Recorder's parts one by one: what each argument and attribute holds, which hooks a
recording adds and removes, the per-epoch series, the batch positions, and every refusal and
warning word for word. Tiny models, a few steps, seeded in a forked RNG."""

from __future__ import annotations

import itertools
import math
import sys
import warnings

import numpy as np
import pytest
import torch

from pytest_optcheck.errors import OptcheckError
from pytest_optcheck.run.record import Recorder, group_lrs, group_momenta
from pytest_optcheck.run.record.recorder import _is_number
from pytest_optcheck.run.record.watch import RecordArgumentError

X = torch.linspace(-1, 1, 8).reshape(4, 2)
Y = X.sum(1, keepdim=True)


def linear(*sizes: int) -> torch.nn.Module:
    """A seeded Linear (or a Sequential of them), made without touching the global RNG."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        layers = [torch.nn.Linear(a, b) for a, b in itertools.pairwise(sizes)]
    return layers[0] if len(layers) == 1 else torch.nn.Sequential(*layers)


def step(model: torch.nn.Module, opt, rec: Recorder | None = None, **logged) -> torch.Tensor:
    loss = torch.nn.functional.mse_loss(model(X), Y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if rec is not None:
        rec.log(loss=loss, **logged)
    return loss


def norm(tensors) -> float:
    return math.sqrt(math.fsum(float(v) ** 2 for t in tensors for v in t.detach().double().flatten().tolist()))


class Plain(torch.optim.Optimizer):
    """An optimizer with known param-group keys (lr, decay) whose step() subtracts lr * grad."""

    def __init__(self, params, lr: float = 0.1) -> None:
        super().__init__(params, {"lr": lr, "decay": 0.0})

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.sub_(group["lr"] * p.grad)
        return loss


def plain_name() -> str:
    return f"{Plain.__module__}.Plain"


# -- the module's helpers ------------------------------------------------------------------------


def test_group_lrs_and_momenta_are_floats_one_per_group() -> None:
    model = linear(2, 1)
    sgd = torch.optim.SGD([{"params": [model.weight], "momentum": 0.9}, {"params": [model.bias]}], lr=0.1)
    adam = torch.optim.Adam(model.parameters(), lr=torch.tensor(0.5), betas=(0.8, 0.99))
    adagrad = torch.optim.Adagrad(model.parameters(), lr=0.2)
    assert group_lrs(sgd) == [0.1, 0.1] and group_lrs(adam) == [0.5] and type(group_lrs(adam)[0]) is float
    assert group_momenta(sgd) == [0.9, 0.0] and group_momenta(adam) == [0.8]
    assert group_lrs(adagrad) == [0.2] and math.isnan(group_momenta(adagrad)[0])


@pytest.mark.parametrize(("value", "expected"), [
    (torch.tensor(0.5), True), (torch.ones(1, 1), True), (torch.ones(2), False), (torch.tensor(True), False),
    (torch.tensor(1 + 2j), False), (3, True), (2.5, True), (math.nan, True), (np.float32(1), True),
    (True, False), (None, False), ("1", False),
])
def test_a_number_is_a_real_one_element_value_not_a_bool(value, expected) -> None:
    assert _is_number(value) is expected


# -- arguments and attributes ------------------------------------------------------------------


class Holder:
    """A wrapper that is no torch optimizer and keeps the one it wraps under its own name."""

    def __init__(self, optimizer) -> None:
        self.inner = optimizer

    def step(self) -> None:
        self.inner.step()

    def zero_grad(self) -> None:
        self.inner.zero_grad()


def test_the_recorder_keeps_what_it_was_given() -> None:
    model = linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    rec = Recorder(opt, sched, model, record="grad_norm")
    assert rec.record == ("grad_norm",) and rec.given is opt and rec.optimizer is opt
    assert rec.scheduler is sched and rec.model is model and rec.scaler is None and rec.optimizer_attr is None
    assert rec.steps == 0 and rec.epoch == 0 and rec.autocast is None

    holder = Holder(opt)
    scaler = torch.amp.GradScaler("cpu")
    rec = Recorder(holder, model=model, optimizer_attr="inner", scaler=scaler)
    assert rec.given is holder and rec.optimizer is opt and rec.optimizer_attr == "inner" and rec.scaler is scaler
    with rec:
        step(model, holder, rec)
    assert rec.trajectory.names == ["loss", "lr", "skipped"] and rec.trajectory["lr"].tolist() == [[0.1]]


def test_the_other_arguments_are_checked_where_they_enter() -> None:
    model = linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(RecordArgumentError, match=r"second argument is the LR scheduler .*got a Linear\."):
        Recorder(opt, model)
    with pytest.raises(RecordArgumentError, match=r"model=\.\.\.\) takes a torch.nn.Module .*got a SGD \(an optimizer"):
        Recorder(opt, model=opt)
    with pytest.raises(RecordArgumentError, match=r"scaler=\.\.\.\) takes the torch.amp.GradScaler .*got a float\."):
        Recorder(opt, scaler=1.0)


def test_loss_is_the_logged_series_even_where_the_groups_have_a_loss_key() -> None:
    model = linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    opt.param_groups[0]["loss"] = 0.5
    with Recorder(opt, model=model) as rec:
        step(model, opt)
        rec.log(loss=2.0)
    assert rec.trajectory["loss"].tolist() == [2.0]


# -- hooks ----------------------------------------------------------------------------------------


def test_the_recording_adds_one_step_hook_each_side_and_every_hook_goes_on_exit() -> None:
    model = linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Recorder(opt, model=model) as rec:
        # the post-hook closes the step call (a subclass's step calling its parent's is one step)
        assert len(opt._optimizer_step_pre_hooks) == len(opt._optimizer_step_post_hooks) == 1
        assert len(model._forward_pre_hooks) == 1  # autocast is looked for at the first forwards
    assert not opt._optimizer_step_pre_hooks and not opt._optimizer_step_post_hooks and not model._forward_pre_hooks
    rec.close()  # closing again changes nothing
    with Recorder(opt, model=model, record=("param_norm",)):
        assert len(opt._optimizer_step_pre_hooks) == len(opt._optimizer_step_post_hooks) == 1
    assert not opt._optimizer_step_post_hooks
    Recorder(opt).close()  # never entered: nothing to remove


def test_the_norms_are_over_the_model_s_parameters_else_the_optimizer_s() -> None:
    model = linear(2, 2, 1)
    trained = list(model[1].parameters())
    for given, over in ((model, list(model.parameters())), (None, trained)):
        opt = torch.optim.SGD(trained, lr=0.1)
        with Recorder(opt, model=given, record=("param_norm",)) as rec:
            step(model, opt)
        assert math.isclose(rec.trajectory["param_norm"][0], norm(over), rel_tol=1e-12)
    assert norm(trained) < norm(model.parameters())


class TakesAScale(torch.optim.Optimizer):
    """A step with one more positional argument after the closure. (Not a subclass of a torch
    optimizer calling super().step(): torch hooks both classes' step, so that records twice.)"""

    def __init__(self, params) -> None:
        super().__init__(params, {"lr": 0.1})
        self.scales: list[float] = []

    @torch.no_grad()
    def step(self, closure=None, scale: float = 1.0):
        self.scales.append(scale)
        with torch.enable_grad():
            loss = closure()
        for p in self.param_groups[0]["params"]:
            p.sub_(scale * 0.1 * p.grad)
        return loss


@pytest.mark.parametrize("as_keyword", [False, True], ids=["positional", "keyword"])
def test_a_step_s_other_arguments_reach_it_unchanged(as_keyword) -> None:
    model = linear(2, 1)
    opt = TakesAScale(model.parameters())
    seen = []

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(X), Y)
        loss.backward()
        seen.append(norm(p.grad for p in model.parameters()))
        return loss

    with Recorder(opt, model=model, record=("grad_norm",)) as rec:
        opt.step(closure=closure, scale=0.5) if as_keyword else opt.step(closure, 0.5)
    assert opt.scales == [0.5]
    assert rec.trajectory["grad_norm"].tolist() == pytest.approx(seen, rel=1e-12)


class ClearsGrads(Plain):
    """Zeroes the gradients in place once it has used them (as some memory-saving ones do)."""

    @torch.no_grad()
    def step(self, closure=None):
        for p in self.param_groups[0]["params"]:
            p.sub_(0.1 * p.grad)
            p.grad.zero_()


def test_grad_norm_is_of_the_gradients_the_step_used_not_those_it_left() -> None:
    model = linear(2, 1)
    opt = ClearsGrads(model.parameters())
    expected = []
    with Recorder(opt, model=model, record=("grad_norm",)) as rec:
        for _ in range(2):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(X), Y).backward()
            expected.append(norm(p.grad for p in model.parameters()))
            opt.step()
    assert expected[0] > 0 and rec.trajectory["grad_norm"].tolist() == pytest.approx(expected, rel=1e-12)


# -- autocast ------------------------------------------------------------------------------------


def bf16():
    return torch.autocast("cpu", dtype=torch.bfloat16)


@pytest.mark.parametrize("where", ["forward", "step", "log"])
def test_autocast_is_seen_at_a_forward_a_step_or_a_log(where) -> None:
    model = linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Recorder(opt, model=model if where == "forward" else None) as rec:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=where == "forward"):
            loss = torch.nn.functional.mse_loss(model(X).float(), Y)
        loss.backward()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=where == "step"):
            opt.step()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=where == "log"):
            rec.log(loss=loss)
    assert rec.autocast == "bfloat16"


def test_autocast_is_asked_about_the_device_type_of_the_watched_parameters() -> None:
    opt = Plain([torch.nn.Parameter(torch.zeros(2, device="meta"))])
    with Recorder(opt) as rec:
        assert rec._autocast._find_device_type() == "meta"


def test_without_autocast_the_recording_says_none() -> None:
    model = linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Recorder(opt, model=model) as rec:
        step(model, opt, rec)
    assert rec.autocast is None


# -- param-group series ----------------------------------------------------------------------------


def test_a_group_key_that_is_no_number_is_refused_word_for_word() -> None:
    model = linear(2, 1)
    adam = torch.optim.Adam(model.parameters(), lr=0.1)
    with pytest.raises(OptcheckError) as info:
        Recorder(adam, record=("loss", "betas"))
    assert str(info.value) == (
        "optcheck: record names 'betas', a key of Adam's param groups, but its value is (0.9, 0.999) (tuple), "
        "not a number: only numeric keys can be recorded per group ('momentum' records betas[0]).")
    with pytest.raises(OptcheckError) as info:
        Recorder(adam, record=("amsgrad",))
    assert str(info.value) == (
        "optcheck: record names 'amsgrad', a key of Adam's param groups, but its value is False (bool), "
        "not a number: only numeric keys can be recorded per group.")
    opt = Plain(model.parameters())
    opt.param_groups[0]["mask"] = torch.ones(2)
    with pytest.raises(OptcheckError) as info:
        Recorder(opt, record=("mask",))
    assert str(info.value) == (
        f"optcheck: record names 'mask', a key of {plain_name()}'s param groups, but its value is a tensor of "
        f"shape (2,), not a number: only numeric keys can be recorded per group.")


def test_a_one_element_tensor_key_is_recorded_and_a_group_without_it_reads_nan() -> None:
    model = linear(2, 1)
    opt = Plain([{"params": [model.weight], "d": torch.tensor(2.0)}, {"params": [model.bias]}])
    with Recorder(opt, model=model, record=("loss", "d")) as rec:
        for _ in range(2):
            step(model, opt, rec)
            opt.param_groups[0]["d"].mul_(3)  # changed in place: each step keeps its own value
    np.testing.assert_array_equal(rec.trajectory["d"], [[2.0, math.nan], [6.0, math.nan]])


def test_a_group_value_that_stops_being_a_number_is_refused_at_its_step() -> None:
    model = linear(2, 1)
    opt = Plain(model.parameters())
    opt.param_groups[0]["d"] = 1.0
    with Recorder(opt, model=model, record=("loss", "d")) as rec:
        step(model, opt, rec)
        opt.param_groups[0]["d"] = None
        with pytest.raises(OptcheckError) as info:
            step(model, opt, rec)
    assert str(info.value) == "optcheck: the param groups' 'd' became None, not a number"


def test_a_group_without_lr_reads_nan() -> None:
    model = linear(2, 1)
    opt = Plain(model.parameters())
    opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))]})
    del opt.param_groups[1]["lr"]
    with Recorder(opt, model=model) as rec:
        step(model, opt, rec)
    np.testing.assert_array_equal(rec.trajectory["lr"], [[0.1, math.nan]])


# -- positions -----------------------------------------------------------------------------------


def test_epochs_and_batches_restart_only_when_the_epoch_changes() -> None:
    model = linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Recorder(opt, model=model) as rec:
        step(model, opt, rec)
        step(model, opt, rec)
        rec.epoch = 0  # the same epoch: the batch count goes on
        step(model, opt, rec)
        rec.epoch = np.int64(2)
        step(model, opt, rec)
        rec.epoch = 3  # an epoch without steps (read before any)
    t = rec.trajectory
    assert t.epoch.tolist() == [0, 0, 0, 2] and t.batch.tolist() == [0, 1, 2, 0]
    assert rec.epoch == 3 and type(rec.epoch) is int and rec.steps == 4


# -- logged values -------------------------------------------------------------------------------


def refusal(call, *args, **kwargs) -> str:
    with pytest.raises(OptcheckError) as info:
        call(*args, **kwargs)
    return str(info.value)


def test_log_refusals_word_for_word() -> None:
    model = linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=0.1)
    with Recorder(opt, model=model, record=("loss", "weight_decay", "grad_norm")) as rec:
        assert refusal(rec.log, loss=1.0, reduce="maen") == (
            "optcheck: rec.log(reduce='maen'): unknown reduction. Did you mean: mean? "
            "Known: mean, sum, first, last, min, max.")
        rec.log(loss=1.0)  # the first log of a name sets its rule: the default one
        assert refusal(rec.log, loss=2.0, reduce="sum") == (
            "optcheck: rec.log(loss=..., reduce='sum'): the values of 'loss' are already combined by "
            "reduce='mean'. One rule per series.")
        assert refusal(rec.log, weight_decay=0.1) == (
            "optcheck: rec.log(weight_decay=...): 'weight_decay' is recorded from the optimizer's param groups; "
            "log your own value under another name.")
        assert refusal(rec.log, grad_norm=0.1) == (
            "optcheck: rec.log(grad_norm=...): 'grad_norm' is recorded from the optimizer's hooks; "
            "log your own value under another name.")
        rec.log_epoch(val=1.0)
        assert refusal(rec.log, val=1.0) == (
            "optcheck: rec.log(val=...): 'val' is a per-epoch series (rec.log_epoch); log the per-step value "
            "under another name.")
        step(model, opt)
    assert rec.trajectory["loss"].tolist() == [1.0]


def test_skipped_is_the_scaler_s_with_one_and_a_value_of_the_loop_s_without() -> None:
    model = linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Recorder(opt, model=model, scaler=torch.amp.GradScaler("cpu")) as rec:
        assert refusal(rec.log, skipped=1.0) == (
            "optcheck: rec.log(skipped=...): with scaler=, 'skipped' is recorded from the GradScaler's updates; "
            "log your own value under another name.")
    with Recorder(opt, model=model, record=("lr", "param_norm")) as rec:
        step(model, opt, rec, skipped=3.0, grad_norm=4.0)  # not recorded by the hooks: the loop's own
    t = rec.trajectory
    assert t.names == ["lr", "param_norm", "loss", "skipped", "grad_norm"]
    assert t["skipped"].tolist() == [3.0] and t["grad_norm"].tolist() == [4.0]


def test_log_epoch_keeps_one_value_per_epoch_nan_where_none() -> None:
    model = linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Recorder(opt, model=model) as rec:
        step(model, opt, rec)
        rec.log_epoch(val=torch.tensor(0.25, dtype=torch.bfloat16, requires_grad=True), acc=np.float32(0.5))
        rec.epoch = 2
        step(model, opt, rec)
        rec.log_epoch(val=torch.ones(1, 1) * 2)
    series = rec.trajectory.epoch_series
    assert list(series) == ["val", "acc"]
    np.testing.assert_array_equal(series["val"], [0.25, math.nan, 2.0])
    np.testing.assert_array_equal(series["acc"], [0.5])


def test_log_epoch_refusals_word_for_word() -> None:
    model = linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=0.1)
    with Recorder(opt, model=model, record=("loss", "weight_decay")) as rec:
        step(model, opt, rec)
        for name in ("loss", "weight_decay", "grad_norm"):  # logged, read from the groups, computed
            assert refusal(rec.log_epoch, **{name: 1.0}) == (
                f"optcheck: rec.log_epoch({name}=...): {name!r} is already a per-step series; log the per-epoch "
                f"value under another name (e.g. 'val_{name}').")
        rec.epoch = 2
        rec.log_epoch(val=2.0)
        assert refusal(rec.log_epoch, val=torch.tensor(5.0)) == (
            "optcheck: rec.log_epoch(val=...) twice in epoch 2 (2.0, then tensor(5.)): one value an epoch. Log "
            "the epoch's value once (e.g. the mean over the validation batches), and set rec.epoch = e at the "
            "start of each epoch.")
        assert refusal(rec.log_epoch, top=torch.ones(2, 3)) == (
            "optcheck: rec.log_epoch(top=...) needs one number; got a tensor of shape (2, 3). Reduce it first "
            "(e.g. top=x.mean()).")
        assert refusal(rec.log_epoch, word="high") == (
            "optcheck: rec.log_epoch(word=...) needs a number or a one-element tensor; got str 'high'.")
        rec.log(top=1.0)  # a refused per-epoch value leaves no per-epoch series behind
    t = rec.trajectory
    assert list(t.epoch_series) == ["val"] and t.epoch_series["val"].tolist()[2] == 2.0
    assert t["top"].tolist() == [1.0]


# -- reading the trajectory ----------------------------------------------------------------------


def trampoline_file() -> str | None:
    """The file of mutmut's trampoline when a mutation run switches this module's functions."""
    module = sys.modules.get("mutmut.mutation.trampoline")
    return getattr(module, "__file__", None)


def test_values_no_step_took_are_counted_in_a_warning_that_points_at_the_reader() -> None:
    model = linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Recorder(opt, model=model) as rec:
        for _ in range(2):
            rec.log(acc=1.0)  # first logged, none late: the late values of the next name are still counted
            rec.log(loss=torch.nn.functional.mse_loss(model(X), Y))
            step(model, opt)
        rec.log(loss=5.0)
        rec.log(loss=6.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = rec.trajectory
    assert [str(w.message) for w in caught] == [
        ("optcheck: 2 value(s) of 'loss' logged after the last optimizer step were left out of the trajectory: "
        "no step followed them.")]
    # it points at the line that read the trajectory (mutmut's trampoline adds a frame: there, at that)
    assert caught[0].category is UserWarning and caught[0].filename in (__file__, trampoline_file())
    assert len(t) == 2 and t["acc"].tolist() == [1.0, 1.0]


def test_a_name_that_is_nothing_is_refused_with_every_choice() -> None:
    model = linear(2, 1)
    opt = Plain(model.parameters())
    with Recorder(opt, model=model, record=("loss", "decy")) as rec:
        step(model, opt, rec, acc=1.0)
    assert refusal(lambda: rec.trajectory) == (
        f"optcheck: record names 'decy', but it is none of the series the recorder computes (lr, momentum, "
        f"grad_norm, param_norm, update_norm, sparsity), not a key of {plain_name()}'s param groups (decay, lr), "
        f"and no value was logged under it (rec.log(decy=...)). Did you mean: decay?")


def test_steps_without_a_series_are_refused() -> None:
    model = linear(2, 1)
    opt = Plain(model.parameters())
    with Recorder(opt, model=model, record=()) as rec:
        step(model, opt)
        step(model, opt)
    assert refusal(lambda: rec.trajectory) == (
        "optcheck: the recording has 2 step(s) but no series: record names nothing and nothing was logged. "
        "Log the loss each step (rec.log(loss=loss)) or record a series the recorder computes "
        "(lr, momentum, grad_norm, param_norm, update_norm, sparsity).")


# -- no step seen --------------------------------------------------------------------------------


def no_step(rec: Recorder) -> list[str]:
    return refusal(lambda: rec.trajectory).split("\n")


def first_line(opt) -> str:
    return (f"optcheck: the recording saw no optimizer step: it watched {plain_name()} (id {id(opt):#x}), "
            f"whose step() never ran while recording.")


WATCH = ("Watch the optimizer whose step() runs the update: the one the training loop or the trainer steps "
         "(for a wrapper such as SAM, its `base_optimizer`; for Lightning's or Accelerate's wrapped optimizers, "
         "their `.optimizer`), created before the recorder.")


def test_no_step_and_nothing_logged_says_which_optimizer_to_watch() -> None:
    opt = Plain(linear(2, 1).parameters())
    with Recorder(opt) as rec:
        pass
    assert no_step(rec) == [first_line(opt), WATCH]


def test_no_step_in_a_recorder_never_entered_says_so_and_counts_the_values() -> None:
    model = linear(2, 1)
    opt = Plain(model.parameters())
    rec = Recorder(opt, model=model)
    step(model, opt, rec)
    step(model, opt, rec)
    assert no_step(rec) == [
        first_line(opt),
        ("The recorder was never entered: use it as `with Recorder(optimizer, ...) as rec:` (or optcheck.record(...)) "
        "around the loop."),
        ("rec.log() took 2 value(s), so the loop ran, but no optimizer's step() ran while recording: call "
        "optimizer.step() after loss.backward() each iteration (with a GradScaler: scaler.step(optimizer); "
        "scaler.update(), and pass scaler= to record)."),
    ]


def test_no_step_names_the_other_optimizers_that_stepped() -> None:
    model = linear(2, 1)
    opt = Plain(model.parameters())
    others = torch.optim.SGD(model.parameters(), lr=0.1), torch.optim.Adam(model.parameters(), lr=0.1)
    with Recorder(opt, model=model) as rec:
        for other in others:
            step(model, other)
    assert no_step(rec) == [first_line(opt), "The loop stepped another optimizer: Adam, SGD.", WATCH]


class Sam(Plain):
    """SAM-like: its own step() is never called; base_optimizer's is."""

    def __init__(self, params, base) -> None:
        super().__init__(params)
        self.base_optimizer = base


def test_no_step_of_a_wrapper_names_the_optimizer_it_holds() -> None:
    model = linear(2, 1)
    sam = Sam(model.parameters(), torch.optim.SGD(model.parameters(), lr=0.1))
    with Recorder(sam, model=model) as rec:
        step(model, sam.base_optimizer, rec)
    watched = f"{Sam.__module__}.Sam"
    assert no_step(rec) == [
        (f"optcheck: the recording saw no optimizer step: it watched {watched} (id {id(sam):#x}), whose step() "
        f"never ran while recording."),
        "rec.log() took 1 value(s), so the loop ran, but it stepped another optimizer: SGD.",
        (f"{watched} wraps SGD in `.base_optimizer`: watch that one, whose step() runs the update: "
        f"Recorder(optimizer.base_optimizer, ...) / optcheck.record(optimizer.base_optimizer, ...)."),
    ]
