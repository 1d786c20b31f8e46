"""Unit tests for the Recorder: what each series means, hooks, and user loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pytest_optcheck.errors import OptcheckError
from pytest_optcheck.run.record import Recorder


def tiny(seed: int = 0) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    model = torch.nn.Linear(2, 1)
    x = torch.linspace(-1, 1, 16).reshape(8, 2)
    return model, x, x.sum(1, keepdim=True)


def run(rec: Recorder, model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
        steps: int, sched=None, log_before: bool = False) -> None:
    for _ in range(steps):
        loss = torch.nn.functional.mse_loss(model(x), y)
        if log_before:
            rec.log(loss=loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if not log_before:
            rec.log(loss=loss)
        if sched is not None:
            sched.step()


def test_lr_i_is_the_lr_used_at_step_i() -> None:
    model, x, y = tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    with Recorder(opt, sched, model) as rec:
        run(rec, model, opt, x, y, 6, sched)
    np.testing.assert_array_equal(rec.trajectory["lr"][:, 0], [0.1, 0.1, 0.05, 0.05, 0.025, 0.025])


def test_logging_before_or_after_the_step_gives_the_same_series() -> None:
    out = []
    for before in (False, True):
        model, x, y = tiny()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with Recorder(opt, model=model) as rec:
            run(rec, model, opt, x, y, 5, log_before=before)
        out.append(rec.trajectory["loss"])
    np.testing.assert_array_equal(out[0], out[1])
    assert len(out[0]) == 5 and np.all(np.diff(out[0]) < 0)


def test_norms_momentum_and_sparsity() -> None:
    model, x, y = tiny()
    opt = torch.optim.Adam(model.parameters(), lr=0.01, betas=(0.8, 0.9))
    record = ("loss", "lr", "momentum", "grad_norm", "param_norm", "update_norm", "sparsity")
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    with Recorder(opt, model=model, record=record) as rec:
        run(rec, model, opt, x, y, 1)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    t = rec.trajectory
    assert t.names == list(record)
    assert t["momentum"][0, 0] == 0.8
    assert math.isclose(t["param_norm"][0], float(after.double().norm()), rel_tol=1e-12)
    assert math.isclose(t["update_norm"][0], float((after - before).double().norm()), rel_tol=1e-9)
    assert t["grad_norm"][0] > 0 and 0 <= t["sparsity"][0] <= 1


def test_momentum_is_nan_for_optimizers_without_one() -> None:
    model, x, y = tiny()
    opt = torch.optim.Adagrad(model.parameters(), lr=0.1)
    with Recorder(opt, model=model, record=("loss", "momentum")) as rec:
        run(rec, model, opt, x, y, 2)
    assert np.isnan(rec.trajectory["momentum"]).all()


def test_hooks_are_removed_on_exit_even_on_error() -> None:
    model, x, y = tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(RuntimeError, match="boom"), Recorder(opt, model=model) as rec:
        run(rec, model, opt, x, y, 2)
        raise RuntimeError("boom")
    assert not opt._optimizer_step_pre_hooks and not opt._optimizer_step_post_hooks
    run(Recorder(opt), model, opt, x, y, 1)  # a later step records nothing
    assert rec.steps == 2


def test_epoch_and_batch_positions() -> None:
    model, x, y = tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Recorder(opt, model=model) as rec:
        for epoch in range(2):
            rec.epoch = epoch
            run(rec, model, opt, x, y, 3)
    t = rec.trajectory
    assert t.epoch.tolist() == [0, 0, 0, 1, 1, 1] and t.batch.tolist() == [0, 1, 2, 0, 1, 2]


def test_user_series_and_unlogged_steps_are_nan() -> None:
    model, x, y = tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Recorder(opt, model=model) as rec:
        run(rec, model, opt, x, y, 2)
        rec.log(accuracy=0.5)
        run(rec, model, opt, x, y, 1)
    t = rec.trajectory
    assert np.isnan(t["accuracy"][0]) and t["accuracy"][1] == 0.5 and np.isnan(t["accuracy"][2])


# -- grad_norm: the gradients the step used ----------------------------------------------

ALL = ("loss", "lr", "momentum", "grad_norm", "param_norm", "update_norm", "sparsity")


def independent_norm(tensors) -> float:
    """An L2 norm computed the slow, obvious way, in Python floats."""
    return math.sqrt(math.fsum(float(v) ** 2 for t in tensors for v in t.detach().double().flatten().tolist()))


def closure_loop(opt, model, x, y, steps, as_keyword=False):
    """Steps through a closure; returns the norm of the gradients after each step's
    first closure evaluation, computed by the test itself."""
    seen: list[float] = []
    for _ in range(steps):
        def closure(calls=[0]):  # noqa: B006 - a fresh counter per step, shared by its calls
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            if calls[0] == 0:
                seen.append(independent_norm([p.grad for p in model.parameters()]))
            calls[0] += 1
            return loss

        opt.step(closure=closure) if as_keyword else opt.step(closure)
    return seen


@pytest.mark.parametrize("as_keyword", [False, True], ids=["positional", "keyword"])
@pytest.mark.parametrize("make", [
    lambda ps: torch.optim.LBFGS(ps, lr=0.1, max_iter=5),
    lambda ps: torch.optim.SGD(ps, lr=0.1),
    lambda ps: torch.optim.Adam(ps, lr=0.01),
], ids=["LBFGS", "SGD", "Adam"])
def test_grad_norm_of_a_closure_step_is_the_norm_the_step_used(make, as_keyword) -> None:
    model, x, y = tiny()
    opt = make(model.parameters())
    with Recorder(opt, model=model, record=("grad_norm",)) as rec:
        expected = closure_loop(opt, model, x, y, 4, as_keyword)
    np.testing.assert_allclose(rec.trajectory["grad_norm"], expected, rtol=1e-12)
    assert expected[0] > 0  # the old pre-step reading gave 0 here: no gradients yet


@pytest.mark.parametrize("big", [False, True], ids=["flat", "foreach"])
def test_norms_match_independent_norms(big, monkeypatch) -> None:
    """Both reduction paths (one buffer for small CPU models, foreach kernels otherwise)
    agree with norms computed the obvious way, step by step."""
    if big:
        monkeypatch.setattr("pytest_optcheck.run.record.norms.FLAT_NUMEL", 0)
    model, x, y = tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9, weight_decay=0.1)
    grads, params, updates, sparse = [], [], [], []
    with Recorder(opt, model=model, record=ALL) as rec:
        for _ in range(5):
            before = [p.detach().clone() for p in model.parameters()]
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            grads.append(independent_norm([p.grad for p in model.parameters()]))
            opt.step()
            after = list(model.parameters())
            params.append(independent_norm(after))
            updates.append(independent_norm([a - b for a, b in zip(after, before)]))
            flat = torch.cat([p.detach().flatten() for p in after])
            sparse.append(float((flat.abs() <= 1e-3).sum()) / flat.numel())
    t = rec.trajectory
    np.testing.assert_allclose(t["grad_norm"], grads, rtol=1e-12)
    np.testing.assert_allclose(t["param_norm"], params, rtol=1e-12)
    np.testing.assert_allclose(t["update_norm"], updates, rtol=1e-9)
    np.testing.assert_array_equal(t["sparsity"], sparse)


class SparseAndFrozen(torch.nn.Module):
    """A sparse-gradient embedding, a layer used every other step (so its gradient is
    None on the others), and a plain one."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(6, 3, sparse=True)
        self.unused = torch.nn.Linear(3, 3)
        self.head = torch.nn.Linear(3, 1)

    def forward(self, ids: torch.Tensor, extra: bool) -> torch.Tensor:
        hidden = self.embed(ids)
        return self.head(self.unused(hidden) if extra else hidden).squeeze(-1)


@pytest.mark.parametrize("path", ["history", "history, blocks of 2", "foreach"])
def test_norms_with_sparse_and_missing_gradients_across_blocks_and_reads(path, monkeypatch) -> None:
    """Missing gradients count as zero and sparse ones as their dense values, on every
    reduction path; a history reduced in blocks, and read halfway through the run (then
    recorded on), gives the same series as the obvious computation."""
    if path == "foreach":
        monkeypatch.setattr("pytest_optcheck.run.record.norms.FLAT_NUMEL", 0)
    if path.endswith("blocks of 2"):
        monkeypatch.setattr("pytest_optcheck.run.record.norms.HISTORY_ROWS", 2)
    torch.manual_seed(0)
    model = SparseAndFrozen()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    ids, target = torch.tensor([0, 2, 2, 5]), torch.tensor([1.0, -1.0, 0.5, 2.0])
    grads, params, updates = [], [], []
    with Recorder(opt, model=model, record=("grad_norm", "param_norm", "update_norm")) as rec:
        for step in range(5):
            before = [p.detach().clone() for p in model.parameters()]
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(ids, extra=step % 2 == 0), target).backward()
            assert (model.unused.weight.grad is None) == (step % 2 == 1) and model.embed.weight.grad.is_sparse
            grads.append(independent_norm([p.grad.to_dense() for p in model.parameters() if p.grad is not None]))
            opt.step()
            params.append(independent_norm(model.parameters()))
            updates.append(independent_norm([a - b for a, b in zip(model.parameters(), before)]))
            if step == 2:
                np.testing.assert_allclose(rec.trajectory["grad_norm"], grads, rtol=1e-12)
    t = rec.trajectory
    np.testing.assert_allclose(t["grad_norm"], grads, rtol=1e-12)
    np.testing.assert_allclose(t["param_norm"], params, rtol=1e-12)
    np.testing.assert_allclose(t["update_norm"], updates, rtol=1e-9)
    assert updates[0] > 0


def test_reference_loop_lbfgs_grad_norm_is_the_first_closure_gradient() -> None:
    """The reference loop's LBFGS (several closure evaluations per step): grad_norm[i] is
    the norm after step i's first backward, seen by the test through the parameters'
    post-accumulate-grad hooks (no optimizer hook involved)."""
    from pytest_optcheck.declare.build import build
    from pytest_optcheck.declare.spec import Spec
    from pytest_optcheck.run.train import train

    spec = Spec.from_kwargs({"optimizer": "LBFGS(lr=0.01, max_iter=10, max_eval=10)", "epochs": 1,
                             "record": ["loss", "grad_norm"]})
    built = build(spec)
    params = list(built.model.parameters())
    backward_norms: list[float] = []
    pending = [0]

    def on_grad(_p):
        pending[0] += 1
        if pending[0] == len(params):  # every gradient of this backward is in
            pending[0] = 0
            backward_norms.append(independent_norm([p.grad for p in params]))

    for p in params:
        p.register_post_accumulate_grad_hook(on_grad)
    first_of_step: list[int] = []
    built.optimizer.register_step_pre_hook(lambda *a: first_of_step.append(len(backward_norms)))
    t = train(spec, built=built)
    expected = [backward_norms[i] for i in first_of_step]
    assert len(backward_norms) > len(expected)  # LBFGS evaluated the closure more than once a step
    np.testing.assert_allclose(t["grad_norm"], expected, rtol=1e-12)


# -- several values per step ---------------------------------------------------------------


def accumulate(rec, model, opt, x, y, steps, micro, reduce=None):
    logged = []
    for _ in range(steps):
        opt.zero_grad()
        for k in range(micro):
            loss = torch.nn.functional.mse_loss(model(x[k::micro]), y[k::micro])
            (loss / micro).backward()
            logged.append(float(loss.detach()))
            rec.log(loss=loss) if reduce is None else rec.log(loss=loss, reduce=reduce)
        opt.step()
    return logged


@pytest.mark.parametrize("reduce", [None, "mean", "sum", "last", "max"])
def test_accumulated_micro_batches_are_combined_never_dropped(reduce) -> None:
    model, x, y = tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Recorder(opt, model=model) as rec:
        logged = accumulate(rec, model, opt, x, y, 3, 2, reduce)
    pairs = np.asarray(logged).reshape(3, 2)
    expected = {None: pairs.mean(1), "mean": pairs.mean(1), "sum": pairs.sum(1), "last": pairs[:, 1],
                "max": pairs.max(1)}[reduce]
    np.testing.assert_allclose(rec.trajectory["loss"], expected, rtol=1e-15)


def test_one_reduction_per_series_and_known_names_only(tensor_path) -> None:
    model, _, _ = tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Recorder(opt, model=model) as rec:
        rec.log(loss=1.0, reduce="sum")
        with pytest.raises(OptcheckError, match="already combined by reduce='sum'"):
            rec.log(loss=2.0, reduce="mean")
        with pytest.raises(OptcheckError, match="Did you mean: mean"):
            rec.log(loss=2.0, reduce="maen")
        with pytest.raises(OptcheckError, match="shape \\(2,\\)"):
            rec.log(loss=torch.ones(2))
        with pytest.raises(OptcheckError, match="recorded from the optimizer's hooks"):
            rec.log(lr=0.1)


def test_values_logged_after_the_last_step_are_reported() -> None:
    model, x, y = tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Recorder(opt, model=model) as rec:
        run(rec, model, opt, x, y, 2)
        rec.log(loss=5.0)  # a third window that never got its step
    with pytest.warns(UserWarning, match="1 value\\(s\\) of 'loss' logged after the last optimizer step"):
        assert len(rec.trajectory["loss"]) == 2


@pytest.fixture(params=["read at log", "kept"])
def tensor_path(request, monkeypatch) -> str:
    """Both ways a logged tensor is taken: read as a number at once (the CPU's way) or
    kept and read with the trajectory (an accelerator's way, run here on the CPU)."""
    monkeypatch.setattr(Recorder, "_read_cpu", request.param == "read at log")
    return request.param


def test_a_logged_tensor_changed_in_place_keeps_its_logged_value(tensor_path) -> None:
    model, x, y = tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Recorder(opt, model=model) as rec:
        loss = torch.nn.functional.mse_loss(model(x), y)
        logged = loss.item()
        rec.log(loss=loss)
        loss.backward()
        opt.step()
        with torch.no_grad():
            loss /= 2
    assert rec.trajectory["loss"][0] == logged  # read at once, or copied at once


def test_logged_tensors_give_the_same_trajectory_either_way(monkeypatch) -> None:
    trajectories = []
    for read_now in (True, False):
        monkeypatch.setattr(Recorder, "_read_cpu", read_now)
        model, x, y = tiny()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with Recorder(opt, model=model, record=("loss", "lr", "grad_norm")) as rec:
            for i in range(5):
                loss = torch.nn.functional.mse_loss(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                rec.log(loss=loss, half=loss.half(), count=torch.tensor(i), flag=loss > 0)
        trajectories.append(rec.trajectory)
    assert trajectories[0] == trajectories[1]
    assert list(trajectories[0]["count"]) == [0.0, 1.0, 2.0, 3.0, 4.0] and set(trajectories[0]["flag"]) == {1.0}


def test_inference_tensors_and_numpy_numbers_can_be_logged(tensor_path) -> None:
    model, x, y = tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Recorder(opt, model=model) as rec:
        run(rec, model, opt, x, y, 1)
        with torch.inference_mode():
            rec.log(val=torch.nn.functional.mse_loss(model(x), y))
        rec.log(acc=np.float32(0.5), shaped=torch.ones(1, 1))
    t = rec.trajectory
    assert t["val"][0] > 0 and t["acc"][0] == 0.5 and t["shaped"][0] == 1.0


# -- no step seen --------------------------------------------------------------------------


class Wrapper(torch.optim.Optimizer):
    """SAM-like: its own step() is never called; base_optimizer's is."""

    def __init__(self, params, base):
        self.base_optimizer = base
        super().__init__(params, {"lr": 0.0})

    def second_step(self):
        self.base_optimizer.step()


def test_no_step_names_the_optimizer_watched_and_the_one_to_watch() -> None:
    model, x, y = tiny()
    sam = Wrapper(list(model.parameters()), torch.optim.SGD(model.parameters(), lr=0.1))
    with Recorder(sam, model=model) as rec:
        for _ in range(3):
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            sam.second_step()
            rec.log(loss=loss)
    with pytest.raises(OptcheckError) as info:
        _ = rec.trajectory
    text = str(info.value)
    assert "saw no optimizer step" in text and "test_record.Wrapper" in text
    assert "rec.log() took 3 value(s)" in text
    assert "wraps SGD in `.base_optimizer`" in text and "Recorder(optimizer.base_optimizer" in text


def test_no_step_because_the_recorder_was_never_entered() -> None:
    model, x, y = tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    rec = Recorder(opt, model=model)
    run(rec, model, opt, x, y, 2)
    with pytest.raises(OptcheckError, match="never entered"):
        _ = rec.trajectory


# -- param-group keys ----------------------------------------------------------------------


def test_numeric_param_group_keys_are_recorded_per_group() -> None:
    model, x, y = tiny()
    opt = torch.optim.AdamW([{"params": [model.weight], "weight_decay": 0.1}, {"params": [model.bias]}], lr=0.1)
    opt.param_groups[0]["d"] = 1.0  # a Prodigy-style value the optimizer updates itself
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    with Recorder(opt, sched, model, record=("loss", "lr", "weight_decay", "d", "initial_lr")) as rec:
        for _ in range(3):
            run(rec, model, opt, x, y, 1, sched)
            opt.param_groups[0]["d"] *= 2
    t = rec.trajectory
    assert t.names == ["loss", "lr", "weight_decay", "d", "initial_lr"]
    np.testing.assert_array_equal(t["weight_decay"], [[0.1, 0.01]] * 3)
    np.testing.assert_array_equal(t["d"], [[1.0, np.nan], [2.0, np.nan], [4.0, np.nan]])
    np.testing.assert_array_equal(t["lr"][:, 0], [0.1, 0.05, 0.025])


def test_tensor_lr_is_recorded_as_used_at_each_step() -> None:
    model, x, y = tiny()
    opt = torch.optim.Adam(model.parameters(), lr=torch.tensor(0.1))
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    with Recorder(opt, sched, model) as rec:
        run(rec, model, opt, x, y, 3, sched)
    np.testing.assert_allclose(rec.trajectory["lr"][:, 0], [0.1, 0.05, 0.025], rtol=1e-7)


def test_a_key_that_is_not_numeric_or_not_there_is_refused() -> None:
    model, _, _ = tiny()
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    with pytest.raises(OptcheckError, match="'betas'.*\\(0.9, 0.999\\) \\(tuple\\), not a number.*betas\\[0\\]"):
        Recorder(opt, record=("loss", "betas"))
    with pytest.raises(OptcheckError, match="'amsgrad'.*False \\(bool\\), not a number"):
        Recorder(opt, record=("amsgrad",))
    with Recorder(opt, model=model, record=("loss", "weigth_decay")) as rec:
        run(rec, model, opt, *tiny()[1:], 1)
    with pytest.raises(OptcheckError, match="'weigth_decay'.*Did you mean: weight_decay"):
        _ = rec.trajectory


def test_a_step_that_raised_reads_nan_and_the_others_stay_in_place() -> None:
    model, x, y = tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Recorder(opt, model=model, record=("loss", "lr", "param_norm")) as rec:
        for i in range(3):
            def closure(i=i):
                opt.zero_grad()
                loss = torch.nn.functional.mse_loss(model(x), y)
                loss.backward()
                if i == 1:
                    raise FloatingPointError("step 1 diverged")
                return loss

            try:
                rec.log(loss=opt.step(closure))
            except FloatingPointError:
                pass
    t = rec.trajectory
    assert len(t) == 3 and np.isnan(t["param_norm"][1]) and not np.isnan(t["param_norm"][[0, 2]]).any()
    assert np.isnan(t["loss"][1]) and t["lr"].shape == (3, 1)


@pytest.mark.parametrize("record", [("loss", "lr"), ("loss", "lr", "momentum")])
def test_a_param_group_added_during_the_run_reads_nan_before_it_existed(record) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    x, y = torch.randn(8, 2), torch.randn(8, 1)
    opt = torch.optim.SGD(model[0].parameters(), lr=0.1, momentum=0.9)
    with Recorder(opt, model=model, record=record) as rec:
        for step in range(4):
            if step == 2:
                opt.add_param_group({"params": model[1].parameters(), "lr": 0.05, "momentum": 0.5})
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.log(loss=loss)
    t = rec.trajectory
    nan = math.nan
    np.testing.assert_array_equal(t["lr"], [[0.1, nan], [0.1, nan], [0.1, 0.05], [0.1, 0.05]])
    if "momentum" in record:
        np.testing.assert_array_equal(t["momentum"], [[0.9, nan], [0.9, nan], [0.9, 0.5], [0.9, 0.5]])
