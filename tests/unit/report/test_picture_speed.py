"""The picture draws fast without losing what it must show: thinning keeps every spike
and NaN gap of a long curve, and the numbers a picture prints come from the full series."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pytest_optcheck.report.plotting import MAX_POINTS, drawn_points


def test_short_curves_are_drawn_whole() -> None:
    values = np.linspace(0, 1, MAX_POINTS)
    steps, drawn = drawn_points(values)
    np.testing.assert_array_equal(steps, np.arange(MAX_POINTS))
    np.testing.assert_array_equal(drawn, values)


def test_long_curves_keep_their_extremes_ends_and_nan_gaps() -> None:
    rng = np.random.default_rng(0)
    values = rng.random(100_000)
    values[12_345] = 50.0  # one spike
    values[70_000] = -3.0  # one dip
    values[40_000:41_000] = np.nan  # a gap wider than a slice
    steps, drawn = drawn_points(values)
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


def _thin_by_loop(values: np.ndarray) -> np.ndarray:
    """The steps drawn_points() keeps, slice by slice: the reference the vectorised one must match."""
    n = values.size
    edges = np.linspace(0, n, MAX_POINTS // 2 + 1).astype(np.int64)
    steps = [0, n - 1]
    for start, stop in itertools.pairwise(edges):
        part = values[start:stop]
        if np.isnan(part).all():
            steps.append(start)
        else:
            steps += [start + int(np.nanargmin(part)), start + int(np.nanargmax(part))]
    return np.unique(steps)


@pytest.mark.parametrize("seed", range(12))
def test_thinning_keeps_each_slices_first_extremes(seed: int) -> None:
    """Ties (a flat lr), scattered NaNs, NaN runs longer than a slice, all NaN: the same
    steps as a loop over the slices with nanargmin/nanargmax."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(MAX_POINTS + 1, 40 * MAX_POINTS))
    values = rng.random(n)
    if seed % 3 == 0:
        values = np.round(values * 4)  # many ties in every slice
    if seed % 2 == 0:
        values[rng.integers(0, n, 60)] = np.nan
    if seed % 4 == 1:
        start = int(rng.integers(0, n // 2))
        values[start:start + n // 5] = np.nan
    if seed == 11:
        values[:] = np.nan
    steps, drawn = drawn_points(values)
    np.testing.assert_array_equal(steps, _thin_by_loop(values))
    np.testing.assert_array_equal(drawn, values[steps])


def test_thinning_keeps_infinities() -> None:
    values = np.linspace(1.0, 2.0, 10 * MAX_POINTS)
    values[1234], values[5678] = np.inf, -np.inf
    steps, _ = drawn_points(values)
    assert 1234 in steps and 5678 in steps
