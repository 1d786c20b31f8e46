"""The sensitivity probe (checks/sensitivity.py): its twin is the run at 1.01x the LR.
The --optcheck-sensitivity option end to end: tests/e2e/test_sensitivity.py."""

from __future__ import annotations


def test_the_twin_trains_at_1_01_times_the_lr() -> None:
    """The probe's twin is the run at 1.01x the LR, not merely a message that says so: a
    loss tolerance between what 1.01x and 1.1x move (0.8% and 7.5% here) lists the check
    as vacuous, and the change it reports is the one an independently written 1.01x run
    shows. (The end-to-end test, tests/e2e/test_sensitivity.py, uses rtol=0.5, which both twins pass.)"""
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
