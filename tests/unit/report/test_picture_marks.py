"""What a picture marks beyond the curves: the steps a GradScaler skipped (a dashed line on every
series panel, so a loss that stands still there reads as a skipped update, not a plateau) and the
per-epoch series of ``rec.log_epoch``, drawn one point an epoch on an epoch axis."""

from __future__ import annotations

import numpy as np

from pytest_optcheck.checks.golden_check import judge
from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.golden.format import Golden, dumps
from pytest_optcheck.report.picture import draw_outcome

STEPS = 12
SKIPPED = [3, 7]


def run(val_scale: float = 1.0) -> Golden:
    skipped = np.zeros(STEPS)
    skipped[SKIPPED] = 1.0
    series = {"loss": np.exp(-np.linspace(0, 2, STEPS)), "lr": np.full(STEPS, 0.01), "skipped": skipped}
    traj = Trajectory(series, epoch=np.arange(STEPS) // 4, batch=np.arange(STEPS) % 4,
                      epoch_series={"val_loss": np.array([0.9, 0.6, 0.5]) * val_scale})
    return Golden(traj, spec={"optimizer": "SGD(lr=0.01)"}, environment={"torch": "2.13.0"}, test="t.py::test_a")


def panels(val_scale: float = 1.0) -> dict[str, object]:
    figure = draw_outcome(judge(run(val_scale), dumps(run())), "t", reuse=True)
    return {axis.get_title(loc="left"): axis for axis in figure.axes}


def test_skipped_steps_are_marked_on_every_series_panel_but_their_own() -> None:
    drawn = panels()
    for title in ("loss", "lr"):
        marks = [c for c in drawn[title].collections if c.get_label() == "skipped step"]
        assert len(marks) == 1, title
        assert sorted(int(seg[0][0]) for seg in marks[0].get_segments()) == SKIPPED
    assert not [c for c in drawn["skipped"].collections if c.get_label() == "skipped step"]


def test_a_per_epoch_series_is_drawn_per_epoch_on_an_epoch_axis() -> None:
    axis = panels(val_scale=1.1)["val_loss (per epoch)"]
    assert axis.get_xlabel() == "epoch"
    lines = {line.get_label(): line for line in axis.get_lines()}
    np.testing.assert_array_equal(lines["golden"].get_xdata(), [0, 1, 2])
    np.testing.assert_allclose(lines["current"].get_ydata(), np.array([0.9, 0.6, 0.5]) * 1.1)


def test_a_picture_without_either_draws_no_marks_and_no_epoch_panel() -> None:
    plain = Trajectory({"loss": np.linspace(1, 0.5, STEPS)})
    figure = draw_outcome(judge(Golden(plain), dumps(Golden(plain))), "t", reuse=True)
    assert [a.get_title(loc="left") for a in figure.axes][:1] == ["loss"]
    assert not any(c.get_label() == "skipped step" for a in figure.axes for c in a.collections)
    assert not any(a.get_xlabel() == "epoch" for a in figure.axes)
