"""``--snapshot-update`` over a damaged golden lists it as rewritten because it was damaged,
not as "updated (were out of tolerance)" (issue 19, item 9)."""

from __future__ import annotations

import pytest

TEST = """
from pytest_optcheck import Trajectory

def test_curve(optcheck):
    optcheck.check(Trajectory({"loss": [1.0, 0.5, 0.25]}))
"""


def test_repairing_a_damaged_golden_says_so(project: pytest.Pytester) -> None:
    project.makepyfile(test_curve=TEST)
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=1)
    golden = project.path / "golden" / "test_curve" / "test_curve.json"
    golden.write_text(golden.read_text().replace("0.5,", '"abc",'))
    failed = project.runpytest("--optcheck")
    failed.assert_outcomes(failed=1)
    failed.stdout.fnmatch_lines(["*series 'loss': not a number: 'abc' (line *)*"])
    result = project.runpytest("--optcheck", "--snapshot-update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["1 check: 1 repaired", "goldens rewritten (were damaged: could not be read) (1):",
                                 "  golden/test_curve/test_curve.json"])
    assert "were out of tolerance" not in result.stdout.str()
    project.runpytest("--optcheck").assert_outcomes(passed=1)
