"""The calibration allowance of the comparison engine (pytest_optcheck.engine.compare), pinned
exactly: ``outside_tolerance(..., allowance=)``, how ``compare_series`` fits a short or narrow
envelope to the compared steps and groups, the noise fields of a SeriesVerdict, the summary
modes' allowance and ``compare(..., calibration=)`` per series. benchmarks/mutation.py showed
these reached only through end-to-end checks of the failure text.
"""

from __future__ import annotations

import numpy as np
import pytest

from pytest_optcheck.engine.compare import compare, compare_series, outside_tolerance
from pytest_optcheck.engine.envelope import Calibration
from pytest_optcheck.engine.tolerance import Tolerance
from pytest_optcheck.engine.trajectory import Trajectory

ONES = np.ones((4, 2))


def test_allowance_widens_the_bound_where_it_is_larger_and_only_there() -> None:
    golden = np.ones(4)
    current = np.array([1.5, 1.5, 1.0 + 1e-6, 1.0 + 2e-5])
    tol = Tolerance(rtol=1e-5)  # bound 1e-5
    allowance = np.array([0.5, 0.49, 0.0, 0.0])
    # 0.5 exactly at the allowance passes; 0.49 does not; an allowance below the tolerance
    # leaves the tolerance in force (the larger of the two, not the smaller)
    assert outside_tolerance(golden, current, tol, allowance).tolist() == [False, True, False, True]
    assert outside_tolerance(golden, current, tol).tolist() == [True, True, False, True]
    # one-sided: the allowance widens only the side that can fail
    lower = Tolerance(rtol=1e-5, direction="lower")
    assert outside_tolerance(golden, np.array([0.0, 1.6, 1.5, 0.5]), lower,
                             np.array([0.0, 0.5, 0.5, 0.0])).tolist() == [False, True, False, False]
    # a non-finite current fails whatever the allowance
    assert outside_tolerance(golden, np.array([np.nan, np.inf, 1.0, 1.0]), tol,
                             np.full(4, 1e300)).tolist() == [True, True, False, False]


def test_a_short_envelope_gives_later_steps_the_tolerance_alone() -> None:
    allowance = np.array([[0.25], [0.25]])  # 2 of 4 steps, one column for 2 groups
    inside = ONES.copy()
    inside[1] = [1.25, 1.25]  # the single column covers the second group too
    v = compare_series("lr", ONES, inside, Tolerance(), allowance=allowance, factor=2.0)
    assert v.passed and v.n_failed == 0 and v.first_failure is None
    assert v.noise_factor == 2.0 and v.noise_envelope_at_failure is None
    later = ONES.copy()
    later[2] = [1.0, 1.25]  # the envelope has no step 2: the tolerance alone
    v = compare_series("lr", ONES, later, Tolerance(), allowance=allowance, factor=2.0)
    assert not v.passed and (v.first_failure, v.first_failure_group, v.n_failed) == (2, 1, 1)
    assert v.noise_factor == 2.0 and v.noise_envelope_at_failure == 0.0


def test_the_envelope_at_the_failure_is_the_failing_group_s_divided_by_the_factor() -> None:
    allowance = np.array([[0.25, 0.5, 9.0]] * 6)  # wider and longer than the compared 4 x 2
    current = ONES.copy()
    current[1] = [1.25, 1.75]  # group 0 inside its 0.25, group 1 outside its 0.5
    v = compare_series("lr", ONES, current, Tolerance(), allowance=allowance, factor=2.0)
    assert not v.passed and (v.first_failure, v.first_failure_group) == (1, 1)
    assert v.noise_envelope_at_failure == 0.25 and v.noise_factor == 2.0
    # a factor of 0 (never written by optcheck) gives no envelope rather than a division by 0
    v = compare_series("lr", ONES, current, Tolerance(), allowance=allowance, factor=0.0)
    assert v.noise_factor == 0.0 and v.noise_envelope_at_failure is None


def test_an_envelope_without_groups_leaves_the_tolerance_alone() -> None:
    current = ONES.copy()
    current[0] = [1.0, 1.25]
    v = compare_series("lr", ONES, current, Tolerance(), allowance=np.zeros((4, 0)), factor=4.0)
    assert not v.passed and v.first_failure == 0 and v.noise_envelope_at_failure == 0.0


def test_without_an_allowance_there_is_no_noise_field() -> None:
    current = ONES.copy()
    current[3] = [2.0, 1.0]
    v = compare_series("lr", ONES, current, Tolerance(), factor=4.0)
    assert not v.passed and v.noise_factor is None and v.noise_envelope_at_failure is None
    assert v.to_dict()["noise_factor"] is None and v.to_dict()["noise_envelope_at_failure"] is None


@pytest.mark.parametrize(("tol", "allowed", "passed"), [
    # mean of the last 2 steps' allowance: (0.4 + 0.4) / 2 against a 0.3 difference
    (Tolerance(rtol=0.1, mode="final", last=2), 0.4, True),
    # area of the allowance (trapezoid: 0 + 0.2 + 0.4) against an area difference of 0.45
    (Tolerance(rtol=0.1, mode="auc"), 0.6, True),
])
def test_summary_modes_allow_the_summary_of_the_allowance(tol: Tolerance, allowed: float, passed: bool) -> None:
    golden = np.ones(4)
    current = np.array([1.0, 1.0, 1.3, 1.3])
    allowance = np.array([0.0, 0.0, 0.4, 0.4])
    v = compare_series("loss", golden, current, tol, allowance=allowance, factor=4.0)
    assert v.passed is passed and v.summary["failed"] is (not passed)
    assert v.summary["allowed"] == pytest.approx(allowed, abs=1e-15)
    plain = compare_series("loss", golden, current, tol)
    assert not plain.passed
    assert plain.summary["allowed"] == pytest.approx(0.1 if tol.mode == "final" else 0.3)


def test_reach_mode_ignores_the_allowance() -> None:
    # the allowance bounds values, not the step a target is reached at
    tol = Tolerance(rtol=0.1, mode="reach", target=1.0)
    golden, current = np.array([2.0, 1.0, 1.0, 1.0]), np.array([2.0, 2.0, 2.0, 1.0])
    v = compare_series("loss", golden, current, tol, allowance=np.full(4, 9.0), factor=4.0)
    assert not v.passed and v.summary["allowed"] == 0.1 and v.summary["failed"] is True
    assert (v.summary["golden"], v.summary["current"]) == (1.0, 3.0)


def test_the_tolerance_stays_when_larger_than_the_summary_allowance() -> None:
    tol = Tolerance(rtol=0.5, mode="final", last=2)
    v = compare_series("loss", np.ones(4), np.array([1.0, 1.0, 1.3, 1.3]), tol,
                       allowance=np.array([0.0, 0.0, 0.4, 0.4]), factor=4.0)
    assert v.passed and v.summary["allowed"] == 0.5


def test_compare_takes_each_series_envelope_times_the_golden_s_factor() -> None:
    golden = Trajectory({"loss": [1.0, 1.0, 1.0], "lr": [[0.1], [0.1], [0.1]]})
    current = Trajectory({"loss": [1.0, 1.3, 1.0], "lr": [[0.1], [0.1], [0.2]]})
    cal = Calibration(8, {"loss": np.array([0.0, 0.1, 0.0])}, factor=3.0)
    verdict = compare(golden, current, calibration=cal)
    loss, lr = verdict.series
    assert (loss.name, loss.passed, loss.noise_factor) == ("loss", True, 3.0)
    # no envelope for lr: the tolerance alone, and no noise fields
    assert (lr.name, lr.passed, lr.noise_factor, lr.noise_envelope_at_failure) == ("lr", False, None, None)
    assert [s.name for s in verdict.failed] == ["lr"]
    tight = compare(golden, current, calibration=Calibration(8, {"loss": np.array([0.0, 0.09, 0.0])}, factor=3.0))
    assert not tight.series[0].passed and tight.series[0].noise_envelope_at_failure == pytest.approx(0.09)
    uncalibrated = compare(golden, current)
    assert not uncalibrated.series[0].passed and uncalibrated.series[0].noise_factor is None


def test_a_narrow_envelope_s_last_group_covers_the_groups_it_lacks() -> None:
    golden = np.ones((2, 3))
    allowance = np.array([[0.25, 0.5], [0.25, 0.5]])  # 2 groups of 3
    current = np.array([[1.25, 1.5, 1.5], [1.0, 1.0, 1.5]])
    v = compare_series("lr", golden, current, Tolerance(), allowance=allowance, factor=1.0)
    assert v.passed and v.n_failed == 0
    current[1, 2] = 1.75  # the third group gets the second's 0.5, not more
    v = compare_series("lr", golden, current, Tolerance(), allowance=allowance, factor=1.0)
    assert (v.passed, v.first_failure, v.first_failure_group, v.noise_envelope_at_failure) == (False, 1, 2, 0.5)
