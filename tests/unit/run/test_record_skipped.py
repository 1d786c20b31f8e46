"""Steps a GradScaler skips (issue 23): each iteration stays a row with its own logged
values, a ``skipped`` series marks the skipped ones, the LR is the one in effect; nothing is
merged into a neighbour or shifted. Inf gradients are forced at batches 3 and 7 under bf16
autocast with ``torch.amp.GradScaler("cpu")``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pytest_optcheck.errors import OptcheckError
from pytest_optcheck.run.record import Recorder

FORCED = (3, 7)


def sgd(params) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=0.1, momentum=0.9)


def amp_loop(rec_kwargs: dict, *, log: str = "after", forced=FORCED, iterations: int = 12, optimizer=sgd):
    """Train a linear model through a GradScaler; return (trajectory, the losses logged)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 1)
        x, y = torch.randn(iterations, 8, 4), torch.randn(iterations, 8, 1)
    opt = optimizer(model.parameters())
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, 0.9)
    scaler = torch.amp.GradScaler("cpu")
    logged = []
    with Recorder(opt, sched, model, scaler=scaler, **rec_kwargs) as rec:
        for i in range(iterations):
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = torch.nn.functional.mse_loss(model(x[i]), y[i])
            logged.append(loss.item())
            if log == "before":
                rec.log(loss=loss)
            scaler.scale(loss).backward()
            if i in forced:
                with torch.no_grad():
                    model.weight.grad[0, 0] = float("inf")
            scaler.step(opt)
            if log == "between":
                rec.log(loss=loss)
            scaler.update()
            sched.step()
            if log == "after":
                rec.log(loss=loss)
    assert "update" not in vars(scaler)  # the watch on update() is gone with the recording
    return rec.trajectory, logged


@pytest.mark.parametrize("log", ["after", "before", "between"])
def test_a_skipped_step_stays_a_row_with_its_own_loss(log) -> None:
    trajectory, logged = amp_loop({"record": ("loss", "lr", "grad_norm", "param_norm")}, log=log)
    assert len(trajectory) == 12
    assert trajectory["loss"].tolist() == logged  # nothing merged, nothing shifted
    assert np.flatnonzero(trajectory["skipped"]).tolist() == list(FORCED)
    np.testing.assert_allclose(trajectory["lr"][:, 0], 0.1 * 0.9 ** np.arange(12), rtol=1e-12)
    norms = trajectory["grad_norm"]
    assert np.isnan(norms[list(FORCED)]).all() and np.isfinite(np.delete(norms, FORCED)).all()
    assert trajectory.names == ["loss", "lr", "grad_norm", "param_norm", "skipped"]


def test_a_re_run_is_identical_and_the_skips_are_part_of_it() -> None:
    first, _ = amp_loop({})
    assert first == amp_loop({})[0]
    moved, _ = amp_loop({}, forced=(3, 8))
    assert np.flatnonzero(moved["skipped"]).tolist() == [3, 8]


def test_a_fused_optimizer_s_skipped_steps_are_marked_too() -> None:
    """A fused optimizer (AdamW(fused=True), the HF Trainer's default) takes the scaler's
    ``found_inf`` into its own kernel: its step() runs on a skipped iteration too, leaving
    the weights alone, so no missing step tells the skip; the ``found_inf`` the scaler hands
    it does (found on a GPU: the HF Trainer's fp16 run recorded no skipped step)."""
    record = {"record": ("loss", "lr", "grad_norm")}
    fused, logged = amp_loop(record, optimizer=lambda p: torch.optim.AdamW(p, lr=0.01, fused=True))
    plain, _ = amp_loop(record, optimizer=lambda p: torch.optim.AdamW(p, lr=0.01, foreach=False))
    assert np.flatnonzero(fused["skipped"]).tolist() == list(FORCED) == np.flatnonzero(plain["skipped"]).tolist()
    assert fused["loss"].tolist() == logged and len(fused) == 12
    norms = fused["grad_norm"]
    assert np.isnan(norms[list(FORCED)]).all() and np.isfinite(np.delete(norms, FORCED)).all()
    np.testing.assert_allclose(fused["loss"], plain["loss"], rtol=1e-5)  # the skipped steps left the weights alone


def test_without_a_scaler_there_is_no_skipped_series() -> None:
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Recorder(opt, model=model) as rec:
        model(torch.ones(1, 2)).sum().backward()
        opt.step()
        rec.log(loss=1.0)
    assert rec.trajectory.names == ["loss", "lr"]


@pytest.mark.filterwarnings(r"ignore:Detected call of `lr_scheduler.step\(\)` before")
def test_every_step_skipped_still_records_rows() -> None:
    trajectory, logged = amp_loop({}, forced=range(4), iterations=4)
    assert trajectory["skipped"].tolist() == [1.0] * 4 and trajectory["loss"].tolist() == logged


def test_gradient_accumulation_with_a_scaler_stays_one_row_per_update() -> None:
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu")
    with Recorder(opt, model=model, scaler=scaler) as rec:
        for step in range(3):
            for micro in range(2):
                loss = model(torch.full((1, 2), float(step + micro))).sum()
                scaler.scale(loss).backward()
                rec.log(loss=float(step + micro))
            if step == 1:
                with torch.no_grad():
                    model.bias.grad.fill_(float("nan"))
            scaler.step(opt)
            scaler.update()
            opt.zero_grad()
    t = rec.trajectory
    assert t["loss"].tolist() == [0.5, 1.5, 2.5] and t["skipped"].tolist() == [0.0, 1.0, 0.0]


def test_a_scaler_of_the_wrong_kind_or_a_logged_skipped_is_refused() -> None:
    opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    with pytest.raises(TypeError, match="scaler=.*GradScaler.*got a float"):
        Recorder(opt, scaler=1.0)
    with Recorder(opt, scaler=torch.amp.GradScaler("cpu")) as rec, \
            pytest.raises(OptcheckError, match="'skipped' is recorded from the GradScaler"):
        rec.log(skipped=1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fp16_on_cuda_skips_for_real_and_keeps_every_row() -> None:
    """fp16 autocast with a GradScaler on a GPU: the scaler's first steps overflow at its
    initial scale (65536) and are skipped for real, then the forced ones; every iteration
    stays a row with its own loss."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 1)).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cuda", init_scale=2.0 ** 24)
    x, y = torch.randn(20, 32, 64, device="cuda") * 100, torch.randn(20, 32, 1, device="cuda")
    logged = []
    with Recorder(opt, model=model, record=("loss", "lr", "grad_norm"), scaler=scaler) as rec:
        for i in range(20):
            opt.zero_grad()
            with torch.autocast("cuda", dtype=torch.float16):
                loss = torch.nn.functional.mse_loss(model(x[i]).float(), y[i])
            scaler.scale(loss).backward()
            if i in (12, 16):
                with torch.no_grad():
                    model[0].weight.grad[0, 0] = float("inf")
            scaler.step(opt)
            scaler.update()
            rec.log(loss=loss)
            logged.append(loss.item())
    t = rec.trajectory
    skipped = np.flatnonzero(t["skipped"]).tolist()
    assert len(t) == 20 and t["loss"].tolist() == logged
    assert 12 in skipped and 16 in skipped and len(skipped) > 2  # real overflows at the start, too
    assert np.isnan(t["grad_norm"][skipped]).all()
