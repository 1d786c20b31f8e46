"""report/plotting.py, what every picture of optcheck shares, pinned on matplotlib's objects: the
figure on its own Agg canvas, the PNG, log ticks, ``Trajectory.plot``, ``optcheck plot``'s figure,
its title and its short legend labels."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest

from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.golden.format import Golden
from pytest_optcheck.report import plotting
from pytest_optcheck.report.plotting import (
    default_title,
    drawn_points,
    fallback_label,
    log_scale,
    new_figure,
    plot_goldens,
    plot_trajectory,
    save_figure,
    short_labels,
    spec_value,
    split_call,
)


def test_constants() -> None:
    assert plotting.DPI == 90 and plotting.PNG_OPTIONS == {"compress_level": 1}
    assert plotting.MAX_POINTS == 1000 and plotting.SUB_DECADE_TICKS == 1.5
    assert plotting.CALL_KEYS == ("optimizer", "scheduler", "model", "problem", "loss")
    assert plotting.LABEL_SKIP == ("record",)


def test_a_figure_on_its_own_agg_canvas() -> None:
    from matplotlib import rcParams
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    figure = new_figure((3.0, 2.0), dpi=90)
    assert type(figure.canvas) is FigureCanvasAgg and figure.canvas.figure is figure
    assert tuple(figure.get_size_inches()) == (3.0, 2.0) and figure.dpi == 90
    assert figure.get_layout_engine() is None
    default = new_figure((1.0, 1.0), layout="constrained")
    assert default.dpi == rcParams["figure.dpi"]
    assert isinstance(default.get_layout_engine(), ConstrainedLayoutEngine)


def test_the_png_is_savefigs_at_the_reports_dpi_and_fastest_zlib_level(tmp_path) -> None:
    from PIL import Image

    figure = new_figure((1.0, 1.0), dpi=50)
    figure.subplots().plot([0, 1], [0, 1])
    save_figure(figure, str(tmp_path / "p.png"))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, pil_kwargs={"compress_level": 1})
    assert (tmp_path / "p.png").read_bytes() == buffer.getvalue()
    assert Image.open(tmp_path / "p.png").size == (90, 90)
    assert [p.name for p in tmp_path.iterdir()] == ["p.png"]  # written atomically: no temporary file left


def test_integers_are_drawn_as_floats() -> None:
    steps, values = drawn_points(np.arange(3))
    assert values.dtype == np.float64 and steps.tolist() == [0, 1, 2]
    steps, values = drawn_points(np.arange(1001))
    assert values.dtype == np.float64 and len(steps) < 1001 and steps[-1] == 1000


def yaxis(low: float, high: float) -> object:
    axis = new_figure((2, 2), dpi=50).subplots()
    axis.set_ylim(low, high)
    log_scale(axis)
    return axis


@pytest.mark.parametrize(("low", "high", "subs"), [
    (1.0, 20.0, [1.0, 2.0, 5.0]), (0.5, 5.0, [1.0, 2.0, 5.0]), (1.0, 10 ** 1.5, [1.0, 2.0, 5.0]),
    (1.0, 10 ** 1.6, [1.0]), (1e-6, 1.0, [1.0]), (-1.0, 10.0, [1.0]),
])
def test_log_ticks(low: float, high: float, subs: list[float]) -> None:
    axis = yaxis(low, high)
    assert axis.get_yscale() == "log"
    locator = axis.yaxis.get_major_locator()
    assert type(locator).__name__ == "LogLocator" and list(locator._subs) == subs and locator.numticks == 6
    assert type(axis.yaxis.get_minor_locator()).__name__ == "NullLocator"
    formatter = axis.yaxis.get_major_formatter()
    assert [formatter(v, 0) for v in (1e-4, 1e-5, 0.3, 200.0)] == ["0.0001", "1e-05", "0.3", "200"]


# -- Trajectory.plot -------------------------------------------------------------------


def test_plot_trajectory_one_axis_per_series_on_a_new_figure() -> None:
    traj = Trajectory({"loss": [1.0, 0.5, 0.25], "lr": [0.1, 0.1, 0.05], "x": [-1.0, 1.0, 2.0]}, steps=[0, 5, 10])
    axes = plot_trajectory(traj)
    assert len(axes) == 3
    figure = axes[0].figure
    assert tuple(figure.get_size_inches()) == pytest.approx((7, 7.8))
    assert type(figure.get_layout_engine()).__name__ == "ConstrainedLayoutEngine"
    assert [a.get_ylabel() for a in axes] == ["loss", "lr", "x"] and {a.get_xlabel() for a in axes} == {"step"}
    assert [a.get_yscale() for a in axes] == ["log", "linear", "linear"]
    (line,) = axes[0].get_lines()
    assert line.get_label() == "loss" and line.get_xdata().tolist() == [0, 5, 10]
    assert line.get_ydata().tolist() == [1.0, 0.5, 0.25]
    assert [a.get_position().y0 > b.get_position().y0 for a, b in itertools.pairwise(axes)] == [True, True]


def test_plot_trajectory_on_given_axes() -> None:
    traj = Trajectory({"loss": [1.0, 0.5], "lr": [0.1, 0.2]})
    axis = new_figure((3, 2), dpi=50).subplots()
    assert plot_trajectory(traj, ["loss"], ax=axis, label="run a") is axis
    assert [ln.get_label() for ln in axis.get_lines()] == ["run a"]
    both = new_figure((3, 2), dpi=50).subplots()
    assert plot_trajectory(traj, ax=both) == [both, both]
    assert [ln.get_label() for ln in both.get_lines()] == ["loss", "lr"]
    single = plot_trajectory(traj, ["lr"])
    assert single.get_ylabel() == "lr" and tuple(single.figure.get_size_inches()) == pytest.approx((7, 2.6))


# -- optcheck plot -----------------------------------------------------------------------


def golden(optimizer: str, loss: list[float], lr: object = None, **spec: object) -> Golden:
    series = {"loss": loss, "lr": np.full(len(loss), 0.1) if lr is None else lr}
    return Golden(Trajectory(series, steps=[0, 2, 4][: len(loss)]),
                  spec={"optimizer": optimizer, "epochs": 2, **spec}, test="t.py::test_a")


def test_plot_goldens_one_panel_per_series_one_line_per_golden() -> None:
    loaded = [golden(f"SGD(lr={i})", [1.0, 0.5, 0.2]) for i in range(11)]
    loaded[1] = golden("Adam", [1.0, 0.6, 0.3], lr=np.column_stack([np.full(3, 0.1), np.full(3, 0.2)]))
    labels = [f"run {i}" for i in range(11)]
    figure = plot_goldens(loaded, labels, ["loss", "lr"], logy=None, title="the title")
    assert tuple(figure.get_size_inches()) == pytest.approx((10, 9.2))
    assert type(figure.get_layout_engine()).__name__ == "ConstrainedLayoutEngine"
    assert figure._suptitle.get_text() == "the title" and figure._suptitle.get_fontsize() == 11
    loss, lr = figure.axes
    assert (loss.get_ylabel(), loss.get_xlabel(), loss.get_yscale(), lr.get_yscale()) == ("loss", "step", "log", "linear")
    lines = {ln.get_label(): ln for ln in loss.get_lines()}
    assert list(lines) == labels
    first = lines["run 0"]
    assert (first.get_color(), first.get_linestyle(), first.get_linewidth(), first.get_alpha()) == ("C0", "-", 1.3, 1.0)
    assert first.get_xdata().tolist() == [0, 2, 4] and lines["run 1"].get_ydata().tolist() == [1.0, 0.6, 0.3]
    assert (lines["run 9"].get_color(), lines["run 10"].get_color(), lines["run 10"].get_linestyle()) == ("C9", "C0", "--")
    groups = {ln.get_label(): ln for ln in lr.get_lines()}
    assert "run 1 [group 0]" in groups and "run 0" in groups
    assert groups["run 1 [group 1]"].get_alpha() == 0.6 and groups["run 1 [group 1]"].get_color() == "C1"
    assert groups["run 1 [group 1]"].get_ydata().tolist() == [0.2, 0.2, 0.2]
    gridline = loss.yaxis.get_gridlines()[0]
    assert gridline.get_visible() and gridline.get_alpha() == 0.3
    assert not loss.yaxis.get_minor_ticks() or not loss.yaxis.get_minor_ticks()[0].gridline.get_visible()
    legend = loss.get_legend()
    assert legend._loc == 2 and legend.borderaxespad == 0 and legend.get_texts()[0].get_fontsize() == 8
    anchor = legend.get_bbox_to_anchor().bounds[:2]
    assert anchor == pytest.approx(tuple(loss.transAxes.transform((1.01, 1.0))))


def test_plot_goldens_logy_and_no_title() -> None:
    loaded = [golden("SGD", [1.0, 0.5, 0.2])]
    figure = plot_goldens(loaded, ["a"], ["loss", "lr"], logy=False, title="")
    assert [a.get_yscale() for a in figure.axes] == ["linear", "linear"] and figure._suptitle is None
    assert tuple(figure.get_size_inches()) == pytest.approx((10, 9.2))
    figure = plot_goldens(loaded, ["a"], ["lr"], logy=True, title="")
    assert [a.get_yscale() for a in figure.axes] == ["log"]
    assert [ln.get_label() for ln in figure.axes[0].get_lines()] == ["a"]  # one group: no suffix


def test_default_title_names_what_every_run_shares() -> None:
    a = Golden(Trajectory({"loss": [1.0]}), spec={"model": "mlp()", "optimizer": "SGD", "scheduler": None,
                                                  "epochs": 2, "batch_size": 0, "problem": ""})
    b = Golden(Trajectory({"loss": [1.0]}), spec={"model": "mlp()", "optimizer": "Adam", "epochs": 2})
    assert default_title([a, b], ["loss", "lr"]) == "loss, lr — model mlp(), epochs 2"
    assert default_title([a], ["loss"]) == "loss — model mlp(), optimizer SGD, epochs 2"
    c = Golden(Trajectory({"loss": [1.0]}), spec={"model": "cnn()"})
    assert default_title([a, c], ["loss"]) == "loss"
    assert default_title([a, Golden(Trajectory({"loss": [1.0]}))], ["loss"]) == "loss"
    nested = Golden(Trajectory({"loss": [1.0]}), spec={"model": {"b": 1, "a": 2}})
    twin = Golden(Trajectory({"loss": [1.0]}), spec={"model": {"a": 2, "b": 1}})
    assert default_title([nested, twin], ["loss"]) == "loss — model {'b': 1, 'a': 2}"


def test_fallback_label() -> None:
    traj = Trajectory({"loss": [1.0]})
    assert fallback_label("x/a.json", Golden(traj, test="t.py::TestA::test_b", name="warm")) == "test_b [warm]"
    assert fallback_label("x/a.json", Golden(traj, test="t.py::test_b")) == "test_b"
    assert fallback_label("x/run.a.json", Golden(traj)) == "run.a"


# -- labels ------------------------------------------------------------------------------


def g(spec: dict[str, object] | None = None, test: str | None = None) -> Golden:
    return Golden(Trajectory({"loss": [1.0]}), spec=spec, test=test)


def test_one_golden_is_labelled_by_its_spec_else_the_fallback() -> None:
    assert short_labels([g({"optimizer": "SGD(lr=0.1)"})], ["fb"]) == ["SGD(lr=0.1)"]
    assert short_labels([g()], ["fb"]) == ["fb"]


def test_goldens_without_a_spec_use_the_fallback_made_distinct() -> None:
    loaded = [g({"optimizer": "SGD"}), g(), g({"optimizer": "SGD"})]
    assert short_labels(loaded, ["a", "b", "c"]) == ["SGD (a)", "b", "SGD (c)"]


def test_labels_keep_the_keys_that_vary() -> None:
    loaded = [g({"optimizer": "SGD", "epochs": 2, "record": ["loss"], "tags": {"b": 1}}),
              g({"optimizer": "SGD", "epochs": 3, "record": ["loss", "lr"], "tags": {"b": 1}})]
    assert short_labels(loaded, ["a", "b"]) == ["epochs=2", "epochs=3"]  # record never labels
    calls = [g({"optimizer": "SGD(lr=0.1)", "model": "mlp(1, 4)", "loss": None, "seed": 1}),
             g({"optimizer": "SGD(lr=0.2)", "model": "cnn()", "loss": "mse", "seed": None})]
    assert short_labels(calls, ["a", "b"]) == ["SGD(lr=0.1) + mlp + no loss, seed=1", "SGD(lr=0.2) + cnn + mse, seed=null"]
    same = [g({"optimizer": "SGD", "record": ["a"]}), g({"optimizer": "SGD", "record": ["b"]})]
    assert short_labels(same, ["x", "y"]) == ["x", "y"]
    mixed = [g({"epochs": 2, "extra": [1, 2]}), g({"epochs": 2, "extra": "x"})]
    assert short_labels(mixed, ["x", "y"]) == ["extra=[1, 2]", "extra=x"]
    key_order = [g({"tags": {"a": 1, "b": 2}, "epochs": 1}), g({"tags": {"b": 2, "a": 1}, "epochs": 2})]
    assert short_labels(key_order, ["x", "y"]) == ["epochs=1", "epochs=2"]


def test_split_call_corners() -> None:
    assert split_call("Adam(") is None
    assert split_call("lambda: 1") is None
    assert split_call("f(**kw)") == ("f", [("**", "kw")])
    assert split_call("torch.optim.SGD(lr=torch.tensor)") == ("SGD", [("lr", "tensor")])
    assert split_call("f(1.5, a.b(2))") == ("f", [("#0", "1.5"), ("#1", "a.b(2)")])
    assert split_call("partial(torch.Step, 3, gamma=0.5, step=2)") == (
        "Step", [("#0", "3"), ("gamma", "0.5"), ("step", "2")])
    assert split_call("partial(f, 1, 2)") == ("f", [("#0", "1"), ("#1", "2")])
    assert split_call("partial(func=f)") == ("partial", [("func", "f")])
    assert split_call("partial()") == ("partial", [])


def test_short_calls_keep_what_tells_the_runs_apart() -> None:
    def labels(*optimizers: str) -> list[str]:
        return short_labels([g({"optimizer": o}) for o in optimizers], [f"f{i}" for i in range(len(optimizers))])

    assert labels("SGD(lr=0.1)", "SGD(lr=0.1, momentum=0.9)") == ["SGD", "SGD(momentum=0.9)"]
    assert labels("SGD(0.1)", "SGD(0.2)") == ["SGD(0.1)", "SGD(0.2)"]  # positional: value only
    assert labels("my.opt", "SGD(lr=0.1)") == ["my.opt", "SGD"]
    # lr=0.01 is what most runs use: only the unusual one keeps it
    assert labels("Adam(lr=0.01)", "SGD(lr=0.01)", "RMSprop(lr=0.01)", "Adadelta(lr=1.0)") == [
        "Adam", "SGD", "RMSprop", "Adadelta(lr=1.0)"]
    # a tie (half the runs): every value is kept
    assert labels("Adam(lr=0.01)", "SGD(lr=0.01)", "RMSprop(lr=0.1)", "Adadelta(lr=1.0)") == [
        "Adam(lr=0.01)", "SGD(lr=0.01)", "RMSprop(lr=0.1)", "Adadelta(lr=1.0)"]
    assert labels("Adam(lr=0.01)", "SGD(lr=0.01)", "RMSprop(lr=0.1)") == ["Adam", "SGD", "RMSprop(lr=0.1)"]
    assert labels("Adam(eps=1)", "SGD(lr=0.1)") == ["Adam", "SGD"]  # each key used once, by one run


def test_spec_value() -> None:
    assert spec_value("SGD") == "SGD" and spec_value(None) == "null" and spec_value([1, "a"]) == '[1, "a"]'


# -- what the first mutation run found untested ------------------------------------------


def test_a_curve_of_max_points_is_drawn_whole_even_where_it_is_flat() -> None:
    steps, values = drawn_points(np.ones(plotting.MAX_POINTS))
    assert steps.tolist() == list(range(plotting.MAX_POINTS)) and values.tolist() == [1.0] * plotting.MAX_POINTS


def test_a_log_axis_from_zero_is_ticked_at_the_powers_without_a_numpy_warning() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        axis = yaxis(0.0, 10.0)
    assert list(axis.yaxis.get_major_locator()._subs) == [1.0]


def test_default_title_reads_every_shared_key() -> None:
    spec = {"model": "mlp()", "problem": "quadratic()", "optimizer": "SGD", "scheduler": "StepLR",
            "epochs": 2, "batch_size": 8, "seed": 1}
    both = [Golden(Trajectory({"loss": [1.0]}), spec=spec), Golden(Trajectory({"loss": [1.0]}), spec=dict(spec))]
    assert default_title(both, ["loss"]) == (
        "loss — model mlp(), problem quadratic(), optimizer SGD, scheduler StepLR, epochs 2, batch_size 8")


def test_labels_join_several_arguments_and_keys() -> None:
    loaded = [g({"optimizer": "SGD(lr=0.1, momentum=0.9)", "epochs": 2, "seed": 1}),
              g({"optimizer": "SGD()", "epochs": 3, "seed": 2})]
    assert short_labels(loaded, ["a", "b"]) == ["SGD(lr=0.1, momentum=0.9), epochs=2, seed=1", "SGD, epochs=3, seed=2"]
    plain = [g({"epochs": 2, "seed": 1}), g({"epochs": 3, "seed": 2})]
    assert short_labels(plain, ["a", "b"]) == ["epochs=2, seed=1", "epochs=3, seed=2"]


def test_forty_one_goldens_cycle_colours_then_line_styles() -> None:
    import warnings

    loaded = [golden("SGD", [1.0, 0.5]) for _ in range(41)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # grid(False, alpha=...) would warn
        figure = plot_goldens(loaded, [f"r{i}" for i in range(41)], ["loss"], logy=None, title="")
    styles = [ln.get_linestyle() for ln in figure.axes[0].get_lines()]
    assert [styles[i] for i in (0, 10, 20, 30, 40)] == ["-", "--", ":", "-.", "-"]
    assert len(figure.axes) == 1 and figure.axes[0].yaxis.get_gridlines()[0].get_visible()


def test_plot_trajectory_makes_one_column() -> None:
    axes = plot_trajectory(Trajectory({"loss": [1.0, 0.5], "lr": [0.1, 0.1]}))
    assert len(axes[0].figure.axes) == 2
