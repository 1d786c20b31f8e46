"""--optcheck-sensitivity: a check that would not notice a 1% LR change is listed."""

from __future__ import annotations

import pytest

TESTS = """
import pytest

pytestmark = pytest.mark.optcheck(optimizer="SGD(lr=0.05, momentum=0.9)", epochs=2)

def test_default_tolerance(optcheck):
    optcheck.check()

def test_loose_tolerance(optcheck):
    optcheck.check(loss={"rtol": 0.5})

def test_own_trajectory_is_not_probed(optcheck):
    optcheck.check(optcheck.train(), loss={"rtol": 0.5})
"""


def test_sensitivity_lists_only_the_vacuous_declarative_check(project: pytest.Pytester) -> None:
    project.makepyfile(test_sens=TESTS)
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=3)
    result = project.runpytest("--optcheck", "--optcheck-sensitivity")
    result.assert_outcomes(passed=3)
    out = result.stdout.str()
    assert "checks that would NOT notice a 1% larger step" in out
    assert "test_sens.py::test_loose_tolerance[cpu]: every step x1.01 stays within tolerance" in out
    assert "test_default_tolerance" not in out.split("would NOT notice")[1]
    assert "test_own_trajectory_is_not_probed" not in out.split("would NOT notice")[1]


def test_without_the_flag_nothing_is_probed(project: pytest.Pytester) -> None:
    project.makepyfile(test_sens=TESTS)
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=3)
    result = project.runpytest("--optcheck")
    assert "would NOT notice" not in result.stdout.str()
