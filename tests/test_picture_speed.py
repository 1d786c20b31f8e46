"""The picture draws fast without losing what it must show: thinning keeps every spike
and NaN gap of a long curve, and the numbers a picture prints come from the full series."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_optcheck.report.picture import MAX_POINTS, thin


def test_short_curves_are_drawn_whole() -> None:
    values = np.linspace(0, 1, MAX_POINTS)
    steps, drawn = thin(values)
    np.testing.assert_array_equal(steps, np.arange(MAX_POINTS))
    np.testing.assert_array_equal(drawn, values)


def test_long_curves_keep_their_extremes_ends_and_nan_gaps() -> None:
    rng = np.random.default_rng(0)
    values = rng.random(100_000)
    values[12_345] = 50.0  # one spike
    values[70_000] = -3.0  # one dip
    values[40_000:41_000] = np.nan  # a gap wider than a slice
    steps, drawn = thin(values)
    assert len(steps) <= MAX_POINTS + 2 and np.all(np.diff(steps) > 0)
    assert steps[0] == 0 and steps[-1] == values.size - 1
    assert 12_345 in steps and 70_000 in steps
    np.testing.assert_array_equal(drawn, values[steps])  # drawn values are the values, unaveraged
    assert np.isnan(drawn).any()  # the gap stays a gap
    for start in range(0, values.size, 5_000):  # every stretch's min and max are drawn
        part = values[start:start + 5_000]
        inside = (steps >= start) & (steps < start + 5_000)
        if np.isfinite(part).any():
            assert np.nanmax(drawn[inside]) == pytest.approx(np.nanmax(part))
            assert np.nanmin(drawn[inside]) == pytest.approx(np.nanmin(part))
