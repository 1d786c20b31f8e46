"""End to end (real pytest sessions): a user's own loop through a GradScaler, an optimizer
inside a plain wrapper, and per-epoch values, each recorded as a golden, re-run, and failed
by a planted change with the message naming what moved (issues 23 and 19, item 10)."""

from __future__ import annotations

import pytest

from tests.e2e.goldens import golden_files, read_golden

LOOP = """
import torch

class PlainLookahead:
    def __init__(self, optimizer, k=5, alpha=0.5):
        self.optimizer, self.k, self.alpha, self.count = optimizer, k, alpha, 0
        self.slow = [p.detach().clone() for p in optimizer.param_groups[0]["params"]]

    def zero_grad(self):
        self.optimizer.zero_grad()

    def step(self):
        self.optimizer.step()
        self.count += 1
        if self.count % self.k == 0:
            with torch.no_grad():
                for p, s in zip(self.optimizer.param_groups[0]["params"], self.slow):
                    s.add_(p - s, alpha=self.alpha)
                    p.copy_(s)

def data():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return torch.nn.Linear(4, 1), torch.randn(12, 8, 4), torch.randn(12, 8, 1)

def test_amp(optcheck):
    model, x, y = data()
    opt = torch.optim.SGD(model.parameters(), lr={lr}, momentum=0.9)
    scaler = torch.amp.GradScaler("cpu")
    with optcheck.record(opt, model=model, scaler=scaler) as rec:
        for i in range(12):
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = torch.nn.functional.mse_loss(model(x[i]), y[i])
            scaler.scale(loss).backward()
            if i in {forced}:
                with torch.no_grad():
                    model.weight.grad[0, 0] = float("inf")
            scaler.step(opt)
            scaler.update()
            rec.log(loss=loss)
    optcheck.check(rec.trajectory)

def test_wrapped(optcheck):
    model, x, y = data()
    opt = PlainLookahead(torch.optim.AdamW(model.parameters(), lr=0.01), k=3, alpha={alpha})
    with optcheck.record(opt, model=model) as rec:
        for epoch in range(3):
            rec.epoch = epoch
            for i in range(4):
                opt.zero_grad()
                loss = torch.nn.functional.mse_loss(model(x[i]), y[i])
                loss.backward()
                opt.step()
                rec.log(loss=loss)
            with torch.no_grad():
                rec.log_epoch(val_loss=torch.nn.functional.mse_loss(model(x[8]), y[8]) * {val_scale})
    optcheck.check(rec.trajectory)
"""


def write(project: pytest.Pytester, lr: float = 0.1, forced: tuple = (3, 7), alpha: float = 0.5,
          val_scale: float = 1.0) -> None:
    project.makepyfile(test_loop=LOOP.format(lr=lr, forced=set(forced), alpha=alpha, val_scale=val_scale))


def test_skipped_steps_wrappers_and_epoch_values_through_goldens(project: pytest.Pytester) -> None:
    write(project)
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=2)
    goldens = {path.split("/")[-1].split(".")[0]: read_golden(project.path / path)
               for path in golden_files(project.path)}
    amp = next(g for name, g in goldens.items() if "amp" in name)
    assert amp["series"]["skipped"] == [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    wrapped = next(g for name, g in goldens.items() if "wrapped" in name)
    assert wrapped["spec"]["wrapper"] == "PlainLookahead(alpha=0.5, k=3)"
    assert len(wrapped["epoch_series"]["val_loss"]) == 3
    project.runpytest("--optcheck").assert_outcomes(passed=2)  # a re-run passes

    write(project, lr=0.102)  # a 2% LR change
    result = project.runpytest("--optcheck", "-k", "amp")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*series differ from the golden*lr*", "*first step outside tolerance*"])

    write(project, forced=(3, 8))  # the scaler skips another step
    result = project.runpytest("--optcheck", "-k", "amp")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*series differ from the golden*skipped*", "*skipped: 2 of 12 steps*",
                                 "*the GradScaler skipped other steps than when the golden was recorded*"])

    write(project, alpha=0.6)  # the wrapper's setting
    result = project.runpytest("--optcheck", "-k", "wrapped")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*configuration changed*",
                                 "*wrapper: 'PlainLookahead(alpha=0.5, k=3)' -> 'PlainLookahead(alpha=0.6, k=3)'*"])

    write(project, val_scale=1.01)  # a per-epoch value moves
    result = project.runpytest("--optcheck", "-k", "wrapped")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*series differ from the golden (val_loss)*",
                                 "*val_loss (per epoch): 3 of 3 epochs outside tolerance*",
                                 "*first epoch outside tolerance: epoch 0*"])
