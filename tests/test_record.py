"""Unit tests for the Recorder: what each series means, hooks, and user loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

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
