"""--optcheck-sensitivity: a check that would not notice a 1% LR change is listed."""

from __future__ import annotations

import pytest

TESTS = """
import pytest

pytestmark = pytest.mark.optcheck(optimizer="SGD(lr=0.05, momentum=0.9)", epochs=2)

def test_default_tolerance(optcheck):
    optcheck.check()

def test_loose_tolerance(optcheck):
    optcheck.check(loss={"rtol": 0.5})

def test_own_trajectory_is_not_probed(optcheck):
    optcheck.check(optcheck.train(), loss={"rtol": 0.5})
"""


def test_sensitivity_lists_only_the_vacuous_declarative_check(project: pytest.Pytester) -> None:
    project.makepyfile(test_sens=TESTS)
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=3)
    result = project.runpytest("--optcheck", "--optcheck-sensitivity")
    result.assert_outcomes(passed=3)
    out = result.stdout.str()
    assert "checks that would NOT notice a 1% larger step" in out
    assert "test_sens.py::test_loose_tolerance[cpu]: every step x1.01 stays within tolerance" in out
    assert "test_default_tolerance" not in out.split("would NOT notice")[1]
    assert "test_own_trajectory_is_not_probed" not in out.split("would NOT notice")[1]


def test_without_the_flag_nothing_is_probed(project: pytest.Pytester) -> None:
    project.makepyfile(test_sens=TESTS)
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=3)
    result = project.runpytest("--optcheck")
    assert "would NOT notice" not in result.stdout.str()


def test_the_twin_trains_at_1_01_times_the_lr() -> None:
    """The probe's twin is the run at 1.01x the LR, not merely a message that says so: a
    loss tolerance between what 1.01x and 1.1x move (0.8% and 7.5% here) lists the check
    as vacuous, and the change it reports is the one an independently written 1.01x run
    shows. (The end-to-end test above uses rtol=0.5, which both twins pass.)"""
    from pytest_optcheck.checks.sensitivity import probe
    from pytest_optcheck.declare.spec import Spec
    from pytest_optcheck.engine.compare import compare
    from pytest_optcheck.engine.outcome import Outcome, Status
    from pytest_optcheck.engine.tolerance import resolve_tolerances
    from pytest_optcheck.engine.trajectory import Trajectory
    from pytest_optcheck.run.train import train

    def loss_of(run: Trajectory) -> Trajectory:
        return Trajectory({"loss": run["loss"]}, run.epoch, run.batch)

    spec = Spec.from_kwargs({"optimizer": "SGD(lr=0.05, momentum=0.9)", "epochs": 1, "batch_size": 250})
    current = train(spec)
    tolerances = resolve_tolerances(current.names, {"loss": {"rtol": 0.02, "atol": 0}})
    outcome = Outcome(Status.PASSED, "", tolerances=tolerances)
    by_hand = train(spec.replace(optimizer="SGD(lr=0.0505, momentum=0.9)"))  # 0.05 * 1.01, exactly
    loss_only = {"loss": tolerances["loss"]}
    worst = compare(loss_of(current), loss_of(by_hand), loss_only).worst()
    assert worst is not None and worst.name == "loss" and 0.005 < worst.max_rel < 0.02

    vacuous = probe(spec, "cpu", current, outcome)
    assert vacuous is not None
    assert vacuous.startswith(f"every step x1.01 stays within tolerance (largest relative change {worst.max_rel:.3g} in 'loss'")
