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


def test_relative_error_per_step_over_the_common_prefix_and_groups() -> None:
    np.testing.assert_array_equal(relative_error(GOLDEN, CURRENT), [0.5, INF, 0.5, INF, 0.0])
    np.testing.assert_array_equal(relative_error(GOLDEN[:, :1], CURRENT), [0.5, 0.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(relative_error(GOLDEN[:, 0], CURRENT[:, 0]), [0.5, 0.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(relative_error(np.array([-2.0, 0.0]), np.array([-1.0, NAN])), [0.5, INF])
    np.testing.assert_array_equal(relative_error(np.zeros((3, 0)), CURRENT), [0.0, 0.0, 0.0])
    assert relative_error(GOLDEN, CURRENT[:0]).shape == (0,)


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


def test_summary_of_a_summary_mode_names_the_worst_group() -> None:
    golden = np.array([[1.0, 0.0], [1.0, 0.0]])
    final = compare_series("loss", golden, golden + [[0.0, 0.5], [0.0, 0.5]], Tolerance(mode="final"))
    assert final.summary == {"golden": 0.0, "current": 0.5, "abs": 0.5, "rel": INF, "allowed": 0.0, "group": 1,
                             "failed": True}
    same = compare_series("loss", golden[:, :1], golden[:, :1], Tolerance(mode="final", rtol=0.1, atol=0.5))
    assert same.summary == {"golden": 1.0, "current": 1.0, "abs": 0.0, "rel": 0.0, "allowed": 0.6, "failed": False}
    zero = compare_series("loss", golden[:, 1:], golden[:, 1:], Tolerance(mode="final"))
    assert zero.summary["rel"] == 0.0 and zero.passed


def test_reach_never_reached_on_one_side() -> None:
    never = np.array([1.0, 0.9, 0.8])
    reaches = np.array([1.0, 0.4, 0.3])
    tol = Tolerance(mode="reach", target=0.5)
    lost = compare_series("loss", reaches, never, tol)
    assert not lost.passed and lost.summary["golden"] == 1.0 and lost.summary["current"] == INF
    assert not compare_series("loss", never, reaches, tol).passed  # a change, and direction=both
    assert compare_series("loss", never, reaches, tol.merged({"direction": "lower"})).passed
    exact = compare_series("loss", np.array([1.0, 0.5]), np.array([1.0, 0.5]), tol)
    assert exact.passed and exact.summary["golden"] == 1.0  # <= target counts as reaching it


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
