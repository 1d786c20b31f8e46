"""The seed's six LR schedulers, with the seed's settings, as schedule goldens.

Schedules are exact arithmetic, so their goldens are compared with rtol=1e-12: a
changed milestone, gamma or an off-by-one step fails. ReduceLROnPlateau depends on the
loss, so it is checked on a real training run (its LR and loss together).
"""

import functools

import pytest
from torch.optim.lr_scheduler import LambdaLR

pytestmark = pytest.mark.optcheck(optimizer="SGD(lr=0.1)")


@pytest.mark.parametrize(
    "label",
    [
        pytest.param("StepLR", marks=pytest.mark.optcheck(scheduler="StepLR(step_size=4, gamma=0.5)")),
        pytest.param("MultiStepLR", marks=pytest.mark.optcheck(scheduler="MultiStepLR(milestones=[8, 24, 28], gamma=0.5)")),
        pytest.param("ExponentialLR", marks=pytest.mark.optcheck(scheduler="ExponentialLR(gamma=0.5)")),
        pytest.param("CosineAnnealingLR", marks=pytest.mark.optcheck(scheduler="CosineAnnealingLR(T_max=32, eta_min=1e-4)")),
    ],
)
def test_schedule(optcheck, label):
    optcheck.check(optcheck.lr_schedule(40))


def step_every_30(epoch):
    return epoch // 30


def decay_95(epoch):
    return 0.95**epoch


@pytest.mark.parametrize(
    "label",
    [
        pytest.param("epoch_div_30", marks=pytest.mark.optcheck(scheduler=functools.partial(LambdaLR, lr_lambda=step_every_30))),
        pytest.param("095_pow_epoch", marks=pytest.mark.optcheck(scheduler=functools.partial(LambdaLR, lr_lambda=decay_95))),
    ],
)
def test_lambda_schedule(optcheck, label):
    """The seed's LambdaLR experiment: 100 epochs of each lambda."""
    optcheck.check(optcheck.lr_schedule(100))


@pytest.mark.optcheck(optimizer="Adam(lr=0.01, betas=(0.9, 0.99))", epochs=30,
                      scheduler="ReduceLROnPlateau(mode='min', factor=0.1, patience=5)")
def test_reduce_on_plateau_training(optcheck):
    """The seed's ReduceLROnPlateau(mode='min', factor=0.1, patience=5), stepped once an
    epoch with the epoch's mean training loss."""
    trajectory = optcheck.train()
    optcheck.check(trajectory)
    lrs = trajectory["lr"][:, 0]
    assert lrs[0] == 0.01
    assert lrs.min() < 0.01, "the plateau should have cut the LR within 30 epochs"
