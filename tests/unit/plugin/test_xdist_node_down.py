"""The controller's hook (plugin/xdist.py ``XdistMerge``): a worker that goes down hands over its
payload under the ``optcheck`` key of its ``workeroutput``; a worker without one (crashed before
sending, or without optcheck tests) changes nothing."""

from __future__ import annotations

import json
import types
from pathlib import Path

from pytest_optcheck.plugin.options import Settings
from pytest_optcheck.plugin.pruning import Pruning
from pytest_optcheck.plugin.xdist import WORKER_KEY, XdistMerge, worker_payload
from pytest_optcheck.report.results import Results


def controller() -> XdistMerge:
    results = Results()
    return XdistMerge(results, Pruning(Settings(rootdir=Path(".")), results, checking=None))  # type: ignore[arg-type]


def worker_output() -> str:
    results = Results([{"nodeid": "a.py::t[cpu]", "name": None, "status": "passed", "path": None}])
    pruning = Pruning(Settings(), results, checking=None)  # type: ignore[arg-type]
    pruning.owners.add(("a", "t[cpu]"))
    return worker_payload(results, pruning)


def test_a_worker_going_down_hands_over_its_payload() -> None:
    merge = controller()
    merge.pytest_testnodedown(types.SimpleNamespace(workeroutput={WORKER_KEY: worker_output()}), None)
    assert [r["nodeid"] for r in merge.results.records] == ["a.py::t[cpu]"]
    assert merge.pruning.owners == {("a", "t[cpu]")}
    assert WORKER_KEY == "optcheck"


def test_a_worker_without_a_payload_changes_nothing() -> None:
    merge = controller()
    merge.pytest_testnodedown(types.SimpleNamespace(), "crashed")  # no workeroutput at all
    merge.pytest_testnodedown(types.SimpleNamespace(workeroutput={}), None)
    merge.pytest_testnodedown(types.SimpleNamespace(workeroutput={WORKER_KEY: ""}), None)
    assert merge.results.records == [] and merge.pruning.owners == set()


def test_the_payload_is_json_without_nan() -> None:
    raw = worker_output()
    assert json.loads(raw)["records"][0]["nodeid"] == "a.py::t[cpu]"


def test_a_nan_that_escaped_json_ready_fails_loudly_rather_than_crossing_as_non_json() -> None:
    import pytest

    results = Results(vacuous=[{"nodeid": "a", "name": None, "detail": float("nan")}])
    with pytest.raises(ValueError):
        worker_payload(results, Pruning(Settings(), results, checking=None))  # type: ignore[arg-type]
