"""The report's pages: ``index.html``, the page a reviewer opens from a CI artifact —
self-contained (inline CSS, pictures linked next to it), failures first — and
``summary.json``, the same content for machines (strict JSON)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..engine.messages import format_number
from ..engine.outcome import Status
from ..engine.trajectory import json_ready
from ..golden.files import write_atomic
from .picture import STATUS_COLORS, shorten
from .results import Results

GOOD_STATUSES = tuple(str(s) for s in Status if s.ok)
#: Failure messages are expanded in index.html when there are at most this many.
MAX_OPEN_MESSAGES = 10



def write_index(report_dir: Path, results: Results) -> None:
    """Write ``index.html`` and ``summary.json`` for every check of the session."""
    import json

    report_dir = Path(report_dir)
    summary = json.dumps(summary_data(results), indent=2, sort_keys=True, allow_nan=False) + "\n"
    write_atomic(report_dir / "summary.json", summary)
    write_atomic(report_dir / "index.html", render_index(results, report_dir))


def summary_data(results: Results) -> dict[str, Any]:
    """Counts per status and every record, with non-finite floats as strings (valid JSON)."""
    data = {
        "total": len(results.records),
        "counts": results.counts(),
        "records": results.sorted_records(),
        "vacuous": results.vacuous,
        "orphans": results.orphans,
        "pruned": results.pruned,
        "notes": results.notes,
    }
    return json_ready(data)


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
    badges = " ".join(_badge(status, f"{n} {status}") for status, n in results.counts().items())
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


def _row(record: Mapping[str, Any], report_dir: Path | None, open_message: bool) -> str:
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
    for note in record.get("notes") or ():  # how the check ran (a calibrated golden's replicas...)
        text += f'<br><span class="name">{_e(note)}</span>'
    return text


def _message_row(message: str, klass: str, open_message: bool) -> str:
    """The failure text under its row, across the table: its side-by-side table needs the width."""
    opened = " open" if open_message else ""
    details = f"<details{opened}><summary>{_e(_first_line(message))}</summary><pre>{_e(message)}</pre></details>"
    return f'<tr class="{klass} message"><td></td><td colspan="4">{details}</td></tr>'


def _worst_cell(worst: Any, status: str) -> str:
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
        "<h2>Vacuous checks</h2><p>These checks would NOT notice a 1% larger step (every update x1.01): "
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
    return shorten(line, 200)


def _url(name: str) -> str:
    """A relative URL for a file name: percent-encode what a browser would misread."""
    from urllib.parse import quote

    return quote(name, safe="/-_.,=+@~")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)

