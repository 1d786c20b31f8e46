"""CI's results accepted: a failing run with a report keeps its current trajectories beside it,
``optcheck accept`` copies those — and only those — over their goldens, then the same run
passes and no other golden's bytes changed; a result whose golden changed since is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_optcheck.cli import main
from tests.e2e.goldens import golden_files

TESTS = """
from pytest_optcheck import Trajectory

def test_moves(optcheck):
    optcheck.check(Trajectory({{"loss": [1.0, 0.5, {last}]}}))

def test_steady(optcheck):
    optcheck.check(Trajectory({{"loss": [2.0, 1.0, 0.5]}}))
"""
NEW = """
from pytest_optcheck import Trajectory

def test_new(optcheck):
    optcheck.check(Trajectory({"loss": [3.0, 2.0]}), name="fresh")
"""


def _bytes(root: Path) -> dict[str, bytes]:
    return {path: (root / path).read_bytes() for path in golden_files(root)}


def _record_then_break(project: pytest.Pytester) -> dict[str, bytes]:
    project.makepyfile(test_ci=TESTS.format(last=0.25))
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=2)
    before = _bytes(project.path)
    project.makepyfile(test_ci=TESTS.format(last=0.3), test_new=NEW)
    result = project.runpytest("--optcheck", "--optcheck-report=report")
    result.assert_outcomes(failed=2, passed=1)
    kept = "current runs of 2 failing or missing check(s) kept in report/results; to make them the goldens: "
    result.stdout.fnmatch_lines([kept + "optcheck accept report"])
    return before


def test_failing_run_then_accept_then_the_same_run_passes(project: pytest.Pytester,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    before = _record_then_break(project)
    summary = json.loads((project.path / "report" / "summary.json").read_text())
    results = {r["nodeid"]: r["result"] for r in summary["records"] if "result" in r}
    assert sorted(results) == ["test_ci.py::test_moves", "test_new.py::test_new"]
    moved = results["test_ci.py::test_moves"]
    assert moved["golden"] == "golden/test_ci/test_moves.json"
    assert (project.path / "report" / moved["file"]).is_file()
    assert results["test_new.py::test_new"]["golden_sha256"] is None  # there was no golden

    # optcheck diff reads a result like any golden
    assert main(["diff", moved["golden"], str(Path("report") / moved["file"])]) == 1
    assert "series differ from the golden (loss)" in capsys.readouterr().out

    assert main(["accept", "report"]) == 0
    out = capsys.readouterr().out
    assert "accepted: golden/test_ci/test_moves.json" in out
    assert "accepted: golden/test_new/test_new--fresh.json" in out
    after = _bytes(project.path)
    assert after["golden/test_ci/test_steady.json"] == before["golden/test_ci/test_steady.json"]
    assert after["golden/test_ci/test_moves.json"] != before["golden/test_ci/test_moves.json"]
    project.runpytest("--optcheck").assert_outcomes(passed=3)


def test_a_golden_changed_since_the_run_is_refused(project: pytest.Pytester,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    _record_then_break(project)
    golden = project.path / "golden" / "test_ci" / "test_moves.json"
    golden.write_text(golden.read_text().replace("0.25", "0.26"))
    edited = golden.read_bytes()
    assert main(["accept", "report"]) == 1
    captured = capsys.readouterr()
    assert ("refused golden/test_ci/test_moves.json: the golden changed since the run (its SHA-256 differs "
            "from the one the run read)") in captured.err
    assert "accepted: golden/test_new/test_new--fresh.json" in captured.out  # the others are still taken
    assert golden.read_bytes() == edited


def test_accept_outside_a_report_says_what_it_needs(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["accept", "nowhere"]) == 2
    assert "holds no summary.json" in capsys.readouterr().err
