"""Unit tests for the reference loop and the schedule-only run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.run.train import lr_schedule, train


def sched(text: str, **kw) -> Spec:
    return Spec.from_kwargs({"optimizer": "SGD(lr=0.1)", "scheduler": text, **kw})


def test_step_and_multistep_match_closed_forms() -> None:
    lr = lr_schedule(sched("StepLR(step_size=4, gamma=0.5)"), 20)["lr"][:, 0]
    np.testing.assert_array_equal(lr, [0.1 * 0.5 ** (e // 4) for e in range(20)])
    lr = lr_schedule(sched("MultiStepLR(milestones=[8, 24, 28], gamma=0.5)"), 40)["lr"][:, 0]
    expected = [0.1 * 0.5 ** sum(e >= m for m in (8, 24, 28)) for e in range(40)]
    np.testing.assert_allclose(lr, expected, rtol=1e-15, atol=0)


def test_exponential_and_cosine_match_closed_forms() -> None:
    lr = lr_schedule(sched("ExponentialLR(gamma=0.5)"), 30)["lr"][:, 0]
    np.testing.assert_allclose(lr, [0.1 * 0.5**e for e in range(30)], rtol=1e-14, atol=0)
    lr = lr_schedule(sched("CosineAnnealingLR(T_max=32, eta_min=1e-4)"), 33)["lr"][:, 0]
    closed = [1e-4 + (0.1 - 1e-4) * (1 + math.cos(math.pi * e / 32)) / 2 for e in range(33)]
    np.testing.assert_allclose(lr, closed, rtol=1e-12, atol=0)


def test_train_lr_matches_schedule_per_epoch_and_per_step() -> None:
    spec = sched("StepLR(step_size=1, gamma=0.5)", epochs=3, batch_size=500)  # 2 steps an epoch
    lr = train(spec)["lr"][:, 0]
    np.testing.assert_array_equal(lr, [0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    lr = train(spec.replace(interval="step"))["lr"][:, 0]
    np.testing.assert_array_equal(lr, [0.1 * 0.5**i for i in range(6)])


def test_plateau_steps_on_the_epoch_mean_loss() -> None:
    spec = sched("ReduceLROnPlateau(mode='min', factor=0.1, patience=0)", epochs=4, batch_size=500)
    traj = lr_schedule(spec, 4, metrics=[1.0, 1.0, 1.0, 0.5])
    np.testing.assert_allclose(traj["lr"][:, 0], [0.1, 0.1, 0.01, 0.001], rtol=1e-12)
    trained = train(spec.replace(optimizer="SGD(lr=0.0)"))  # a flat loss: a plateau every epoch
    assert trained["lr"][-1, 0] == 0.0


def test_plateau_gets_each_epochs_mean_training_loss() -> None:
    """The LR in effect in epoch e+1 is what ReduceLROnPlateau makes of the *mean* loss of
    epoch e: replaying those means through ``lr_schedule`` gives the trained LRs exactly.
    SGD lr=0.1 keeps improving on the mean, so the LR stays 0.1; fed the last batch's loss
    instead, the same run would see plateaus and halve it (asserted, so this test cannot
    pass vacuously)."""
    spec = sched("ReduceLROnPlateau(mode='min', factor=0.5, patience=0)", epochs=10, batch_size=250)
    trained = train(spec)
    loss, epoch = trained["loss"], trained.epoch
    means = [math.fsum(loss[epoch == e]) / np.count_nonzero(epoch == e) for e in range(10)]
    last_batch = [loss[epoch == e][-1] for e in range(10)]
    per_epoch_lr = [trained["lr"][epoch == e, 0] for e in range(10)]
    assert all(len(set(lrs)) == 1 for lrs in per_epoch_lr)  # stepped per epoch only
    replayed = lr_schedule(spec, 10, metrics=means)["lr"][:, 0]
    np.testing.assert_array_equal([lrs[0] for lrs in per_epoch_lr], replayed)
    assert trained["lr"][-1, 0] == 0.1
    assert lr_schedule(spec, 10, metrics=last_batch)["lr"][-1, 0] < 0.1


def test_seed_seeds_the_batch_order() -> None:
    """Same data, same initial weights, another ``seed``: another batch order, so other
    losses from the very first step. (Every pinned trajectory uses seed 0, so a shuffle
    that ignored the seed would pass everything else.)"""
    from pytest_optcheck.declare.build import build

    seed0 = Spec.from_kwargs({"optimizer": "SGD(lr=0.1)", "epochs": 2, "batch_size": 250})
    seed1 = seed0.replace(seed=1)
    first = train(seed0, built=build(seed0))
    assert train(seed0, built=build(seed0)) == first  # same built, same seed: the same run
    other_order = train(seed1, built=build(seed0))  # seed 0's data and weights, seed 1's order
    assert len(other_order) == len(first) == 8
    assert np.all(other_order["loss"] != first["loss"]), (first["loss"], other_order["loss"])


def test_lbfgs_records_the_first_closure_loss() -> None:
    spec = Spec.from_kwargs({"optimizer": "LBFGS(lr=0.01, max_iter=10, max_eval=10)", "epochs": 1, "batch_size": 250})
    loss = train(spec)["loss"]
    assert len(loss) == 4 and np.all(np.isfinite(loss))
    spec_sgd = spec.replace(optimizer="SGD(lr=0.0)")
    assert loss[0] == train(spec_sgd)["loss"][0]  # same init, same first batch: same pre-step loss


def test_runs_are_bit_identical_and_leave_the_global_rng_alone() -> None:
    spec = Spec.from_kwargs({"optimizer": "Adam(lr=0.01)", "epochs": 2})
    state = torch.get_rng_state()
    first = train(spec)
    assert torch.equal(state, torch.get_rng_state())
    torch.rand(1000)  # another test consuming the global RNG
    train(spec.replace(optimizer="SGD(lr=0.3)"))  # and another run first
    assert train(spec) == first


def test_l1_and_clipping_change_the_run() -> None:
    base = Spec.from_kwargs({"epochs": 1, "record": ["loss", "grad_norm"]})
    plain = train(base)
    assert train(base.replace(l1=0.01))["loss"][0] > plain["loss"][0]
    clipped = train(base.replace(clip_grad_norm=0.05))
    assert clipped["grad_norm"].max() <= 0.05 + 1e-6 < plain["grad_norm"].max()


def test_lr_schedule_needs_a_step() -> None:
    with pytest.raises(ValueError, match="steps must be >= 1"):
        lr_schedule(Spec(), 0)


def test_threads_are_set_for_the_run_and_restored() -> None:
    from pytest_optcheck.run.train import intra_op_threads

    before = torch.get_num_threads()
    spec = Spec.from_kwargs({"epochs": 1})
    with intra_op_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    assert train(spec, threads=1) == train(spec)  # small nets: bit-identical across thread counts
    assert torch.get_num_threads() == before
