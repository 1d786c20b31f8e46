"""Every key of the marker table, set at once, reaches the run and the golden's spec."""

from __future__ import annotations

import pytest

from tests.e2e.goldens import read_golden

TEST = """
import functools

import pytest
import torch
from torch.optim.lr_scheduler import StepLR


class TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def forward(self, x):
        return self.layer(x)


def plane(generator=None, dtype=None):
    x = torch.linspace(-1, 1, 40).reshape(20, 2)
    return x, x.sum(1, keepdim=True)


def half_mse(pred, target):
    return 0.5 * torch.nn.functional.mse_loss(pred, target)


@pytest.mark.optcheck(
    model=TinyNet,
    problem=plane,
    loss=half_mse,
    optimizer=functools.partial(torch.optim.SGD, lr=0.05, momentum=0.5),
    scheduler=functools.partial(StepLR, step_size=3, gamma=0.5),
    interval="step",
    epochs=2,
    batch_size=5,
    seed=3,
    dtype="float64",
    l1=0.001,
    clip_grad_norm=10.0,
    record=["loss", "lr", "momentum", "grad_norm", "param_norm", "update_norm", "sparsity"],
    tolerance={"loss": "rtol=1e-6"},
)
def test_all_keys(optcheck):
    model, optimizer, scheduler = optcheck.build()
    assert isinstance(model, TinyNet) and model.layer.weight.dtype == torch.float64
    assert isinstance(scheduler, StepLR)
    trajectory = optcheck.train()
    assert len(trajectory) == 2 * 4  # 20 points, batches of 5, 2 epochs
    lr = trajectory["lr"][:, 0].tolist()
    assert lr == [0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125, 0.0125]  # stepped every step
    assert (trajectory["momentum"] == 0.5).all()
    optcheck.check(trajectory)
"""


def test_every_marker_key_is_used_and_recorded(project: pytest.Pytester) -> None:
    project.makepyfile(test_keys=TEST)
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=1)
    spec = read_golden(project.path / "golden/test_keys/test_all_keys[cpu].json")["spec"]
    assert spec["model"] == "test_keys.TinyNet"
    assert spec["problem"] == "test_keys.plane"
    assert spec["loss"] == "test_keys.half_mse"
    assert spec["optimizer"] == "partial(torch.optim.sgd.SGD, lr=0.05, momentum=0.5)"
    assert spec["scheduler"] == "partial(torch.optim.lr_scheduler.StepLR, gamma=0.5, step_size=3)"
    assert (spec["interval"], spec["epochs"], spec["batch_size"], spec["seed"], spec["dtype"]) == (
        "step", 2, 5, 3, "float64")
    assert (spec["l1"], spec["clip_grad_norm"]) == (0.001, 10.0)
    assert len(spec["record"]) == 7
    project.runpytest("--optcheck").assert_outcomes(passed=1)
