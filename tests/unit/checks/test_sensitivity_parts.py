"""The sensitivity probe's parts (checks/sensitivity.py): the twin's steps are 1.01x as long,
a scaled-LR factory for the measurements, and when the probe has nothing to say."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np
import torch

from pytest_optcheck.checks.sensitivity import STEP_SCALE, probe, scale_steps, scaled_lr, twin_spec
from pytest_optcheck.declare.catalog import resolve_optimizer
from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.engine.envelope import Calibration
from pytest_optcheck.engine.outcome import Outcome, Status
from pytest_optcheck.engine.tolerance import Tolerance
from pytest_optcheck.engine.trajectory import Trajectory


def test_the_smallest_regression_is_one_percent() -> None:
    assert STEP_SCALE == 1.01


def test_scaled_lr_scales_every_group_before_the_scheduler_sees_it() -> None:
    make = scaled_lr(functools.partial(torch.optim.SGD, lr=0.1), 2.0)
    params = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    optimizer = make([{"params": [params[0]]}, {"params": [params[1]], "lr": 0.3}])
    assert [g["lr"] for g in optimizer.param_groups] == [0.2, 0.6]
    assert make.__qualname__ == "scaled_lr(2.0)"


def test_the_twin_spec_starts_at_the_scaled_lr() -> None:
    twin = twin_spec(Spec(optimizer="SGD(lr=0.1)"), 3.0)
    optimizer = resolve_optimizer(twin.optimizer)([torch.nn.Parameter(torch.zeros(1))])
    assert abs(optimizer.param_groups[0]["lr"] - 0.3) < 1e-12
    default = resolve_optimizer(twin_spec(Spec(optimizer="SGD(lr=0.1)")).optimizer)([torch.nn.Parameter(torch.zeros(1))])
    assert abs(default.param_groups[0]["lr"] - 0.101) < 1e-12


def test_every_step_moves_the_parameters_scale_times_as_far() -> None:
    weight = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = torch.optim.SGD([weight], lr=0.5)
    scale_steps(optimizer, 3.0)
    for expected in ([-0.5, -3.5], [-2.0, -5.0]):  # gradient 1: each step moves by 0.5 * 3
        optimizer.zero_grad()
        weight.sum().backward()
        optimizer.step()
        assert weight.detach().tolist() == expected
    assert not weight.requires_grad or weight.grad is not None


def test_a_run_of_only_lr_series_has_nothing_to_probe() -> None:
    lr_only = Trajectory({"lr": [[0.1]] * 4})
    assert probe(Spec(), "cpu", lr_only, Outcome(Status.PASSED, "")) is None


def test_a_tolerance_that_catches_the_twin_is_not_vacuous() -> None:
    spec = Spec(epochs=1, batch_size=500, optimizer="SGD(lr=0.05)")
    from pytest_optcheck.run.train import train

    current = train(spec)
    exact = Outcome(Status.PASSED, "", tolerances={"loss": Tolerance(rtol=0.0, atol=0.0)})
    assert probe(spec, "cpu", current, exact) is None
    loose = Outcome(Status.PASSED, "", tolerances={"loss": Tolerance(rtol=0.5, atol=0.0),
                                                   "lr": Tolerance(rtol=0.0, atol=0.0)})
    text = probe(spec, "cpu", current, loose)
    assert text is not None and text.startswith("every step x1.01 stays within tolerance (largest relative change ")
    assert " in 'loss'; tolerances loss: rtol=0.5, atol=0, step by step)" in text
    assert "lr:" not in text  # the LR is not a behaviour series: its tolerance is not listed


@dataclasses.dataclass(frozen=True)
class Kept:
    """A golden or a run as an Outcome keeps it (engine.outcome.Recorded)."""

    trajectory: Trajectory
    spec: Any = None
    calibration: Calibration | None = None


def test_a_calibrated_checks_allowance_counts_from_the_golden_else_from_the_run() -> None:
    from pytest_optcheck.run.train import train

    spec = Spec(epochs=1, batch_size=500, optimizer="SGD(lr=0.05)")
    current = train(spec)
    wide = Calibration(replicas=2, envelope={"loss": np.ones(len(current))}, factor=1.0)
    exact = {"loss": Tolerance(rtol=0.0, atol=0.0)}

    def outcome(golden: Kept | None, run: Kept | None) -> Outcome:
        return Outcome(Status.PASSED, "", golden=golden, current=run, tolerances=exact)

    assert probe(spec, "cpu", current, outcome(None, None)) is None
    assert probe(spec, "cpu", current, outcome(Kept(current, calibration=wide), Kept(current))) is not None
    assert probe(spec, "cpu", current, outcome(None, Kept(current, calibration=wide))) is not None
    assert probe(spec, "cpu", current, outcome(Kept(current), Kept(current, calibration=wide))) is None
