"""Every check of a test is evaluated and reported; the test fails once, naming every failing
check (issue 19, item 4): a GAN-style test with two checks, both failing."""

from __future__ import annotations

import json

import pytest

GAN = """
import pytest
from pytest_optcheck import Trajectory

def test_gan(optcheck):
    optcheck.check(Trajectory({{"loss": [1.0, 0.5, {g}]}}), name="generator")
    optcheck.check(Trajectory({{"loss": [2.0, 1.0, {d}]}}), name="discriminator")
    print("the body ran to its end")

@pytest.mark.optcheck(optimizer="SGD(lr=0.1)")
def test_after(optcheck):
    optcheck.check(optcheck.lr_schedule(2))
"""


def test_two_failing_checks_both_run_and_fail_the_test_once(project: pytest.Pytester) -> None:
    project.makepyfile(test_gan=GAN.format(g=0.25, d=0.5))
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=2)
    project.makepyfile(test_gan=GAN.format(g=0.3, d=0.6))
    result = project.runpytest("--optcheck", "-s", f"--optcheck-report={project.path / 'report'}")
    result.assert_outcomes(failed=1, passed=1)
    out = result.stdout.str()
    assert "the body ran to its end" in out
    # failed once: one failure report (the short summary line repeats it, whole under CI=true)
    assert out.count("E   AssertionError: optcheck: 2 of 2 checks failed: generator, discriminator") == 1
    result.stdout.fnmatch_lines(["FAILED test_gan.py::test_gan - AssertionError: optcheck: 2 of 2 checks failed*"])
    result.stdout.fnmatch_lines(["*--- check generator (checked at test_gan.py:5) ---*"])
    result.stdout.fnmatch_lines(["*--- check discriminator (checked at test_gan.py:6) ---*"])
    result.stdout.fnmatch_lines(["*3 checks: 2 failed, 1 passed*", "goldens out of tolerance (2):",
                                 "*test_gan--discriminator.json", "*test_gan--generator.json"])
    summary = json.loads((project.path / "report" / "summary.json").read_text())
    failed = sorted(r["name"] for r in summary["records"] if r["status"] == "failed")
    assert failed == ["discriminator", "generator"]


def test_x_stops_after_the_test_but_all_its_checks_are_reported(project: pytest.Pytester) -> None:
    project.makepyfile(test_gan=GAN.format(g=0.25, d=0.5))
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=2)
    project.makepyfile(test_gan=GAN.format(g=0.3, d=0.6))
    result = project.runpytest("--optcheck", "-x")
    result.assert_outcomes(failed=1)  # -x: test_after never ran
    result.stdout.fnmatch_lines(["*2 checks: 2 failed*"])


def test_one_failing_check_of_two_keeps_its_own_message(project: pytest.Pytester) -> None:
    project.makepyfile(test_gan=GAN.format(g=0.25, d=0.5))
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=2)
    project.makepyfile(test_gan=GAN.format(g=0.25, d=0.6))
    result = project.runpytest("--optcheck")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["FAILED test_gan.py::test_gan - AssertionError: optcheck: 1 of 1 series*"])
    assert "(1 of 2 checks of this test failed: discriminator; the others passed)" in result.stdout.str()


def test_an_error_after_a_failing_check_keeps_both(project: pytest.Pytester) -> None:
    project.makepyfile(test_gan="""
import pytest

@pytest.mark.optcheck(optimizer="SGD(lr=0.1)")
def test_gan(optcheck):
    optcheck.check(optcheck.lr_schedule(3))
    raise RuntimeError("the user's own bug")
""")
    result = project.runpytest("--optcheck")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*RuntimeError: the user's own bug*",
                                 "*optcheck checks that failed before*", "*golden*missing*"])
