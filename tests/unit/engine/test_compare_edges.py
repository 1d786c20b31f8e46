"""Edges of the comparison engine (pytest_optcheck.engine.compare) that its survivors under
benchmarks/mutation.py showed unguarded: the report's per-step relative error, silence on
NaN/inf (a project running with ``-W error`` must not see the engine's own warnings), and
the keys of the verdict as written to summary.json.
"""

from __future__ import annotations

import numpy as np
import pytest

from pytest_optcheck.engine.compare import compare, compare_series, relative_error
from pytest_optcheck.engine.tolerance import Tolerance
from pytest_optcheck.engine.trajectory import Trajectory

NAN, INF = np.nan, np.inf
#: Two groups; rows: a 50% change, zero against 1e-9, NaN against NaN, inf against inf and
#: a finite golden against inf, equal values. The current run is one step longer.
GOLDEN = np.array([[1.0, 2.0], [0.0, 0.0], [NAN, 4.0], [INF, -2.0], [5.0, 1.0]])
CURRENT = np.array([[1.5, 2.0], [0.0, 1e-9], [NAN, 2.0], [INF, INF], [5.0, 1.0], [9.0, 9.0]])


@pytest.mark.filterwarnings("error")
def test_relative_error_per_step_over_the_common_prefix_and_groups() -> None:
    np.testing.assert_array_equal(relative_error(GOLDEN, CURRENT), [0.5, INF, 0.5, INF, 0.0])
    np.testing.assert_array_equal(relative_error(GOLDEN[:, :1], CURRENT), [0.5, 0.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(relative_error(GOLDEN[:, 0], CURRENT[:, 0]), [0.5, 0.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(relative_error(np.array([-2.0, 0.0]), np.array([-1.0, NAN])), [0.5, INF])
    np.testing.assert_array_equal(relative_error(np.zeros((3, 0)), CURRENT), [0.0, 0.0, 0.0])
    assert relative_error(GOLDEN, CURRENT[:0]).shape == (0,)
    # zero against non-zero, opposite infinities, NaN against a number, an overflowing difference
    golden, current = np.array([0.0, INF, NAN, 1e308, 0.0]), np.array([1.0, -INF, 1.0, -1e308, 0.0])
    np.testing.assert_array_equal(relative_error(golden, current), [INF, INF, INF, INF, 0.0])


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize(
    "tol",
    [Tolerance(), Tolerance(direction="lower"), Tolerance(mode="final", last=2), Tolerance(mode="auc"),
     Tolerance(mode="reach", target=0.5), Tolerance(mode="reach", target=0.5, direction="higher")],
    ids=["step", "lower", "final", "auc", "reach", "reach-higher"],
)
def test_nonfinite_values_fail_without_a_numpy_warning(tol: Tolerance) -> None:
    verdict = compare_series("loss", GOLDEN, CURRENT[:5], tol)
    assert not verdict.passed and verdict.nonfinite_value == "inf"
    assert (verdict.max_abs, verdict.max_abs_at, verdict.max_rel, verdict.max_rel_at) == (2.0, (2, 1), INF, (1, 1))
    if tol.mode in ("final", "auc"):  # the worst group: the one whose current went to inf
        assert verdict.summary["group"] == 1 and verdict.summary["current"] == INF and np.isnan(verdict.summary["abs"])
    overflow = compare_series("loss", np.array([1e308, 1.0]), np.array([-1e308, 1.0]), tol)  # c - g overflows
    assert overflow.max_abs == INF or tol.mode != "step"


def test_steps_and_groups_that_decide_the_verdict() -> None:
    epoch, batch = np.array([0, 0, 1]), np.array([0, 1, 0])
    tol = Tolerance(rtol=0.0, atol=0.0)
    one = compare_series("loss", np.array([1.0]), np.array([2.0]), tol, epoch, batch)
    assert one.first_failure == 0 and one.n_failed == 1 and one.first_failure_group == 0
    passing = compare_series("loss", np.array([1.0, 1.0]), np.array([1.0, 1.0]), tol)
    assert passing.passed and passing.first_failure is None and passing.first_failure_group is None
    # a NaN golden step does not hide a failing finite step
    hidden = compare_series("loss", np.array([1.0, NAN]), np.array([2.0, NAN]), tol)
    assert hidden.n_failed == 1 and not hidden.passed
    # the step where a value went non-finite, located, and which infinity
    nonfinite = compare_series("loss", np.array([[1.0, 1.0]] * 3), np.array([[1.0, 1.0], [1.0, 1.0], [2.0, -INF]]),
                               Tolerance(rtol=0.5), epoch, batch)
    assert (nonfinite.nonfinite_step, nonfinite.nonfinite_epoch, nonfinite.nonfinite_batch) == (2, 1, 0)
    assert nonfinite.nonfinite_value == "-inf"
    short = compare_series("loss", np.array([1.0, 1.0]), np.array([1.0, 2.0]), tol, epoch[:1], batch[:1])
    assert (short.first_failure, short.first_failure_epoch, short.first_failure_batch) == (1, None, None)
    empty = compare_series("loss", np.zeros((0, 1)), np.zeros((0, 1)), tol)
    assert empty.passed and empty.fraction_failed == 0.0 and empty.max_abs == 0.0
    # 29% of the steps outside tolerance with budget=0.29: 0.29 * 100000 is 28999.999999999996 in floats
    budget = compare_series("loss", np.zeros(100_000), np.r_[np.ones(29_000), np.zeros(71_000)],
                            tol.merged({"budget": 0.29}))
    assert budget.passed and budget.n_failed == 29_000
    # a non-finite step does not count in the largest errors
    small = compare_series("loss", np.array([1.0, 1.0]), np.array([1.1, NAN]), Tolerance(rtol=0.5))
    assert small.max_abs == pytest.approx(0.1) and small.max_rel == pytest.approx(0.1) and small.max_abs_at == (0, 0)


def test_summary_of_a_summary_mode_names_the_worst_group() -> None:
    golden = np.array([[1.0, 0.0], [1.0, 0.0]])
    final = compare_series("loss", golden, golden + [[0.0, 0.5], [0.0, 0.5]], Tolerance(mode="final"))
    assert final.summary == {"golden": 0.0, "current": 0.5, "abs": 0.5, "rel": INF, "allowed": 0.0, "group": 1,
                             "failed": True}
    same = compare_series("loss", golden[:, :1], golden[:, :1], Tolerance(mode="final", rtol=0.1, atol=0.5))
    assert same.summary == {"golden": 1.0, "current": 1.0, "abs": 0.0, "rel": 0.0, "allowed": 0.6, "failed": False}
    zero = compare_series("loss", golden[:, 1:], golden[:, 1:], Tolerance(mode="final"))
    assert zero.summary["rel"] == 0.0 and zero.passed
    half = compare_series("loss", np.array([2.0]), np.array([3.0]), Tolerance(mode="final"))
    assert (half.summary["abs"], half.summary["rel"]) == (1.0, 0.5)
    # both groups fail; the worst is the larger difference (1.0 in group 0), not the larger values
    both = compare_series("loss", np.array([[1.0, 10.0]]), np.array([[2.0, 10.5]]), Tolerance(mode="final", rtol=0))
    assert both.summary["group"] == 0
    # inf is worse than a difference that is NaN? No: NaN counts as the worst, inf first in order
    odd = compare_series("loss", np.array([[1.0, 1.0]]), np.array([[INF, NAN]]), Tolerance(mode="final"))
    assert odd.summary["group"] == 0


@pytest.mark.filterwarnings("error")
def test_reach_never_reached_on_one_side() -> None:
    never = np.array([1.0, 0.9, 0.8])
    reaches = np.array([1.0, 0.4, 0.3])
    tol = Tolerance(mode="reach", target=0.5)
    lost = compare_series("loss", reaches, never, tol)
    assert not lost.passed and lost.summary["golden"] == 1.0 and lost.summary["current"] == INF
    assert not compare_series("loss", never, reaches, tol).passed  # a change, and direction=both
    assert compare_series("loss", never, reaches, tol.merged({"direction": "lower"})).passed
    assert compare_series("loss", never, never, tol).passed  # inf - inf inside, without a warning
    exact = compare_series("loss", np.array([1.0, 0.5]), np.array([1.0, 0.5]), tol)
    assert exact.passed and exact.summary["golden"] == 1.0  # <= target counts as reaching it
    edge = compare_series("loss", np.array([1.0, 1.0, 0.4]), np.array([1.0, 1.0, 1.0, 0.4]),
                          tol.merged({"atol": 1, "rtol": 0}))
    assert edge.summary["abs"] == 1.0 and edge.summary["failed"] is False  # exactly the allowed difference passes
    empty = compare_series("loss", np.zeros((0, 2)), np.zeros((0, 2)), tol)
    assert empty.passed and empty.summary["golden"] == INF
    # per group: group 1 never reaches it in the golden, reaches it at step 2 now
    golden = np.array([[1.0, 1.0], [0.4, 1.0], [0.3, 1.0]])
    now = np.array([[1.0, 1.0], [0.4, 1.0], [0.3, 0.2]])
    grouped = compare_series("loss", golden, now, tol)
    assert not grouped.passed and (grouped.summary["group"], grouped.summary["golden"], grouped.summary["current"]) == (
        1, INF, 2.0)
    # the first step reaching it is found per group, not over the flattened array
    per_group = compare_series("loss", np.array([[1.0, 0.4], [0.4, 0.4]]), np.array([[1.0, 1.0], [0.4, 0.4]]), tol)
    assert (per_group.summary["group"], per_group.summary["golden"], per_group.summary["current"]) == (1, 0.0, 1.0)


def test_verdict_dict_keys_are_those_summary_json_documents() -> None:
    golden = Trajectory({"loss": [1.0, 2.0], "gone": [1.0, 1.0]}, [0, 0], [0, 1])
    current = Trajectory({"loss": [1.0, 2.5], "new": [1.0, 1.0]}, [0, 0], [0, 1])
    data = compare(golden, current).to_dict()
    assert data["passed"] is False and data["worst"] == "loss"
    assert (data["missing_series"], data["extra_series"]) == (["gone"], ["new"])
    series = data["series"][0]
    assert series["tolerance"] == {"rtol": 1e-4, "atol": 1e-7, "mode": "step", "direction": "both", "budget": 0.0,
                                   "last": 1, "target": None}
    assert (series["fraction_failed"], series["first_failure_group"], series["passed"]) == (0.5, 0, False)
    assert compare(golden, golden).to_dict()["worst"] == "loss"  # nothing failed: the largest change overall
    assert compare(Trajectory({}, [], []), Trajectory({}, [], [])).to_dict()["worst"] is None
