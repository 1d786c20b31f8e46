"""engine/stepwise.py's verdicts whole: whatever ends the comparison (a value, a missing,
extra or reshaped tensor, fewer steps, nothing), the verdict carries the largest errors seen
up to there, the tensor they were in and how many tensors were compared; compare_runs judges
the series and the tensors, each with its own tolerance."""

from __future__ import annotations

import math

import numpy as np

from pytest_optcheck.engine.stepwise import (
    Run,
    RunComparison,
    TensorDifference,
    TensorVerdict,
    compare_runs,
    compare_tensors,
)
from pytest_optcheck.engine.tolerance import Tolerance
from pytest_optcheck.engine.trajectory import Trajectory

LOOSE = Tolerance(rtol=0.1, atol=0.0)
TOLS = {"params": LOOSE, "state": Tolerance(rtol=0.0, atol=0.0)}


def steps(*values: dict[str, object]) -> list[dict[str, np.ndarray]]:
    return [{k: np.asarray(v) for k, v in step.items()} for step in values]


# step 0: w off by 5% (inside 10%), b by 1% -> largest relative error 0.05 in w, abs 0.1 in w
SEEN = {"w": [2.0, 4.0], "b": [1.0]}
SEEN_OTHER = {"w": [2.1, 4.0], "b": [1.01]}
ABS, REL = 2.1 - 2.0, (2.1 - 2.0) / 2.0  # as float64 computes them


def test_a_value_outside_tolerance_is_the_largest_bad_element_with_its_index() -> None:
    ref = steps(SEEN, {"w": [[1.0, 1.0], [1.0, 1.0]]})
    other = steps(SEEN_OTHER, {"w": [[1.0, 1.2], [0.5, 1.0]]})
    verdict = compare_tensors(ref, other, TOLS)
    assert verdict == TensorVerdict(TensorDifference(1, "w", "values", (1, 0), 1.0, 0.5, LOOSE), max_abs=0.5,
                                    max_rel=0.5, worst="w", compared=3)
    scalar = compare_tensors(steps({"w": 2.0}), steps({"w": 3.0}), TOLS).first
    assert (scalar.index, scalar.reference, scalar.other) == ((), 2.0, 3.0)


def test_every_structural_end_carries_what_was_measured_before_it() -> None:
    measured = {"max_abs": ABS, "max_rel": REL, "worst": "w", "compared": 2}
    missing = compare_tensors(steps(SEEN, {"w": [2.0, 4.0], "v of w": [0.0]}), steps(SEEN_OTHER, {"w": [2.0, 4.0]}),
                              TOLS)
    assert missing == TensorVerdict(TensorDifference(1, "v of w", "missing"), **{**measured, "compared": 3})
    extra = compare_tensors(steps(SEEN), steps({**SEEN_OTHER, "v of w": [0.0]}), TOLS)
    assert extra == TensorVerdict(TensorDifference(0, "v of w", "extra"), **measured)
    shape = compare_tensors(steps(SEEN, {"w": [1.0]}), steps(SEEN_OTHER, {"w": [1.0, 2.0]}), TOLS)
    assert shape == TensorVerdict(TensorDifference(1, "w", "shape", detail="(1,) | (2,)"), **measured)
    fewer = compare_tensors(steps(SEEN, SEEN), steps(SEEN_OTHER), TOLS)
    assert fewer == TensorVerdict(TensorDifference(1, "", "steps", reference=2, other=1), **measured)
    more = compare_tensors(steps(SEEN), steps(SEEN_OTHER, SEEN), TOLS)
    assert more.first == TensorDifference(1, "", "steps", reference=1, other=2)
    assert compare_tensors(steps(SEEN), steps(SEEN_OTHER), TOLS) == TensorVerdict(None, **measured)


def test_the_worst_tensor_is_the_first_with_the_largest_relative_error() -> None:
    tied = compare_tensors(steps({"a": [1.0], "b": [1.0]}), steps({"a": [1.05], "b": [1.05]}), TOLS)
    assert tied.worst == "a" and tied.passed
    later = compare_tensors(steps({"a": [10.0], "b": [1.0]}), steps({"a": [10.2], "b": [1.05]}), TOLS)
    assert (later.worst, later.max_abs, later.max_rel) == ("b", 10.2 - 10.0, 1.05 - 1.0)


def test_empty_tensors_are_compared_and_measure_nothing() -> None:
    verdict = compare_tensors(steps({"e": np.zeros(0), "w": [1.0]}), steps({"e": np.zeros(0), "w": [1.0]}), TOLS)
    assert verdict == TensorVerdict(None, 0.0, 0.0, None, 2)


def test_errors_at_zero_nan_and_inf() -> None:
    zero = compare_tensors(steps({"w": [0.0]}), steps({"w": [1e-12]}), TOLS)
    assert zero.first.reason == "values" and zero.max_rel == math.inf and zero.max_abs == 1e-12
    nan = compare_tensors(steps({"w": [1.0]}), steps({"w": [math.nan]}), TOLS)
    assert (nan.max_abs, nan.max_rel) == (math.inf, math.inf) and nan.first.index == (0,)
    inf = compare_tensors(steps({"w": [math.inf, 1.0]}), steps({"w": [math.inf, 1.0]}), TOLS)
    assert inf == TensorVerdict(None, 0.0, 0.0, None, 1)


def test_an_error_exactly_at_the_allowance_passes() -> None:
    ref, other = steps({"w": [2.0]}), steps({"w": [2.5]})
    assert compare_tensors(ref, other, {"params": Tolerance(rtol=0.0, atol=0.5), "state": LOOSE}).passed
    assert not compare_tensors(ref, other, {"params": Tolerance(rtol=0.0, atol=0.4), "state": LOOSE}).passed


def trajectory(loss: list[float]) -> Trajectory:
    return Trajectory({"loss": loss, "lr": [0.1] * len(loss)})


def test_compare_runs_judges_series_and_tensors_with_their_own_tolerances() -> None:
    tolerances = {"loss": Tolerance(rtol=0.01, atol=0.0), "lr": Tolerance(rtol=0.0, atol=0.0), **TOLS}
    reference = Run(trajectory([1.0, 0.5]), steps(SEEN, SEEN))
    close = compare_runs(reference, Run(trajectory([1.005, 0.5]), steps(SEEN_OTHER, SEEN)), tolerances)
    assert isinstance(close, RunComparison) and close.passed
    assert close.series.series[0].tolerance == tolerances["loss"] and close.tensors.compared == 4
    assert close.max_rel == REL  # the tensors' 5% over the loss's 0.5%
    loss_off = compare_runs(reference, Run(trajectory([1.02, 0.5]), steps(SEEN, SEEN)), tolerances)
    assert not loss_off.passed and loss_off.tensors.passed and [s.name for s in loss_off.series.failed] == ["loss"]
    assert math.isclose(loss_off.max_rel, 0.02)
    tensors_off = compare_runs(reference, Run(trajectory([1.0, 0.5]), steps(SEEN, {"w": [2.0, 5.0], "b": [1.0]})),
                               tolerances)
    assert tensors_off.series.passed and not tensors_off.passed and tensors_off.tensors.first.name == "w"
    assert compare_runs(Run(trajectory([1.0])), Run(trajectory([1.0])), tolerances).max_rel == 0.0


def test_an_infinite_reference_allows_only_the_same_infinity() -> None:
    assert not compare_tensors(steps({"w": [math.inf]}), steps({"w": [-math.inf]}), TOLS).passed
    assert not compare_tensors(steps({"w": [math.inf]}), steps({"w": [1.0]}), TOLS).passed
    assert not compare_tensors(steps({"w": [math.nan]}), steps({"w": [math.inf]}), TOLS).passed
    assert compare_tensors(steps({"w": [-math.inf]}), steps({"w": [-math.inf]}), TOLS).passed


def test_equal_zeros_have_no_error_and_nothing_warns() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # inf - inf, x / 0, overflow: judged, never warned about
        verdict = compare_tensors(steps({"w": [0.0, math.inf, 1e308, 0.0]}),
                                  steps({"w": [0.0, -math.inf, -1e308, 1.0]}), TOLS)
    assert verdict.first.index == (1,) and verdict.max_abs == math.inf  # +inf against -inf fails
    assert compare_tensors(steps({"w": [0.0, 0.0]}), steps({"w": [0.0, 0.0]}), TOLS) == \
        TensorVerdict(None, 0.0, 0.0, None, 1)


def test_a_half_precision_reference_gets_the_same_float64_bound() -> None:
    # rtol=1e-3 of 1.0 allows 0.001; in float16 that bound would round up to 0.0010004 and let
    # a difference of 0.0010002 pass
    tols = {"params": Tolerance(rtol=1e-3), "state": Tolerance(rtol=1e-3)}
    other = [{"w": np.array([1.0 + 1.0002e-3])}]
    for dtype in (np.float16, np.float32, np.float64):
        verdict = compare_tensors([{"w": np.array([1.0], dtype=dtype)}], other, tols)
        assert verdict.first is not None and (verdict.first.name, verdict.first.index) == ("w", (0,))
        assert (verdict.first.reference, verdict.first.other) == (1.0, 1.0 + 1.0002e-3)
