"""plugin/checking.py in real pytest sessions (pytester, in process) that train nothing:
hand-made trajectories checked through ``optcheck.check`` and ``trajectory_snapshot`` —
every check of a test evaluated, the test failed once at its end naming the failing ones,
a second check on one golden refused, the update command, the report's records.

Fast, and run by benchmarks/mutation.py too. numpy, torch and matplotlib are imported once
here, before any inner session (none of them loads twice); torch with one thread."""

from __future__ import annotations

import json
import re

import matplotlib
import matplotlib.figure  # (imported before any inner session)
import numpy
import pytest
import torch

torch.set_num_threads(1)

pytest_plugins = ["pytester"]

PLAIN = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:xdist")

TESTS = """
import numpy as np
import pytest
from pytest_optcheck.engine.trajectory import Trajectory

LOSS = {loss}


def t(*values, **meta):
    trajectory = Trajectory.from_numpy({{"loss": np.array(values, dtype=np.float64)}})
    trajectory.meta.update(meta)
    return trajectory


def test_two(optcheck):
    optcheck.check(t(1.0, LOSS), name="gen")
    optcheck.check(t(1.0, LOSS))


def test_one_of_two(trajectory_snapshot):
    assert t(1.0, 0.5) == trajectory_snapshot(name="a")
    assert t(1.0, LOSS) == trajectory_snapshot


def test_single(trajectory_snapshot):
    assert t(1.0, LOSS) == trajectory_snapshot


def test_then_raises(trajectory_snapshot):
    assert t(1.0, LOSS) == trajectory_snapshot
    raise RuntimeError("the body failed after its check")


def test_libraries(trajectory_snapshot):
    assert t(1.0, 0.5, libraries=["numpy", "matplotlib"]) == trajectory_snapshot


def test_duplicate(trajectory_snapshot):
    assert t(1.0) == trajectory_snapshot(name="x")
    assert t(1.0) == trajectory_snapshot(name="x")
"""

#: Lines (in TESTS) of the checks that fail on the second run.
GEN, UNNAMED, B, SINGLE, RAISES = 15, 16, 21, 25, 29


def _sections(text: str) -> dict[str, str]:
    """Each failing test's section of pytest's report."""
    text = re.sub(r"(?m)^(E   |    )", "", text.split("short test summary")[0])  # pytest's indent, off
    parts = re.split(r"\n_{3,} (\S+) _{3,}\n", text)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.fixture
def recorded(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_c=TESTS.format(loss=0.5))
    first = pytester.runpytest_inprocess(*PLAIN, "--optcheck", "--snapshot-update")
    first.assert_outcomes(passed=4, failed=2)
    duplicate = _sections(first.stdout.str())["test_duplicate"]
    assert duplicate.startswith(
        "optcheck: two checks in this test use the same golden golden/test_c/test_duplicate--x.json; the "
        "second would overwrite the first. Give each check its own name: check(name=...) / "
        "trajectory_snapshot(name=...).\n(at test_c.py:")
    header = json.loads((pytester.path / "golden/test_c/test_libraries.json").read_text(encoding="utf-8"))
    assert header["environment"]["libraries"] == {"matplotlib": matplotlib.__version__, "numpy": numpy.__version__}
    assert header["meta"] == {}  # moved out of the trajectory into the environment
    single = json.loads((pytester.path / "golden/test_c/test_single.json").read_text(encoding="utf-8"))
    assert "libraries" not in single["environment"]  # the default spec uses torch alone
    pytester.makepyfile(test_c=TESTS.format(loss=0.75))
    return pytester


def test_a_test_fails_once_at_its_end_naming_every_failing_check(recorded: pytest.Pytester) -> None:
    result = recorded.runpytest_inprocess(*PLAIN, "--optcheck")
    result.assert_outcomes(passed=1, failed=5)
    sections = _sections(result.stdout.str())
    two = sections["test_two"]
    assert "optcheck: 2 of 2 checks failed: gen, (unnamed)\n\n" in two
    assert f"--- check gen (checked at test_c.py:{GEN}) ---\noptcheck: " in two
    assert f"--- check (unnamed) (checked at test_c.py:{UNNAMED}) ---\noptcheck: " in two
    assert "\nAssertionError: optcheck: 2 of 2 checks failed" in two  # in the call phase: FAILED, not ERROR
    one = sections["test_one_of_two"]
    assert f"\n(checked at test_c.py:{B})\n(1 of 2 checks of this test failed: (unnamed); the others passed)" in one
    single = sections["test_single"]
    assert f"(checked at test_c.py:{SINGLE})" in single and "checks of this test failed" not in single
    assert "pytest --optcheck --snapshot-update test_c.py::test_single" in single
    assert "--optcheck-device" not in single
    raised = sections["test_then_raises"]
    assert "RuntimeError: the body failed after its check" in raised
    assert "optcheck checks that failed before" in raised and f"(checked at test_c.py:{RAISES})" in raised


def test_the_report_keeps_one_record_per_check(recorded: pytest.Pytester) -> None:
    result = recorded.runpytest_inprocess(*PLAIN, "--optcheck", "--optcheck-report", "rep", "-k", "test_two or libraries")
    result.assert_outcomes(passed=1, failed=1)
    summary = json.loads((recorded.path / "rep/summary.json").read_text(encoding="utf-8"))
    records = {(r["nodeid"], r["name"]): r for r in summary["records"]}
    assert set(records) == {("test_c.py::test_two", "gen"), ("test_c.py::test_two", None),
                            ("test_c.py::test_libraries", None)}
    failing = records[("test_c.py::test_two", "gen")]
    assert failing["picture"] and (recorded.path / "rep" / failing["picture"]).is_file()
    assert failing["result"]["golden"] == "golden/test_c/test_two--gen.json"  # kept, to accept
    assert (recorded.path / "rep" / failing["result"]["file"]).is_file()
    assert "result" not in records[("test_c.py::test_libraries", None)]  # passed: nothing to accept
    assert failing["message"].endswith(f"\npicture: rep/{failing['picture']}")
    assert failing["message"].count("update with: pytest --optcheck --snapshot-update test_c.py::test_two\n") == 1
