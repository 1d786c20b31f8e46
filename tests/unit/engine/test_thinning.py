"""Thinned trajectories (``record_every``): buckets, merging, alignment, real step names."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_optcheck.engine.compare import compare
from pytest_optcheck.engine.messages import render_verdict
from pytest_optcheck.engine.thinning import align, thin
from pytest_optcheck.engine.trajectory import Buckets, Trajectory


def traj(n: int = 23, spike: int | None = None, nan: int | None = None) -> Trajectory:
    loss = 1.0 / (1.0 + np.arange(n))
    if spike is not None:
        loss[spike] = 5.0
    if nan is not None:
        loss[nan] = np.nan
    lr = np.stack([np.full(n, 0.1), np.linspace(0.0, 0.01, n)], axis=1)
    return Trajectory({"loss": loss, "lr": lr}, np.arange(n) // 10, np.arange(n) % 10)


def test_buckets_hold_min_max_mean_and_the_last_one_is_partial() -> None:
    full = traj()
    t = thin(full, 5)
    assert t.steps.tolist() == [0, 5, 10, 15, 20] and t.epoch.tolist() == [0, 0, 1, 1, 2]
    assert t["loss"].tolist() == full["loss"][::5].tolist()
    stats = t.buckets.stats["loss"]
    assert stats["min"][-1] == full["loss"][22] and stats["max"][-1] == full["loss"][20]
    assert stats["mean"][-1] == pytest.approx(full["loss"][20:].mean())
    assert t.buckets.stats["lr"]["max"].shape == (5, 2)
    assert (t.every, t.total_steps, len(t), t.buckets.bounds(4)) == (5, 23, 5, (20, 22))
    assert thin(full, 1) is full and thin(t, 5) is t


def test_thinning_a_thinned_run_further_merges_its_buckets() -> None:
    direct, twice = thin(traj(), 10), thin(thin(traj(), 5), 10)
    assert twice.steps.tolist() == direct.steps.tolist() == [0, 10, 20]
    for stat in ("min", "max", "mean"):
        np.testing.assert_allclose(twice.buckets.stats["loss"][stat], direct.buckets.stats["loss"][stat], rtol=1e-15)
    with pytest.raises(ValueError, match="cannot be thinned to every 7 steps"):
        thin(thin(traj(), 5), 7)
    with pytest.raises(ValueError, match="record_every=0"):
        thin(traj(), 0)


def test_align_thins_both_to_a_common_multiple() -> None:
    g, c = align(thin(traj(), 2), thin(traj(), 3))
    assert g.every == c.every == 6 and g.steps.tolist() == c.steps.tolist() == [0, 6, 12, 18]
    assert g.buckets.stats["loss"]["max"].tolist() == c.buckets.stats["loss"]["max"].tolist()
    assert compare(thin(traj(), 2), thin(traj(), 3)).passed  # means agree to rounding


def test_a_spike_or_a_nan_between_kept_steps_fails_and_messages_name_real_steps() -> None:
    golden = thin(traj(), 5)
    assert compare(golden, thin(traj(), 5)).passed
    current = thin(traj(spike=13), 5)
    verdict = compare(golden, current)
    loss = verdict.failed[0]
    assert (loss.name, loss.n_failed, loss.buckets.n_failed, loss.buckets.first.stat) == ("loss", 0, 1, "max")
    text = render_verdict(verdict, golden, current)
    assert "loss: 1 of 5 buckets of 5 steps (20.0%) outside tolerance" in text
    assert "first bucket outside tolerance: steps 10-14, max: golden" in text
    assert "loss over steps 10-14 (bucket 2 of 5 steps):" in text
    nan = compare(golden, thin(traj(nan=13), 5)).failed[0]
    assert nan.buckets.first.first_step == 10

    moved = Trajectory({"loss": traj()["loss"] * np.where(np.arange(23) >= 15, 1.01, 1.0), "lr": traj()["lr"]},
                       traj().epoch, traj().batch)
    current = thin(moved, 5)
    verdict = compare(golden, current)
    loss = verdict.failed[0]
    assert (loss.first_failure, loss.first_failure_epoch, loss.first_failure_batch) == (15, 1, 5)  # a real step
    assert loss.max_abs_at[0] in (15, 20) and loss.steps_current == 23
    text = render_verdict(verdict, golden, current)
    assert "first step outside tolerance: 15 (epoch 1, batch 5)" in text
    assert "2 of 5 kept steps (one in 5, 40.0%) outside tolerance" in text
    rows = [line.split() for line in text.splitlines() if line.strip()[:2] in ("10", "15", "20")]
    assert [r[0] for r in rows][:3] == ["10", "15", "20"]  # the table's step column: real steps


def test_different_lengths_fail_as_length_mismatch() -> None:
    verdict = compare(thin(traj(23), 5), thin(traj(24), 5))
    assert not verdict.passed and verdict.failed[0].length_mismatch
    assert (verdict.failed[0].steps_golden, verdict.failed[0].steps_current) == (23, 24)


def test_summary_modes_ignore_buckets() -> None:
    from pytest_optcheck.engine.tolerance import Tolerance

    final = {"loss": Tolerance(rtol=1e-4, mode="final", last=1)}
    assert compare(thin(traj(), 5), thin(traj(spike=13), 5), final).passed


def test_conversions_keep_steps_and_buckets() -> None:
    t = thin(traj(spike=13), 5)
    assert Trajectory.from_dict(t.to_dict()) == t
    assert Trajectory.from_json(t.to_json()) == t
    assert Trajectory.from_numpy(t.to_numpy()) == t
    assert t.derive(series={"loss": t["loss"]}).buckets.stats.keys() == {"loss"}
    assert t.row_of(15) == 3 and t.row_of(13) is None and traj().row_of(13) == 13
    assert "record_every=5 of 23" in repr(t)
    with pytest.raises(ValueError, match="one row per bucket"):
        Trajectory({"loss": [1.0, 2.0]}, buckets=Buckets(5, 23, {}))
