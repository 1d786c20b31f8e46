"""The report: one PNG per check, index.html and summary.json (pytest_optcheck.report)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pytest_optcheck.checks.golden_check import check_golden
from pytest_optcheck.checks.golden_check import judge as evaluate
from pytest_optcheck.engine.compare import relative_error
from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.golden.format import Golden, dumps
from pytest_optcheck.report.index import write_index
from pytest_optcheck.report.picture import write_picture
from pytest_optcheck.report.results import Results

STEPS = 64
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SPEC = {"optimizer": "Adam(lr=0.01)", "epochs": 2}
ENV = {"torch": "2.13.0", "device": "cpu", "dtype": "float32"}


def golden(loss_scale: float = 1.0, *, grad_norm: bool = True, nan_at: int | None = None) -> Golden:
    loss = np.exp(-np.linspace(0, 3, STEPS))
    loss[20:] *= loss_scale
    if nan_at is not None:
        loss[nan_at:] = np.nan
    series = {"loss": loss, "lr": np.column_stack([np.full(STEPS, 0.01), np.full(STEPS, 0.001)])}
    if grad_norm:
        series["grad_norm"] = np.linspace(2.0, 0.5, STEPS)
    traj = Trajectory(series, epoch=np.arange(STEPS) // 32, batch=np.arange(STEPS) % 32)
    return Golden(traj, spec=SPEC, environment=ENV, test="tests/test_x.py::test_adam")


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 10_000


@pytest.mark.parametrize(
    "current, golden_text, status",
    [
        (golden(), dumps(golden()), "passed"),
        (golden(1.05), dumps(golden()), "failed"),
        (golden(nan_at=40), dumps(golden()), "failed"),
        (golden(grad_norm=False), dumps(golden()), "failed"),
        (golden(), None, "missing"),
    ],
    ids=["passed", "failed", "nan", "missing-series", "created"],
)
def test_write_picture_writes_a_png(tmp_path: Path, current: Golden, golden_text: str | None, status: str) -> None:
    if golden_text is None:
        outcome = check_golden(current, tmp_path / "golden" / "test_adam.json")
    else:
        outcome = evaluate(current, golden_text, path="golden/tests/test_x/test_adam.json")
    assert outcome.status == status
    picture = tmp_path / "sub" / "test_x--test_adam.png"
    write_picture(picture, outcome, title="tests/test_x.py::test_adam")
    assert_png(picture)
    assert [p.name for p in picture.parent.iterdir()] == [picture.name]  # no temporary file left


def test_write_picture_for_config_changed_outcome(tmp_path: Path) -> None:
    current = golden()
    current.spec = {**SPEC, "optimizer": "Adam(lr=0.02)"}
    outcome = evaluate(current, dumps(golden()), path="g.json")
    assert outcome.status == "config-changed"
    write_picture(tmp_path / "p.png", outcome, title="t")
    assert_png(tmp_path / "p.png")


def test_relative_error_per_step() -> None:
    g = np.array([1.0, 2.0, 0.0, 0.0, np.nan])
    c = np.array([1.0, 2.2, 0.0, 1.0, np.nan])
    np.testing.assert_allclose(relative_error(g, c), [0.0, 0.1, 0.0, np.inf, 0.0])
    two_groups = relative_error(np.ones((3, 2)), np.array([[1.0, 1.5], [1.1, 1.0], [1.0, 1.0]]))
    np.testing.assert_allclose(two_groups, [0.5, 0.1, 0.0])


def test_importing_report_does_not_import_matplotlib() -> None:
    code = "import sys, pytest_optcheck.report; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def record(nodeid: str, status: str, *, message: str = "", picture: str | None = None, worst=None) -> dict:
    return {"nodeid": nodeid, "name": None, "status": status, "path": f"golden/{nodeid}.json",
            "worst": worst, "message": message, "picture": picture}


def sample_results(tmp_path: Path) -> Results:
    outcome = evaluate(golden(1.05), dumps(golden()), path="g.json")
    write_picture(tmp_path / "b.png", outcome, title="b")
    results = Results()
    results.records.append(record("tests/test_a.py::test_ok", "passed", picture="a.png",
                       worst={"series": "loss", "max_rel": 0.0, "max_abs": 0.0, "first_failure": None}))
    results.records.append(record("tests/test_b.py::test_bad", "failed", picture="b.png",
                       message="optcheck: 1 of 2 series differ\n<script>alert(1)</script>",
                       worst={"series": "loss", "max_rel": math.inf, "max_abs": math.nan, "first_failure": 20}))
    results.records.append(record("tests/test_c.py::test_new", "created"))
    results.vacuous.append({"nodeid": "tests/test_a.py::test_ok", "name": None, "detail": "rtol=1 hides it"})
    results.orphans.append("golden/tests/test_gone/test_old.json")
    return results


def test_write_index_html(tmp_path: Path) -> None:
    write_index(tmp_path, sample_results(tmp_path))
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    for nodeid in ("tests/test_a.py::test_ok", "tests/test_b.py::test_bad", "tests/test_c.py::test_new"):
        assert nodeid in page
    assert page.index("test_bad") < page.index("test_ok")  # failures first
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="b.png"' in page and 'src="b.png"' in page
    assert "a.png (not written)" in page  # a picture that is missing is said so, not linked
    assert "<details open>" in page and "rtol=1 hides it" in page  # a few failures: message shown
    assert "golden/tests/test_gone/test_old.json" in page
    assert "http://" not in page and "https://" not in page  # self-contained


def test_summary_json_is_valid_with_non_finite_errors(tmp_path: Path) -> None:
    write_index(tmp_path, sample_results(tmp_path))
    text = (tmp_path / "summary.json").read_text(encoding="utf-8")
    data = json.loads(text, parse_constant=lambda name: pytest.fail(f"non-standard JSON constant {name}"))
    assert data["counts"] == {"failed": 1, "created": 1, "passed": 1}
    assert data["total"] == 3 == len(data["records"])
    assert data["records"][0]["status"] == "failed"
    assert data["records"][0]["worst"]["max_rel"] == "Infinity"
    assert data["records"][0]["worst"]["max_abs"] == "NaN"
    assert data["orphans"] == ["golden/tests/test_gone/test_old.json"]


def test_write_index_without_records(tmp_path: Path) -> None:
    write_index(tmp_path / "new", Results())
    assert "No checks ran" in (tmp_path / "new" / "index.html").read_text(encoding="utf-8")
    assert json.loads((tmp_path / "new" / "summary.json").read_text())["total"] == 0
