"""Drawing trajectories with matplotlib, for every picture optcheck makes: the report's
picture of a check (:mod:`.picture`), ``optcheck plot``'s overlay of several goldens
(:func:`plot_goldens`) and ``Trajectory.plot`` (:func:`plot_trajectory`).

What they share lives here once: a figure on its own Agg canvas (:func:`new_figure`: no
pyplot, no backend switch, no global figure list, so a notebook's backend and open
figures stay as they were), the log-scale rule of :func:`~..engine.trajectory.use_log_scale`,
thinning of long curves (:func:`drawn_points`), plain-text log ticks (:func:`log_scale`) and one
way to write a PNG (:func:`save_figure`: matplotlib's ``savefig`` through Pillow, at
zlib level 1 — a plot is long runs of one colour, which the fastest level packs nearly
as small — written atomically).

matplotlib is imported inside the functions only: importing this module stays cheap.
"""

from __future__ import annotations

import ast
import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..engine.trajectory import use_log_scale
from ..golden.files import write_atomic

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..engine.trajectory import Trajectory
    from ..golden.format import Golden

#: Resolution of every PNG optcheck writes.
DPI = 90
#: Pillow's options for the PNG: zlib level 1 (the default 6 took a fifth of a picture's time).
PNG_OPTIONS: dict[str, Any] = {"compress_level": 1}
#: A curve with more points than this is drawn through its per-slice min/max envelope.
MAX_POINTS = 1000
#: A log axis spanning at most this many decades is ticked at 1, 2 and 5 times the powers
#: of ten, a wider one at the powers only (minor ticks cost more to draw than the curve).
SUB_DECADE_TICKS = 1.5
#: Spec keys holding call syntax ("Adam(lr=0.01)"), shortened argument by argument in labels.
CALL_KEYS = ("optimizer", "scheduler", "model", "problem", "loss")
#: Spec keys that never make a useful legend entry.
LABEL_SKIP = ("record",)


# -- shared ----------------------------------------------------------------------------


def new_figure(size: tuple[float, float], layout: str | None = None, dpi: float | None = None) -> Figure:
    """A matplotlib Figure on its own Agg canvas, never through pyplot (``dpi`` None:
    matplotlib's default, for a figure the user saves)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=dpi, layout=layout)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: str | Path) -> None:
    """The figure as a PNG at :data:`DPI` through matplotlib's ``savefig``, written
    atomically (a reader never sees half a PNG)."""
    write_atomic(path, lambda tmp: figure.savefig(tmp, format="png", dpi=DPI, pil_kwargs=PNG_OPTIONS))


def drawn_points(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) to draw: all of them up to MAX_POINTS, else the first and the last
    step and, in between, each slice's minimum and maximum in step order (NaN gaps kept
    where a whole slice is NaN), so a spike or a NaN never disappears from the picture.

    Vectorised, with no loop over slices: a loop cost 11 ms a curve at any length, and a
    long run's picture has a dozen curves. A slice's extreme is its first step holding
    the slice's ``fmin``/``fmax`` (NaN ignored), as ``nanargmin``/``nanargmax`` pick."""
    values = np.asarray(values, dtype=np.float64)
    n = values.size
    if n <= MAX_POINTS:
        return np.arange(n), values
    edges = np.linspace(0, n, MAX_POINTS // 2 + 1).astype(np.int64)
    starts, lengths = edges[:-1], np.diff(edges)
    keep = np.zeros(n, dtype=bool)
    keep[[0, n - 1]] = True
    low, high = np.fmin.reduceat(values, starts), np.fmax.reduceat(values, starts)
    empty = np.isnan(low)  # only where the whole slice is NaN
    for extreme in (low, high):
        hits = np.flatnonzero(values == np.repeat(extreme, lengths))  # sorted
        keep[hits[np.searchsorted(hits, starts[~empty])]] = True  # each slice's first hit
    keep[starts[empty]] = True
    index = np.flatnonzero(keep)
    return index, values[index]


def log_scale(axis: Axes) -> None:
    """A log y axis labelled in plain text (``1e-04``, ``0.3``; mathtext is slow to lay out)
    with few ticks, no minor ones: 1, 2 and 5 times the powers of ten where the axis spans
    at most :data:`SUB_DECADE_TICKS` decades (so a narrow range still reads), else the
    powers of ten (every few of them on a wide axis)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    axis.set_yscale("log")
    low, high = axis.get_ylim()
    narrow = low > 0 and math.log10(high / low) <= SUB_DECADE_TICKS
    axis.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if narrow else (1.0,), numticks=6))
    axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.yaxis.set_minor_locator(NullLocator())


# -- Trajectory.plot -------------------------------------------------------------------


def plot_trajectory(trajectory: Trajectory, series: Sequence[str] | None = None, ax: Any = None,
                    label: str | None = None) -> Any:
    """``Trajectory.plot``: the series on matplotlib axes, one axis per series on a new
    figure when ``ax`` is None (``axes[0].figure.savefig(...)``), else all on ``ax``.
    Loss-like series use a log scale when all values are positive. Returns the axes (one
    Axes for one series)."""
    names = list(series or trajectory.names)
    if ax is None:
        figure = new_figure((7, 2.6 * len(names)), layout="constrained")
        axes = list(figure.subplots(len(names), 1, squeeze=False)[:, 0])
    else:
        axes = [ax] * len(names)
    steps = trajectory.steps  # real step indices, also when thinned
    for axis, name in zip(axes, names):
        values = trajectory[name]
        axis.plot(steps, values, label=label or name)
        if use_log_scale(name, [values]):
            axis.set_yscale("log")
        axis.set_ylabel(name)
        axis.set_xlabel("step")
    return axes[0] if len(axes) == 1 else axes


# -- optcheck plot -----------------------------------------------------------------------


def plot_goldens(loaded: Sequence[Golden], labels: Sequence[str], series: Sequence[str], *,
                 logy: bool | None, title: str) -> Any:
    """``optcheck plot``'s figure: one panel per series, one line (per param group) per
    golden; the legend beside the plot."""
    figure = new_figure((10, 0.8 + 4.2 * len(series)), layout="constrained")
    axes = figure.subplots(len(series), 1, squeeze=False)[:, 0]
    for axis, name in zip(axes, series):
        for i, (golden, label) in enumerate(zip(loaded, labels)):
            values = golden.trajectory[name]
            values = values.reshape(-1, 1) if values.ndim == 1 else values
            style = {"color": f"C{i % 10}", "linestyle": ("-", "--", ":", "-.")[(i // 10) % 4], "linewidth": 1.3}
            for g in range(values.shape[1]):
                suffix = f" [group {g}]" if values.shape[1] > 1 else ""
                axis.plot(golden.trajectory.steps, values[:, g], label=label + suffix,
                          **({**style, "alpha": 1.0 if g == 0 else 0.6}))
        if _use_log(name, [g.trajectory[name] for g in loaded], logy):
            axis.set_yscale("log")
        axis.set_ylabel(name)
        axis.set_xlabel("step")
        axis.grid(True, alpha=0.3)  # the major ticks' grid (which="major" is the default)
        axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    if title:
        figure.suptitle(title, fontsize=11)
    return figure


def _use_log(name: str, arrays: Sequence[np.ndarray], logy: bool | None) -> bool:
    return logy if logy is not None else use_log_scale(name, arrays)


def default_title(loaded: Sequence[Golden], series: Sequence[str]) -> str:
    """The series, plus the spec values every run shares (what the figure holds fixed)."""
    specs = [g.spec for g in loaded]
    head = ", ".join(series)
    if not all(specs):
        return head
    shared = []
    for key in ("model", "problem", "optimizer", "scheduler", "epochs", "batch_size"):
        values = {json.dumps(s.get(key), sort_keys=True) for s in specs}  # type: ignore[union-attr]
        value = specs[0].get(key)  # type: ignore[union-attr]
        if len(values) == 1 and value not in (None, "", 0):
            shared.append(f"{key} {value}")
    return f"{head} — {', '.join(shared)}" if shared else head


def fallback_label(path: str, golden: Golden) -> str:
    if golden.test:
        return golden.test.split("::")[-1] + (f" [{golden.name}]" if golden.name else "")
    return Path(path).stem


# -- labels ------------------------------------------------------------------------------


def short_labels(loaded: Sequence[Golden], fallbacks: Sequence[str]) -> list[str]:
    """Short, distinct legend labels: only the spec values that tell the runs apart.

    A call argument is kept when it differs between runs of the same optimizer (SGD vs
    SGD(momentum=0.9)) or when its value is not the one most runs use (Adadelta(lr=1.0)
    among lr=0.01 runs); other spec keys appear as ``key=value`` when they vary. Runs
    without a spec use the test name. Duplicates get the fallback appended.
    """
    if len(loaded) == 1:
        only = loaded[0]
        return [only.label if only.spec else fallbacks[0]]
    if not all(g.spec for g in loaded):
        labels = [g.label if g.spec else fb for g, fb in zip(loaded, fallbacks)]
        return _distinct(labels, fallbacks)
    specs: list[dict[str, Any]] = [dict(g.spec or {}) for g in loaded]
    keys = [k for k in dict.fromkeys(k for s in specs for k in s) if k not in LABEL_SKIP]
    varying = [k for k in keys if len({json.dumps(s.get(k), sort_keys=True) for s in specs}) > 1]
    labels = []
    for i, spec in enumerate(specs):
        calls, others = [], []
        for key in varying:
            value = spec.get(key)
            if key in CALL_KEYS and isinstance(value, str):
                calls.append(_short_call(value, [s.get(key) for s in specs]))
            elif key in CALL_KEYS and value is None:
                calls.append(f"no {key}")
            else:
                others.append(f"{key}={spec_value(value)}")
        label = " + ".join(calls)
        if others:
            label = f"{label}, {', '.join(others)}" if label else ", ".join(others)
        labels.append(label or fallbacks[i])
    return _distinct(labels, fallbacks)


def _distinct(labels: list[str], fallbacks: Sequence[str]) -> list[str]:
    counts = Counter(labels)
    return [f"{label} ({fb})" if counts[label] > 1 else label for label, fb in zip(labels, fallbacks)]


def split_call(text: str) -> tuple[str, list[tuple[str, str]]] | None:
    """'Adam(betas=(0.9, 0.99), lr=0.01)' -> ('Adam', [('betas', '(0.9, 0.99)'), ('lr', '0.01')]).

    Positional arguments get keys '#0', '#1', ... Returns None for anything that is not a
    plain call (a callable's dotted name, a lambda), which is then shown whole.
    """
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(node, ast.Call):
        return None
    args = [(f"#{i}", _last_name(ast.unparse(a))) for i, a in enumerate(node.args)]
    args += [(k.arg or "**", _last_name(ast.unparse(k.value))) for k in node.keywords]
    name = _last_name(ast.unparse(node.func))
    if name == "partial" and args and args[0][0] == "#0":  # partial(LambdaLR, lr_lambda=f): name it LambdaLR
        name, args = args[0][1], [(k if not k.startswith("#") else f"#{i}", v) for i, (k, v) in enumerate(args[1:])]
    return name, args


def _last_name(text: str) -> str:
    """'torch.optim.lr_scheduler.LambdaLR' -> 'LambdaLR': module paths only lengthen a legend."""
    parts = text.split(".")
    if all(p.isidentifier() for p in parts):  # one part: parts[-1] is the text itself
        return parts[-1]
    return text


def _short_call(value: str, all_values: Sequence[Any]) -> str:
    parsed = split_call(value)
    if parsed is None:
        return value
    name, args = parsed
    others = [p for p in (split_call(v) for v in all_values if isinstance(v, str)) if p is not None]
    same_name = [dict(a) for n, a in others if n == name]
    by_key: dict[str, list[str]] = {}
    for _, other_args in others:
        for key, val in other_args:
            by_key.setdefault(key, []).append(val)
    kept = []
    for key, val in args:
        differs_within = any(o.get(key) != val for o in same_name)
        # by_key holds every run's arguments, this one's among them
        common, count = Counter(by_key[key]).most_common(1)[0]
        unusual = val != common or 2 * count <= len(by_key[key])
        if differs_within or unusual:
            kept.append(val if key.startswith("#") else f"{key}={val}")
    return f"{name}({', '.join(kept)})" if kept else name


def spec_value(value: Any) -> str:
    """A spec value as written in a golden: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)
