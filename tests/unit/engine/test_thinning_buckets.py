"""How buckets are judged (engine/thinning.py's compare_buckets): every bucket that fails in
any statistic counts, the first failure is the earliest bucket and, within it, min before max
before mean, in the param group that failed; thinning keeps what it does not thin."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_optcheck.engine.compare import compare
from pytest_optcheck.engine.thinning import compare_buckets, thin
from pytest_optcheck.engine.tolerance import Tolerance
from pytest_optcheck.engine.trajectory import Buckets, Trajectory

STEPS = 23


def run(loss_at: dict[int, float] | None = None, lr_at: dict[int, float] | None = None) -> Trajectory:
    loss = 1.0 / (1.0 + np.arange(STEPS))
    lr = np.stack([np.full(STEPS, 0.1), np.full(STEPS, 0.01)], axis=1)
    for step, value in (loss_at or {}).items():
        loss[step] = value
    for step, value in (lr_at or {}).items():
        lr[step, 1] = value
    return Trajectory({"loss": loss, "lr": lr}, np.arange(STEPS) // 10, np.arange(STEPS) % 10,
                      meta={"run": {"source": "test"}}, epoch_series={"val": [0.5, 0.4, 0.3]})


def loss_buckets(current: Trajectory):
    (verdict,) = compare(thin(run(), 5), thin(current, 5)).failed
    return verdict.buckets


def test_the_first_failure_is_the_earliest_bucket_whatever_the_statistic() -> None:
    # bucket 1 (steps 5-9): a dip at step 7 moves its min and mean; bucket 3: a spike moves max and mean
    buckets = loss_buckets(run({7: 0.001, 17: 5.0}))
    assert (buckets.n_checked, buckets.n_failed) == (5, 2)
    assert buckets.to_dict() == {"every": 5, "n_checked": 5, "n_failed": 2, "first": {
        "bucket": 1, "first_step": 5, "last_step": 9, "stat": "min", "group": 0,
        "golden": 1 / 10, "current": 0.001}}


def test_within_a_bucket_min_comes_before_max_and_mean() -> None:
    buckets = loss_buckets(run({6: 0.001, 8: 5.0}))
    assert (buckets.first.bucket, buckets.first.stat) == (1, "min")


def test_a_bucket_whose_mean_holds_still_fails_on_its_min_and_max() -> None:
    # steps 6 and 9 (the bucket's min) moved by the same amount in opposite directions: a new
    # max and a new min, the same mean
    golden = run()["loss"]
    buckets = loss_buckets(run({6: golden[6] + 0.05, 9: golden[9] - 0.05}))
    assert buckets.n_failed == 1 and buckets.first.stat == "min"


def test_the_group_that_failed_is_named() -> None:
    (verdict,) = compare(thin(run(), 5), thin(run(lr_at={12: 0.02}), 5)).failed
    assert verdict.name == "lr" and verdict.buckets.first.group == 1 and verdict.buckets.first.stat == "max"


def test_a_series_without_buckets_on_either_side_is_not_compared() -> None:
    golden = thin(run(), 5).buckets
    empty = Buckets(5, STEPS, {})
    assert compare_buckets("loss", golden, empty, Tolerance()) is None
    assert compare_buckets("loss", empty, golden, Tolerance()) is None
    assert compare_buckets("loss", golden, golden, Tolerance()).to_dict() == \
        {"every": 5, "n_checked": 5, "n_failed": 0, "first": None}


def test_thinning_keeps_meta_steps_and_per_epoch_series() -> None:
    thinned = thin(run(), 5)
    assert thinned.meta == {"run": {"source": "test"}}
    assert thinned.steps.tolist() == [0, 5, 10, 15, 20]
    assert thinned.epoch_series["val"].tolist() == [0.5, 0.4, 0.3]


@pytest.mark.parametrize("every", [True, 2.0, "5", 0])
def test_record_every_must_be_a_whole_number_of_steps(every) -> None:
    with pytest.raises(ValueError, match=r"must be a whole number of steps >= 1"):
        thin(run(), every)


def test_buckets_compare_the_param_groups_both_runs_have() -> None:
    # a golden with two param groups against a run with one: the shared group 0 is compared
    golden = thin(Trajectory({"lr": np.stack([np.full(10, 0.1), np.full(10, 0.01)], axis=1)}), 5).buckets
    same = thin(Trajectory({"lr": np.full((10, 1), 0.1)}), 5).buckets
    moved = thin(Trajectory({"lr": np.full((10, 1), 0.2)}), 5).buckets
    assert compare_buckets("lr", golden, same, Tolerance()).to_dict() == \
        {"every": 5, "n_checked": 2, "n_failed": 0, "first": None}
    assert compare_buckets("lr", golden, moved, Tolerance()).to_dict() == {"every": 5, "n_checked": 2, "n_failed": 2,
        "first": {"bucket": 0, "first_step": 0, "last_step": 4, "stat": "min", "group": 0,
                  "golden": 0.1, "current": 0.2}}
