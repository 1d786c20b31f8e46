"""The picture of one check (``--optcheck-report=DIR``): golden and current overlaid per
series, and the relative error per step against the tolerance allowed.

A failing check's text says *where* a trajectory left its golden; the picture shows *how*
(a slow drift, a jump at one step, a NaN).

matplotlib is imported inside the drawing functions only: importing this module stays as
cheap as importing the plugin. Figures are made with ``matplotlib.figure.Figure`` and the
Agg canvas, never through pyplot, so no global figure state or GUI backend is touched in
the user's pytest process and nothing has to be closed to free memory.

A picture is drawn once, when it is saved, and what makes drawing slow is avoided: log
axes are labelled in plain text (``1e-04``), not mathtext; titles and axis labels sit at
fixed places, so no layout pass measures every tick label; a curve longer than
:data:`~.plotting.MAX_POINTS` is drawn through the minimum and maximum of each of MAX_POINTS / 2
slices (the envelope a pixel column would show; every number a picture prints comes from
the full series); legends go where the curves are not, judged on the thinned curves, and
a legend is drawn once per picture for each set of entries (golden/current reads the
same on every panel); glyphs are not hinted (:data:`DRAWING_RC`). What every picture
of optcheck shares — the figure, thinning, log ticks, the PNG through ``savefig`` — is
in :mod:`.plotting`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..engine.bound import allowed
from ..engine.compare import relative_error
from ..engine.messages import format_number
from ..engine.outcome import Status
from ..engine.trajectory import as_2d, use_log_scale
from .plotting import DPI, drawn_points, log_scale, new_figure, save_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..engine.compare import SeriesVerdict
    from ..engine.envelope import Calibration
    from ..engine.outcome import Outcome
    from ..engine.tolerance import Tolerance
    from ..engine.trajectory import Trajectory

#: Series drawn first, in this order; any other recorded series follows.
SERIES_ORDER = ("loss", "lr", "momentum", "grad_norm", "param_norm", "update_norm", "sparsity")
#: At most this many series panels (plus the relative-error one), so a picture stays readable.
MAX_SERIES_PANELS = 7
LEGEND_LOC = "best"  # "upper right" is cheaper but hides curves too often

STATUS_COLORS: dict[str, str] = {
    Status.FAILED: "#c62828",
    Status.CONFIG_CHANGED: "#e65100",
    Status.CORRUPT: "#6a1b9a",
    Status.MISSING: "#ad8b00",
    Status.ERROR: "#6a1b9a",
    Status.UPDATED: "#1565c0",
    Status.REPAIRED: "#1565c0",
    Status.CREATED: "#1565c0",
    Status.PASSED: "#2e7d32",
}
GOLDEN_STYLE = {"color": "0.25", "linestyle": "--", "linewidth": 1.4}
CURRENT_WIDTH = 1.2
#: matplotlib settings a report picture is drawn under (:func:`write_picture`). FreeType's
#: hinting (snapping each glyph's outline to the pixel grid) is half the cost of a
#: picture's text, and at 7-10 pt on 90 dpi the unhinted glyphs read as well.
DRAWING_RC: dict[str, object] = {"text.hinting": "no_hinting"}


# -- the picture of one check ------------------------------------------------------


def write_picture(path: Path, outcome: Outcome, title: str) -> bool:
    """Write the PNG of one check; a drawing problem warns instead of failing the test.

    The picture is an aid to the verdict, not part of it: a matplotlib hiccup must not
    turn a passing training check into an error at teardown. Returns whether it was written.
    """
    from matplotlib import rc_context

    try:
        with rc_context(DRAWING_RC):
            save_figure(draw_outcome(outcome, title, reuse=True), Path(path))
    except Exception as exc:  # noqa: BLE001 - see docstring
        warnings.warn(f"optcheck: could not draw the picture {str(path)!r}: {exc!r}", stacklevel=2)
        return False
    return True


def draw_outcome(outcome: Outcome, title: str, *, reuse: bool = False) -> Figure:
    """Golden and current overlaid per series, then the relative error per step.

    With ``reuse``, the figure of the previous picture with as many panels is cleared and
    drawn on again (its axes and tick artists are most of a picture's cost): the caller
    must be done with it before the next call, as :func:`write_picture` is."""
    golden = outcome.golden.trajectory if outcome.golden is not None else None
    current = outcome.current.trajectory if outcome.current is not None else None
    names = panel_series(golden, current)
    per_epoch = epoch_panel_series(golden, current)
    compared = golden is not None and current is not None and any(n in golden and n in current for n in names)
    # A per-epoch panel labels its axis "epoch": a figure with one is made fresh, never reused.
    figure, axes = _grid(len(names) + len(per_epoch) + (1 if compared else 0), reuse=reuse and not per_epoch)
    first = _first_failure(outcome)
    band = _noise_band(outcome)
    skipped = _skipped_steps(current)
    keys: set[tuple[str, ...]] = set()
    for axis, name in zip(axes, names):
        _draw_series(axis, name, golden, current, first)
        if band is not None:
            _draw_noise_band(axis, name, *band)
        if skipped.size and name != "skipped":
            _mark_skipped(axis, skipped)
        _legend_once(axis, keys)
    for axis, name in zip(axes[len(names):], per_epoch):
        _draw_epoch_series(axis, name, golden, current)
        _legend_once(axis, keys)
    if compared:
        _draw_relative_error(axes[len(names) + len(per_epoch)], golden, current, outcome, first)
    if not names:
        axes[0].text(0.5, 0.5, "no trajectory was recorded", ha="center", va="center", transform=axes[0].transAxes)
        axes[0].set_axis_off()
    figure.suptitle(_title_text(outcome, title), color=STATUS_COLORS.get(outcome.status, "black"), fontsize=10)
    # A third title line (notes) needs more room at the top. A reused figure may still have the
    # room an earlier picture made for one: set it either way (else a report's pictures depended
    # on the picture drawn before them).
    top = 1 - (0.95 if outcome.notes else 0.75) / figure.get_figheight()
    if figure.subplotpars.top != top:
        figure.subplots_adjust(top=top)
    return figure


def _noise_band(outcome: Outcome) -> tuple[Trajectory, Calibration] | None:
    """The calibrated golden and its envelope: the one compared with, else the one written."""
    for golden in (outcome.golden, outcome.current if outcome.golden is None else None):
        if golden is not None and golden.calibration is not None:
            return golden.trajectory, golden.calibration
    return None


def _draw_noise_band(axis: Axes, name: str, golden: Trajectory, calibration: Calibration) -> None:
    """golden ± factor x envelope, shaded: where a calibrated check lets the run go (the
    tolerance may allow more where the envelope is thinner than it)."""
    allowance = calibration.allowance(name)
    if name not in golden or allowance is None or not np.any(allowance > 0):
        return
    values = as_2d(golden[name])
    n = min(values.shape[0], allowance.shape[0])
    steps = np.arange(n)
    log = axis.get_yscale() == "log"
    for g in range(min(values.shape[1], allowance.shape[1])):
        label = (f"{format_number(calibration.factor)} x noise envelope ({calibration.replicas} replicas)"
                 if g == 0 else None)
        low = values[:n, g] - allowance[:n, g]
        if log:  # a band reaching below zero has no place on a log scale: open it downwards
            low = np.where(low > 0, low, np.nanmin(values[:n, g][values[:n, g] > 0], initial=1.0) / 10)
        axis.fill_between(steps, low, values[:n, g] + allowance[:n, g],
                          color="0.6", alpha=0.35, linewidth=0, label=label)


def _legend_once(axis: Axes, shown: set[tuple[str, ...]]) -> None:
    """A series panel's legend, unless an earlier panel of the picture has the same one.

    A label names one style on every panel ("golden" dashed grey, "current" blue, "group 1"
    orange), so one key serves them all, and every repeat would cost as much to draw as
    the panel's curves and ticks (a legend measures each label several times to lay it
    out) and hide part of a curve. A panel whose key differs (a series only one side has,
    param groups, the noise band) keeps its legend."""
    labels = tuple(axis.get_legend_handles_labels()[1])
    if labels and labels not in shown:
        shown.add(labels)
        axis.legend(fontsize=7, loc=LEGEND_LOC)


def panel_series(golden: Trajectory | None, current: Trajectory | None) -> list[str]:
    """Every series of either side, the usual ones first, capped at MAX_SERIES_PANELS."""
    present: list[str] = []
    for traj in (golden, current):
        if traj is not None:
            present += [n for n in traj.names if n not in present]
    ordered = [n for n in SERIES_ORDER if n in present] + [n for n in present if n not in SERIES_ORDER]
    return ordered[:MAX_SERIES_PANELS]


def epoch_panel_series(golden: Trajectory | None, current: Trajectory | None) -> list[str]:
    """The per-epoch series (``rec.log_epoch``) of either side, drawn on an epoch axis."""
    names: list[str] = []
    for traj in (golden, current):
        if traj is not None:
            names += [n for n in traj.epoch_series if n not in names]
    return names[:MAX_SERIES_PANELS]


def _draw_epoch_series(axis: Axes, name: str, golden: Trajectory | None, current: Trajectory | None) -> None:
    """A per-epoch series, golden and current, one point an epoch, on an epoch axis."""
    _label(axis, f"{name} (per epoch)")
    axis.set_xlabel("epoch", fontsize=8)
    axis.xaxis.label.set_horizontalalignment("right")  # where "step" sits on the other panels
    for traj, role in ((golden, "golden"), (current, "current")):
        if traj is None or name not in traj.epoch_series:
            continue
        values = traj.epoch_series[name]
        style = dict(GOLDEN_STYLE) if role == "golden" else {"linewidth": CURRENT_WIDTH, "color": "C0"}
        axis.plot(values, marker="o", markersize=3, label=role, **style)  # x: the epoch, 0, 1, ...


def _skipped_steps(current: Trajectory | None) -> np.ndarray:
    """The steps a GradScaler skipped in the current run (its ``skipped`` series), if any."""
    if current is None or "skipped" not in current:
        return np.empty(0, dtype=np.int64)
    return current.steps[np.asarray(current["skipped"]).reshape(-1) > 0]


def _mark_skipped(axis: Axes, steps: np.ndarray) -> None:
    """A thin grey line at each step the scaler skipped: the row is there, the update is not."""
    axis.vlines(steps, 0, 1, transform=axis.get_xaxis_transform(), color="0.55", linewidth=0.7,
                linestyle="--", label="skipped step")


#: Figures kept for reuse by :func:`write_picture`, by panel count.
_FIGURES: dict[int, tuple[Figure, list[Axes]]] = {}


def _grid(panels: int, reuse: bool = False) -> tuple[Figure, list[Axes]]:
    """One column up to three panels, two columns beyond: wide enough, never huge."""
    from matplotlib.figure import Figure

    panels = max(panels, 1)
    cached = _FIGURES.get(panels)
    # Only a figure of the matplotlib now imported: pytester's in-process runs drop modules
    # first imported inside them, and a figure of the old module cannot be drawn on.
    if reuse and cached is not None and type(cached[0]) is Figure:
        figure, axes = cached
        for axis in axes:
            _clear(axis)
        for spare in axes[panels:]:
            spare.set_axis_off()
        return figure, axes[:panels]
    figure, axes = _new_grid(panels)
    if reuse:
        _FIGURES[panels] = figure, axes
    return figure, axes[:panels]


def _clear(axis: Axes) -> None:
    """An axis as :func:`_new_grid` made it, keeping its tick artists: every line, text and
    legend of the previous picture removed, scales, limits and autoscaling reset."""
    for artist in [*axis.lines, *axis.texts, *axis.collections, *axis.patches, *axis.images]:
        artist.remove()
    if axis.legend_ is not None:
        axis.legend_.remove()
    # Setting a scale makes new locators and formatters and autoscales: only a log y axis
    # needs it (no picture sets a log x axis, and _label sets the linear y axis' locator).
    if axis.get_yscale() != "linear":
        axis.set_yscale("linear")
    axis.relim()
    axis.set_xlim(0, 1)  # a new Axes' limits, for a panel that draws nothing
    axis.set_ylim(0, 1)
    axis.set_autoscale_on(True)
    axis.set_title("", loc="left")
    axis.set_axis_on()


def _new_grid(panels: int) -> tuple[Figure, list[Axes]]:
    cols = 1 if panels <= 3 else 2
    rows = math.ceil(panels / cols)
    width = 8.0 if cols == 1 else 12.0
    height = 0.9 + 2.5 * rows
    # Fixed margins in inches, not constrained layout: that one triples the time to save.
    figure = new_figure((width, height), dpi=DPI)
    figure.subplots_adjust(left=0.8 / width, right=1 - 0.2 / width, top=1 - 0.75 / height, bottom=0.5 / height,
                           hspace=0.9 / 2.5, wspace=0.18)
    grid = figure.subplots(rows, cols, squeeze=False)
    axes = list(grid.flat)
    for axis in axes:
        _style(axis)
    for spare in axes[panels:]:
        spare.set_axis_off()
    return figure, axes


def _draw_series(
    axis: Axes, name: str, golden: Trajectory | None, current: Trajectory | None, first: tuple[str, int] | None
) -> None:
    """Golden dashed grey, current in colour; one line per param group for lr/momentum."""
    _label(axis, name)
    groups = max(_groups(t, name) for t in (golden, current))
    for traj, role in ((golden, "golden"), (current, "current")):
        if traj is None or name not in traj:
            continue
        values = as_2d(traj[name])
        for g in range(values.shape[1]):
            label = role + (f" (group {g})" if groups > 1 else "")
            # golden: grey for every group; current: a colour per group
            style = dict(GOLDEN_STYLE) if role == "golden" else {"linewidth": CURRENT_WIDTH, "color": f"C{g}"}
            index, shown = drawn_points(values[:, g])
            axis.plot(traj.steps[index], shown, label=label, **style)
            if role == "current" and traj.buckets is not None and name in traj.buckets.stats:
                _draw_buckets(axis, traj, name, g, style["color"])
    if use_log_scale(name, [t[name] for t in (golden, current) if t is not None and name in t]):
        log_scale(axis)
    if first is not None and first[0] == name:
        axis.axvline(first[1], color=STATUS_COLORS["failed"], linewidth=0.9, linestyle=":")


def _draw_buckets(axis: Axes, traj: Trajectory, name: str, group: int, color: str) -> None:
    """A thinned run: each bucket's min..max, shaded, so a spike between kept steps shows."""
    assert traj.buckets is not None
    low = as_2d(traj.buckets.stats[name]["min"])[:, group]
    high = as_2d(traj.buckets.stats[name]["max"])[:, group]
    edges = np.append(traj.steps[: low.shape[0]], traj.total_steps)  # the last bucket reaches the end
    low, high = np.append(low, low[-1:]), np.append(high, high[-1:])
    axis.fill_between(edges, low, high, step="post", color=color, alpha=0.2, linewidth=0,
                      label=f"bucket min..max ({traj.every} steps)" if group == 0 else None)


def _draw_relative_error(
    axis: Axes, golden: Trajectory, current: Trajectory, outcome: Outcome, first: tuple[str, int] | None
) -> None:
    """|c - g| / |g| per step (worst group), log scale, with each series' allowed error."""
    _label(axis, "relative error |current - golden| / |golden|")
    tolerances = _tolerances(outcome)
    anything = False
    names = [n for n in panel_series(golden, current) if n in golden and n in current]
    for i, name in enumerate(names):
        rel = relative_error(golden[name], current[name])
        shown = np.where(rel > 0, rel, np.nan)
        color = f"C{i}"
        if not np.isfinite(shown).any():
            continue  # identical: an error line or an allowed line would only be clutter
        steps = current.steps[: shown.size]  # real step indices, also for a thinned run
        index, values = drawn_points(shown)
        axis.plot(steps[index], values, color=color, linewidth=CURRENT_WIDTH, label=name)
        anything = True
        tol = tolerances.get(name)
        if tol is not None and tol.mode == "step":
            allowed = allowed_relative(golden[name], tol, rel.size, _allowance(outcome, name))
            if np.isfinite(allowed).any() and np.nanmax(allowed) > 0:
                index, values = drawn_points(allowed)
                axis.plot(steps[index], values, color=color, linestyle=":", linewidth=0.9, label=f"{name} allowed")
                anything = True
    if anything:
        log_scale(axis)
        axis.legend(fontsize=7, loc=LEGEND_LOC, ncol=2)
    else:
        axis.set_yticks([])  # an empty 0..1 scale would suggest a measurement
        axis.set_xlim(0, max(golden.total_steps, current.total_steps))
    if not _any_difference(golden, current, names):
        axis.text(0.5, 0.5, "golden and current are identical at every step",
                  ha="center", va="center", transform=axis.transAxes, fontsize=9, color=STATUS_COLORS["passed"])
    if first is not None:
        _mark_first_failure(axis, first, current)


def _mark_first_failure(axis: Axes, first: tuple[str, int], current: Trajectory) -> None:
    name, step = first
    axis.axvline(step, color=STATUS_COLORS["failed"], linewidth=1.0)
    where = f"step {step}"
    row = current.row_of(step)
    if row is not None:
        where += f" (epoch {int(current.epoch[row])}, batch {int(current.batch[row])})"
    low, high = axis.get_xlim()
    right_half = step > low + 0.55 * (high - low)  # write the text where it fits
    axis.annotate(
        f"first failure: {name}, {where}", xy=(step, 0.04), xycoords=("data", "axes fraction"),
        xytext=(-4 if right_half else 4, 0), textcoords="offset points", fontsize=8,
        ha="right" if right_half else "left", color=STATUS_COLORS["failed"],
        bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
    )


def _label(axis: Axes, title: str) -> None:
    """The panel's title at a fixed place, and few ticks: every tick is several artists to
    make and draw, and a placed title needs no pass measuring them."""
    from matplotlib.ticker import MaxNLocator

    axis.set_title(title, fontsize=9, loc="left", y=1.0, pad=4)
    axis.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    if axis.get_yscale() == "linear":
        axis.yaxis.set_major_locator(MaxNLocator(nbins=4))


def _style(axis: Axes) -> None:
    """What every panel shares, set once when its Axes is made (a reused one keeps it):
    "step" and the tick labels at fixed places, so no draw measures them to place them.
    Setting the tick label size walks every tick: done per picture it cost 2 ms."""
    axis.set_xlabel("step", fontsize=8)
    axis.xaxis.set_label_coords(1.0, -0.085)
    axis.xaxis.label.set_horizontalalignment("right")
    axis.xaxis.label.set_verticalalignment("top")
    # The y axis has no label, but an unplaced one is still placed each draw, beside the
    # tick labels: measuring them all a second time. Placing it here skips that.
    axis.yaxis.set_label_coords(-0.1, 0.5)
    # An offset ("1e-5+1e-2") at the top right: on the left it covers the title.
    axis.yaxis.set_offset_position("right")
    axis.yaxis.get_offset_text().set_fontsize(7)
    axis.tick_params(labelsize=7)


def allowed_relative(golden: np.ndarray, tol: Tolerance, steps: int,
                     allowance: np.ndarray | None = None) -> np.ndarray:
    """The relative error a step may have: the allowed difference (:func:`~..engine.bound.allowed`,
    a calibrated golden's allowance included) over |golden|, smallest over groups."""
    g = as_2d(golden)[:steps]
    fitted = None
    if allowance is not None and allowance.shape[0] >= g.shape[0]:
        fitted = allowance[: g.shape[0], : g.shape[1]]  # one column (fewer than g's) broadcasts over the groups
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(g != 0, allowed(tol, g, fitted) / np.abs(g), np.inf)
    return relative.min(axis=1) if g.shape[1] else np.full(steps, np.nan)


def _any_difference(golden: Trajectory, current: Trajectory, names: Iterable[str]) -> bool:
    for name in names:
        if len(golden[name]) != len(current[name]) or relative_error(golden[name], current[name]).any():
            return True
    # a thinned run: the kept steps may agree while a step between them does not
    return golden.buckets is not None and golden.buckets != current.buckets


def _allowance(outcome: Outcome, name: str) -> np.ndarray | None:
    calibration = outcome.golden.calibration if outcome.golden is not None else None
    return calibration.allowance(name) if calibration is not None else None


def _tolerances(outcome: Outcome) -> Mapping[str, Tolerance]:
    if outcome.tolerances:
        return outcome.tolerances
    if outcome.verdict is not None:
        return {s.name: s.tolerance for s in outcome.verdict.series}
    return {}


def _first_failure(outcome: Outcome) -> tuple[str, int] | None:
    """(series, step) of the earliest first failure among failing series, if any."""
    if outcome.verdict is None:
        return None
    steps = [(s.first_failure, s.name) for s in outcome.verdict.failed if s.first_failure is not None]
    steps += [(s.nonfinite_step, s.name) for s in outcome.verdict.failed if s.nonfinite_step is not None]
    steps += [(s.buckets.first.first_step, s.name) for s in outcome.verdict.failed
              if s.buckets is not None and s.buckets.first is not None]
    if not steps:
        return None
    step, name = min(steps)
    return name, step


def _title_text(outcome: Outcome, title: str) -> str:
    line = outcome.status.upper()
    worst = outcome.worst()
    if worst is not None and outcome.verdict is not None and outcome.passed and worst["max_rel"] == 0:
        line += " · identical to the golden"
    elif worst is not None and outcome.verdict is not None:
        line += f" · worst: {worst['series']} rel. error {format_number(worst['max_rel'])}"
        worst_sv = _series_verdict(outcome, worst["series"])
        if worst_sv is not None and worst_sv.max_rel_at is not None:
            line += f" at step {worst_sv.max_rel_at[0]}"
    elif outcome.golden is None:
        line += " · no golden to compare with: current run only"
    elif outcome.status is Status.CONFIG_CHANGED:
        changed = _changed_keys(outcome)
        line += f" · configuration changed{changed}: numbers not compared"
    notes = f"\n{shorten('; '.join(outcome.notes), 120)}" if outcome.notes else ""  # e.g. a calibrated golden
    return f"{shorten(title, 110)}\n{line}{notes}"


def _changed_keys(outcome: Outcome) -> str:
    from ..golden.format import spec_changes

    if outcome.golden is None or outcome.current is None:
        return ""
    keys = [key for key, _, _ in spec_changes(outcome.golden.spec, outcome.current.spec)]
    return f" ({', '.join(keys)})" if keys else ""


def _series_verdict(outcome: Outcome, name: str) -> SeriesVerdict | None:
    if outcome.verdict is None:
        return None
    return next((s for s in outcome.verdict.series if s.name == name), None)


def _groups(traj: Trajectory | None, name: str) -> int:
    if traj is None or name not in traj:
        return 0
    values = traj[name]
    return values.shape[1] if values.ndim == 2 else 1


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
