"""The verdict's JSON form (written into the results file and the report): per-epoch series
appear under their own key, and only where the run has any, so results of runs without
``rec.log_epoch`` keep their shape."""

from __future__ import annotations

import warnings

import numpy as np

from pytest_optcheck.engine.compare import compare, compare_series
from pytest_optcheck.engine.tolerance import Tolerance
from pytest_optcheck.engine.trajectory import Trajectory


def test_per_epoch_verdicts_are_written_under_their_own_key() -> None:
    golden = Trajectory({"loss": [1.0, 0.9]}, [0, 1], epoch_series={"val_loss": [0.5, 0.4]})
    current = Trajectory({"loss": [1.0, 0.9]}, [0, 1], epoch_series={"val_loss": [0.5, 0.45]})
    data = compare(golden, current).to_dict()
    assert data["passed"] is False
    assert [s["name"] for s in data["series"]] == ["loss"]
    assert [(s["name"], s["passed"], s["first_failure"]) for s in data["epoch_series"]] == [("val_loss", False, 1)]


def test_a_run_without_per_epoch_series_has_no_such_key() -> None:
    t = Trajectory({"loss": [1.0, 0.9]})
    data = compare(t, t).to_dict()
    assert data["passed"] is True and "epoch_series" not in data
    assert set(data) == {"passed", "missing_series", "extra_series", "worst", "series"}


def test_a_run_without_steps_against_a_calibrated_golden_states_the_plain_allowance() -> None:
    """No step of the current run to widen: the summary's allowance is the tolerance's own
    (rtol * |golden|), not NaN from an empty slice of the envelope."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the empty current's own mean
        v = compare_series("loss", np.array([1.0, 0.9]), np.zeros((0, 1)), Tolerance(rtol=0.1, mode="final"),
                           allowance=np.array([0.5, 0.5]))
    assert not v.passed and v.length_mismatch
    assert v.summary["golden"] == 0.9 and v.summary["allowed"] == 0.09000000000000001
