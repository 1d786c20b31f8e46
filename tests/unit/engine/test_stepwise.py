"""engine/stepwise.py: tensors compared element by element after every step."""

from __future__ import annotations

import math

import numpy as np

from pytest_optcheck.engine.stepwise import compare_tensors, tensor_kind
from pytest_optcheck.engine.tolerance import Tolerance

TOLS = {"params": Tolerance(rtol=1e-3, atol=0.0), "state": Tolerance(rtol=0.0, atol=0.0)}


def _steps(*values: dict[str, list[float]]) -> list[dict[str, np.ndarray]]:
    return [{k: np.asarray(v) for k, v in step.items()} for step in values]


def test_kinds() -> None:
    assert tensor_kind("hidden.weight") == "params" and tensor_kind("exp_avg of hidden.weight") == "state"


def test_first_element_outside_its_kinds_tolerance() -> None:
    ref = _steps({"w": [1.0, 2.0], "m of w": [0.5]}, {"w": [1.0, 2.0], "m of w": [0.5]})
    other = _steps({"w": [1.0005, 2.0], "m of w": [0.5]}, {"w": [1.0, 2.01], "m of w": [0.5]})
    verdict = compare_tensors(ref, other, TOLS)
    first = verdict.first
    assert first is not None and (first.step, first.name, first.index) == (1, "w", (1,))
    assert math.isclose(first.rel_err, 0.005) and math.isclose(verdict.max_rel, 0.005)
    exact_state = compare_tensors(ref, _steps({"w": [1.0, 2.0], "m of w": [0.5000001]}), TOLS)
    assert exact_state.first is not None and exact_state.first.name == "m of w"


def test_nan_equals_nan_and_structure_is_named() -> None:
    assert compare_tensors(_steps({"w": [math.nan]}), _steps({"w": [math.nan]}), TOLS).passed
    assert not compare_tensors(_steps({"w": [math.nan]}), _steps({"w": [1.0]}), TOLS).passed
    missing = compare_tensors(_steps({"w": [1.0], "v of w": [0.0]}), _steps({"w": [1.0]}), TOLS).first
    assert missing is not None and (missing.reason, missing.name) == ("missing", "v of w")
    extra = compare_tensors(_steps({"w": [1.0]}), _steps({"w": [1.0], "v of w": [0.0]}), TOLS).first
    assert extra is not None and extra.reason == "extra"
    shape = compare_tensors(_steps({"w": [1.0]}), _steps({"w": [1.0, 2.0]}), TOLS).first
    assert shape is not None and shape.reason == "shape" and shape.detail == "(1,) | (2,)"
    steps = compare_tensors(_steps({"w": [1.0]}, {"w": [1.0]}), _steps({"w": [1.0]}), TOLS).first
    assert steps is not None and steps.reason == "steps" and (steps.reference, steps.other) == (2, 1)
