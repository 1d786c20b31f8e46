"""optcheck's explanation of a failed ``trajectory == snapshot(extension_class=TrajectoryExtension)``
(integrations/syrupy.py's explain_failure) in real syrupy sessions (pytester, in process) that
train nothing: the last comparison of a test is the one explained;
a snapshot not written yet, a failed ``!=``, syrupy's own error and a tolerance tighter than the
defaults are left to syrupy's own report.

Fast, and run by benchmarks/mutation.py too: numpy and torch (one thread) are imported once
here, before any inner session (see tests/e2e/test_snapshot_sessions.py)."""

from __future__ import annotations

import numpy  # noqa: F401
import pytest
import torch

torch.set_num_threads(1)

pytest_plugins = ["pytester"]

PLAIN = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:xdist")

TESTS = """
import numpy as np
from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.integrations.syrupy import TrajectoryExtension

EXACT = TrajectoryExtension.with_tolerance({{"*": "rtol=0, atol=0"}})


def trajectory(*values):
    return Trajectory.from_numpy({{"loss": np.array(values, dtype=np.float64)}})


def test_last(snapshot):
    assert trajectory(1.0, 0.5) == snapshot(extension_class=TrajectoryExtension)
    assert trajectory(2.0, {loss}) == snapshot(name="second", extension_class=TrajectoryExtension)


def test_not_equal(snapshot):
    assert trajectory(1.0, 0.5) {op} snapshot(extension_class=TrajectoryExtension)


def test_diff(snapshot):
    assert trajectory(1.0, {loss}) == snapshot(extension_class=TrajectoryExtension{diff})


def test_exact(snapshot):
    assert trajectory(1.0, {near}) == snapshot(extension_class=EXACT)
"""


def _sections(result: pytest.RunResult) -> dict[str, str]:
    """Each failed test's report, by the test's name."""
    sections = result.stdout.str().split("short test summary info")[0].split("______ ")[1:]
    return {s.split(" ", 1)[0]: s for s in sections}


def test_the_last_comparison_is_explained_and_the_others_left_to_syrupy(pytester: pytest.Pytester,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # the inner sessions are no xdist workers
    monkeypatch.setenv("CI", "true")  # pytest shortens long explanations unless -vv or on CI
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_s=TESTS.format(loss=0.5, near=0.5, op="==", diff=""))
    missing = pytester.runpytest_inprocess(*PLAIN, "-k", "test_last")
    missing.assert_outcomes(failed=1)
    report = _sections(missing)["test_last"]
    assert "optcheck:" not in report and "Snapshot 'test_last' does not exist!" in report  # syrupy's report
    pytester.runpytest_inprocess(*PLAIN, "--snapshot-update").assert_outcomes(passed=4)

    pytester.makepyfile(test_s=TESTS.format(loss=0.75, near=0.5 * (1 + 1e-9), op="!=", diff=", diff=5"))
    result = pytester.runpytest_inprocess(*PLAIN)
    result.assert_outcomes(failed=4)
    sections = _sections(result)
    assert ("E       assert [+ received] == [- snapshot]\n"
            "E         optcheck: 1 of 1 series differ from the golden (loss)\n"
            "E         \n"
            "E         loss: 1 of 2 steps (50.0%) outside tolerance\n") in sections["test_last"]
    assert "update with: pytest --snapshot-update" in sections["test_last"]
    assert "optcheck:" not in sections["test_not_equal"]  # a comparison that matched
    assert "optcheck:" not in sections["test_exact"]
    # syrupy's own error (no snapshot at the diff's index): syrupy says so, though the values differ too
    assert "optcheck:" not in sections["test_diff"] and "SnapshotDoesNotExist" in sections["test_diff"]  # within the default tolerances: syrupy explains
