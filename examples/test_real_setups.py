"""What real projects train with, each in one marker: warmup + cosine through SequentialLR,
OneCycleLR sized to the run, a third-party optimizer by dotted path, and AdamW with
parameter groups that exempt biases from weight decay.

The run-size name ``total_steps`` takes the run's value (epochs x batches per epoch), so
``optcheck.train(batch_size=64)`` gets a schedule sized to that run, not a stale count.
The third-party optimizer needs ``pip install pytorch-optimizer`` (requirements-dev.txt pins it).
"""

import pytest

pytestmark = pytest.mark.optcheck(problem="quadratic", epochs=4, batch_size=32, interval="step")


@pytest.mark.optcheck(
    optimizer="SGD(lr=0.1, momentum=0.9)",
    scheduler="SequentialLR(schedulers=[LinearLR(start_factor=0.1, total_iters=10), "
              "CosineAnnealingLR(T_max=total_steps)], milestones=[10])",
)
def test_warmup_then_cosine(optcheck):
    """Ten warm-up steps, then a cosine over the run's steps: the schedule and the training."""
    optcheck.check(optcheck.lr_schedule(128), name="schedule")
    optcheck.check(name="training")


@pytest.mark.optcheck(optimizer="SGD(lr=0.1, momentum=0.9)",
                      scheduler="OneCycleLR(max_lr=0.1, total_steps=total_steps)")
def test_one_cycle_sized_to_the_run(optcheck):
    trajectory = optcheck.train()
    optcheck.check(trajectory)
    lr = trajectory["lr"][:, 0]
    assert lr[-1] == lr.min() < 1e-6  # the cycle ends on the run's last step
    assert len(optcheck.train(batch_size=64)) == len(trajectory) // 2  # follows the override


@pytest.mark.optcheck(optimizer="pytorch_optimizer.Lion(lr=0.001, weight_decay=0.01)")
def test_third_party_optimizer(optcheck):
    pytest.importorskip("pytorch_optimizer")
    optcheck.check()


@pytest.mark.optcheck(optimizer="AdamW(lr=0.01, weight_decay=0.1)",
                      param_groups={r"\.bias$": {"weight_decay": 0.0}},
                      record=["loss", "lr", "weight_decay"])
def test_no_weight_decay_on_biases(optcheck):
    trajectory = optcheck.train()
    assert trajectory["weight_decay"][0].tolist() == [0.1, 0.0]  # group 0: weights, group 1: biases
    optcheck.check(trajectory)
