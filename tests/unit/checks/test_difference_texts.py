"""The differential checks' sentences (checks/differential/differences.py), pinned whole on
hand-made verdicts: which run differs, from which step, in which series or tensor, by how much."""

from __future__ import annotations

from pytest_optcheck.checks.differential.differences import (
    first_difference_step,
    from_step_text,
    run_difference_lines,
    series_difference_text,
    tensor_difference_text,
)
from pytest_optcheck.engine.compare import compare
from pytest_optcheck.engine.stepwise import RunComparison, TensorDifference, TensorVerdict
from pytest_optcheck.engine.tolerance import Tolerance
from pytest_optcheck.engine.trajectory import Trajectory

LABELS = ("reference", "resumed")
REF = Trajectory({"loss": [1.0, 0.5, 0.25], "lr": [[0.1, 0.2]] * 3}, epoch=[0, 0, 1], batch=[0, 1, 0])
OTHER = Trajectory({"loss": [1.0, 0.6, 0.25], "lr": [[0.1, 0.2], [0.1, 0.2], [0.1, 0.3]]},
                   epoch=[0, 0, 1], batch=[0, 1, 0])
TOLS = {"loss": Tolerance(rtol=1e-3, atol=0.0), "lr": Tolerance(rtol=0.0, atol=0.0)}
LOSS = ("loss at step 1 (epoch 0, batch 1): reference 0.5, resumed 0.6 (abs err 0.1, rel err 0.2; "
        "tolerance rtol=0.001, atol=0, step by step; 1 of 3 steps (33.3%) outside tolerance)")
LR = ("lr at step 2 (epoch 1, batch 0), group 1: reference 0.2, resumed 0.3 (abs err 0.1, rel err 0.5; "
      "tolerance rtol=0, atol=0, step by step; 1 of 3 steps (33.3%) outside tolerance)")


def test_a_series_names_its_first_step_both_values_and_the_group_of_a_2d_series() -> None:
    verdict = compare(REF, OTHER, TOLS)
    assert [series_difference_text(sv, REF, OTHER, LABELS) for sv in verdict.failed] == [LOSS, LR]


def test_a_series_of_another_length_says_so() -> None:
    short = Trajectory({"loss": [1.0, 0.5], "lr": [[0.1, 0.2]] * 2}, epoch=[0, 0], batch=[0, 1])
    [sv] = [s for s in compare(REF, short, TOLS).failed if s.name == "loss"]
    text = series_difference_text(sv, REF, short, LABELS)
    assert text.startswith("loss: ") and "3" in text and "2" in text
    assert " at step " not in text


def test_each_kind_of_tensor_difference_is_worded() -> None:
    def text(diff: TensorDifference, where: Trajectory = REF) -> str:
        return tensor_difference_text(diff, where, LABELS)

    assert text(TensorDifference(1, "w", "missing")) == (
        "w: in the reference run after step 1 (epoch 0, batch 1), absent in the resumed run")
    assert text(TensorDifference(2, "w", "extra")) == (
        "w: in the resumed run after step 2 (epoch 1, batch 0), absent in the reference run")
    assert text(TensorDifference(1, "w", "shape", detail="(2,) | (3,)")) == (
        "w after step 1 (epoch 0, batch 1): shape (2,) in the reference run, (3,) in the resumed run")
    assert text(TensorDifference(5, "tensors", "steps", reference=3, other=2)) == (
        "tensors: 3 steps in the reference run, 2 in the resumed run")
    assert text(TensorDifference(0, "w", index=(1, 2), reference=1.0, other=1.123456,
                                 tolerance=Tolerance(rtol=1e-4, atol=1e-6))) == (
        "w[1, 2] after step 0 (epoch 0, batch 0): reference 1, resumed 1.123456 "
        "(abs err 0.123, rel err 0.123; tolerance rtol=0.0001, atol=1e-06, step by step)")
    assert text(TensorDifference(0, "exp_avg of w", reference=0.0, other=2.0)) == (
        "exp_avg of w after step 0 (epoch 0, batch 0): reference 0, resumed 2 (abs err 2, rel err inf)")
    # A step past the trajectory (a run that stopped early) is named by its number alone.
    assert text(TensorDifference(3, "w", "missing")) == "w: in the reference run after step 3, absent in the resumed run"
    assert text(TensorDifference(2, "w", "missing")).startswith("w: in the reference run after step 2 (epoch 1,")


def test_the_lines_list_series_then_series_one_run_lacks_then_the_first_tensor() -> None:
    extra = Trajectory({"loss": [1.0, 0.6, 0.25], "gnorm": [1.0, 1.0, 1.0]}, epoch=[0, 0, 1], batch=[0, 1, 0])
    series = compare(REF, extra, TOLS)
    first = TensorDifference(0, "w", index=(1,), reference=1.0, other=1.5)
    lines = run_difference_lines(RunComparison(series, TensorVerdict(first)), REF, extra, LABELS)
    assert lines == [
        "  " + LOSS,
        "  lr: recorded by the reference run only",
        "  gnorm: recorded by the resumed run only",
        ("  first tensor outside tolerance: w[1] after step 0 (epoch 0, batch 0): reference 1, resumed 1.5 "
        "(abs err 0.5, rel err 0.5)"),
    ]
    assert run_difference_lines(RunComparison(compare(REF, REF, TOLS), TensorVerdict(None)), REF, REF, LABELS) == []


def test_the_first_difference_is_the_earliest_of_series_and_tensors() -> None:
    series = compare(REF, OTHER, TOLS)  # loss from step 1, lr from step 2
    assert first_difference_step(RunComparison(series, TensorVerdict(None))) == 1
    assert first_difference_step(RunComparison(series, TensorVerdict(TensorDifference(0, "w")))) == 0
    assert first_difference_step(RunComparison(series, TensorVerdict(TensorDifference(2, "w")))) == 1
    same = compare(REF, REF, TOLS)
    assert first_difference_step(RunComparison(same, TensorVerdict(TensorDifference(2, "w")))) == 2
    assert first_difference_step(RunComparison(same, TensorVerdict(None))) is None
    assert from_step_text(RunComparison(series, TensorVerdict(None)), REF) == " from step 1 (epoch 0, batch 1) on"
    assert from_step_text(RunComparison(same, TensorVerdict(None)), REF) == ""


def test_a_series_with_other_param_groups_says_so_without_a_step() -> None:
    two = Trajectory({"lr": [[0.1, 0.2]] * 2})
    one = Trajectory({"lr": [[0.1]] * 2})
    [sv] = compare(two, one, {"lr": Tolerance()}).failed
    assert series_difference_text(sv, two, one, LABELS) == (
        "lr: current has 1 param groups, the golden 2: the optimizer's param groups changed")
