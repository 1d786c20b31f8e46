"""Repeated unnamed ``trajectory_snapshot`` assertions in one test are named as syrupy names
them — none, then "1", "2" — and goldens already committed depend on it: numbering from 2 would
orphan every ``--1`` golden (plugin/checking.py ``next_unnamed``; issue 22, promise 6)."""

from __future__ import annotations

import pytest

from tests.e2e.goldens import golden_files, read_golden

THREE = """
import pytest

@pytest.mark.optcheck(optimizer="SGD(lr=0.1)", scheduler="MultiStepLR(milestones=[2, 4], gamma=0.5)")
def test_schedule(optcheck, trajectory_snapshot):
    assert optcheck.lr_schedule(6) == trajectory_snapshot
    assert optcheck.lr_schedule(5) == trajectory_snapshot
    assert optcheck.lr_schedule(4) == trajectory_snapshot
"""


def test_unnamed_snapshots_are_named_none_1_2(project: pytest.Pytester) -> None:
    project.makepyfile(test_snap=THREE)
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=1)
    folder = "golden/test_snap/"
    assert golden_files(project.path) == [folder + "test_schedule[cpu]--1.json", folder + "test_schedule[cpu]--2.json",
                                          folder + "test_schedule[cpu].json"]
    steps = [len(read_golden(project.path / name)["series"]["lr"]) for name in golden_files(project.path)]
    assert steps == [5, 4, 6]  # each assertion wrote its own golden, in order
    project.runpytest("--optcheck").assert_outcomes(passed=1)
