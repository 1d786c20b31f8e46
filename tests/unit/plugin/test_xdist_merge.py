"""Unit tests of what crosses from xdist workers to the controller (plugin/xdist.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from pytest_optcheck.plugin.options import Settings
from pytest_optcheck.plugin.pruning import Pruning
from pytest_optcheck.plugin.xdist import merge_payload, worker_payload
from pytest_optcheck.report.results import Results


def worker(nodeid: str, status: str, owner: tuple[str, str], test_file: str) -> tuple[Results, Pruning]:
    from pytest_optcheck.engine.trajectory import json_ready

    results = Results()
    results.records.append(json_ready({"nodeid": nodeid, "name": None, "status": status, "path": f"golden/{nodeid}.json",
                            "worst": {"series": "loss", "max_rel": math.inf, "max_abs": 0.5, "first_failure": 3},
                            "message": "", "picture": None, "notes": []}))
    results.vacuous.append({"nodeid": nodeid, "name": None, "detail": "rtol=1"})
    pruning = Pruning(Settings(), results, checking=None)  # type: ignore[arg-type]
    pruning.owners.add(owner)
    pruning.collected_files.add(test_file)
    return results, pruning


def test_worker_payloads_merge_into_one_controller_view() -> None:
    controller_results = Results()
    controller = Pruning(Settings(rootdir=Path(".")), controller_results, checking=None)  # type: ignore[arg-type]
    for args in (("a.py::t1[cpu]", "passed", ("a", "t1[cpu]"), "/p/a.py"),
                 ("b.py::t2[cpu]", "failed", ("b", "t2[cpu]"), "/p/b.py")):
        merge_payload(worker_payload(*worker(*args)), controller_results, controller)
    assert [r["nodeid"] for r in controller_results.records] == ["a.py::t1[cpu]", "b.py::t2[cpu]"]
    assert controller_results.counts() == {"failed": 1, "passed": 1}
    assert len(controller_results.vacuous) == 2
    assert controller.owners == {("a", "t1[cpu]"), ("b", "t2[cpu]")}
    assert controller.collected_files == {"/p/a.py", "/p/b.py"}


def test_payload_is_strict_json_with_non_finite_numbers_as_strings() -> None:
    results, pruning = worker("a.py::t[cpu]", "failed", ("a", "t[cpu]"), "/p/a.py")
    raw = worker_payload(results, pruning)
    data = json.loads(raw, parse_constant=lambda name: (_ for _ in ()).throw(AssertionError(name)))
    assert data["records"][0]["worst"]["max_rel"] == "Infinity"
    assert data["owners"] == [["a", "t[cpu]"]]
