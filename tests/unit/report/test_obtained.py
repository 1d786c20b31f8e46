"""The results kept beside a report and ``optcheck accept`` (report/obtained.py), called
directly: which outcomes are kept and where, what summary.json says of each, and which results
accept writes or refuses (with the words a user reads)."""

from __future__ import annotations

import hashlib
import json
import locale
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_optcheck.engine.outcome import Outcome, Status
from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.errors import OptcheckError
from pytest_optcheck.golden.format import Golden, dumps, loads
from pytest_optcheck.report.obtained import KEPT, RESULTS, Accepted, accept, results_of, sha256_of, write_result


def golden(scale: float = 1.0) -> Golden:
    return Golden(Trajectory({"loss": np.linspace(1.0, 0.5, 3) * scale}), spec={})


def test_kept_statuses_and_folder() -> None:
    assert RESULTS == "results"
    assert set(KEPT) == {Status.FAILED, Status.MISSING, Status.CONFIG_CHANGED, Status.CORRUPT}


def test_sha256_of_a_file_and_of_none(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"abc")
    assert sha256_of(tmp_path / "a") == hashlib.sha256(b"abc").hexdigest()
    assert sha256_of(str(tmp_path / "a")) == hashlib.sha256(b"abc").hexdigest()
    assert sha256_of(tmp_path / "none") is None


@pytest.mark.parametrize("status", sorted(KEPT))
def test_write_result_keeps_a_failed_or_missing_check(tmp_path: Path, status: Status) -> None:
    root, report = tmp_path / "proj", tmp_path / "report"
    (root / "golden" / "t").mkdir(parents=True)
    target = root / "golden" / "t" / "a.json"
    target.write_text("old", encoding="utf-8")
    entry = write_result(report, root, Outcome(status, "m", str(target), current=golden(2.0)))
    assert entry == {"file": "results/golden/t/a.json", "golden": "golden/t/a.json",
                     "golden_sha256": hashlib.sha256(b"old").hexdigest()}
    written = report / "results" / "golden" / "t" / "a.json"
    assert written.read_text(encoding="utf-8") == dumps(golden(2.0))


def test_write_result_of_a_missing_golden_has_no_sha(tmp_path: Path) -> None:
    entry = write_result(tmp_path / "r", tmp_path, Outcome(Status.MISSING, "m", str(tmp_path / "g.json"),
                                                           current=golden()))
    assert entry == {"file": "results/g.json", "golden": "g.json", "golden_sha256": None}


def test_write_result_of_a_golden_outside_the_rootdir(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    outside = (tmp_path / "elsewhere" / "g.json").resolve()
    entry = write_result(tmp_path / "r", root, Outcome(Status.FAILED, "m", str(outside), current=golden()))
    tail = Path(*outside.parts[1:]).as_posix()
    assert entry is not None and entry["golden"] == tail and entry["file"] == "results/" + tail
    assert (tmp_path / "r" / "results" / tail).is_file()


@pytest.mark.parametrize("outcome", [
    Outcome(Status.PASSED, "ok", "g.json", current=golden()),
    Outcome(Status.ERROR, "boom", "g.json", current=golden()),
    Outcome(Status.CREATED, "new", "g.json", current=golden()),
    Outcome(Status.FAILED, "no current", "g.json"),
    Outcome(Status.FAILED, "no path", None, current=golden()),
])
def test_write_result_keeps_nothing_else(tmp_path: Path, outcome: Outcome) -> None:
    assert write_result(tmp_path / "r", tmp_path, outcome) is None
    assert not (tmp_path / "r").exists()


def test_accepted_starts_empty_and_apart() -> None:
    a, b = Accepted(), Accepted()
    a.written.append("x")
    assert a == Accepted(written=["x"], refused=[]) and b == Accepted(written=[], refused=[])


# -- accept -------------------------------------------------------------------------------

def project(tmp_path: Path, entries: list[dict[str, Any]], extra: list[Any] = ()) -> tuple[Path, Path]:
    root, report = tmp_path / "proj", tmp_path / "report"
    root.mkdir(exist_ok=True)
    report.mkdir(exist_ok=True)
    records = [{"nodeid": e.pop("nodeid", "t.py::test_x"), "status": "failed", "result": e} for e in entries]
    (report / "summary.json").write_text(json.dumps({"records": records + list(extra)}), encoding="utf-8")
    return root, report


def kept(root: Path, report: Path, rel: str, old: str | None = "old", scale: float = 2.0,
         nodeid: str = "t.py::test_x") -> dict[str, Any]:
    """A golden below root (``old``'s text, or none) and its result in the report."""
    if old is not None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(old, encoding="utf-8")
    entry = write_result(report, root, Outcome(Status.FAILED, "m", str(root / rel), current=golden(scale)))
    assert entry is not None
    return {**entry, "nodeid": nodeid}


def test_accept_writes_each_result_over_its_golden(tmp_path: Path) -> None:
    root, report = tmp_path / "proj", tmp_path / "report"
    root.mkdir()
    entries = [kept(root, report, "golden/a.json"), kept(root, report, "golden/b.json", old=None, scale=3.0)]
    project(tmp_path, entries)
    done = accept(report, root)
    assert done == Accepted(written=["golden/a.json", "golden/b.json"], refused=[])
    assert (root / "golden/a.json").read_text(encoding="utf-8") == dumps(golden(2.0))
    assert (root / "golden/b.json").read_text(encoding="utf-8") == dumps(golden(3.0))


def test_accept_dry_run_writes_nothing(tmp_path: Path) -> None:
    root, report = tmp_path / "proj", tmp_path / "report"
    root.mkdir()
    project(tmp_path, [kept(root, report, "golden/a.json")])
    assert accept(str(report), str(root), dry_run=True) == Accepted(written=["golden/a.json"])
    assert (root / "golden/a.json").read_text(encoding="utf-8") == "old"


def test_accept_only_takes_matching_node_ids(tmp_path: Path) -> None:
    root, report = tmp_path / "proj", tmp_path / "report"
    root.mkdir()
    entries = [kept(root, report, "golden/a.json", nodeid="t.py::test_alpha"),
               kept(root, report, "golden/b.json", nodeid="t.py::test_beta")]
    project(tmp_path, entries)
    assert accept(report, root, only=["beta"]).written == ["golden/b.json"]
    assert (root / "golden/a.json").read_text(encoding="utf-8") == "old"
    assert accept(report, root, only=iter(["alpha", "nothing"])).written == ["golden/a.json"]


def test_accept_refuses_a_golden_that_changed_appeared_or_vanished(tmp_path: Path) -> None:
    root, report = tmp_path / "proj", tmp_path / "report"
    root.mkdir()
    changed = kept(root, report, "golden/c.json")
    created = kept(root, report, "golden/n.json", old=None)
    deleted = kept(root, report, "golden/d.json")
    project(tmp_path, [changed, created, deleted])
    (root / "golden/c.json").write_text("edited", encoding="utf-8")
    (root / "golden/n.json").write_text("new", encoding="utf-8")
    (root / "golden/d.json").unlink()
    done = accept(report, root)
    assert done.written == []
    assert done.refused == [
        ("golden/c.json: the golden changed since the run (its SHA-256 differs from the one the run read); "
         "re-run the check against it instead"),
        "golden/n.json: the golden was created since the run; re-run the check against it instead",
        "golden/d.json: the golden was deleted since the run; re-run the check against it instead",
    ]
    assert (root / "golden/c.json").read_text(encoding="utf-8") == "edited"
    assert not (root / "golden/d.json").exists()


@pytest.mark.parametrize("rel", ["", "/etc/passwd", "../outside.json", "golden/../../x.json"])
def test_accept_refuses_a_path_outside_the_project(tmp_path: Path, rel: str) -> None:
    root, report = project(tmp_path, [{"file": "results/x.json", "golden": rel, "golden_sha256": None}])
    done = accept(report, root)
    assert done == Accepted(written=[], refused=[f"{rel!r}: not a path below the project; the summary is damaged"])


def test_accept_refuses_a_missing_golden_key(tmp_path: Path) -> None:
    root, report = project(tmp_path, [{"file": "results/x.json", "golden_sha256": None}])
    assert accept(report, root).refused == ["'': not a path below the project; the summary is damaged"]


def test_accept_refuses_a_result_missing_or_unreadable(tmp_path: Path) -> None:
    root, report = tmp_path / "proj", tmp_path / "report"
    root.mkdir()
    gone = kept(root, report, "golden/gone.json", old=None)
    bad = kept(root, report, "golden/bad.json", old=None)
    binary = kept(root, report, "golden/bin.json", old=None)
    good = kept(root, report, "golden/good.json", old=None)
    project(tmp_path, [gone, bad, binary, good])
    (report / gone["file"]).unlink()
    (report / bad["file"]).write_text("{not json", encoding="utf-8")
    (report / binary["file"]).write_bytes(b"\xff\xfe\x00")
    done = accept(report, root)
    assert done.written == ["golden/good.json"]
    missing, unreadable, undecodable = done.refused
    assert missing == f"golden/gone.json: the result {report / 'results/golden/gone.json'} is missing from the report"
    assert unreadable.startswith("golden/bad.json: the result cannot be read: ")
    with pytest.raises(OptcheckError) as exc:
        loads("{not json", report / bad["file"])
    assert unreadable == f"golden/bad.json: the result cannot be read: {exc.value}"
    assert undecodable.startswith("golden/bin.json: the result cannot be read: ") and "utf-8" in undecodable
    assert not (root / "golden/gone.json").exists() and not (root / "golden/bad.json").exists()


def test_accept_a_result_without_its_file_is_missing(tmp_path: Path) -> None:
    root, report = project(tmp_path, [{"golden": "g.json", "golden_sha256": None}])
    assert accept(report, root).refused == [f"g.json: the result {report} is missing from the report"]


def test_accept_goes_on_after_a_refused_result(tmp_path: Path) -> None:
    root, report = tmp_path / "proj", tmp_path / "report"
    root.mkdir()
    good = kept(root, report, "golden/a.json")
    project(tmp_path, [{"file": "results/x.json", "golden": "../x.json", "golden_sha256": None}, good])
    done = accept(report, root)
    assert done.written == ["golden/a.json"] and len(done.refused) == 1


def test_accept_root_defaults_to_the_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, report = tmp_path / "proj", tmp_path / "report"
    root.mkdir()
    project(tmp_path, [kept(root, report, "golden/a.json")])
    monkeypatch.chdir(root)
    assert accept(report).written == ["golden/a.json"]
    assert (root / "golden/a.json").read_text(encoding="utf-8") == dumps(golden(2.0))


def test_accept_only_skips_a_record_without_node_id(tmp_path: Path) -> None:
    root, report = tmp_path / "proj", tmp_path / "report"
    root.mkdir()
    entry = kept(root, report, "golden/a.json")
    del entry["nodeid"]
    (report / "summary.json").write_text(json.dumps({"records": [{"result": entry}]}), encoding="utf-8")
    assert accept(report, root, only=["None", "X"]) == Accepted(written=[], refused=[])
    assert accept(report, root).written == ["golden/a.json"]


def test_accept_reads_utf_8_whatever_the_locale(tmp_path: Path) -> None:
    """summary.json and the results are UTF-8 (a node id, a spec's text), under an ASCII locale too."""
    root, report = tmp_path / "proj", tmp_path / "report"
    root.mkdir()
    current = Golden(Trajectory({"loss": np.linspace(1.0, 0.5, 3)}), spec={"note": "lé"})
    entry = write_result(report, root, Outcome(Status.MISSING, "m", str(root / "g.json"), current=current))
    assert entry is not None
    (report / "summary.json").write_text(json.dumps({"records": [{"nodeid": "t.py::test_é", "result": entry}]},
                                                    ensure_ascii=False), encoding="utf-8")
    old = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        done = accept(report, root, only=["é"])
    finally:
        locale.setlocale(locale.LC_CTYPE, old)
    assert done == Accepted(written=["g.json"], refused=[])
    assert (root / "g.json").read_text(encoding="utf-8") == dumps(current)


# -- results_of -----------------------------------------------------------------------------

def test_results_of_keeps_records_with_a_result(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text(json.dumps({"records": [
        {"nodeid": "a", "result": {"file": "f"}}, {"nodeid": "b"}, {"nodeid": "c", "result": "text"}, "junk",
        {"nodeid": "d", "result": {}}]}), encoding="utf-8")
    assert results_of(tmp_path) == [{"nodeid": "a", "result": {"file": "f"}}, {"nodeid": "d", "result": {}}]


def test_results_of_without_summary(tmp_path: Path) -> None:
    with pytest.raises(OptcheckError) as exc:
        results_of(tmp_path / "dl")
    assert str(exc.value) == (f"optcheck: {str(tmp_path / 'dl')!r} holds no summary.json: give the folder that "
                              "`pytest --optcheck --optcheck-report=DIR` wrote (a CI artifact, unpacked).")
    assert exc.value.__cause__ is None and exc.value.__suppress_context__


@pytest.mark.parametrize("data", [b"{broken", b"\xff\xfe"])
def test_results_of_an_unreadable_summary(tmp_path: Path, data: bytes) -> None:
    (tmp_path / "summary.json").write_bytes(data)
    with pytest.raises(OptcheckError) as exc:
        results_of(tmp_path)
    text = str(exc.value)
    assert text.startswith(f"optcheck: {str(tmp_path / 'summary.json')!r} is not a readable summary (")
    assert text.endswith("); download the report again.") and len(text) > 80
    assert exc.value.__suppress_context__


@pytest.mark.parametrize("data", [[1, 2], {"records": {"a": 1}}, {"other": []}, "text"])
def test_results_of_a_summary_without_records(tmp_path: Path, data: Any) -> None:
    (tmp_path / "summary.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(OptcheckError) as exc:
        results_of(tmp_path)
    assert str(exc.value) == (f"optcheck: {str(tmp_path / 'summary.json')!r} lists no records; "
                              "is it an optcheck report?")
