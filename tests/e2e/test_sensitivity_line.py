"""``--optcheck-sensitivity`` says what it did even when every check is fine (issue 19, item 11)."""

from __future__ import annotations

import pytest

TESTS = """
import pytest

@pytest.mark.optcheck(epochs=1, batch_size=250)
def test_default_tolerance(optcheck):
    optcheck.check()
"""


def test_a_line_when_every_check_noticed(project: pytest.Pytester) -> None:
    project.makepyfile(test_sens=TESTS)
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=1)
    result = project.runpytest("--optcheck", "--optcheck-sensitivity")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["sensitivity: 1 check probed with every step x1.01; each noticed it"])
    assert "would NOT notice" not in result.stdout.str()


def test_a_line_when_nothing_could_be_probed(project: pytest.Pytester) -> None:
    project.makepyfile(test_sens="def test_plain():\n    pass\n")
    result = project.runpytest("--optcheck", "--optcheck-sensitivity")
    result.stdout.fnmatch_lines(["sensitivity: no check was probed*"])
