"""The ``--optcheck-report=DIR`` output: one PNG per check, ``index.html`` and ``summary.json``.

A failing check's text says *where* a trajectory left its golden; the picture shows *how*
(a slow drift, a jump at one step, a NaN). ``index.html`` is the page a reviewer opens
from a CI artifact, so it is self-contained (inline CSS, pictures linked next to it) and
lists failures first. ``summary.json`` is the same content for machines.

matplotlib is imported inside the drawing functions only: importing this module stays as
cheap as importing the plugin. Figures are made with ``matplotlib.figure.Figure`` and the
Agg canvas, never through pyplot, so no global figure state or GUI backend is touched in
the user's pytest process and nothing has to be closed to free memory.
"""

from __future__ import annotations

import html
import json
import math
import os
import tempfile
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .results import STATUS_ORDER, Results
from .trajectory import GROUPED_SERIES

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .compare import SeriesVerdict, Tolerance
    from .trajectory import Trajectory
    from .verdict import Outcome

#: Series drawn first, in this order; any other recorded series follows.
SERIES_ORDER = ("loss", "lr", "momentum", "grad_norm", "param_norm", "update_norm", "sparsity")
#: At most this many series panels (plus the relative-error one), so a picture stays readable.
MAX_SERIES_PANELS = 7
DPI = 90
LEGEND_LOC = "best"  # "upper right" saves ~0.2 s a picture but hides curves too often

STATUS_COLORS = {
    "failed": "#c62828",
    "config-changed": "#e65100",
    "corrupt": "#6a1b9a",
    "missing": "#ad8b00",
    "error": "#6a1b9a",
    "updated": "#1565c0",
    "created": "#1565c0",
    "passed": "#2e7d32",
}
GOOD_STATUSES = ("passed", "created", "updated")
#: Failure messages are expanded in index.html when there are at most this many.
MAX_OPEN_MESSAGES = 10
GOLDEN_STYLE = {"color": "0.25", "linestyle": "--", "linewidth": 1.4}
CURRENT_WIDTH = 1.2


# -- the picture of one check ------------------------------------------------------


def write_picture(path: Path, outcome: Outcome, title: str) -> None:
    """Write the PNG of one check; a drawing problem warns instead of failing the test.

    The picture is an aid to the verdict, not part of it: a matplotlib hiccup must not
    turn a passing training check into an error at teardown.
    """
    try:
        figure = draw_outcome(outcome, title)
        save_figure(figure, Path(path))
    except Exception as exc:  # noqa: BLE001 - see docstring
        warnings.warn(f"optcheck: could not draw the picture {str(path)!r}: {exc!r}", stacklevel=2)


def save_figure(figure: Figure, path: Path) -> None:
    """Save through a temporary file and rename, so a reader never sees half a PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is meant to be read by others
    try:
        figure.savefig(tmp, dpi=DPI, format="png")
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def draw_outcome(outcome: Outcome, title: str) -> Figure:
    """Golden and current overlaid per series, then the relative error per step."""
    golden = outcome.golden.trajectory if outcome.golden is not None else None
    current = outcome.current.trajectory if outcome.current is not None else None
    names = panel_series(golden, current)
    compared = golden is not None and current is not None and any(n in golden and n in current for n in names)
    figure, axes = _grid(len(names) + (1 if compared else 0))
    first = _first_failure(outcome)
    for axis, name in zip(axes, names):
        _draw_series(axis, name, golden, current, first)
    if compared:
        _draw_relative_error(axes[len(names)], golden, current, outcome, first)
    if not names:
        axes[0].text(0.5, 0.5, "no trajectory was recorded", ha="center", va="center", transform=axes[0].transAxes)
        axes[0].set_axis_off()
    figure.suptitle(_title_text(outcome, title), color=STATUS_COLORS.get(outcome.status, "black"), fontsize=10)
    return figure


def panel_series(golden: Trajectory | None, current: Trajectory | None) -> list[str]:
    """Every series of either side, the usual ones first, capped at MAX_SERIES_PANELS."""
    present: list[str] = []
    for traj in (golden, current):
        if traj is not None:
            present += [n for n in traj.names if n not in present]
    ordered = [n for n in SERIES_ORDER if n in present] + [n for n in present if n not in SERIES_ORDER]
    return ordered[:MAX_SERIES_PANELS]


def _grid(panels: int) -> tuple[Figure, list[Axes]]:
    """One column up to three panels, two columns beyond: wide enough, never huge."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = max(panels, 1)
    cols = 1 if panels <= 3 else 2
    rows = math.ceil(panels / cols)
    width = 8.0 if cols == 1 else 12.0
    height = 0.9 + 2.5 * rows
    # Fixed margins in inches, not constrained layout: that one triples the time to save.
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    figure.subplots_adjust(left=0.8 / width, right=1 - 0.2 / width, top=1 - 0.75 / height, bottom=0.5 / height,
                           hspace=0.9 / 2.5, wspace=0.18)
    grid = figure.subplots(rows, cols, squeeze=False)
    axes = list(grid.flat)
    for spare in axes[panels:]:
        spare.set_axis_off()
    return figure, axes[:panels]


def _draw_series(
    axis: Axes, name: str, golden: Trajectory | None, current: Trajectory | None, first: tuple[str, int] | None
) -> None:
    """Golden dashed grey, current in colour; one line per param group for lr/momentum."""
    groups = max(_groups(t, name) for t in (golden, current))
    for traj, role in ((golden, "golden"), (current, "current")):
        if traj is None or name not in traj:
            continue
        values = _as_2d(traj[name])
        for g in range(values.shape[1]):
            label = role + (f" (group {g})" if groups > 1 else "")
            style = dict(GOLDEN_STYLE) if role == "golden" else {"linewidth": CURRENT_WIDTH}
            if groups > 1:
                style["color"] = f"C{g}" if role == "current" else style.get("color", "0.25")
            elif role == "current":
                style["color"] = "C0"
            axis.plot(np.arange(values.shape[0]), values[:, g], label=label, **style)
    if _positive(name, golden, current):
        axis.set_yscale("log")
    if first is not None and first[0] == name:
        axis.axvline(first[1], color=STATUS_COLORS["failed"], linewidth=0.9, linestyle=":")
    axis.set_title(name, fontsize=9, loc="left")
    axis.set_xlabel("step", fontsize=8)
    axis.tick_params(labelsize=7)
    axis.legend(fontsize=7, loc=LEGEND_LOC)


def _draw_relative_error(
    axis: Axes, golden: Trajectory, current: Trajectory, outcome: Outcome, first: tuple[str, int] | None
) -> None:
    """|c - g| / |g| per step (worst group), log scale, with each series' allowed error."""
    tolerances = _tolerances(outcome)
    anything = False
    names = [n for n in panel_series(golden, current) if n in golden and n in current]
    for i, name in enumerate(names):
        rel = relative_error(golden[name], current[name])
        shown = np.where(rel > 0, rel, np.nan)
        color = f"C{i}"
        if not np.isfinite(shown).any():
            continue  # identical: an error line or an allowed line would only be clutter
        axis.plot(np.arange(rel.size), shown, color=color, linewidth=CURRENT_WIDTH, label=name)
        anything = True
        tol = tolerances.get(name)
        if tol is not None and tol.mode == "step":
            allowed = allowed_relative(golden[name], tol, rel.size)
            if np.isfinite(allowed).any() and np.nanmax(allowed) > 0:
                axis.plot(np.arange(rel.size), allowed, color=color, linestyle=":", linewidth=0.9,
                          label=f"{name} allowed")
                anything = True
    if anything:
        axis.set_yscale("log")
        axis.legend(fontsize=7, loc=LEGEND_LOC, ncol=2)
    else:
        axis.set_yticks([])  # an empty 0..1 scale would suggest a measurement
        axis.set_xlim(0, max(len(golden), len(current), 1))
    if not _any_difference(golden, current, names):
        axis.text(0.5, 0.5, "golden and current are identical at every step",
                  ha="center", va="center", transform=axis.transAxes, fontsize=9, color=STATUS_COLORS["passed"])
    if first is not None:
        _mark_first_failure(axis, first, current)
    axis.set_title("relative error |current - golden| / |golden|", fontsize=9, loc="left")
    axis.set_xlabel("step", fontsize=8)
    axis.tick_params(labelsize=7)


def _mark_first_failure(axis: Axes, first: tuple[str, int], current: Trajectory) -> None:
    name, step = first
    axis.axvline(step, color=STATUS_COLORS["failed"], linewidth=1.0)
    where = f"step {step}"
    if step < len(current):
        where += f" (epoch {int(current.epoch[step])}, batch {int(current.batch[step])})"
    low, high = axis.get_xlim()
    right_half = step > low + 0.55 * (high - low)  # write the text where it fits
    axis.annotate(
        f"first failure: {name}, {where}", xy=(step, 0.04), xycoords=("data", "axes fraction"),
        xytext=(-4 if right_half else 4, 0), textcoords="offset points", fontsize=8,
        ha="right" if right_half else "left", color=STATUS_COLORS["failed"],
        bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
    )


def relative_error(golden: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Per step over the common prefix, the largest |c - g| / |g| among the groups.

    A zero golden gives 0 where current is also zero and inf otherwise; NaN against NaN
    counts as equal (0), like the comparison engine.
    """
    g, c = _as_2d(golden), _as_2d(current)
    n, k = min(g.shape[0], c.shape[0]), min(g.shape[1], c.shape[1])
    g, c = g[:n, :k], c[:n, :k]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        diff = np.abs(c - g)
        rel = np.where(g != 0, diff / np.abs(g), np.where(diff == 0, 0.0, np.inf))
    same = (g == c) | (np.isnan(g) & np.isnan(c))
    rel = np.where(same, 0.0, np.where(np.isnan(rel), np.inf, rel))
    return rel.max(axis=1) if k else np.zeros(n)


def allowed_relative(golden: np.ndarray, tol: Tolerance, steps: int) -> np.ndarray:
    """The relative error a step may have: rtol + atol / |golden| (smallest over groups)."""
    g = _as_2d(golden)[:steps]
    with np.errstate(divide="ignore", invalid="ignore"):
        allowed = tol.rtol + np.where(g != 0, tol.atol / np.abs(g), np.inf)
    return allowed.min(axis=1) if g.shape[1] else np.full(steps, np.nan)


def _any_difference(golden: Trajectory, current: Trajectory, names: Iterable[str]) -> bool:
    for name in names:
        if len(golden[name]) != len(current[name]) or relative_error(golden[name], current[name]).any():
            return True
    return False


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
    elif outcome.status == "config-changed":
        changed = _changed_keys(outcome)
        line += f" · configuration changed{changed}: numbers not compared"
    return f"{_shorten(title, 110)}\n{line}"


def _changed_keys(outcome: Outcome) -> str:
    from .golden import spec_changes

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


def _positive(name: str, *trajs: Trajectory | None) -> bool:
    """Log scale for every series except lr/momentum, when all finite values are > 0."""
    if name in GROUPED_SERIES:
        return False
    values = [t[name][np.isfinite(t[name])] for t in trajs if t is not None and name in t]
    return any(v.size for v in values) and all(bool(np.all(v > 0)) for v in values)


def _as_2d(values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    return arr.reshape(-1, 1) if arr.ndim == 1 else arr


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_number(value: Any) -> str:
    """'3.2e-05' style for errors; non-finite and missing values as words."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.3g}"


# -- index.html and summary.json ---------------------------------------------------


def write_index(report_dir: Path, results: Results) -> None:
    """Write ``index.html`` and ``summary.json`` for every check of the session."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    summary = summary_data(results)
    (report_dir / "summary.json").write_text(
        json.dumps(summary, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8"
    )
    (report_dir / "index.html").write_text(render_index(results, report_dir), encoding="utf-8")


def summary_data(results: Results) -> dict[str, Any]:
    """Counts per status and every record, with non-finite floats as strings (valid JSON)."""
    counts = status_counts(results.records)
    data = {
        "total": len(results.records),
        "counts": counts,
        "records": results.sorted_records(),
        "vacuous": results.vacuous,
        "orphans": results.orphans,
        "pruned": results.pruned,
        "notes": results.notes,
    }
    return json_safe(data)


def status_counts(records: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        counts[record["status"]] = counts.get(record["status"], 0) + 1
    rank = {s: i for i, s in enumerate(STATUS_ORDER)}
    return dict(sorted(counts.items(), key=lambda kv: (rank.get(kv[0], 99), kv[0])))


def json_safe(value: Any) -> Any:
    """Non-finite floats as 'NaN'/'Infinity'/'-Infinity' (the golden files' convention)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


_CSS = """
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 8px; }
.counts { margin: 8px 0 16px; }
.counts .badge { margin-right: 6px; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; }
col.status { width: 130px; } col.worst { width: 180px; } col.golden { width: 230px; } col.picture { width: 240px; }
th, td { border-bottom: 1px solid #ddd; padding: 8px 10px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; font-weight: 600; position: sticky; top: 0; }
tr.bad { background: #fff7f7; }
tr.has-message td { border-bottom: none; }
tr.message td { padding-top: 0; }
.badge { display: inline-block; padding: 2px 8px; border-radius: 10px; color: #fff; font-size: 12px;
         font-weight: 600; white-space: nowrap; }
.test { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px;
        word-break: break-all; }
.name { color: #555; }
.path { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px;
        color: #444; word-break: break-all; }
.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
details { margin-top: 6px; }
summary { cursor: pointer; color: #333; }
pre { background: #f7f7f7; border: 1px solid #e3e3e3; padding: 8px; overflow-x: auto; font-size: 12px;
      line-height: 1.35; max-width: 100%; box-sizing: border-box; white-space: pre; }
img.thumb { width: 220px; border: 1px solid #ddd; }
.muted { color: #777; }
ul { margin: 4px 0; }
"""


def render_index(results: Results, report_dir: Path | None = None) -> str:
    """The HTML page: header with counts, the table (failures first), then the lists."""
    records = results.sorted_records()
    counts = status_counts(records)
    badges = " ".join(_badge(status, f"{n} {status}") for status, n in counts.items())
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>optcheck report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>optcheck report</h1>",
        f'<div class="counts">{len(records)} checks: {badges}</div>',
        _table(records, report_dir),
        _vacuous_section(results.vacuous),
        _list_section("Orphaned goldens", "no test owns them; remove with --optcheck-prune", results.orphans),
        _list_section("Orphaned goldens removed", "", results.pruned),
        _list_section("Notes", "", results.notes),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def _badge(status: str, text: str | None = None) -> str:
    color = STATUS_COLORS.get(status, "#555")
    return f'<span class="badge" style="background:{color}">{_e(text or status)}</span>'


def _table(records: Sequence[Mapping[str, Any]], report_dir: Path | None) -> str:
    if not records:
        return '<p class="muted">No checks ran.</p>'
    head = "<tr><th>status</th><th>test</th><th>worst series</th><th>golden</th><th>picture</th></tr>"
    # The messages of a few failures are the diagnosis: show them; many would bury the table.
    bad = sum(r.get("status") not in GOOD_STATUSES for r in records)
    rows = [_row(r, report_dir, open_message=bad <= MAX_OPEN_MESSAGES) for r in records]
    cols = '<colgroup><col class="status"><col><col class="worst"><col class="golden"><col class="picture"></colgroup>'
    return f"<table>{cols}\n<thead>" + head + "</thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table>"


def _row(record: Mapping[str, Any], report_dir: Path | None, open_message: bool = False) -> str:
    status = str(record.get("status"))
    bad = status not in GOOD_STATUSES
    cells = [
        _badge(status),
        _test_cell(record),
        _worst_cell(record.get("worst"), status),
        f'<span class="path">{_e(record.get("path") or "-")}</span>',
        _picture_cell(record.get("picture"), report_dir),
    ]
    message = str(record.get("message") or "")
    klass = "bad" if bad else "good"
    row = f'<tr class="{klass}{" has-message" if message else ""}">' + "".join(f"<td>{c}</td>" for c in cells)
    row += "</tr>"
    return row + ("\n" + _message_row(message, klass, open_message and bad) if message else "")


def _test_cell(record: Mapping[str, Any]) -> str:
    text = f'<span class="test">{_e(record.get("nodeid") or "")}</span>'
    if record.get("name"):
        text += f' <span class="name">[{_e(record["name"])}]</span>'
    return text


def _message_row(message: str, klass: str, open_message: bool) -> str:
    """The failure text under its row, across the table: its side-by-side table needs the width."""
    opened = " open" if open_message else ""
    details = f"<details{opened}><summary>{_e(_first_line(message))}</summary><pre>{_e(message)}</pre></details>"
    return f'<tr class="{klass} message"><td></td><td colspan="4">{details}</td></tr>'


def _worst_cell(worst: Any, status: str = "") -> str:
    if not isinstance(worst, Mapping) or not worst.get("series"):
        text = "numbers not compared" if status == "config-changed" else "-"
        return f'<span class="muted">{text}</span>'
    if worst.get("max_rel") == 0 and worst.get("max_abs") == 0:
        return f'<b>{_e(worst["series"])}</b><br><span class="muted">identical to the golden</span>'
    text = f'<b>{_e(worst["series"])}</b><br><span class="num">rel {_e(format_number(worst.get("max_rel")))}'
    text += f' · abs {_e(format_number(worst.get("max_abs")))}</span>'
    if worst.get("first_failure") is not None:
        text += f'<br><span class="num">first failure: step {_e(worst["first_failure"])}</span>'
    return text


def _picture_cell(picture: Any, report_dir: Path | None) -> str:
    if not picture:
        return '<span class="muted">-</span>'
    name = str(picture)
    if report_dir is not None and not (Path(report_dir) / name).exists():
        return f'<span class="muted">{_e(name)} (not written)</span>'
    href = _e(_url(name))
    return f'<a href="{href}"><img class="thumb" src="{href}" alt="{_e(name)}" loading="lazy"></a>'


def _vacuous_section(vacuous: Sequence[Mapping[str, Any]]) -> str:
    if not vacuous:
        return ""
    items = "".join(
        f'<li><span class="test">{_e(v.get("nodeid"))}</span>'
        + (f' <span class="name">[{_e(v["name"])}]</span>' if v.get("name") else "")
        + f": {_e(v.get('detail'))}</li>"
        for v in vacuous
    )
    return (
        "<h2>Vacuous checks</h2><p>These checks would NOT notice a 1% learning-rate change: "
        f"their tolerance is too loose to catch a regression.</p><ul>{items}</ul>"
    )


def _list_section(title: str, note: str, items: Sequence[str]) -> str:
    if not items:
        return ""
    body = "".join(f'<li class="path">{_e(i)}</li>' for i in items)
    note_html = f'<p class="muted">{_e(note)}</p>' if note else ""
    return f"<h2>{_e(title)} ({len(items)})</h2>{note_html}<ul>{body}</ul>"


def _first_line(text: str) -> str:
    """The message's headline; a headline ending in ':' takes its first item along."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[0].removeprefix("optcheck: ")
    if line.endswith(":") and len(lines) > 1:
        line += " " + lines[1]
    return _shorten(line, 200)


def _url(name: str) -> str:
    """A relative URL for a file name: percent-encode what a browser would misread."""
    from urllib.parse import quote

    return quote(name, safe="/-_.,=+@~")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)

