"""Tolerance precedence end to end: check() > marker > command line > ini > defaults."""

from __future__ import annotations

import json

import pytest

TEST = """
import pytest

@pytest.mark.optcheck(epochs=1{marker})
def test_t(optcheck):
    optcheck.check({check})
"""


def planted(project: pytest.Pytester, marker: str = "", check: str = "") -> None:
    """Record a golden, then move every loss value by 0.1% (relative 1e-3)."""
    project.makepyfile(test_tol=TEST.format(marker="", check=""))
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=1)
    golden = project.path / "golden/test_tol/test_t[cpu].json"
    data = json.loads(golden.read_text())
    data["series"]["loss"] = [v * 1.001 for v in data["series"]["loss"]]
    golden.write_text(json.dumps(data))
    project.makepyfile(test_tol=TEST.format(marker=marker, check=check))


LOOSE = 'tolerance={"loss": "rtol=1e-2"}'


@pytest.mark.parametrize(
    ("ini", "cli", "marker", "check", "passes"),
    [
        ("", "", "", "", False),  # defaults (rtol 1e-4) catch a 0.1% change
        ("loss: rtol=1e-2", "", "", "", True),  # ini loosens
        ("loss: rtol=1e-2", "loss: rtol=1e-5", "", "", False),  # command line beats ini
        ("", "loss: rtol=1e-5", ", " + LOOSE, "", True),  # marker beats command line
        ("", "", ", " + LOOSE, 'loss={"rtol": 1e-5}', False),  # check() beats marker
        ("", "", "", "rtol=1e-2", True),  # check()'s shorthand applies to every series
        ("", "", "", 'loss="mode=final, last=10, rtol=2e-3"', True),  # field-level: rtol from check()
        ("", "", ", " + LOOSE, 'tolerance={"loss": {"rtol": 1e-5}}', False),  # the unambiguous form
        ("", "", "", 'tolerance={"*": "rtol=1e-2"}', True),  # '*': every series
    ],
)
def test_precedence(project: pytest.Pytester, ini: str, cli: str, marker: str, check: str, passes: bool) -> None:
    if ini:
        project.makeini(f"[pytest]\noptcheck_tolerance =\n    {ini}\n")
    planted(project, marker, check)
    args = ["--optcheck"] + ([f"--optcheck-tolerance={cli}"] if cli else [])
    result = project.runpytest(*args)
    result.assert_outcomes(passed=1) if passes else result.assert_outcomes(failed=1)


def test_bad_command_line_tolerance_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makepyfile(test_tol=TEST.format(marker="", check=""))
    result = project.runpytest("--optcheck", "--optcheck-tolerance=loss: rtool=1e-3")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--optcheck-tolerance*rtool*Did you mean: rtol*"])


AMBIGUOUS = """
import numpy as np
from pytest_optcheck import Trajectory

def test_series_named_like_a_field(optcheck):
    t = Trajectory({"mode": np.arange(4.0), "loss": np.ones(4)})
    optcheck.check(t, mode="rtol=1e-3")
"""


def test_a_short_form_keyword_naming_both_a_series_and_a_field_is_refused(project: pytest.Pytester) -> None:
    """check(mode=...) could mean the field `mode` for every series or a tolerance for the
    series called `mode`: the call is refused with both unambiguous spellings."""
    project.makepyfile(test_amb=AMBIGUOUS)
    result = project.runpytest("--snapshot-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        ("*check(): mode='rtol=1e-3' is ambiguous: this trajectory records a series named 'mode'*"
         "tolerance={'mode': ...}*tolerance={'*': {'mode': ...}}*"),
    ])
    assert "Traceback" not in result.stdout.str()
