"""What a session's checks did (report/results.py), pinned whole: the record of one outcome,
the order of records, what crosses from an xdist worker, and the terminal summary's lines —
found guarded only end to end by benchmarks/mutation.py (21.5% before this file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pytest_optcheck.checks.golden_check import judge
from pytest_optcheck.engine.outcome import Outcome, Status
from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.golden.format import Golden, dumps
from pytest_optcheck.report.results import Results


def failing() -> Outcome:
    golden = Golden(Trajectory({"loss": np.linspace(1.0, 0.1, 4)}), spec={})
    current = Golden(Trajectory({"loss": np.linspace(1.0, 0.1, 4) * 1.5}), spec={})
    return judge(current, dumps(golden), path="golden/t/test_b[cpu].json")


def test_a_record_holds_what_the_report_shows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    results = Results()
    outcome = failing()
    results.add_outcome("t.py::test_b[cpu]", "short", outcome, picture="report/b.png")
    passed = Outcome(Status.PASSED, "optcheck: within tolerance", str(tmp_path / "golden" / "a.json"),
                     notes=("a note",))
    results.add_outcome("t.py::test_a[cpu]", None, passed)
    results.add_outcome("t.py::test_c[cpu]", None, Outcome(Status.FAILED, "resume differs"))
    failed, ok, no_file = results.records
    assert failed == {"nodeid": "t.py::test_b[cpu]", "name": "short", "status": "failed",
                      "path": "golden/t/test_b[cpu].json", "worst": failed["worst"], "message": outcome.message,
                      "picture": "report/b.png", "notes": []}
    assert failed["worst"]["series"] == "loss" and failed["worst"]["max_rel"] == pytest.approx(0.5)
    assert ok == {"nodeid": "t.py::test_a[cpu]", "name": None, "status": "passed", "path": "golden/a.json",
                  "worst": None, "message": "", "picture": None, "notes": ["a note"]}
    assert no_file["path"] is None and no_file["message"] == "resume differs"


def record(nodeid: str, status: str, path: str | None = None, name: str | None = None) -> dict:
    return {"nodeid": nodeid, "name": name, "status": status, "path": path}


def test_records_sort_failures_first_then_by_test_and_name() -> None:
    results = Results([record("b", "passed"), record("a", "passed", name="A"), record("a", "passed"),
                       record("c", "failed"), record("d", "weird")])
    assert [(r["nodeid"], r["name"]) for r in results.sorted_records()] == [
        ("c", None), ("a", None), ("a", "A"), ("b", None), ("d", None)]


def test_a_worker_s_payload_merges_into_the_controller_s_results() -> None:
    worker = Results([record("a", "passed")], vacuous=[{"nodeid": "a", "name": None, "detail": "d"}],
                     orphans=["not sent"])
    controller = Results([record("b", "failed")])
    controller.merge(worker.payload())
    controller.merge({})
    assert [r["nodeid"] for r in controller.records] == ["b", "a"]
    assert controller.vacuous == worker.vacuous and controller.orphans == []


def test_the_terminal_summary_lists_each_kind_once_sorted() -> None:
    results = Results(
        [record("t::a", "created", "golden/a.json"), record("t::a2", "created", "golden/a.json"),
         record("t::b", "updated", "golden/b.json"), record("t::c", "failed", "golden/c.json"),
         record("t::d", "config-changed", "golden/d.json"), record("t::e", "corrupt", "golden/e.json"),
         record("t::f", "missing", "golden/f.json"), record("t::g", "error", "golden/g.json"),
         record("t::h", "failed", None, name="resume"), record("t::i", "failed"), record("t::j", "passed", "golden/j.json")],
        vacuous=[{"nodeid": "t::k", "name": "loss", "detail": "every step x1.01 stays within tolerance"},
                 {"nodeid": "t::l", "name": None, "detail": "d"}],
        orphans=["golden/z.json", "golden/y.json"], pruned=["golden/x.json"], notes=["a last note"])
    assert results.summary_lines() == [
        "11 checks: 3 failed, 1 config-changed, 1 corrupt, 1 missing, 1 error, 1 updated, 2 created, 1 passed",
        "goldens created (1):", "  golden/a.json",
        "goldens updated (were out of tolerance) (1):", "  golden/b.json",
        "goldens out of tolerance (1):", "  golden/c.json",
        "goldens recorded with another configuration (1):", "  golden/d.json",
        "goldens that cannot be read (1):", "  golden/e.json",
        "goldens missing (1):", "  golden/f.json",
        "checks that raised an error (1):", "  golden/g.json",
        "checks without a golden that failed (resume, parity, distributed) (2):", "  t::h [resume]", "  t::i",
        "checks that would NOT notice a 1% larger step (every update x1.01, as from lr x1.01; vacuous tolerance):",
        "  t::k [loss]: every step x1.01 stays within tolerance", "  t::l: d",
        "orphaned goldens (no test owns them; remove with --optcheck-prune) (2):", "  golden/y.json", "  golden/z.json",
        "orphaned goldens removed (1):", "  golden/x.json",
        "a last note",
    ]


def test_one_check_and_none() -> None:
    assert Results([record("t::a", "passed", "golden/a.json")]).summary_lines() == ["1 check: 1 passed"]
    assert Results().summary_lines() == []
