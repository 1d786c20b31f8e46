"""--optcheck-report end to end: pictures, index.html and summary.json, serial and xdist."""

from __future__ import annotations

import json

import pytest

TESTS = """
import pytest

pytestmark = pytest.mark.optcheck(epochs=1)

@pytest.mark.parametrize("label", [
    pytest.param("sgd", marks=pytest.mark.optcheck(optimizer="SGD(lr=0.05)")),
    pytest.param("adam", marks=pytest.mark.optcheck(optimizer="Adam(lr=0.01)")),
])
def test_train(optcheck, label):
    optcheck.check()

@pytest.mark.optcheck(scheduler="StepLR(step_size=2, gamma=0.5)")
def test_schedule(optcheck):
    optcheck.check(optcheck.lr_schedule(6), name="schedule")
"""

NODEIDS = ["test_rep.py::test_train[sgd-cpu]", "test_rep.py::test_train[adam-cpu]", "test_rep.py::test_schedule[cpu]"]


def test_report_lists_every_check_failures_first(project: pytest.Pytester) -> None:
    """Serial; the report merged across xdist workers is checked in test_golden_safety's
    xdist session (and the payload merge by unit tests), to keep xdist sessions few."""
    project.makepyfile(test_rep=TESTS)
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=3)
    golden = project.path / "golden/test_rep/test_train[adam-cpu].json"
    data = json.loads(golden.read_text())
    data["series"]["loss"][5] *= 1.01
    golden.write_text(json.dumps(data))

    result = project.runpytest("--optcheck", "--optcheck-report=rep")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*picture: rep/*test_train[[]adam-cpu[]].png*", "*report: rep/index.html*"])

    report = project.path / "rep"
    summary = json.loads((report / "summary.json").read_text())
    records = summary["records"]
    assert sorted(r["nodeid"] for r in records) == sorted(NODEIDS)
    assert records[0]["nodeid"] == "test_rep.py::test_train[adam-cpu]" and records[0]["status"] == "failed"
    assert records[0]["worst"]["series"] == "loss" and records[0]["worst"]["first_failure"] == 5
    for record in records:
        picture = report / record["picture"]
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", record
    html = (report / "index.html").read_text()
    assert all(nodeid in html for nodeid in NODEIDS)
    assert html.index("test_train[adam-cpu]") < html.index("test_train[sgd-cpu]")
