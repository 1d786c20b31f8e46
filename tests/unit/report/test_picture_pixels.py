"""A report picture pixel for pixel: a reused figure draws what a fresh one draws, and the PNG
written is the image savefig draws. Rendering makes these the slow picture tests (seconds), so
benchmarks/mutation.py maps report/picture.py to tests/unit/report/test_picture_drawing.py,
which pins the same drawing on matplotlib's objects in milliseconds."""

from __future__ import annotations

import numpy as np
import pytest


def test_a_reused_figure_draws_exactly_what_a_fresh_one_draws() -> None:
    """write_picture draws on the previous picture's figure (same panel count): pixel for
    pixel, every picture is the one a fresh figure gives, whatever was drawn before.

    Drawn as write_picture draws, under DRAWING_RC: a figure keeps the text settings it was
    made under, so one that an earlier write_picture left in the cache (tests/unit/report/
    test_report.py's, in the same process) drew differently from a fresh figure made
    outside them, and this test failed after that file only (issue 22). A picture with notes
    (a third title line) among them: the room it made at the top stayed in the reused figure
    for every later picture (fixed in draw_outcome; found by a random order of the suite)."""
    import dataclasses
    import io

    from matplotlib import rc_context
    from matplotlib.image import imread

    from pytest_optcheck.report.picture import DPI, DRAWING_RC, draw_outcome
    from tests.unit.report.test_report import dumps, evaluate, golden

    cases = [
        evaluate(golden(1.05), dumps(golden())),  # failing, log-scale loss, first-failure marks
        evaluate(golden(), dumps(golden())),  # identical: an empty relative-error panel
        evaluate(golden(nan_at=40), dumps(golden())),
        evaluate(golden(grad_norm=False), dumps(golden(grad_norm=False))),  # fewer panels
    ]
    cases.append(dataclasses.replace(cases[1], notes=("calibrated golden: a third title line",)))

    def png(outcome, reuse: bool) -> np.ndarray:
        buffer = io.BytesIO()
        with rc_context(DRAWING_RC):
            draw_outcome(outcome, "t", reuse=reuse).savefig(buffer, dpi=DPI, format="png")
        return imread(io.BytesIO(buffer.getvalue()))

    fresh = [png(outcome, reuse=False) for outcome in cases]
    for k in [0, 1, 2, 3, 4, 1, 0, 4, 2, 0]:
        np.testing.assert_array_equal(png(cases[k], reuse=True), fresh[k])


def test_a_picture_is_the_png_savefig_writes(tmp_path) -> None:
    """write_picture's file holds the image matplotlib's savefig draws, at the report's dpi."""
    import io

    from matplotlib.image import imread
    from PIL import Image

    from pytest_optcheck.report.picture import DPI, draw_outcome
    from pytest_optcheck.report.plotting import save_figure
    from tests.unit.report.test_report import dumps, evaluate, golden

    figure = draw_outcome(evaluate(golden(1.05), dumps(golden())), "t")
    buffer = io.BytesIO()
    figure.savefig(buffer, dpi=DPI, format="png")
    save_figure(figure, tmp_path / "p.png")
    np.testing.assert_array_equal(imread(tmp_path / "p.png"), imread(io.BytesIO(buffer.getvalue())))
    assert Image.open(tmp_path / "p.png").info["dpi"] == pytest.approx((DPI, DPI), abs=0.01)
