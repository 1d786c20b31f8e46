"""Resume, parity and distributed checks compare each tensor relative to the reference run
(engine/stepwise.py, ``torch.testing.assert_close``'s rule): ``|other - reference| <= atol +
rtol * |reference|``. Measured relative to the other run instead, a difference just outside
tolerance passes when the other run is the larger (issue 22, promise 1)."""

from __future__ import annotations

import numpy as np

from pytest_optcheck.engine.stepwise import compare_tensors
from pytest_optcheck.engine.tolerance import Tolerance

RTOL = Tolerance(rtol=0.14, atol=0.0)
TOLERANCES = {"params": RTOL, "state": RTOL}


def verdict(reference: float, other: float):
    return compare_tensors([{"w": np.array([reference])}], [{"w": np.array([other])}], TOLERANCES)


def test_a_larger_other_run_is_measured_against_the_reference() -> None:
    # |1.15 - 1.0| = 0.15 > 0.14 * |1.0|, though <= 0.14 * |1.15| = 0.161
    result = verdict(1.0, 1.15)
    assert not result.passed
    assert (result.first.reference, result.first.other, result.first.name) == (1.0, 1.15, "w")


def test_a_smaller_other_run_is_measured_against_the_reference() -> None:
    # |1.0 - 1.15| = 0.15 <= 0.14 * |1.15| = 0.161, though > 0.14 * |1.0|
    assert verdict(1.15, 1.0).passed
