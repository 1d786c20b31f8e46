"""The first-step test of a calibration (engine/envelope.py ``started_apart``): replicas from
one-ulp starts differ at step 0 by rounding; replicas that differ by percent started from other
weights (a loop that initialises from the global RNG), and are refused with that cause."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_optcheck.checks.golden_check import unstable_text
from pytest_optcheck.engine.envelope import FIRST_STEP_RTOL, instability, measure, started_apart
from pytest_optcheck.engine.trajectory import Trajectory


def traj(loss: list[float], eps: float | None = None) -> Trajectory:
    n = len(loss)
    out = Trajectory({"loss": loss, "lr": [[0.1]] * n}, [0] * n, list(range(n)))
    if eps is not None:
        out.meta["start_eps"] = eps
    return out


REF = traj([2.0, 1.5, 1.2, 1.0])
F32, BF16 = 2.0**-23, 2.0**-7


def moved(first: float, later: float = 0.0, eps: float | None = F32) -> Trajectory:
    """A replica whose step 0 lies ``first`` (relative) from the run's, later steps ``later``."""
    values = np.asarray(REF["loss"])
    return traj([values[0] * (1 + first), *(values[1:] * (1 + later))], eps)


def test_ulp_starts_pass_even_when_the_run_drifts_apart_later() -> None:
    replicas = [moved(1.2e-7, later=0.3), moved(-6e-8, later=-0.2), moved(0.0, later=0.1)]
    assert started_apart(REF, replicas) is None


def test_starts_a_percent_apart_are_refused_with_the_facts() -> None:
    facts = started_apart(REF, [moved(0.02), moved(-0.03), moved(0.0023)])
    assert facts is not None and facts["step"] == 0 and facts["series"] == "loss"
    assert facts["median"] == pytest.approx(0.02) and facts["max"] == pytest.approx(0.03)
    assert facts["limit"] == FIRST_STEP_RTOL


def test_one_odd_replica_is_not_enough() -> None:
    """The median is judged: a loss with a jump may move one replica, not most of them."""
    assert started_apart(REF, [moved(0.05), moved(1e-7), moved(0.0)]) is None


def test_the_limit_grows_with_the_perturbed_dtypes_epsilon() -> None:
    """bf16 parameters round by 0.8% an ulp: a percent at step 0 is no proof there."""
    assert started_apart(REF, [moved(0.02, eps=BF16)] * 3) is None
    assert started_apart(REF, [moved(0.5, eps=BF16)] * 3) is not None
    assert started_apart(REF, [moved(0.02, eps=None)] * 3) is not None  # no note: float32 assumed


def test_the_first_finite_step_is_judged_and_nan_replicas_are_no_evidence() -> None:
    ref = traj([float("nan"), 1.5, 1.2])
    assert started_apart(ref, [traj([float("nan"), 1.5 * 1.05, 1.2])] * 3)["step"] == 1
    assert started_apart(REF, [traj([float("nan"), 1.5, 1.2, 1.0])] * 3) is None
    assert started_apart(traj([0.0, 0.0]), [traj([1e-9, 0.0])]) is None  # a zero loss has no relative scale


def test_started_apart_wins_over_the_rounding_diagnosis_and_names_the_cause() -> None:
    """Far-apart starts also make the envelope as wide as the values: the message must blame
    the global RNG and say to seed inside the function, not suggest a smaller learning rate."""
    replicas = [traj([4.0, 3.0, 2.4, 2.0], F32), traj([1.0, 0.7, 0.6, 0.5], F32)]
    facts = instability(REF, replicas, measure(REF, replicas))
    assert facts["apart"] is not None
    text = unstable_text(facts, "golden/t.json")
    assert "the replicas already differ at step 0" in text
    assert "The replicas started from different weights: the function initialises from the global RNG" in text
    assert "Seed inside the function: call torch.manual_seed(0) at its top" in text
    assert "smaller learning rate" not in text and "unstable at the rounding level" not in text
    assert text.endswith("No golden was written at golden/t.json.")


def test_replicas_from_close_starts_that_blow_up_keep_the_rounding_diagnosis() -> None:
    replicas = [traj([2.0, 3.0, 5.0, 9.0], F32), traj([2.0, float("nan"), float("nan"), float("nan")], F32)]
    facts = instability(REF, replicas, measure(REF, replicas))
    assert facts["apart"] is None and facts["diverged"]
    assert "unstable at the rounding level" in unstable_text(facts, None)
