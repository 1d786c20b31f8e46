"""The one tolerance rule (engine/bound.py): atol + rtol*|golden|, widened by a calibrated
golden's allowance; and the places that judge or show a difference agree with it."""

from __future__ import annotations

import numpy as np

from pytest_optcheck.engine.bound import allowed
from pytest_optcheck.engine.compare import compare_series, outside_tolerance
from pytest_optcheck.engine.stepwise import compare_tensors
from pytest_optcheck.engine.tolerance import Tolerance
from pytest_optcheck.report.picture import allowed_relative

TOL = Tolerance(rtol=1e-3, atol=1e-6)


def test_bound_is_atol_plus_rtol_times_golden_widened_by_the_allowance() -> None:
    golden = np.array([-2.0, 0.0, 5.0])
    assert allowed(TOL, golden).tolist() == [1e-6 + 1e-3 * 2.0, 1e-6, 1e-6 + 1e-3 * 5.0]
    wide = allowed(TOL, golden, np.array([0.0, 1.0, 0.0]))
    assert wide.tolist() == [1e-6 + 1e-3 * 2.0, 1.0, 1e-6 + 1e-3 * 5.0]
    assert float(allowed(TOL, -4.0)) == 1e-6 + 4e-3  # one number, as the summaries use it


def test_comparison_tensors_and_picture_use_the_same_bound() -> None:
    golden = np.array([1.0, 2.0, 4.0])
    bound = allowed(TOL, golden)
    inside, outside = golden + 0.99 * bound, golden + 1.01 * bound
    assert not outside_tolerance(golden, inside, TOL).any()
    assert outside_tolerance(golden, outside, TOL).all()
    step = compare_tensors([{"w": golden}], [{"w": outside}], {"params": TOL, "state": TOL})
    assert step.first is not None and step.first.name == "w"
    assert compare_tensors([{"w": golden}], [{"w": inside}], {"params": TOL, "state": TOL}).passed
    np.testing.assert_allclose(allowed_relative(golden, TOL, 3), bound / golden, rtol=1e-12)


def test_summary_modes_report_the_widened_bound() -> None:
    golden, current = np.ones(4), np.ones(4) * 1.5
    final = Tolerance(rtol=1e-3, mode="final")
    plain = compare_series("loss", golden, current, final)
    assert plain.summary is not None and plain.summary["allowed"] == float(allowed(final, 1.0))
    widened = compare_series("loss", golden, current, final, allowance=np.full(4, 0.6), factor=1.0)
    assert widened.summary is not None and widened.summary["allowed"] == 0.6 and widened.passed


def test_non_finite_and_huge_goldens_give_a_bound_without_a_warning() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 0 * inf (invalid), 10 * 1e308 (overflow): the callers judge them
        exact = allowed(Tolerance(rtol=0.0, atol=0.0), np.array([np.inf]))
        huge = allowed(Tolerance(rtol=10.0, atol=0.0), np.array([1e308]))
    assert np.isnan(exact[0]) and huge[0] == np.inf
