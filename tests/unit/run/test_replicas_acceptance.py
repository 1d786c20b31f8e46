"""calibrate=N's acceptance case (issue 11): a chaotic MLP whose noise floor is far above rtol
1e-4. Apart from tests/unit/run/test_replicas.py because it trains with two intra-op threads,
which deadlock in mutmut's forked workers (benchmarks/mutation.py leaves this file out)."""

from __future__ import annotations

import torch

from pytest_optcheck.declare.problems import MLP
from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.engine.compare import compare
from pytest_optcheck.engine.envelope import measure
from pytest_optcheck.run.replicas import STACKED, replicas
from pytest_optcheck.run.train import train


def _tanh_as_sigmoid() -> MLP:
    model = MLP(1, 64, 64, 1, activation="tanh")
    model._act = lambda x: 2 * torch.sigmoid(2 * x) - 1  # algebraically tanh, other rounding
    return model


def test_chaotic_mlp_calibrated_golden_passes_noise_and_fails_lr_changes() -> None:
    """Issue 11's "Done when": 1-64-64-1 tanh MLP, sin(6x) + noise, SGD momentum 0.9, 384 steps."""
    spec = Spec(problem="sine", optimizer="SGD(lr=0.1, momentum=0.9)", epochs=12, batch_size=32)
    reference = train(spec, threads=1)
    calibration = measure(reference, replicas(spec, 8, threads=1)[0], STACKED)
    noise = {
        "rerun": train(spec, threads=1),
        "two threads": train(spec, threads=2),
        "tanh as 2*sigmoid(2x)-1": train(spec.replace(model=_tanh_as_sigmoid), threads=1),
    }
    rewrite = noise["tanh as 2*sigmoid(2x)-1"]
    assert not compare(reference, rewrite).passed  # the plain default is fooled by rounding
    for what, run in noise.items():
        assert compare(reference, run, calibration=calibration).passed, what
    for lr in (0.1005, 0.102):  # a 0.5% and a 2% learning-rate change
        changed = train(spec.replace(optimizer=f"SGD(lr={lr}, momentum=0.9)"), threads=1)
        verdict = compare(reference, changed, calibration=calibration)
        assert not verdict.passed and verdict.series[0].n_failed > 100, lr
