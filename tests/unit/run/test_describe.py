"""describe_run (run/describe.py): what a recorded run's golden says about the optimizer and scheduler
that ran, and which configuration changes count. Sessions writing such goldens: tests/e2e/test_describe.py."""

from __future__ import annotations

import torch
from torch.optim import lr_scheduler

from pytest_optcheck.golden.format import spec_changes
from pytest_optcheck.run.describe import describe_run


def test_optimizer_class_hyperparameters_groups_and_scheduler() -> None:
    model = torch.nn.Linear(3, 2)
    groups = [{"params": [model.weight], "weight_decay": 0.1}, {"params": [model.bias], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=1e-3, betas=(0.8, 0.999))
    scheduler = lr_scheduler.SequentialLR(
        optimizer, [lr_scheduler.LinearLR(optimizer, 0.1, total_iters=2), lr_scheduler.CosineAnnealingLR(optimizer, 4)],
        milestones=[2])
    assert describe_run(optimizer, scheduler, "lightning", steps=6, epochs=2, record=("loss", "lr")) == {
        "source": "lightning",
        "optimizer": "AdamW(betas=(0.8, 0.999))",  # the class's own defaults and lr (a recorded series) left out
        "param_groups": ["1 tensor, 6 values: weight_decay=0.1", "1 tensor, 2 values: weight_decay=0.0"],
        "scheduler": "SequentialLR(milestones=[2], schedulers=[LinearLR(start_factor=0.1, total_iters=2), "
                     "CosineAnnealingLR(T_max=4)])",
        "epochs": 2,
        "steps": 6,
    }


def test_lr_is_configuration_only_when_not_recorded_and_is_the_scheduler_s_starting_lr() -> None:
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1, momentum=0.9)
    scheduler = lr_scheduler.MultiStepLR(optimizer, milestones=[2, 4])
    for _ in range(3):
        optimizer.step()
        scheduler.step()  # group lr is now 0.01; the configured one stays 0.1
    described = describe_run(optimizer, scheduler, record=("loss",))
    assert (described["optimizer"], described["scheduler"]) == ("SGD(lr=0.1, momentum=0.9)",
                                                                 "MultiStepLR(milestones=[2, 4])")
    assert describe_run(optimizer, scheduler, record=("loss", "lr"))["optimizer"] == "SGD(momentum=0.9)"


def test_configurations_of_two_kinds_are_not_compared() -> None:
    marker_spec = {"optimizer": "Adam(lr=0.01)", "epochs": 12, "batch_size": 32}
    run = {"source": "loop", "optimizer": "Adam()", "epochs": 3}
    assert spec_changes(marker_spec, run) == [] and spec_changes(run, marker_spec) == []
    assert spec_changes(run, {**run, "optimizer": "Adam(betas=(0.8, 0.999))"}) == [
        ("optimizer", "Adam()", "Adam(betas=(0.8, 0.999))")]
