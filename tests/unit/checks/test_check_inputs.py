"""What a golden check is asked to do, decided in checks/golden_check.py from plain inputs
(the plugin only gathers them): the calibrate precedence and the configuration a golden stores."""

from __future__ import annotations

import re

import numpy as np
import pytest

from pytest_optcheck.checks.golden_check import golden_configuration, replicas_asked
from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.errors import OptcheckError


def test_calibrate_check_wins_over_marker_over_ini() -> None:
    assert replicas_asked(3, 5, 8, repeatable=True) == 3
    assert replicas_asked(0, 5, 8, repeatable=True) == 0  # check(calibrate=0) turns it off
    assert replicas_asked(None, 5, 8, repeatable=True) == 5
    assert replicas_asked(None, None, 8, repeatable=True) == 8
    assert replicas_asked(None, None, 8, repeatable=False) == 0  # the ini's spares a recorded trajectory


@pytest.mark.parametrize(("check", "marker", "source"), [(4, None, "check()"), (None, 4, "the marker")])
def test_calibrating_a_recorded_trajectory_says_what_to_do(check: int | None, marker: int | None,
                                                           source: str) -> None:
    with pytest.raises(OptcheckError, match=re.escape(f"calibrate=4 (from {source}) needs a run it can repeat")):
        replicas_asked(check, marker, 0, repeatable=False)


def test_golden_stores_the_runs_own_description_else_the_marker_spec() -> None:
    spec = Spec(optimizer="SGD(lr=0.1)")
    plain = Trajectory({"loss": np.ones(3)})
    assert golden_configuration(plain, spec, marked=True, declarative=False) == (spec.canonical(), plain)
    assert golden_configuration(plain, spec, marked=False, declarative=False) == (None, plain)
    described = Trajectory({"loss": np.ones(3)}, meta={"run": {"loop": "own"}, "other": 1})
    configuration, stored = golden_configuration(described, spec, marked=True, declarative=False)
    assert configuration == {"loop": "own"} and stored.meta == {"other": 1}
