"""engine/envelope.py's refusals and parsing, pinned whole: the facts started_apart and
instability hand the message (which replicas, which step, what median against what limit),
the envelope's arithmetic at its edges, and what a golden's calibration block may hold."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from pytest_optcheck.engine.envelope import (
    FIRST_STEP_EPS,
    FIRST_STEP_RTOL,
    FLOAT32_EPS,
    WINDOW,
    Calibration,
    instability,
    measure,
    round_up,
    running_max,
    started_apart,
)
from pytest_optcheck.engine.trajectory import Trajectory


def run(loss: list[float], start_eps: float | None = None, **series: list[float]) -> Trajectory:
    meta = {"start_eps": start_eps} if start_eps is not None else {}
    return Trajectory({"loss": loss, **series}, meta=meta)


REF = run([0.0, 2.0, 1.0])  # the first finite non-zero loss is step 1


def test_started_apart_judges_the_median_first_step_against_its_limit() -> None:
    replicas = [run([0.0, 2.002, 1.0]), run([0.0, 2.004, 1.0]), run([0.0, 2.0, 1.0])]
    facts = started_apart(REF, replicas)
    assert facts == {"series": "loss", "step": 1, "median": pytest.approx(0.001), "max": pytest.approx(0.002),
                     "limit": max(FIRST_STEP_RTOL, FIRST_STEP_EPS * FLOAT32_EPS), "eps": FLOAT32_EPS}
    # bf16-like starts: 16 epsilons of 2**-8 allow 6%
    assert started_apart(REF, [run([0.0, 2.1, 1.0], start_eps=2.0**-8)]) is None
    wide = started_apart(REF, [run([0.0, 2.1, 1.0], start_eps=2.0**-8), run([0.0, 2.3, 1.0], start_eps=2.0**-8)])
    assert wide["limit"] == FIRST_STEP_EPS * 2.0**-8 and wide["eps"] == 2.0**-8 and wide["median"] == pytest.approx(0.1)


def test_started_apart_at_exactly_the_limit_is_not_apart() -> None:
    eps = 2.0**-10  # the limit is 16 epsilons = 2**-6, exactly representable
    assert started_apart(run([1.0]), [run([1.0 + 2.0**-6], start_eps=eps)]) is None
    assert started_apart(run([1.0]), [run([1.0 + 2.0**-5], start_eps=eps)]) is not None


def test_started_apart_needs_a_loss_a_replica_and_a_comparable_first_value() -> None:
    apart = [run([0.0, 3.0, 1.0])]
    assert started_apart(REF, apart)["step"] == 1
    assert started_apart(REF, []) is None
    assert started_apart(Trajectory({"acc": [1.0]}), [Trajectory({"acc": [2.0]})]) is None
    assert started_apart(REF, apart, series="acc") is None
    assert started_apart(run([0.0, math.nan]), [run([0.0, 3.0])]) is None  # no finite non-zero first value
    assert started_apart(REF, [run([0.0])]) is None  # the replica stopped before that step
    assert started_apart(REF, [run([0.0, math.inf, 1.0])]) is None  # a replica that blew up is no start
    assert started_apart(REF, [Trajectory({"acc": [0.0, 3.0, 1.0]})]) is None
    mixed = started_apart(REF, [Trajectory({"acc": [1.0]}), run([0.0, 3.0, 1.0])])
    assert mixed is not None and mixed["max"] == 0.5
    assert started_apart(run([4.0, 2.0]), [run([6.0, 2.0])])["step"] == 0


def test_instability_names_replicas_that_started_apart_first() -> None:
    replicas = [run([0.0, 3.0, math.nan])]
    calibration = measure(REF, replicas)
    assert instability(REF, replicas, calibration) == {
        "replicas": 1, "apart": started_apart(REF, replicas), "diverged": [], "wide": {}}


def test_instability_names_each_diverged_replica_once_and_wide_series() -> None:
    ref = run([2.0, 1.0, 1.0, 1.0], lr=[0.1, 0.1, 0.1, 0.1])
    replicas = [run([2.0, 1.0, math.inf, math.nan], lr=[0.1, 0.1, math.nan, 0.1]),
                Trajectory({"lr": [0.1, 0.1, 0.1, math.inf]}),
                run([2.0, 1.0, 1.0, 1.0], lr=[0.1, 0.1, 0.1, 0.1])]
    facts = instability(ref, replicas, measure(ref, replicas))
    assert facts == {"replicas": 3, "apart": None, "diverged": [(0, "loss", 2), (1, "lr", 3)], "wide": {}}
    stable = instability(ref, replicas[2:], measure(ref, replicas[2:]))
    assert stable is None


def test_a_series_whose_median_envelope_reaches_its_value_is_wide() -> None:
    ref = run([2.0, 2.0, 2.0], acc=[1.0, 1.0, 1.0], zero=[0.0, 0.0, 0.0], flat=[0.0, 0.0, 0.0])
    calibration = Calibration(2, {"loss": np.zeros(3), "acc": np.array([1.0, 1.0, 0.5]), "zero": np.ones(3),
                                  "flat": np.zeros(3)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a zero value divides by nothing (1 / 0, 0 / 0): no warning
        facts = instability(ref, [ref, ref], calibration)
    assert facts == {"replicas": 2, "apart": None, "diverged": [], "wide": {"acc": 1.0}}
    no_groups = Trajectory({"loss": [2.0, 2.0], "lr": np.zeros((2, 0))})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no median of nothing
        assert instability(no_groups, [], Calibration(2, {"lr": np.zeros((2, 0))})) is None


def test_measure_with_no_replica_holding_a_series_is_a_zero_envelope() -> None:
    ref = run([1.0, 2.0], acc=[0.5, 0.5])
    calibration = measure(ref, [run([1.5, 2.0])], path="stacked")
    assert calibration.envelope["acc"].tolist() == [0.0, 0.0] and calibration.path == "stacked"
    assert calibration.envelope["loss"].tolist() == [0.5, 0.5] and calibration.replicas == 1
    assert measure(ref, []).path == ""


def test_deviations_that_cannot_be_compared_count_nothing() -> None:
    ref = run([1.0, math.inf, math.nan, -1.7e308])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # inf - inf, an overflowing difference: no warning
        calibration = measure(ref, [run([1.0, math.inf, 2.0, 1.7e308])], window=0)
    assert calibration.envelope["loss"].tolist() == [0.0, 0.0, 0.0, 0.0]
    # ... and do not hide a neighbour's deviation inside the window
    windowed = measure(run([1.0, math.inf, 1.0]), [run([1.5, math.inf, 1.0])], window=1)
    assert windowed.envelope["loss"].tolist() == [0.5, 0.5, 0.0]


def test_running_max_and_round_up_at_their_edges() -> None:
    one = np.array([[3.0]])
    assert running_max(one, 2).tolist() == [[3.0]]
    values = np.array([[1.0, 0.0], [5.0, 0.0], [2.0, 7.0]])
    assert running_max(values, 1).tolist() == [[5.0, 0.0], [5.0, 7.0], [5.0, 7.0]]
    assert running_max(values, 0) is values and running_max(np.zeros((0, 1)), 2).shape == (0, 1)
    rounded = round_up(np.array([1234.5, 0.0, 0.0012341, 3]))
    assert rounded.tolist() == [1240.0, 0.0, 0.00124, 3.0] and rounded.dtype == np.float64
    assert round_up(np.array([1, 0])).dtype == np.float64


def test_a_calibration_block_is_read_with_its_defaults_and_refused_whole() -> None:
    block = {"replicas": 8, "factor": 4, "envelope": {"loss": [0.1, 0.2]}}
    calibration = Calibration.from_dict(block)
    assert (calibration.window, calibration.path, calibration.factor) == (WINDOW, "", 4.0)
    assert calibration.envelope["loss"].dtype == np.float64
    assert Calibration.from_dict({**block, "envelope": {"loss": [1, 2]}}).envelope["loss"].dtype == np.float64
    for bad, message in [({**block, "replicas": True}, "'calibration.replicas' is True"),
                         ({**block, "factor": True}, "'calibration.factor' is True"),
                         ({**block, "factor": 0}, "'calibration.factor' is 0, not a number > 0"),
                         ({**block, "factor": 0.5}, None)]:
        if message is None:
            assert Calibration.from_dict(bad).factor == 0.5
            continue
        with pytest.raises(ValueError, match=message):
            Calibration.from_dict(bad)
    with pytest.raises(TypeError, match=r"^'calibration.envelope' is missing or not an object$"):
        Calibration.from_dict({"replicas": 8, "factor": 4})
