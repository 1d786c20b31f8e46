"""compare() on thinned runs (with_buckets) and per-epoch series with the user's tolerance:
failing buckets count against the step budget, and a thinned run's failures are named by
their real steps, not by the rows kept."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_optcheck.engine.compare import compare
from pytest_optcheck.engine.thinning import thin
from pytest_optcheck.engine.tolerance import Tolerance
from pytest_optcheck.engine.trajectory import Trajectory

STEPS = 23


def run(loss_at: dict[int, float] | None = None) -> Trajectory:
    loss = 1.0 / (1.0 + np.arange(STEPS))
    for step, value in (loss_at or {}).items():
        loss[step] = value
    return Trajectory({"loss": loss}, np.arange(STEPS) // 10, np.arange(STEPS) % 10,
                      epoch_series={"val": [0.5, 0.4, 0.3]})


@pytest.mark.parametrize(("spikes", "passed"), [({7: 0.001, 17: 5.0}, True), ({7: 0.001, 12: 5.0, 17: 5.0}, False)])
def test_failing_buckets_count_against_the_budget(spikes: dict[int, float], passed: bool) -> None:
    # steps 7, 12, 17 are between the kept rows (0, 5, 10, 15, 20): only their buckets fail;
    # a budget of 0.4 over 5 buckets allows 2
    (v,) = compare(thin(run(), 5), thin(run(spikes), 5), {"loss": Tolerance(rtol=1e-6, budget=0.4)}).series[:1]
    assert (v.name, v.n_failed, v.buckets.n_checked, v.buckets.n_failed) == ("loss", 0, 5, len(spikes))
    assert v.passed is passed


def test_a_thinned_runs_failures_are_named_by_their_real_steps() -> None:
    v = compare(thin(run(), 5), thin(run({15: math.nan, 20: 0.5}), 5)).series[0]
    assert v.name == "loss" and not v.passed
    assert (v.first_failure, v.nonfinite_step, v.max_abs_at, v.max_rel_at) == (15, 15, (20, 0), (20, 0))


def test_a_per_epoch_series_follows_the_users_tolerance() -> None:
    golden, current = run(), run()
    current.epoch_series["val"] = current.epoch_series["val"] * 1.1
    assert not compare(golden, current).epoch_series[0].passed
    (v,) = compare(golden, current, {"val": Tolerance(rtol=0.2)}).epoch_series
    assert v.name == "val" and v.passed and v.tolerance.rtol == 0.2
