"""report/index.py's page pinned whole: index.html's structure, rows (failures first), links,
escaping, counts and sections, and summary.json's bytes — the fragments in test_report.py
left 241 mutants alive (40.0%, 2026-12-04)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_optcheck.report import index
from pytest_optcheck.report.index import GOOD_STATUSES, MAX_OPEN_MESSAGES, render_index, summary_data, write_index
from pytest_optcheck.report.results import Results

HEAD = ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>optcheck report</title>\n<style>")
TABLE_HEAD = ('<table><colgroup><col class="status"><col><col class="worst"><col class="golden"><col class="picture">'
              "</colgroup>\n<thead><tr><th>status</th><th>test</th><th>worst series</th><th>golden</th>"
              "<th>picture</th></tr></thead>\n<tbody>\n")


def record(nodeid: str = "t.py::test_x", status: str = "failed", **fields: Any) -> dict[str, Any]:
    return {"nodeid": nodeid, "name": None, "status": status, "path": None, "worst": None, "message": "",
            "picture": None, "notes": [], **fields}


def body(page: str) -> str:
    """The page after its head and style."""
    assert page.startswith(HEAD)
    return page[page.index("</style>"):]


def test_the_style_sheet_is_inline() -> None:
    page = render_index(Results())
    css = page[len(HEAD):page.index("</style>")]
    assert css.startswith('\nbody { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px;')
    assert "tr.bad { background: #fff7f7; }\n" in css and "img.thumb { width: 220px; border: 1px solid #ddd; }" in css
    assert css.endswith("ul { margin: 4px 0; }\n")


def test_a_whole_page() -> None:
    results = Results(
        records=[
            record("t.py::test_z", "passed", path="golden/z.json", worst={"series": "loss", "max_rel": 0, "max_abs": 0}),
            record("t.py::test_a<b>", name="n&1", path="golden/a.json",
                   worst={"series": "lr<1>", "max_rel": 0.0123456, "max_abs": float("inf"), "first_failure": 3},
                   message="optcheck: loss differs:\n  step 3 <x>\nmore", picture="pics/a b#.png",
                   notes=["n<1>", "n2"]),
            record("t.py::test_c", "config-changed", name="", message="spec changed", notes=None),
        ],
        vacuous=[{"nodeid": "t.py::v<1>", "name": "w", "detail": "d&d"}, {"nodeid": "t.py::v2", "detail": "e"}],
        orphans=["golden/o<1>.json"], pruned=["golden/p.json"], notes=["a note & more"])
    assert body(render_index(results)) == (
        '</style></head><body>\n<h1>optcheck report</h1>\n'
        '<div class="counts">3 checks: <span class="badge" style="background:#c62828">1 failed</span> '
        '<span class="badge" style="background:#e65100">1 config-changed</span> '
        '<span class="badge" style="background:#2e7d32">1 passed</span></div>\n'
        + TABLE_HEAD +
        '<tr class="bad has-message"><td><span class="badge" style="background:#c62828">failed</span></td>'
        '<td><span class="test">t.py::test_a&lt;b&gt;</span> <span class="name">[n&amp;1]</span>'
        '<br><span class="name">n&lt;1&gt;</span><br><span class="name">n2</span></td>'
        '<td><b>lr&lt;1&gt;</b><br><span class="num">rel 0.0123 · abs inf</span>'
        '<br><span class="num">first failure: step 3</span></td><td><span class="path">golden/a.json</span></td>'
        '<td><a href="pics/a%20b%23.png"><img class="thumb" src="pics/a%20b%23.png" alt="pics/a b#.png" '
        'loading="lazy"></a></td></tr>\n'
        '<tr class="bad message"><td></td><td colspan="4"><details open><summary>loss differs: step 3 &lt;x&gt;'
        '</summary><pre>optcheck: loss differs:\n  step 3 &lt;x&gt;\nmore</pre></details></td></tr>\n'
        '<tr class="bad has-message"><td><span class="badge" style="background:#e65100">config-changed</span></td>'
        '<td><span class="test">t.py::test_c</span></td><td><span class="muted">numbers not compared</span></td>'
        '<td><span class="path">-</span></td><td><span class="muted">-</span></td></tr>\n'
        '<tr class="bad message"><td></td><td colspan="4"><details open><summary>spec changed</summary>'
        '<pre>spec changed</pre></details></td></tr>\n'
        '<tr class="good"><td><span class="badge" style="background:#2e7d32">passed</span></td>'
        '<td><span class="test">t.py::test_z</span></td><td><b>loss</b><br><span class="muted">identical to the '
        'golden</span></td><td><span class="path">golden/z.json</span></td><td><span class="muted">-</span></td></tr>\n'
        '</tbody></table>\n'
        '<h2>Vacuous checks</h2><p>These checks would NOT notice a 1% larger step (every update x1.01): their '
        'tolerance is too loose to catch a regression.</p><ul><li><span class="test">t.py::v&lt;1&gt;</span> '
        '<span class="name">[w]</span>: d&amp;d</li><li><span class="test">t.py::v2</span>: e</li></ul>\n'
        '<h2>Orphaned goldens (1)</h2><p class="muted">no test owns them; remove with --optcheck-prune</p>'
        '<ul><li class="path">golden/o&lt;1&gt;.json</li></ul>\n'
        '<h2>Orphaned goldens removed (1)</h2><ul><li class="path">golden/p.json</li></ul>\n'
        '<h2>Notes (1)</h2><ul><li class="path">a note &amp; more</li></ul>\n'
        '</body></html>\n')


def test_an_empty_session() -> None:
    assert body(render_index(Results())) == (
        '</style></head><body>\n<h1>optcheck report</h1>\n<div class="counts">0 checks: </div>\n'
        '<p class="muted">No checks ran.</p>\n</body></html>\n')


def test_sections_count_their_items_and_quotes_are_escaped() -> None:
    results = Results(records=[record("t.py::test_\"q'", "error", message="x")],
                      orphans=["a", "b"], pruned=["c", "d", "e"], notes=["n1", "n2"])
    page = render_index(results)
    assert '<span class="test">t.py::test_&quot;q&#x27;</span>' in page
    assert '<span class="badge" style="background:#6a1b9a">1 error</span>' in page
    assert "<h2>Orphaned goldens (2)</h2>" in page and "<h2>Orphaned goldens removed (3)</h2>" in page
    assert '<h2>Notes (2)</h2><ul><li class="path">n1</li><li class="path">n2</li></ul>' in page


@pytest.mark.parametrize(("bad", "opened"), [(MAX_OPEN_MESSAGES, True), (MAX_OPEN_MESSAGES + 1, False)])
def test_failure_messages_open_only_when_few(bad: int, opened: bool) -> None:
    assert MAX_OPEN_MESSAGES == 10
    records = [record(f"t.py::test_{i:02d}", message=f"m{i}") for i in range(bad)]
    records += [record("t.py::test_ok", "passed", message="kept")]
    page = render_index(Results(records=records))
    assert page.count("<details open>") == (bad if opened else 0)
    assert page.count("<details>") == (1 if opened else bad + 1)
    assert '<tr class="good has-message">' in page
    assert '<tr class="good message"><td></td><td colspan="4"><details><summary>kept</summary>' in page


def test_rows_are_ordered_failures_first_then_by_node_id_and_name() -> None:
    records = [record("b", "passed"), record("a", "passed", name="2"), record("a", "passed", name="1"),
               record("c", "missing"), record("z", "failed")]
    page = render_index(Results(records=records))
    tests = [part.split("</span>")[0] for part in page.split('<span class="test">')[1:]]
    assert tests == ["z", "c", "a", "a", "b"]
    assert page.index("[1]") < page.index("[2]")


def test_good_statuses() -> None:
    assert GOOD_STATUSES == ("updated", "repaired", "created", "passed")


@pytest.mark.parametrize(("status", "klass", "color"), [
    ("created", "good", "#1565c0"), ("missing", "bad", "#ad8b00"), ("strange", "bad", "#555"),
])
def test_a_row_class_and_badge_per_status(status: str, klass: str, color: str) -> None:
    page = render_index(Results(records=[record(status=status)]))
    assert f'<tr class="{klass}"><td><span class="badge" style="background:{color}">{status}</span></td>' in page


def test_a_record_without_fields() -> None:
    page = render_index(Results(records=[{"nodeid": "", "status": "passed"}]))
    assert ('<tr class="good"><td><span class="badge" style="background:#2e7d32">passed</span></td>'
            '<td><span class="test"></span></td><td><span class="muted">-</span></td>'
            '<td><span class="path">-</span></td><td><span class="muted">-</span></td></tr>') in page


@pytest.mark.parametrize(("worst", "status", "cell"), [
    (None, "failed", '<span class="muted">-</span>'),
    ("loss", "config-changed", '<span class="muted">numbers not compared</span>'),
    ({"series": ""}, "failed", '<span class="muted">-</span>'),
    ({"series": "loss", "max_rel": 0, "max_abs": 0.5}, "failed",
     '<b>loss</b><br><span class="num">rel 0 · abs 0.5</span>'),
    ({"series": "loss", "max_rel": 0.5, "max_abs": 0}, "failed",
     '<b>loss</b><br><span class="num">rel 0.5 · abs 0</span>'),
    ({"series": "loss", "max_rel": None, "max_abs": "NaN", "first_failure": 0}, "failed",
     '<b>loss</b><br><span class="num">rel - · abs NaN</span><br><span class="num">first failure: step 0</span>'),
    ({"series": "a&b"}, "failed", '<b>a&amp;b</b><br><span class="num">rel - · abs -</span>'),
    ({"series": "a&b", "max_rel": 0, "max_abs": 0}, "passed",
     '<b>a&amp;b</b><br><span class="muted">identical to the golden</span>'),
])
def test_the_worst_cell(worst: Any, status: str, cell: str) -> None:
    page = render_index(Results(records=[record(status=status, worst=worst, path="p")]))
    assert f"</span></td><td>{cell}</td><td><span class=\"path\">p</span>" in page


def test_pictures_link_when_written(tmp_path: Path) -> None:
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "a.png").write_bytes(b"png")
    records = [record("t.py::a", picture="pics/a.png"), record("t.py::b", picture="pics/b<1>.png")]
    page = render_index(Results(records=records), tmp_path)
    assert ('<td><a href="pics/a.png"><img class="thumb" src="pics/a.png" alt="pics/a.png" loading="lazy"></a></td>'
            in page)
    assert '<td><span class="muted">pics/b&lt;1&gt;.png (not written)</span></td>' in page
    assert '<a href="pics/b' in render_index(Results(records=records[1:]), None)


def test_picture_urls_keep_safe_characters() -> None:
    page = render_index(Results(records=[record(picture="d/a-b_c.d,e=f+g@h~i j?k&l.png")]))
    assert 'href="d/a-b_c.d,e=f+g@h~i%20j%3Fk%26l.png"' in page


@pytest.mark.parametrize(("message", "summary"), [
    ("optcheck: one line", "one line"),
    ("\n  \n  first  \nsecond", "first"),
    ("optcheck: headline:", "headline:"),
    ("head:\nitem", "head: item"),
    ("headline:\n\n  item one\n  item two", "headline: item one"),
    ("not optcheck: kept", "not optcheck: kept"),
    ("x" * 200, "x" * 200),
    ("x" * 201, "x" * 199 + "…"),
    ("   ", None),
])
def test_the_summary_line_of_a_message(message: str, summary: str | None) -> None:
    page = render_index(Results(records=[record(message=message)]))
    if summary is None:  # a blank message is still shown, under an empty summary
        assert "<details open><summary></summary><pre>   </pre></details>" in page
    else:
        assert f"<details open><summary>{summary}</summary><pre>" in page


def test_summary_data_and_json(tmp_path: Path) -> None:
    results = Results(records=[record("t.py::b", "passed", worst={"series": "loss", "max_rel": float("nan")}),
                               record("t.py::a")],
                      vacuous=[{"nodeid": "v", "detail": "d"}], orphans=["o"], pruned=["p"], notes=["n"])
    data = summary_data(results)
    assert data == {"total": 2, "counts": {"failed": 1, "passed": 1},
                    "records": [record("t.py::a"), record("t.py::b", "passed",
                                                          worst={"series": "loss", "max_rel": "NaN"})],
                    "vacuous": [{"nodeid": "v", "detail": "d"}], "orphans": ["o"], "pruned": ["p"], "notes": ["n"]}
    write_index(tmp_path / "report", results)
    text = (tmp_path / "report" / "summary.json").read_text(encoding="utf-8")
    assert text == json.dumps(data, indent=2, sort_keys=True) + "\n"
    assert text.startswith('{\n  "counts": {\n    "failed": 1,')
    assert (tmp_path / "report" / "index.html").read_text(encoding="utf-8") == render_index(results,
                                                                                            tmp_path / "report")


def test_write_index_links_only_written_pictures(tmp_path: Path) -> None:
    write_index(str(tmp_path), Results(records=[record(picture="gone.png")]))  # type: ignore[arg-type]
    assert "gone.png (not written)" in (tmp_path / "index.html").read_text(encoding="utf-8")
    assert index.MAX_OPEN_MESSAGES == MAX_OPEN_MESSAGES
