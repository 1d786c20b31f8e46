"""``optcheck.check([0.5, 0.4])`` names the type it takes and what it got (issue 19, item 5)."""

from __future__ import annotations

import pytest


def test_check_of_a_list_names_trajectory_and_the_list(project: pytest.Pytester) -> None:
    project.makepyfile(test_list="def test_list(optcheck):\n    optcheck.check([0.5, 0.4])\n")
    result = project.runpytest("--optcheck")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["optcheck: check() takes a Trajectory; got a list: [[]0.5, 0.4[]]. Make one with*"])
    assert "has no attribute" not in result.stdout.str()
