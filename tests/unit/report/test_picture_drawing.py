"""report/picture.py's drawing pinned on matplotlib's objects, not on pixels: what each panel
holds (lines' data and style, bands, marks, texts, legends, scales) for small trajectories, a
figure built once per test and never rendered, so each test takes milliseconds."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from pytest_optcheck.checks.golden_check import judge
from pytest_optcheck.engine.envelope import Calibration
from pytest_optcheck.engine.outcome import Outcome, Status
from pytest_optcheck.engine.thinning import thin
from pytest_optcheck.engine.tolerance import Tolerance
from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.golden.format import Golden, dumps
from pytest_optcheck.report import picture
from pytest_optcheck.report.picture import draw_outcome, write_picture
from pytest_optcheck.report.plotting import new_figure

RED, GREEN = "#c62828", "#2e7d32"
STEPS = 40


def run(loss: np.ndarray | None = None, **series: np.ndarray) -> Golden:
    loss = np.linspace(1.0, 0.1, STEPS) if loss is None else loss
    n = len(loss)
    return Golden(Trajectory({"loss": loss, **series}, np.arange(n) // 20, np.arange(n) % 20), spec={"a": 1})


def drifted(start: int, factor: float = 1.5, **series: np.ndarray) -> Golden:
    loss = np.linspace(1.0, 0.1, STEPS)
    loss[start:] *= factor
    return run(loss, **series)


def panels(figure: object) -> dict[str, object]:
    return {a.get_title(loc="left"): a for a in figure.axes if a.axison}  # type: ignore[attr-defined]


def lines(axis: object) -> dict[str, object]:
    return {line.get_label(): line for line in axis.get_lines()}  # type: ignore[attr-defined]


def axis() -> object:
    return new_figure((4, 3), dpi=90).subplots()


REL = "relative error |current - golden| / |golden|"


# -- write_picture -------------------------------------------------------------------


def test_write_picture_saves_the_reused_figure_under_the_drawing_settings(monkeypatch, tmp_path) -> None:
    import matplotlib

    saved = []
    monkeypatch.setattr(picture, "save_figure",
                        lambda figure, path: saved.append((figure, path, matplotlib.rcParams["text.hinting"])))
    assert write_picture(str(tmp_path / "p.png"), Outcome(Status.MISSING, "m", current=run()), "t") is True
    ((figure, path, hinting),) = saved
    assert path == tmp_path / "p.png" and isinstance(path, Path)
    assert hinting == "no_hinting"
    assert picture._FIGURES[1][0] is figure  # reuse=True: kept for the next picture of one panel


def test_write_picture_writes_a_png(tmp_path) -> None:
    assert write_picture(tmp_path / "p.png", Outcome(Status.MISSING, "m", current=run(np.ones(3))), "t")
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_drawing_problem_warns_and_returns_false(monkeypatch, tmp_path) -> None:
    callers = []

    def broken(figure, path):
        caller = sys._getframe(2)  # 0: here, 1: write_picture, 2: the line that called write_picture
        callers.append((caller.f_code.co_filename, caller.f_lineno))
        raise ValueError("boom")

    monkeypatch.setattr(picture, "save_figure", broken)
    path = tmp_path / "p.png"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert write_picture(path, Outcome(Status.MISSING, "m", current=run()), "t") is False
    (warning,) = caught
    assert str(warning.message) == f"optcheck: could not draw the picture {str(path)!r}: ValueError('boom')"
    assert warning.category is UserWarning
    assert callers == [(warning.filename, warning.lineno)]  # stacklevel=2: the line that called write_picture


# -- the figure --------------------------------------------------------------------------


def test_panels_series_then_relative_error_when_both_sides_share_a_series() -> None:
    outcome = judge(drifted(10, grad_norm=np.linspace(2, 1, STEPS)), dumps(run(grad_norm=np.linspace(2, 1, STEPS))))
    assert list(panels(draw_outcome(outcome, "t"))) == ["loss", "grad_norm", REL]
    only_current = Outcome(Status.MISSING, "m", current=run())
    assert list(panels(draw_outcome(only_current, "t"))) == ["loss"]
    disjoint = Outcome(Status.UPDATED, "m", golden=Golden(Trajectory({"a": np.ones(3)})),
                       current=Golden(Trajectory({"b": np.ones(3)})))
    assert list(panels(draw_outcome(disjoint, "t"))) == ["a", "b"]  # nothing to compare: no error panel


def test_a_figure_with_a_per_epoch_panel_is_never_reused() -> None:
    plain = Outcome(Status.MISSING, "m", current=run())
    assert draw_outcome(plain, "t", reuse=True) is draw_outcome(plain, "t", reuse=True)
    assert draw_outcome(plain, "t") is not draw_outcome(plain, "t")
    per_epoch = Golden(Trajectory({"loss": np.ones(4)}, epoch_series={"val": np.ones(2)}))
    with_epochs = Outcome(Status.MISSING, "m", current=per_epoch)
    assert draw_outcome(with_epochs, "t", reuse=True) is not draw_outcome(with_epochs, "t", reuse=True)


def test_nothing_recorded_says_so_in_the_middle_of_a_bare_panel() -> None:
    figure = draw_outcome(Outcome(Status.CORRUPT, "m"), "t")
    (text,) = figure.axes[0].texts
    assert text.get_text() == "no trajectory was recorded" and text.get_position() == (0.5, 0.5)
    assert (text.get_horizontalalignment(), text.get_verticalalignment()) == ("center", "center")
    assert text.get_transform() is figure.axes[0].transAxes
    assert figure._suptitle.get_color() == "#6a1b9a"


def test_a_status_outside_the_known_ones_is_titled_in_black() -> None:
    figure = draw_outcome(Outcome("skipped", "m", current=run()), "t")  # type: ignore[arg-type]
    assert figure._suptitle.get_color() == "black"
    assert figure._suptitle.get_text() == "t\nSKIPPED · no golden to compare with: current run only"


def test_a_reused_figure_drops_the_room_an_earlier_picture_made_for_notes() -> None:
    plain = Outcome(Status.MISSING, "m", current=run())
    noted = Outcome(Status.MISSING, "m", current=run(), notes=("calibrated",))
    figure = draw_outcome(noted, "t", reuse=True)
    assert figure.subplotpars.top == pytest.approx(1 - 0.95 / figure.get_figheight())
    assert draw_outcome(plain, "t", reuse=True) is figure
    assert figure.subplotpars.top == pytest.approx(1 - 0.75 / figure.get_figheight())


def plain(values: object) -> list[float | None]:
    arr = np.asarray(values, float).round(9)
    return [None if nan else v for v, nan in zip(arr.tolist(), np.isnan(arr).tolist())]  # NaN == NaN here


def parts(figure: object) -> list[object]:
    """Everything a panel shows, as plain values: what a reused figure must draw as a fresh one."""
    out = []
    for ax in figure.axes:  # type: ignore[attr-defined]
        legend = ax.get_legend()
        out.append((
            ax.axison, ax.get_title(loc="left"), ax.get_xscale(), ax.get_yscale(),
            tuple(np.round(ax.get_xlim(), 9)), tuple(np.round(ax.get_ylim(), 9)),
            [(ln.get_label(), ln.get_color(), ln.get_linestyle(), ln.get_linewidth(),
              plain(ln.get_xdata()), plain(ln.get_ydata()))
             for ln in ax.get_lines()],
            [t.get_text() for t in ax.texts], len(ax.patches),
            [(c.get_label(), np.round(c.get_facecolor(), 6).tolist()) for c in ax.collections],
            None if legend is None else [t.get_text() for t in legend.get_texts()],
            [t.get_text() for t in ax.get_yticklabels()] if ax.axison and ax.get_yscale() == "linear" else None,
            len(ax.get_yticks()) == 0,
        ))
    return out


def test_a_reused_figure_shows_exactly_what_a_fresh_one_shows() -> None:
    grad = np.linspace(2.0, 0.5, STEPS)
    cal = Golden(Trajectory({"loss": np.linspace(1, 0.1, STEPS), "grad_norm": grad}), spec={"a": 1},
                 calibration=Calibration(2, {"loss": np.full(STEPS, 0.01)}))
    skipped = np.zeros(STEPS)
    skipped[5] = 1
    cases = [
        judge(drifted(10, grad_norm=grad), dumps(run(grad_norm=grad))),  # failing: log scale, marks, legends
        judge(run(grad_norm=grad), dumps(run(grad_norm=grad))),  # identical: an empty error panel
        Outcome(Status.UPDATED, "m", golden=cal, current=cal),  # a noise band
        Outcome(Status.MISSING, "m", current=run(lr=np.full(STEPS, 0.1), skipped=skipped)),
        Outcome(Status.CORRUPT, "m"),  # nothing recorded: one bare panel
        Outcome(Status.MISSING, "m", current=run(-np.linspace(1, 2, STEPS))),  # a linear loss axis
        Outcome(Status.MISSING, "m", current=Golden(thin(drifted(3).trajectory, 4))),  # bucket bands
    ]
    fresh = [parts(draw_outcome(outcome, "t")) for outcome in cases]
    for k in [0, 1, 2, 0, 3, 5, 3, 4, 0, 4, 1, 0, 2, 1, 6, 0, 6, 6]:
        assert parts(draw_outcome(cases[k], "t", reuse=True)) == fresh[k], k


def test_a_reused_grid_turns_its_spare_panels_off_again() -> None:
    five = Outcome(Status.MISSING, "m", current=Golden(Trajectory({f"s{i}": np.ones(3) for i in range(5)})))
    figure = draw_outcome(five, "t", reuse=True)
    assert [a.axison for a in figure.axes] == [True] * 5 + [False]
    again, axes = picture._grid(5, reuse=True)
    assert again is figure and len(axes) == 5
    assert [a.axison for a in figure.axes] == [True] * 5 + [False]
    assert all(not a.lines and a.get_title(loc="left") == "" for a in axes)


def test_a_cleared_panel_is_a_new_one() -> None:
    _, (ax,) = picture._grid(1)
    ax.plot([1, 2], [10, 100], label="x")
    ax.text(0, 0, "note")
    ax.fill_between([1, 2], [1, 1], [2, 2])
    ax.legend()
    ax.set_yscale("log")
    ax.set_title("old", loc="left")
    ax.set_axis_off()
    picture._clear(ax)
    assert not ax.lines and not ax.texts and not ax.collections and ax.get_legend() is None
    assert ax.get_yscale() == "linear" and ax.get_xlim() == (0, 1) and ax.get_ylim() == (0, 1)
    assert ax.get_autoscale_on() and ax.axison and ax.get_title(loc="left") == ""
    ax.plot([5, 6], [7, 8])  # autoscaling again: the limits follow the new data
    assert ax.get_xlim()[0] > 4 and ax.get_ylim()[1] > 7.5
    assert ax.get_xlabel() == "step"  # what _style set stays


# -- a series panel ----------------------------------------------------------------------


def test_golden_dashed_grey_current_blue_first_failure_dotted() -> None:
    outcome = judge(drifted(12), dumps(run()))
    ax = panels(draw_outcome(outcome, "t"))["loss"]
    drawn = lines(ax)
    assert list(drawn)[:2] == ["golden", "current"]
    golden, current = drawn["golden"], drawn["current"]
    assert (golden.get_color(), golden.get_linestyle(), golden.get_linewidth()) == ("0.25", "--", 1.4)
    assert (current.get_color(), current.get_linestyle(), current.get_linewidth()) == ("C0", "-", 1.2)
    np.testing.assert_array_equal(current.get_xdata(), np.arange(STEPS))
    np.testing.assert_array_equal(current.get_ydata(), drifted(12).trajectory["loss"])
    np.testing.assert_array_equal(golden.get_ydata(), run().trajectory["loss"])
    (mark,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("_")]
    assert list(mark.get_xdata()) == [12, 12] and mark.get_color() == RED
    assert mark.get_linestyle() == ":" and mark.get_linewidth() == 0.9
    assert ax.get_yscale() == "log"
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["golden", "current"]
    assert legend.get_texts()[0].get_fontsize() == 7 and legend._loc == 0  # "best"


def test_the_first_failure_is_marked_on_its_own_series_only() -> None:
    grad = np.linspace(2.0, 0.5, STEPS)
    outcome = judge(drifted(12, grad_norm=grad), dumps(run(grad_norm=grad)))
    assert len(panels(draw_outcome(outcome, "t"))["grad_norm"].get_lines()) == 2


def test_a_series_only_one_side_has_is_drawn_for_that_side() -> None:
    outcome = judge(run(extra=np.linspace(1, 2, STEPS)), dumps(run()))
    ax = panels(draw_outcome(outcome, "t"))["extra"]
    assert list(lines(ax)) == ["current"] and ax.get_yscale() == "log"
    assert panels(draw_outcome(outcome, "t"))["loss"].get_legend() is not None


def test_param_groups_get_a_colour_each_and_a_linear_axis() -> None:
    lr = np.column_stack([np.full(4, 0.1), np.full(4, 0.2)])
    g = Golden(Trajectory({"lr": lr}))
    ax = panels(draw_outcome(Outcome(Status.UPDATED, "m", golden=g, current=g), "t"))["lr"]
    drawn = lines(ax)
    assert [drawn[f"current (group {i})"].get_color() for i in (0, 1)] == ["C0", "C1"]
    assert [drawn[f"golden (group {i})"].get_color() for i in (0, 1)] == ["0.25", "0.25"]
    assert ax.get_yscale() == "linear"


def test_a_long_series_is_drawn_thinned_at_its_real_steps() -> None:
    from pytest_optcheck.report.plotting import MAX_POINTS

    n = 3 * MAX_POINTS
    g = Golden(Trajectory({"loss": np.linspace(2, 1, n)}))
    ax = panels(draw_outcome(Outcome(Status.MISSING, "m", current=g), "t"))["loss"]
    (line,) = ax.get_lines()
    assert len(line.get_xdata()) <= MAX_POINTS + 2 and line.get_xdata()[-1] == n - 1


def test_a_thinned_run_shades_each_buckets_min_to_max() -> None:
    loss = np.linspace(1.0, 0.1, 10)
    loss[5] = 2.0  # a spike between kept steps (0, 4, 8)
    lr = np.column_stack([np.full(10, 0.1), np.full(10, 0.2)])
    thinned = thin(Trajectory({"loss": loss, "lr": lr}), 4)
    drawn = panels(draw_outcome(Outcome(Status.MISSING, "m", current=Golden(thinned)), "t"))
    ax = drawn["loss"]
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [0, 4, 8])
    (band,) = ax.collections
    assert band.get_label() == "bucket min..max (4 steps)"
    assert band.get_alpha() == 0.2 and list(band.get_linewidth()) == [0]
    assert tuple(band.get_facecolor()[0][:3]) == pytest.approx((0.12156863, 0.46666667, 0.70588235))  # C0
    low, high = thinned.buckets.stats["loss"]["min"], thinned.buckets.stats["loss"]["max"]
    edges = [0, 4, 8, 10]
    expected = {(edges[i + d], round(v[i], 9)) for v in (low, high) for i in range(3) for d in (0, 1)}
    assert band_points(band) == expected
    groups = drawn["lr"].collections
    assert [c.get_label() for c in groups] == ["bucket min..max (4 steps)", "_child3"] or \
        [c.get_label().startswith("_") for c in groups] == [False, True]
    assert tuple(groups[1].get_facecolor()[0][:3]) == pytest.approx((1.0, 0.49803922, 0.05490196))  # C1


# -- the noise band ------------------------------------------------------------------------


def calibrated(env: float, loss: np.ndarray | None = None) -> Golden:
    loss = np.linspace(1.0, 0.5, 6) if loss is None else loss
    lr = np.column_stack([np.full(6, 1.0), np.full(6, 2.0)])
    return Golden(Trajectory({"loss": loss, "lr": lr, "plain": np.ones(6)}),
                  calibration=Calibration(3, {"loss": np.full(6, env), "lr": np.full((6, 2), env)}, factor=2.0))


def band_points(collection: object) -> set[tuple[float, float]]:
    return {(round(float(x), 9), round(float(y), 9)) for x, y in collection.get_paths()[0].vertices}  # type: ignore


def test_the_noise_band_is_golden_plus_minus_the_allowance() -> None:
    golden = calibrated(0.05)
    drawn = panels(draw_outcome(Outcome(Status.UPDATED, "m", golden=golden, current=calibrated(0.0)), "t"))
    (band,) = drawn["loss"].collections
    assert band.get_label() == "2 x noise envelope (3 replicas)"
    assert band.get_alpha() == 0.35 and list(band.get_linewidth()) == [0]
    assert tuple(band.get_facecolor()[0][:3]) == (0.6, 0.6, 0.6)
    loss = golden.trajectory["loss"]
    assert band_points(band) >= {(round(i, 9), round(v, 9)) for i, x in enumerate(loss) for v in (x - 0.1, x + 0.1)}
    lr_bands = drawn["lr"].collections
    assert [c.get_label().startswith("_") for c in lr_bands] == [False, True]  # one legend entry for both groups
    assert {y for _, y in band_points(lr_bands[1])} == {1.9, 2.1}
    assert not drawn["plain"].collections  # no envelope for it


def test_an_all_zero_envelope_draws_no_band() -> None:
    golden = calibrated(0.0)
    drawn = panels(draw_outcome(Outcome(Status.UPDATED, "m", golden=golden, current=golden), "t"))
    assert not drawn["loss"].collections


def test_a_band_below_zero_opens_downwards_on_a_log_axis() -> None:
    golden = calibrated(1.0)  # 1.0 .. 0.5 - 2: below zero
    ax = panels(draw_outcome(Outcome(Status.UPDATED, "m", golden=golden, current=golden), "t"))["loss"]
    assert ax.get_yscale() == "log"
    (band,) = ax.collections
    assert min(y for _, y in band_points(band)) == pytest.approx(0.05)  # the smallest positive golden / 10


def test_the_band_of_the_golden_compared_with_else_of_the_one_written() -> None:
    band, plain = calibrated(0.05), Golden(calibrated(0.05).trajectory)
    assert picture._noise_band(Outcome(Status.CREATED, "m", current=band))[0] is band.trajectory
    assert picture._noise_band(Outcome(Status.UPDATED, "m", golden=band, current=plain))[1] is band.calibration
    assert picture._noise_band(Outcome(Status.UPDATED, "m", golden=plain, current=band)) is None
    assert picture._noise_band(Outcome(Status.CORRUPT, "m")) is None


def test_no_band_for_a_series_the_golden_lacks() -> None:
    ax = axis()
    cal = Calibration(1, {"x": np.ones(3)})
    picture._draw_noise_band(ax, "x", Trajectory({"loss": np.ones(3)}), cal)
    picture._draw_noise_band(ax, "loss", Trajectory({"loss": np.ones(3)}), cal)
    assert not ax.collections


# -- marks ---------------------------------------------------------------------------------


def test_skipped_steps_are_dashed_grey_lines_across_the_panel() -> None:
    ax = axis()
    ax.set_ylim(5, 9)
    picture._mark_skipped(ax, np.array([2, 6]))
    (marks,) = ax.collections
    assert [seg.tolist() for seg in marks.get_segments()] == [[[2, 0], [2, 1]], [[6, 0], [6, 1]]]
    top = marks.get_transform().transform([[2, 1]])[0][1]
    assert top == pytest.approx(ax.transAxes.transform([[0, 1]])[0][1])  # y in axes fraction: top to bottom
    assert tuple(marks.get_color()[0]) == (0.55, 0.55, 0.55, 1.0)
    assert list(marks.get_linewidth()) == [0.7] and marks.get_linestyle()[0][1] is not None
    assert marks.get_label() == "skipped step"


def test_the_skipped_steps_of_a_run() -> None:
    assert picture._skipped_steps(None).dtype == np.int64 and picture._skipped_steps(None).size == 0
    assert picture._skipped_steps(Trajectory({"loss": np.ones(3)})).dtype == np.int64
    traj = Trajectory({"skipped": [0, 1, 0, 2]}, steps=[0, 4, 8, 12])
    assert picture._skipped_steps(traj).tolist() == [4, 12]
    assert picture._skipped_steps(Trajectory({"skipped": np.zeros((3, 1))})).tolist() == []


def test_the_first_failure_label_goes_where_it_fits() -> None:
    traj = Trajectory({"loss": np.ones(20)}, np.arange(20) // 10, np.arange(20) % 10)
    ax = axis()
    ax.set_xlim(0, 20)
    picture._mark_first_failure(ax, ("loss", 11), traj)  # 0.55 of the way: still the left half
    (note,) = ax.texts
    assert note.get_text() == "first failure: loss, step 11 (epoch 1, batch 1)"
    assert note.xy == (11, 0.04) and note.xycoords == ("data", "axes fraction") and note.anncoords == "offset points"
    assert note.xyann == (4, 0) and note.get_horizontalalignment() == "left"
    assert note.get_color() == RED and note.get_fontsize() == 8
    box = note.get_bbox_patch()
    assert box.get_facecolor() == (1.0, 1.0, 1.0, 0.85) and box.get_edgecolor() == (0, 0, 0, 0)
    assert box.get_boxstyle().pad == 0.2 and type(box.get_boxstyle()).__name__ == "Round"
    (line,) = ax.get_lines()
    assert list(line.get_xdata()) == [11, 11] and line.get_color() == RED and line.get_linewidth() == 1.0
    right = axis()
    right.set_xlim(0, 20)
    picture._mark_first_failure(right, ("lr", 12), traj)
    assert right.texts[0].xyann == (-4, 0) and right.texts[0].get_horizontalalignment() == "right"


def test_a_step_a_thinned_run_did_not_keep_has_no_epoch() -> None:
    traj = thin(Trajectory({"loss": np.ones(12)}), 4)
    ax = axis()
    picture._mark_first_failure(ax, ("loss", 5), traj)
    assert ax.texts[0].get_text() == "first failure: loss, step 5"


# -- the relative-error panel ------------------------------------------------------------


def test_the_relative_error_and_the_error_allowed() -> None:
    grad = np.linspace(2.0, 0.5, STEPS)
    later = grad.copy()
    later[20:] *= 1.01
    outcome = judge(drifted(12, grad_norm=later), dumps(run(grad_norm=grad)))
    ax = panels(draw_outcome(outcome, "t"))[REL]
    assert ax.get_yscale() == "log"
    drawn = lines(ax)
    assert list(drawn)[:4] == ["loss", "loss allowed", "grad_norm", "grad_norm allowed"]
    loss, allowed = drawn["loss"], drawn["loss allowed"]
    assert (loss.get_color(), loss.get_linewidth(), loss.get_linestyle()) == ("C0", 1.2, "-")
    assert (allowed.get_color(), allowed.get_linewidth(), allowed.get_linestyle()) == ("C0", 0.9, ":")
    assert drawn["grad_norm"].get_color() == "C1" and drawn["grad_norm allowed"].get_color() == "C1"
    ys = np.asarray(loss.get_ydata())
    assert np.isnan(ys[:12]).all()  # no error before the drift: a gap on the log axis
    np.testing.assert_allclose(ys[12:], 0.5)
    np.testing.assert_array_equal(loss.get_xdata(), np.arange(STEPS))
    g = run().trajectory["loss"]
    np.testing.assert_allclose(allowed.get_ydata(), (1e-4 * g + 1e-7) / g)  # loss's default rtol and atol
    legend = ax.get_legend()
    assert legend._ncols == 2 and legend._loc == 0 and legend.get_texts()[0].get_fontsize() == 7
    (mark,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("_")]
    assert mark.get_color() == RED and list(mark.get_xdata()) == [12, 12]
    assert [t.get_text() for t in ax.texts] == ["first failure: loss, step 12 (epoch 0, batch 12)"]


def test_an_identical_series_keeps_its_colour_but_draws_nothing() -> None:
    grad = np.linspace(2.0, 0.5, STEPS)
    outcome = judge(run(grad_norm=grad * 1.5), dumps(run(grad_norm=grad)))
    drawn = lines(panels(draw_outcome(outcome, "t"))[REL])
    assert "loss" not in drawn and drawn["grad_norm"].get_color() == "C1"


def test_no_allowed_line_outside_step_mode_or_when_nothing_is_allowed() -> None:
    outcome = judge(drifted(12), dumps(run()))
    final = Outcome(Status.FAILED, "m", outcome.path, outcome.verdict, outcome.golden, outcome.current,
                    {"loss": Tolerance(rtol=0.1, mode="final")})
    assert list(lines(panels(draw_outcome(final, "t"))[REL])) == ["loss", "_child1"] or \
        [k for k in lines(panels(draw_outcome(final, "t"))[REL]) if not k.startswith("_")] == ["loss"]
    exact = Outcome(Status.FAILED, "m", outcome.path, outcome.verdict, outcome.golden, outcome.current,
                    {"loss": Tolerance(rtol=0.0)})
    assert [k for k in lines(panels(draw_outcome(exact, "t"))[REL]) if not k.startswith("_")] == ["loss"]


def test_the_tolerances_come_from_the_outcome_else_from_its_verdict() -> None:
    outcome = judge(drifted(12), dumps(run()))
    tol = Tolerance(rtol=0.25)
    assert picture._tolerances(Outcome(Status.FAILED, "m", tolerances={"loss": tol})) == {"loss": tol}
    without = Outcome(Status.FAILED, "m", verdict=outcome.verdict, golden=outcome.golden, current=outcome.current)
    assert picture._tolerances(without) == {"loss": Tolerance(rtol=1e-4, atol=1e-7)}
    assert picture._tolerances(Outcome(Status.FAILED, "m")) == {}
    ax = panels(draw_outcome(without, "t"))[REL]
    g = run().trajectory["loss"]
    np.testing.assert_allclose(lines(ax)["loss allowed"].get_ydata(), (1e-4 * g + 1e-7) / g)


def test_a_calibrated_goldens_allowance_widens_the_allowed_error() -> None:
    golden = Golden(Trajectory({"loss": np.full(4, 2.0)}), spec={"a": 1},
                    calibration=Calibration(2, {"loss": np.full(4, 0.1)}, factor=3.0))
    current = Golden(Trajectory({"loss": np.full(4, 2.5)}), spec={"a": 1})
    outcome = Outcome(Status.FAILED, "m", golden=golden, current=current,
                      tolerances={"loss": Tolerance(rtol=0.0, atol=0.0)})
    np.testing.assert_allclose(lines(panels(draw_outcome(outcome, "t"))[REL])["loss allowed"].get_ydata(), 0.15)
    np.testing.assert_allclose(picture._allowance(outcome, "loss"), [[0.3]] * 4)
    assert picture._allowance(Outcome(Status.FAILED, "m", current=current), "loss") is None
    assert picture._allowance(Outcome(Status.FAILED, "m", golden=current), "loss") is None


def test_identical_runs_say_so_on_an_empty_error_panel() -> None:
    long = Golden(Trajectory({"loss": np.ones(30)}))
    short = Golden(Trajectory({"loss": np.ones(20)}))
    ax = panels(draw_outcome(Outcome(Status.PASSED, "m", golden=long, current=short), "t"))[REL]
    assert not ax.get_lines() and len(ax.get_yticks()) == 0 and ax.get_xlim() == (0, 30)
    assert not ax.texts  # a shorter run differs: no "identical" claim
    ax = panels(draw_outcome(Outcome(Status.PASSED, "m", golden=long, current=long), "t"))[REL]
    (text,) = ax.texts
    assert text.get_text() == "golden and current are identical at every step"
    assert text.get_position() == (0.5, 0.5) and text.get_transform() is ax.transAxes
    assert (text.get_horizontalalignment(), text.get_verticalalignment()) == ("center", "center")
    assert text.get_fontsize() == 9 and text.get_color() == GREEN
    assert ax.get_yscale() == "linear" and ax.get_legend() is None


def test_any_difference() -> None:
    a = Trajectory({"loss": np.ones(4), "x": np.ones(4)})
    assert not picture._any_difference(a, a, ["loss", "x"])
    assert picture._any_difference(a, Trajectory({"loss": np.ones(4), "x": [1, 1, 2, 1]}), ["loss", "x"])
    assert picture._any_difference(a, Trajectory({"loss": np.ones(3), "x": np.ones(3)}), ["loss"])
    spike = np.ones(8)
    spike[5] = 3.0
    kept, other = thin(Trajectory({"loss": np.ones(8)}), 4), thin(Trajectory({"loss": spike}), 4)
    assert kept["loss"].tolist() == other["loss"].tolist()
    assert picture._any_difference(kept, other, ["loss"])  # a step between the kept ones differs
    assert not picture._any_difference(kept, kept, ["loss"])


# -- labels and titles ---------------------------------------------------------------------


def test_a_panels_title_and_ticks() -> None:
    ax = axis()
    picture._label(ax, "loss")
    assert ax.get_title(loc="left") == "loss" and ax._left_title.get_fontsize() == 9
    assert ax._left_title.get_position()[1] == 1.0 and ax._autotitlepos is False
    assert ax.titleOffsetTrans.get_matrix()[1, 2] == pytest.approx(4 / 72 * 90)  # pad=4 points
    x, y = ax.xaxis.get_major_locator(), ax.yaxis.get_major_locator()
    assert (x._nbins, x._integer) == (5, True) and (y._nbins, y._integer) == (4, False)
    log = axis()
    log.set_yscale("log")
    picture._label(log, "loss")
    assert type(log.yaxis.get_major_locator()).__name__ == "LogLocator"


def test_every_panels_style() -> None:
    _, (ax,) = picture._new_grid(1)
    assert ax.xaxis.label.get_position() == (1.0, -0.085) and ax.yaxis.label.get_position() == (-0.1, 0.5)
    assert ax.xaxis._autolabelpos is False and ax.yaxis._autolabelpos is False
    assert ax.yaxis.get_offset_text().get_position()[0] == 1  # on the right
    assert ax.xaxis.get_major_ticks()[0].label1.get_fontsize() == 7
    assert ax.yaxis.get_major_ticks()[0].label1.get_fontsize() == 7
    assert ax.figure.subplotpars.top == pytest.approx(1 - 0.75 / 3.4)


def test_an_epoch_panel() -> None:
    ax = axis()
    golden = Trajectory({"loss": np.ones(4)}, epoch_series={"val": [3.0, 2.0]})
    picture._draw_epoch_series(ax, "val", golden, Trajectory({"loss": np.ones(4)}, epoch_series={"val": [3.0, 1.0]}))
    assert ax.get_title(loc="left") == "val (per epoch)" and ax.get_xlabel() == "epoch"
    assert ax.xaxis.label.get_fontsize() == 8 and ax.xaxis.label.get_horizontalalignment() == "right"
    golden_line, current = ax.get_lines()
    assert (golden_line.get_label(), golden_line.get_color(), golden_line.get_linestyle(),
            golden_line.get_linewidth()) == ("golden", "0.25", "--", 1.4)
    assert (current.get_label(), current.get_color(), current.get_linewidth()) == ("current", "C0", 1.2)
    assert current.get_marker() == "o" and current.get_markersize() == 3 and golden_line.get_marker() == "o"
    assert current.get_xdata().tolist() == [0, 1] and current.get_ydata().tolist() == [3.0, 1.0]
    only = axis()
    picture._draw_epoch_series(only, "val", None, golden)
    picture._draw_epoch_series(only, "val", Trajectory({"loss": np.ones(4)}), golden)
    assert [ln.get_label() for ln in only.get_lines()] == ["current", "current"]


def test_the_title_lines() -> None:
    same = judge(run(), dumps(run()))
    assert picture._title_text(same, "t") == "t\nPASSED · identical to the golden"
    near = judge(drifted(30, 1 + 1e-6), dumps(run()))
    assert near.passed
    assert picture._title_text(near, "t") == "t\nPASSED · worst: loss rel. error 1e-06 at step 30"
    spike = np.linspace(1.0, 0.1, STEPS)
    spike[17] *= 1.5
    failed = judge(run(spike), dumps(run()))
    assert picture._title_text(failed, "t") == "t\nFAILED · worst: loss rel. error 0.5 at step 17"
    assert picture._title_text(Outcome(Status.CONFIG_CHANGED, "m", golden=run()), "t") == \
        "t\nCONFIG-CHANGED · configuration changed: numbers not compared"
    assert picture._title_text(Outcome(Status.ERROR, "m", golden=run(), current=run()), "t") == "t\nERROR"
    notes = Outcome(Status.CREATED, "m", current=run(), notes=("n" * 100, "m" * 30))
    assert picture._title_text(notes, "x" * 110).splitlines() == [
        "x" * 110, "CREATED · no golden to compare with: current run only", "n" * 100 + "; " + "m" * 17 + "…"]


def test_changed_keys() -> None:
    old = run()
    new = Golden(old.trajectory, spec={"a": 2, "b": 1})
    assert picture._changed_keys(Outcome(Status.CONFIG_CHANGED, "m", golden=old, current=new)) == " (a, b)"
    assert picture._changed_keys(Outcome(Status.CONFIG_CHANGED, "m", golden=old, current=old)) == ""
    assert picture._changed_keys(Outcome(Status.CONFIG_CHANGED, "m", current=new)) == ""


def test_series_verdict_and_groups() -> None:
    outcome = judge(drifted(12, grad_norm=np.ones(STEPS)), dumps(run(grad_norm=np.ones(STEPS))))
    assert picture._series_verdict(outcome, "grad_norm").name == "grad_norm"
    assert picture._series_verdict(outcome, "nope") is None
    assert picture._series_verdict(Outcome(Status.MISSING, "m"), "loss") is None
    traj = Trajectory({"loss": np.ones(2), "lr": np.ones((2, 3))})
    assert [picture._groups(traj, "loss"), picture._groups(traj, "lr"), picture._groups(traj, "x"),
            picture._groups(None, "loss")] == [1, 3, 0, 0]


def test_the_earliest_failure_of_any_kind() -> None:
    assert picture._first_failure(Outcome(Status.MISSING, "m")) is None
    assert picture._first_failure(judge(run(), dumps(run()))) is None
    assert picture._first_failure(judge(drifted(12), dumps(run()))) == ("loss", 12)
    nan = np.linspace(1.0, 0.1, STEPS)
    nan[7] = np.nan
    grad = np.linspace(2.0, 0.5, STEPS)
    grad2 = grad.copy()
    grad2[20:] *= 2
    outcome = judge(run(nan, grad_norm=grad2), dumps(run(grad_norm=grad)))
    assert picture._first_failure(outcome) == ("loss", 7)  # the NaN, before grad_norm's drift
    spike = np.linspace(1.0, 0.1, 12)
    spike[6] = 5.0
    thinned = Golden(thin(Trajectory({"loss": spike}), 4), spec={"a": 1})
    plain = Golden(thin(Trajectory({"loss": np.linspace(1.0, 0.1, 12)}), 4), spec={"a": 1})
    assert picture._first_failure(judge(thinned, dumps(plain))) == ("loss", 4)  # the bucket's first step


def test_one_legend_per_key() -> None:
    """golden/current reads the same on every panel: the first panel with a key has the
    legend, a later one with the same key none, one with other entries (groups) its own."""
    lr = np.column_stack([np.full(STEPS, 0.01), np.full(STEPS, 0.001)])
    grad = np.linspace(2.0, 0.5, STEPS)
    figure = draw_outcome(judge(drifted(20, 1.05, lr=lr, grad_norm=grad), dumps(run(lr=lr, grad_norm=grad))), "t")
    legends = [None if ax.get_legend() is None else [t.get_text() for t in ax.get_legend().get_texts()]
               for ax in figure.axes if ax.axison]
    titles = [ax.get_title(loc="left") for ax in figure.axes if ax.axison]
    assert titles[:3] == ["loss", "lr", "grad_norm"]
    assert legends[0] == ["golden", "current"]
    assert legends[1] == ["golden (group 0)", "golden (group 1)", "current (group 0)", "current (group 1)"]
    assert legends[2] is None  # grad_norm: the same key as loss
    assert legends[3] is not None and "loss" in legends[3]  # the relative error's own


def test_a_long_picture_prints_the_full_series_numbers(tmp_path) -> None:
    """Thinning is for drawing only: the worst relative error and its step in the title
    come from every step, and the drawing settings do not leak into the user's matplotlib."""
    import matplotlib

    from pytest_optcheck.report.plotting import MAX_POINTS

    steps = 20 * MAX_POINTS
    loss = np.exp(-np.linspace(0, 3, steps))
    traj = Trajectory({"loss": loss}, epoch=np.zeros(steps, int), batch=np.arange(steps))
    off = loss.copy()
    off[12_347] *= 1.0123  # one step off, inside a slice of thousands
    current = Golden(Trajectory({"loss": off}, traj.epoch, traj.batch), spec={}, environment={}, test="t")
    outcome = judge(current, dumps(Golden(traj, spec={}, environment={}, test="t")), path="g.json")
    assert outcome.status == "failed"
    title = draw_outcome(outcome, "t")._suptitle.get_text()
    assert "worst: loss rel. error 0.0123 at step 12347" in title
    hinting = matplotlib.rcParams["text.hinting"]
    assert write_picture(tmp_path / "p.png", outcome, "t")
    assert matplotlib.rcParams["text.hinting"] == hinting


# -- what the first mutation run found untested ------------------------------------------


def test_the_picture_keeps_its_own_settings_under_a_users_matplotlibrc() -> None:
    """A user's matplotlibrc (font size, text colour, legend place) does not restyle the report."""
    from matplotlib import rc_context

    with rc_context({"font.size": 14, "text.color": "red", "legend.loc": "upper right"}):
        figure = draw_outcome(judge(drifted(12), dumps(run())), "t")
        strange = draw_outcome(Outcome("skipped", "m", current=run()), "t")  # type: ignore[arg-type]
    assert figure._suptitle.get_fontsize() == 10 and strange._suptitle.get_color() == "black"
    drawn = panels(figure)
    assert drawn["loss"].get_legend()._loc == 0 and drawn[REL].get_legend()._loc == 0  # "best"


def test_a_figure_is_kept_for_the_next_picture_of_as_many_panels(monkeypatch) -> None:
    monkeypatch.setattr(picture, "_FIGURES", {})
    plain = Outcome(Status.MISSING, "m", current=run())
    figure = draw_outcome(plain, "t", reuse=True)
    assert picture._FIGURES == {1: (figure, figure.axes)}
    assert draw_outcome(plain, "t", reuse=True) is figure
    assert figure.dpi == picture.DPI


def test_a_per_epoch_series_only_the_golden_has_is_drawn() -> None:
    golden = Golden(Trajectory({"loss": np.ones(4)}, epoch_series={"val": [1.0, 2.0]}), spec={"a": 1})
    current = Golden(Trajectory({"loss": np.ones(4)}), spec={"a": 1})
    ax = panels(draw_outcome(Outcome(Status.FAILED, "m", golden=golden, current=current), "t"))["val (per epoch)"]
    assert list(lines(ax)) == ["golden"]


def test_the_error_panel_follows_the_goldens_series_order() -> None:
    golden = Golden(Trajectory({"b": np.ones(4), "a": np.ones(4)}), spec={"a": 1})
    current = Golden(Trajectory({"a": np.full(4, 2.0), "b": np.full(4, 3.0), "c": np.ones(4)}), spec={"a": 1})
    outcome = Outcome(Status.FAILED, "m", golden=golden, current=current)
    drawn = lines(panels(draw_outcome(outcome, "t"))[REL])
    assert [k for k in drawn if not k.startswith("_")] == ["b", "a"]
    assert (drawn["b"].get_color(), drawn["a"].get_color()) == ("C0", "C1")


def test_a_thinned_runs_error_is_drawn_at_its_real_steps() -> None:
    spike = np.linspace(1.0, 0.1, 12)
    spike[4] = 5.0
    golden = Golden(thin(Trajectory({"loss": np.linspace(1.0, 0.1, 12)}), 4), spec={"a": 1})
    current = Golden(thin(Trajectory({"loss": spike}), 4), spec={"a": 1})
    drawn = lines(panels(draw_outcome(judge(current, dumps(golden)), "t"))[REL])
    assert drawn["loss"].get_xdata().tolist() == [0, 4, 8] and drawn["loss allowed"].get_xdata().tolist() == [0, 4, 8]


def test_a_longer_golden_is_compared_where_the_run_has_steps() -> None:
    golden = run(np.linspace(1.0, 0.1, 10))
    current = run(np.linspace(1.0, 0.1, 6) * 1.5)
    drawn = lines(panels(draw_outcome(judge(current, dumps(golden)), "t"))[REL])
    assert len(drawn["loss"].get_xdata()) == 6 and drawn["loss allowed"].get_xdata().tolist() == list(range(6))


def test_an_error_without_an_allowed_line_still_gets_a_log_axis_and_a_legend() -> None:
    outcome = judge(drifted(12), dumps(run()))
    final = Outcome(Status.FAILED, "m", outcome.path, outcome.verdict, outcome.golden, outcome.current,
                    {"loss": Tolerance(rtol=0.1, mode="final")})
    ax = panels(draw_outcome(final, "t"))[REL]
    assert ax.get_yscale() == "log" and [t.get_text() for t in ax.get_legend().get_texts()] == ["loss"]
    assert len(ax.get_yticks()) > 0


def test_buckets_are_shaded_in_the_given_colour_whatever_was_filled_before() -> None:
    ax = axis()
    ax.fill_between([0, 1], [0, 0], [1, 1])
    thinned = thin(Trajectory({"loss": np.linspace(1.0, 0.1, 12)}), 4)
    picture._draw_buckets(ax, thinned, "loss", 0, "C3")
    assert tuple(ax.collections[1].get_facecolor()[0][:3]) == pytest.approx((0.83921569, 0.15294118, 0.15686275))


def test_a_band_reaching_zero_and_a_band_around_nan_open_downwards() -> None:
    zero = Golden(Trajectory({"loss": [1.0, 0.5]}), calibration=Calibration(1, {"loss": [0.5, 0.5]}, factor=1.0))
    ax = panels(draw_outcome(Outcome(Status.CREATED, "m", current=zero), "t"))["loss"]
    assert ax.get_yscale() == "log" and min(y for _, y in band_points(ax.collections[0])) == pytest.approx(0.05)
    high = Golden(Trajectory({"loss": [4.0, 2.0]}), calibration=Calibration(1, {"loss": [3.0, 3.0]}, factor=1.0))
    ax = panels(draw_outcome(Outcome(Status.CREATED, "m", current=high), "t"))["loss"]
    assert min(y for _, y in band_points(ax.collections[0])) == pytest.approx(0.1)  # at most 1 / 10
    ax = axis()
    ax.set_yscale("log")
    nan = Trajectory({"loss": [np.nan, np.nan]})
    picture._draw_noise_band(ax, "loss", nan, Calibration(1, {"loss": [0.5, 0.5]}, factor=1.0))  # no golden value
    assert len(ax.collections) == 1


def test_the_first_failure_label_is_placed_within_the_visible_steps() -> None:
    traj = Trajectory({"loss": np.ones(40)})
    ax = axis()
    ax.set_xlim(10, 30)
    picture._mark_first_failure(ax, ("loss", 25), traj)  # past 0.55 of 10..30
    assert ax.texts[0].get_horizontalalignment() == "right"


def test_a_verdict_without_series_titles_the_status_alone() -> None:
    from pytest_optcheck.engine.compare import Verdict

    outcome = Outcome(Status.FAILED, "m", verdict=Verdict([], missing_series=["loss"]), golden=run(), current=run())
    assert picture._title_text(outcome, "t") == "t\nFAILED"


def test_allowed_relative_fits_the_allowance_to_the_golden() -> None:
    from pytest_optcheck.report.picture import allowed_relative

    g = np.array([[1.0, 2.0], [2.0, 4.0], [4.0, 8.0]])
    none = Tolerance(rtol=0.0, atol=0.0)
    wide = np.array([[0.5, 1.0, 9.0]] * 4)  # more rows and groups than the golden
    np.testing.assert_allclose(allowed_relative(g, none, 3, wide), [0.5, 0.25, 0.125])
    np.testing.assert_allclose(allowed_relative(g, none, 3, np.full((3, 1), 1.0)), [0.5, 0.25, 0.125])
    short = np.full((2, 2), 1.0)  # fewer steps than the golden: not used
    np.testing.assert_allclose(allowed_relative(g[:, :1], Tolerance(rtol=0.1), 3, short[:, :1]), [0.1] * 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a zero golden: inf, without numpy's divide or invalid warnings
        assert allowed_relative(np.zeros(2), Tolerance(rtol=0.1, atol=0.0), 2).tolist() == [np.inf] * 2
        assert allowed_relative(np.zeros(2), Tolerance(rtol=0.1, atol=0.5), 2).tolist() == [np.inf] * 2


def test_the_error_panel_draws_the_series_that_have_a_panel() -> None:
    names = [f"s{i}" for i in range(7)]
    golden = Golden(Trajectory({n: np.ones(4) for n in names}), spec={"a": 1})
    current = Golden(Trajectory({"lr": np.ones(4), **{n: np.full(4, 2.0) for n in names}}), spec={"a": 1})
    drawn = panels(draw_outcome(Outcome(Status.FAILED, "m", golden=golden, current=current), "t"))
    assert list(drawn) == ["lr", *names[:6], REL]  # lr first, at most 7 series panels
    assert [k for k in lines(drawn[REL]) if not k.startswith("_")] == names[:6]
