"""``budget`` is the fraction of steps allowed outside tolerance, rounded down (engine/compare.py):
at 30 steps, budget=0.05 allows 1.5 -> 1 step, budget=0.04 allows 1.2 -> 1. Rounding to the
nearest or up would allow 2 (issue 22: a budget whose product with the steps is not an integer
was guarded only by accident)."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_optcheck.engine.compare import compare_series
from pytest_optcheck.engine.tolerance import Tolerance

STEPS = 30


def verdict(failing: int, budget: float):
    golden = np.linspace(1.0, 0.1, STEPS)
    current = golden.copy()
    current[:failing] += 1.0
    epoch, batch = np.zeros(STEPS, dtype=int), np.arange(STEPS)
    return compare_series("loss", golden, current, Tolerance(budget=budget), epoch, batch)


@pytest.mark.parametrize("budget", [0.05, 0.04, 0.06])  # 1.5, 1.2, 1.8 steps
def test_a_fractional_allowance_rounds_down(budget: float) -> None:
    assert verdict(1, budget).passed
    assert not verdict(2, budget).passed


def test_an_allowance_under_one_step_allows_none() -> None:
    assert not verdict(1, 0.03).passed  # 0.9 steps
    assert verdict(0, 0.03).passed
