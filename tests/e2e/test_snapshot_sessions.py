"""plugin/snapshot.py in real pytest sessions (pytester, in process) that train nothing: a
hand-made Trajectory is compared with ``trajectory_snapshot``, named and unnamed.

Fast, and run by benchmarks/mutation.py too. numpy and torch are imported once here, before
any inner session (the goldens' header reads torch's version; neither loads twice); torch
with one thread, so that mutmut's forked workers inherit no thread pool."""

from __future__ import annotations

from pathlib import Path

import numpy  # noqa: F401
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


def trajectory(*values):
    return Trajectory.from_numpy({{"loss": np.array(values, dtype=np.float64)}})


def test_snap(trajectory_snapshot):
    assert trajectory(1.0, LOSS) == trajectory_snapshot
    assert trajectory(1.0, 0.25) == trajectory_snapshot(name="short")
    assert trajectory(1.0, 0.125) == trajectory_snapshot


def test_repr(trajectory_snapshot):
    assert repr(trajectory_snapshot) == "trajectory_snapshot('test_s.py::test_repr')"
    named = trajectory_snapshot(name="short")
    assert repr(named) == "trajectory_snapshot('test_s.py::test_repr', name='short')"
    assert repr(trajectory_snapshot(name=None)) == "trajectory_snapshot('test_s.py::test_repr', name=None)"
    assert repr(named(name="other")) == "trajectory_snapshot('test_s.py::test_repr', name='other')"
    with pytest.raises(TypeError) as error:
        trajectory_snapshot == [1.0, 0.5]
    assert str(error.value) == (
        "optcheck: trajectory_snapshot compares Trajectory objects; got list. Record one with "
        "optcheck.train(), optcheck.lr_schedule(n) or optcheck.record(...).")
    with pytest.raises(TypeError, match="unhashable"):
        hash(trajectory_snapshot)


def test_wrong_type(trajectory_snapshot):
    assert [1.0, 0.5] == trajectory_snapshot
"""


def _goldens(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in (root / "golden").rglob("*.json"))


def test_named_and_unnamed_snapshots_write_and_check_their_goldens(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_s=TESTS.format(loss=0.5))
    written = pytester.runpytest_inprocess(*PLAIN, "--optcheck", "--snapshot-update")
    written.assert_outcomes(passed=2, failed=1)
    text = written.stdout.str()  # the wrong type fails at the user's line, not inside the plugin
    assert ">       assert [1.0, 0.5] == trajectory_snapshot" in text and "snapshot.py" not in text
    assert _goldens(pytester.path) == ["golden/test_s/test_snap--1.json", "golden/test_s/test_snap--short.json",
                                       "golden/test_s/test_snap.json"]
    golden = (pytester.path / "golden/test_s/test_snap--short.json").read_text(encoding="utf-8")
    assert '"name": "short"' in golden and '"spec": null' in golden  # a recorded check: no spec of its own
    assert '"loss": [1.0, 0.25]' in golden
    pytester.runpytest_inprocess(*PLAIN, "--optcheck").assert_outcomes(passed=2, failed=1)
    pytester.makepyfile(test_s=TESTS.format(loss=0.75))
    failed = pytester.runpytest_inprocess(*PLAIN, "--optcheck")
    failed.assert_outcomes(passed=1, failed=2)
    text = failed.stdout.str()
    assert "golden/test_s/test_snap.json" in text and "loss" in text
    assert "test_snap--short" not in text.split("short test summary")[0].split("FAILURES")[1]
