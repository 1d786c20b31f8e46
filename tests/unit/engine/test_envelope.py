"""The noise envelope (engine/envelope.py) and what it changes: compare, the golden
format, the failure text and the picture. Pure numpy, no runs."""

from __future__ import annotations

import re

import numpy as np
import pytest

from pytest_optcheck.engine.compare import compare
from pytest_optcheck.engine.envelope import Calibration, measure, round_up, running_max
from pytest_optcheck.engine.messages import render_verdict
from pytest_optcheck.engine.outcome import Outcome, Status
from pytest_optcheck.engine.tolerance import Tolerance, parse_tolerance, resolve_tolerances
from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.errors import GoldenFileError
from pytest_optcheck.golden.format import Golden, dumps, loads


def traj(loss: list[float], lr: float = 0.1) -> Trajectory:
    n = len(loss)
    return Trajectory({"loss": loss, "lr": [[lr]] * n}, [0] * n, list(range(n)))


REF = traj([1.0, 0.8, 0.6, 0.5, 0.4, 0.35])


def test_envelope_is_the_windowed_max_deviation_rounded_up() -> None:
    replica = traj([1.0, 0.8, 0.6 + 1.234e-3, 0.5, 0.4, 0.35 - 2e-5])
    cal = measure(REF, [replica, REF], "stacked", window=1)
    # 0.35 - (0.35 - 2e-5) is 2.00000000000002e-05 in binary: rounded up, never down
    np.testing.assert_allclose(cal.envelope["loss"], [0, 1.24e-3, 1.24e-3, 1.24e-3, 2.01e-5, 2.01e-5], rtol=1e-12)
    assert cal.envelope["lr"].shape == (6, 1) and not cal.envelope["lr"].any()
    assert cal.replicas == 2 and cal.allowance("loss")[2, 0] == pytest.approx(4 * 1.24e-3)
    assert list(round_up(np.array([1.231e-5, 0.0, 9.999]))) == [1.24e-5, 0.0, 10.0]
    np.testing.assert_array_equal(running_max(np.array([[0.0], [3.0], [0.0], [0.0]]), 1)[:, 0], [3, 3, 3, 0])


def test_compare_allows_the_larger_of_tolerance_and_factor_times_envelope() -> None:
    cal = Calibration(8, {"loss": np.array([0, 0, 1e-2, 1e-2, 0, 0]), "lr": np.zeros((6, 1))})
    inside = traj([1.0, 0.8, 0.6 + 3.9e-2, 0.5 - 3.9e-2, 0.4, 0.35])
    outside = traj([1.0, 0.8, 0.6, 0.5 + 4.1e-2, 0.4, 0.35])
    assert not compare(REF, inside).passed
    assert compare(REF, inside, calibration=cal).passed
    verdict = compare(REF, outside, calibration=cal)
    loss = verdict.series[0]
    assert not verdict.passed and loss.first_failure == 3 and loss.noise_factor == 4.0
    assert loss.noise_envelope_at_failure == pytest.approx(1e-2)
    text = render_verdict(verdict, REF, outside, calibration=cal)
    assert "outside 4 x noise envelope (0.01) at step 3" in text
    assert "noise envelope of 8 ulp-perturbed replicas" in text
    tiny = traj([1.0, 0.8 * 1.01, 0.6, 0.5, 0.4, 0.35])  # fails where the envelope is 0: the tolerance decides
    assert "at step 1 (and outside the tolerance, the larger there)" in render_verdict(
        compare(REF, tiny, calibration=cal), REF, tiny, calibration=cal)


def test_summary_modes_take_the_envelope_too() -> None:
    cal = Calibration(8, {"loss": np.full(6, 1e-2)})
    moved = traj([1.0, 0.8, 0.6, 0.5, 0.4 + 3e-2, 0.35 + 3e-2])
    final = {"loss": _tol("rtol=1e-4, mode=final, last=2")}
    assert not compare(REF, moved, final).passed
    assert compare(REF, moved, final, calibration=cal).passed


def _tol(text: str) -> Tolerance:
    return resolve_tolerances(["loss"], {"loss": parse_tolerance(text, where="test")})["loss"]


def test_golden_format_round_trips_the_block_and_old_goldens_are_unchanged() -> None:
    plain = Golden(REF, {"seed": 0}, {}, "t", None)
    assert "calibration" not in dumps(plain) and loads(dumps(plain)).calibration is None
    cal = measure(REF, [traj([1.0, 0.8, 0.6, 0.5, 0.4, 0.351])], "stacked")
    text = dumps(Golden(REF, {"seed": 0}, {}, "t", None, cal))
    back = loads(text)
    assert dumps(back) == text
    assert back.calibration.path == "stacked" and back.calibration.factor == 4.0 and back.calibration.window == 4
    np.testing.assert_array_equal(back.calibration.envelope["loss"], cal.envelope["loss"])
    assert '"loss": [0.0, 0.001, 0.001, 0.001, 0.001, 0.001],' in text  # one line per series, window 4


@pytest.mark.parametrize(("block", "expected"), [
    ('"calibration": {"replicas": 0, "factor": 4, "envelope": {}}', "calibration.replicas"),
    ('"calibration": {"replicas": 8, "factor": -1, "envelope": {}}', "calibration.factor"),
    ('"calibration": {"replicas": 8, "factor": 4, "envelope": {"loss": [-1]}}', "calibration.envelope.loss"),
    ('"calibration": [1]', "'calibration' is a list"),
])
def test_a_damaged_block_names_the_file_and_the_field(block: str, expected: str) -> None:
    text = dumps(Golden(REF, {"seed": 0}, {}, "t", None)).replace('"steps"', block + ',\n  "steps"')
    with pytest.raises(GoldenFileError, match=f"damaged.*{expected}"):
        loads(text, "g.json")


def test_the_picture_draws_the_band_around_the_golden() -> None:
    from pytest_optcheck.report.picture import draw_outcome

    cal = Calibration(8, {"loss": np.full(6, 1e-2), "lr": np.zeros((6, 1))}, path="stacked")
    golden = Golden(REF, {"seed": 0}, {}, "t", None, cal)
    verdict = compare(REF, REF, calibration=cal)
    outcome = Outcome(Status.PASSED, "", None, verdict, golden, golden, notes=("calibrated golden: ...",))
    figure = draw_outcome(outcome, "t")
    labels = [text.get_text() for ax in figure.axes if ax.get_legend() for text in ax.get_legend().get_texts()]
    assert "4 x noise envelope (8 replicas)" in labels
    assert "calibrated golden" in figure._suptitle.get_text()


@pytest.mark.parametrize("replica", [
    traj([1.0, 0.8, float("nan"), float("nan"), float("nan"), float("nan")]),  # blew up
    traj([1.0, 3.0, 5.0, 7.0, 9.0, 11.0]),  # finite, but as far off as the values themselves
])
def test_replicas_that_blow_up_refuse_the_golden(tmp_path, replica: Trajectory) -> None:
    """As the seed's LBFGS does: 7 of 8 replicas leave the run from step 34 on."""
    from pytest_optcheck.checks.golden_check import check_golden

    path = tmp_path / "g.json"
    outcome = check_golden(Golden(REF, {"seed": 0}), path, update=True, calibrate=2,
                           replicate=lambda n: ([REF, replica], "stacked"))
    assert outcome.status is Status.ERROR and not path.exists()
    assert "calibrate=2: " in outcome.message and "unstable at the rounding level" in outcome.message
    assert re.search(r"went NaN/inf where the run did not \(first at step 2\)|"
                     r"loss's noise envelope is \d+ x its value on the median step", outcome.message)
