"""The seed's regularisation and momentum experiments.

- weight decay 1e-2 against none (the seed's `optim_normal` vs `optim_wdecay`: SGD,
  momentum 0.9);
- L1 against L2 on `sparse_linear` (128 features, 8 relevant, 64 samples: the case the
  seed says L1 is made for);
- momentum 0.9 against none.

Each variant is a golden; the seed's claims are asserted where they hold.
"""

import pytest

pytestmark = pytest.mark.optcheck(record=["loss", "lr", "param_norm"])

NORMAL = "SGD(lr=0.01, momentum=0.9)"
WDECAY = "SGD(lr=0.01, momentum=0.9, weight_decay=1e-2)"


@pytest.mark.parametrize(
    "label",
    [pytest.param("normal", marks=pytest.mark.optcheck(optimizer=NORMAL)),
     pytest.param("weight_decay", marks=pytest.mark.optcheck(optimizer=WDECAY))],
)
def test_weight_decay_trajectory(optcheck, label):
    optcheck.check()


def test_weight_decay_lowers_the_parameter_norm(optcheck):
    normal = optcheck.train(optimizer=NORMAL)
    decayed = optcheck.train(optimizer=WDECAY)
    assert decayed["param_norm"][-1] < 0.9 * normal["param_norm"][-1]


# Full-batch SGD with momentum on sparse_linear for 1000 steps. The L1 penalty is added
# to the loss (the seed's L1 regularisation); L2 is weight_decay (the seed: "weight decay
# is L2 regularisation"), at the same strength, 2 * l1 as d/dw (l1 |w|) vs (wd / 2) w².
SPARSE = {"problem": "sparse_linear", "epochs": 1000, "batch_size": 64, "record": ["loss", "lr", "param_norm", "sparsity"]}
L1 = {"optimizer": "SGD(lr=0.005, momentum=0.9)", "l1": 0.05}
#: Subgradient steps keep the pruned weights flipping sign within lr*l1 of zero, so the L1 run
#: turns chaotic late: across two CPU models it moved by up to 6.8e-4 (loss) and 2.2e-4
#: (param_norm) relative, while a 1% LR change moves them by 1.1e-2 and 7.5e-3; the fraction
#: of zeroed weights jumps by whole weights (0.07) step to step, so it is compared as the mean
#: of the last 100 steps (noise 0.005; a broken L1 would drop it from 0.88 to near 0).
#: docs/tolerances.md, "Across CPU models".
L1_TOLERANCE = {"loss": "rtol=1e-3", "param_norm": "rtol=1e-3", "sparsity": "mode=final, last=100, atol=0.02"}
L2 = {"optimizer": "SGD(lr=0.005, momentum=0.9, weight_decay=0.1)"}


@pytest.mark.optcheck(**SPARSE)
@pytest.mark.parametrize(
    "label",
    [pytest.param("l1", marks=pytest.mark.optcheck(**L1, tolerance=L1_TOLERANCE)),
     pytest.param("l2", marks=pytest.mark.optcheck(**L2))],
)
def test_l1_l2_trajectory(optcheck, label):
    optcheck.check()


@pytest.mark.optcheck(**SPARSE)
def test_l1_zeroes_weights_where_l2_only_shrinks_them(optcheck):
    """The seed: L1 drives most weights to zero (a sparse model), L2 only makes them small.

    With plain (sub)gradient steps the L1-pruned weights hover within lr·l1 of zero
    rather than sitting on it, so `sparsity` counts |w| <= 1e-3 as zero.
    """
    l1 = optcheck.train(**L1)
    l2 = optcheck.train(**L2)
    assert l1["sparsity"][-1] > 0.85  # about 120 of 129 parameters are irrelevant
    assert l2["sparsity"][-1] < 0.05


@pytest.mark.parametrize(
    "label",
    [pytest.param("plain", marks=pytest.mark.optcheck(optimizer="SGD(lr=0.01)")),
     pytest.param("momentum", marks=pytest.mark.optcheck(optimizer="SGD(lr=0.01, momentum=0.9)"))],
)
def test_momentum_trajectory(optcheck, label):
    optcheck.check()


def test_momentum_converges_faster(optcheck):
    plain = optcheck.train(optimizer="SGD(lr=0.01)")["loss"]
    momentum = optcheck.train(optimizer="SGD(lr=0.01, momentum=0.9)")["loss"]
    assert momentum[-32:].mean() < plain[-32:].mean() / 3
