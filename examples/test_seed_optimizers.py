"""The seed's experiment: one 1-10-1 ReLU net on y = x² + 0.1·N(0, 1), nine optimizers.

Each optimizer's loss trajectory is a golden (golden/examples/test_seed_optimizers/);
`optcheck plot golden/examples/test_seed_optimizers/*.json -o optimizers.png` redraws the
seed's comparison figure from them. The seed's settings, exactly: lr 0.01, 12 epochs,
batch 32, RMSprop alpha 0.9, Adam/Adamax/AdamW betas (0.9, 0.99), LBFGS max_iter=10 and
max_eval=10 (stepped through a closure).
"""

import pytest

SEED_OPTIMIZERS = {
    "SGD": "SGD(lr=0.01)",
    "Momentum": "SGD(lr=0.01, momentum=0.9)",
    "Adagrad": "Adagrad(lr=0.01)",
    "Adadelta": "Adadelta(lr=0.01)",
    "RMSprop": "RMSprop(lr=0.01, alpha=0.9)",
    "Adam": "Adam(lr=0.01, betas=(0.9, 0.99))",
    "Adamax": "Adamax(lr=0.01, betas=(0.9, 0.99))",
    "AdamW": "AdamW(lr=0.01, betas=(0.9, 0.99))",
    "LBFGS": "LBFGS(lr=0.01, max_iter=10, max_eval=10)",
}

pytestmark = pytest.mark.optcheck(problem="quadratic", epochs=12, batch_size=32,
                                  record=["loss", "lr", "grad_norm", "param_norm"])

#: LBFGS's line search amplifies rounding: on two x86-64 CPU models with the same torch, numpy
#: and python, its run differed by up to 1.2e-4 (loss, 1 of 384 steps), 1.1e-3 (grad_norm) and
#: 5e-6 (param_norm) relative, while the other optimizers moved by at most 7.5e-6. A 1% LR change
#: moves LBFGS's loss by 0.13 and its grad_norm by 2.1, so these stay 100x below that signal
#: (docs/tolerances.md, "Across CPU models").
LBFGS_TOLERANCE = {"loss": "rtol=1e-3", "grad_norm": "rtol=1e-2"}


@pytest.mark.parametrize(
    "label",
    [pytest.param(label, marks=pytest.mark.optcheck(optimizer=optimizer, **(
        {"tolerance": LBFGS_TOLERANCE} if label == "LBFGS" else {})), id=label)
     for label, optimizer in SEED_OPTIMIZERS.items()],
)
def test_optimizer_trajectory(optcheck, label):
    optcheck.check()


def final_loss(trajectory, last=32):
    """Mean loss of the last epoch: one noisy batch says little."""
    return float(trajectory["loss"][-last:].mean())


def test_adaptive_optimizers_end_far_below_plain_sgd(optcheck):
    """The seed's figure: Adam, Adamax, AdamW and RMSprop end several times below SGD.

    Where the claim does not hold, it is asserted the other way round, so a change in it
    shows up: at the seed's lr=0.01, Adagrad is only about 2x better than SGD, and
    Adadelta (whose usual lr is 1.0) is worse than SGD.
    """
    sgd = final_loss(optcheck.train(optimizer=SEED_OPTIMIZERS["SGD"]))
    for label in ("Adam", "Adamax", "AdamW", "RMSprop", "LBFGS"):
        assert final_loss(optcheck.train(optimizer=SEED_OPTIMIZERS[label])) < sgd / 4, label
    adagrad = final_loss(optcheck.train(optimizer=SEED_OPTIMIZERS["Adagrad"]))
    assert sgd / 4 < adagrad < sgd
    assert final_loss(optcheck.train(optimizer=SEED_OPTIMIZERS["Adadelta"])) > sgd
