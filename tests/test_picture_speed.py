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


def test_a_reused_figure_draws_exactly_what_a_fresh_one_draws() -> None:
    """write_picture draws on the previous picture's figure (same panel count): pixel for
    pixel, every picture is the one a fresh figure gives, whatever was drawn before."""
    import io

    from matplotlib.image import imread
    from test_report import dumps, evaluate, golden

    from pytest_optcheck.report.picture import DPI, draw_outcome

    cases = [
        evaluate(golden(1.05), dumps(golden())),  # failing, log-scale loss, first-failure marks
        evaluate(golden(), dumps(golden())),  # identical: an empty relative-error panel
        evaluate(golden(nan_at=40), dumps(golden())),
        evaluate(golden(grad_norm=False), dumps(golden(grad_norm=False))),  # fewer panels
    ]

    def png(outcome, reuse: bool) -> np.ndarray:
        buffer = io.BytesIO()
        draw_outcome(outcome, "t", reuse=reuse).savefig(buffer, dpi=DPI, format="png")
        return imread(io.BytesIO(buffer.getvalue()))

    fresh = [png(outcome, reuse=False) for outcome in cases]
    for k in [0, 1, 2, 3, 1, 0, 2, 0]:
        np.testing.assert_array_equal(png(cases[k], reuse=True), fresh[k])
