"""A recorded run's golden describes that run (run/describe.py), not the marker's defaults."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from conftest import golden_files, read_golden
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


OWN_LOOP = """
import sys
from pathlib import Path

import pytest
import torch

@pytest.mark.optcheck({marker})
def test_loop(optcheck):
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(0.5), model.bias.zero_()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05, betas={betas})
    x = torch.linspace(-1, 1, 16).reshape(8, 2)
    with optcheck.record(optimizer, model=model) as rec:
        for epoch in range(3):
            rec.epoch = epoch
            loss = torch.nn.functional.mse_loss(model(x), x.sum(1, keepdim=True))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            rec.log(loss=loss)
    optcheck.check(rec.trajectory)
"""


def test_own_loop_golden_describes_the_loop_and_ignores_unused_marker_keys(project: pytest.Pytester) -> None:
    project.makepyfile(test_loop=OWN_LOOP.format(marker="", betas=(0.9, 0.999)))
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=1)
    (path,) = golden_files(project.path)
    golden = read_golden(project.path / path)
    assert golden["spec"] == {"source": "loop", "optimizer": "Adam()", "param_groups": ["2 tensors, 3 values"],
                              "scheduler": None, "epochs": 3, "steps": 3}
    assert "run" not in golden["meta"]
    # marker keys the run never used are no part of its configuration
    project.makepyfile(test_loop=OWN_LOOP.format(marker="epochs=2, batch_size=4", betas=(0.9, 0.999)))
    project.runpytest("--optcheck").assert_outcomes(passed=1)
    # a changed hyperparameter is a configuration change, old -> new
    project.makepyfile(test_loop=OWN_LOOP.format(marker="", betas=(0.8, 0.999)))
    result = project.runpytest("--optcheck")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*configuration changed*", "*optimizer: 'Adam()' -> 'Adam(betas=(0.8, 0.999))'*"])
    # the console script installed beside this interpreter (on PATH only in an activated venv)
    command = Path(sys.executable).with_name("optcheck")
    shown = project.run(command if command.exists() else "optcheck", "show", path)
    shown.stdout.fnmatch_lines(["*run (as recorded):*", "*optimizer*Adam()*", "*source*loop*"])


def test_reference_run_with_overrides_golden_names_the_spec_that_ran(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.optcheck(epochs=1, batch_size=500)
        def test_variant(optcheck):
            optcheck.check(optcheck.train(optimizer="Adam(lr=0.1)"), name="adam")
        """
    )
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=1)
    (path,) = golden_files(project.path)
    golden = read_golden(project.path / path)
    assert (golden["spec"]["optimizer"], golden["spec"]["epochs"]) == ("Adam(lr=0.1)", 1)
    assert set(golden["meta"]) == {"kind", "device"}
