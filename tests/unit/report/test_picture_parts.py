"""report/picture.py's parts pinned on the Figure and Axes objects (not pixels): the grid's size
and margins, the panels' order and cap, titles, styles of golden and current, the allowed error."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_optcheck.engine.outcome import Outcome, Status
from pytest_optcheck.engine.tolerance import Tolerance
from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.golden.format import Golden
from pytest_optcheck.report import picture
from pytest_optcheck.report.picture import (
    MAX_SERIES_PANELS,
    SERIES_ORDER,
    allowed_relative,
    draw_outcome,
    epoch_panel_series,
    panel_series,
    shorten,
)


def test_constants() -> None:
    assert SERIES_ORDER == ("loss", "lr", "momentum", "grad_norm", "param_norm", "update_norm", "sparsity")
    assert MAX_SERIES_PANELS == 7 and picture.LEGEND_LOC == "best"
    assert picture.GOLDEN_STYLE == {"color": "0.25", "linestyle": "--", "linewidth": 1.4}
    assert picture.CURRENT_WIDTH == 1.2 and picture.DRAWING_RC == {"text.hinting": "no_hinting"}


def test_shorten() -> None:
    assert shorten("abc", 3) == "abc" and shorten("abcd", 3) == "ab…"


def test_panel_series_usual_first_and_capped() -> None:
    golden = Trajectory({"zeta": np.ones(2), "lr": np.ones(2), "loss": np.ones(2)})
    current = Trajectory({"alpha": np.ones(2), "loss": np.ones(2), **{f"s{i}": np.ones(2) for i in range(6)}})
    assert panel_series(golden, None) == ["loss", "lr", "zeta"]
    assert panel_series(None, current)[:3] == ["loss", "alpha", "s0"]
    assert panel_series(golden, current) == ["loss", "lr", "zeta", "alpha", "s0", "s1", "s2"]
    assert panel_series(None, None) == []


def test_epoch_panel_series_of_either_side() -> None:
    a = Trajectory({"loss": np.ones(2)}, epoch_series={"val": np.ones(1)})
    b = Trajectory({"loss": np.ones(2)}, epoch_series={"acc": np.ones(1), "val": np.ones(1)})
    assert epoch_panel_series(a, b) == ["val", "acc"] and epoch_panel_series(None, None) == []


@pytest.mark.parametrize(("panels", "size", "shape"), [
    (1, (8.0, 3.4), (1, 1)), (3, (8.0, 8.4), (3, 1)), (4, (12.0, 5.9), (2, 2)), (5, (12.0, 8.4), (3, 2)),
])
def test_the_grid(panels: int, size: tuple[float, float], shape: tuple[int, int]) -> None:
    figure, axes = picture._new_grid(panels)
    assert tuple(figure.get_size_inches()) == pytest.approx(size)
    assert len(figure.axes) == shape[0] * shape[1] and len(axes) == shape[0] * shape[1]
    assert [a.axison for a in axes] == [True] * panels + [False] * (len(axes) - panels)
    pars = figure.subplotpars
    width, height = size
    assert (pars.left, pars.right, pars.bottom) == pytest.approx((0.8 / width, 1 - 0.2 / width, 0.5 / height))
    assert (pars.hspace, pars.wspace) == pytest.approx((0.9 / 2.5, 0.18))
    axis = axes[0]
    assert axis.get_xlabel() == "step" and axis.xaxis.label.get_fontsize() == 8
    assert axis.xaxis.label.get_horizontalalignment() == "right"
    assert axis.xaxis.label.get_verticalalignment() == "top"
    assert axis.yaxis.get_offset_text().get_fontsize() == 7


def test_grid_reuse_keeps_a_figure_per_panel_count() -> None:
    figure, _ = picture._grid(2, reuse=True)
    again, axes2 = picture._grid(2, reuse=True)
    assert again is figure and len(axes2) == 2
    fresh, _ = picture._grid(2)
    assert fresh is not figure
    _, axes0 = picture._grid(0)
    assert len(axes0) == 1


def golden(values: np.ndarray, **series: np.ndarray) -> Golden:
    return Golden(Trajectory({"loss": values, **series}), spec={"a": 1})


def titles(figure: object) -> list[str]:
    return [a.get_title(loc="left") for a in figure.axes if a.axison]  # type: ignore[attr-defined]


def test_a_missing_golden_draws_the_current_run_only() -> None:
    outcome = Outcome(Status.MISSING, "m", "g.json", current=golden(np.linspace(1, 0.5, 4)))
    figure = draw_outcome(outcome, "t" * 120)
    assert titles(figure) == ["loss"]
    assert figure._suptitle.get_text() == "t" * 109 + "…\nMISSING · no golden to compare with: current run only"
    assert figure._suptitle.get_color() == "#ad8b00" and figure._suptitle.get_fontsize() == 10
    (line,) = figure.axes[0].get_lines()
    assert line.get_label() == "current" and line.get_color() == "C0" and line.get_linewidth() == 1.2
    assert figure.subplotpars.top == pytest.approx(1 - 0.75 / figure.get_figheight())


def test_notes_make_room_for_a_third_title_line() -> None:
    outcome = Outcome(Status.ERROR, "m", current=golden(np.ones(3)), notes=("a", "b"))
    figure = draw_outcome(outcome, "t")
    assert figure._suptitle.get_text() == "t\nERROR · no golden to compare with: current run only\na; b"
    assert figure.subplotpars.top == pytest.approx(1 - 0.95 / figure.get_figheight())
    assert figure._suptitle.get_color() == "#6a1b9a"


def test_nothing_recorded() -> None:
    figure = draw_outcome(Outcome(Status.CORRUPT, "m"), "t")
    assert figure.axes[0].texts[0].get_text() == "no trajectory was recorded"
    assert not figure.axes[0].axison


def test_config_changed_names_the_keys() -> None:
    old, new = golden(np.ones(3)), Golden(Trajectory({"loss": np.ones(3)}), spec={"a": 2, "b": 1})
    figure = draw_outcome(Outcome(Status.CONFIG_CHANGED, "m", golden=old, current=new), "t")
    assert figure._suptitle.get_text() == "t\nCONFIG-CHANGED · configuration changed (a, b): numbers not compared"


def test_golden_and_current_styles_and_groups() -> None:
    g = Golden(Trajectory({"lr": np.ones((3, 2)) * [1.0, 2.0]}))
    figure = draw_outcome(Outcome(Status.UPDATED, "m", golden=g, current=g), "t")
    axis = next(a for a in figure.axes if a.get_title(loc="left") == "lr")
    lines = {line.get_label(): line for line in axis.get_lines()}
    assert sorted(lines) == ["current (group 0)", "current (group 1)", "golden (group 0)", "golden (group 1)"]
    assert lines["current (group 1)"].get_color() == "C1" and lines["golden (group 1)"].get_color() == "0.25"
    assert lines["golden (group 0)"].get_linestyle() == "--" and lines["golden (group 0)"].get_linewidth() == 1.4
    np.testing.assert_array_equal(lines["current (group 1)"].get_ydata(), [2.0, 2.0, 2.0])
    assert axis._left_title.get_fontsize() == 9


def test_allowed_relative() -> None:
    g = np.array([[1.0, 2.0], [0.0, 4.0], [2.0, 0.0]])
    tol = Tolerance(rtol=0.1, atol=0.0)
    np.testing.assert_allclose(allowed_relative(g, tol, 3), [0.1, 0.1, 0.1])
    np.testing.assert_allclose(allowed_relative(g[:, :1], tol, 2), [0.1, np.inf])
    np.testing.assert_allclose(allowed_relative(g, Tolerance(rtol=0.0, atol=0.2), 2), [0.1, 0.05])
    allowance = np.array([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]])
    np.testing.assert_allclose(allowed_relative(g, Tolerance(rtol=0.0, atol=0.0), 3, allowance),
                               [0.25, 0.125, 0.25])
    assert allowed_relative(np.ones((2, 0)), tol, 2).shape == (2,)
    assert np.isnan(allowed_relative(np.ones((2, 0)), tol, 2)).all()
