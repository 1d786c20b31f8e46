"""plugin/__init__.py under pytest-xdist: a worker's results reach the controller's summary.

Not mapped in benchmarks/mutation.py: xdist's workers are fresh processes that cannot import
mutmut's mutated copy, so the two mutants only this test kills (the controller's XdistMerge
given no results or no pruning) are checked by hand (KILLED_BY_HAND)."""

from __future__ import annotations

import pytest

from .test_plugin_sessions import CHECKS, _summary

pytest_plugins = ["pytester"]


def test_the_workers_results_reach_the_controllers_summary(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_s=CHECKS.format(loss=0.5))
    result = pytester.runpytest_inprocess("-p", "no:randomly", "-p", "no:cacheprovider", "-n", "1", "--optcheck")
    result.assert_outcomes(failed=2)
    assert _summary(result) == [
        "3 checks: 3 missing",
        "goldens missing (3):",
        "  golden/test_s/test_one.json",
        "  golden/test_s/test_two--a.json",
        "  golden/test_s/test_two--b.json",
    ]
