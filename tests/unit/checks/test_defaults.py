"""The built-in tolerances (compare.SERIES_DEFAULTS) do what docs/tolerances.md says.

Harmless differences pass: 1 vs 2 intra-op threads, foreach vs for-loop, another run
and the global RNG consumed first. A 1% learning-rate change fails — on the loss alone,
since a change in the update rule need not show in the recorded ``lr``. The LR series
matches the closed forms of the schedules within EXACT_SCHEDULE. Measured in full by
benchmarks/measure_tolerances.py; these are the fast cases (a few seconds on 2 cores).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pytest_optcheck.checks.sensitivity import twin_spec
from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.engine.compare import compare
from pytest_optcheck.engine.messages import series_reason
from pytest_optcheck.engine.tolerance import EXACT_SCHEDULE, SERIES_DEFAULTS, Tolerance, resolve_tolerances
from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.run.train import lr_schedule, train

RECORD = ("loss", "lr", "grad_norm", "param_norm", "update_norm")
METRICS = ("loss", "grad_norm", "param_norm", "update_norm")
DEFAULTS = resolve_tolerances(RECORD)  # no layers: the built-in defaults

OPTIMIZERS = {
    "SGD": "SGD(lr=0.01)",
    "Momentum": "SGD(lr=0.01, momentum=0.9)",
    "Adam": "Adam(lr=0.01, betas=(0.9, 0.99))",
    "LBFGS": "LBFGS(lr=0.01, max_iter=10, max_eval=10)",
}
#: Wide enough for intra-op threads to change the matmul reductions (the seed's
#: quadratic problem is too small for threading to change anything).
WIDE = {"problem": "blobs(n_samples=4096, n_features=64, n_classes=10)", "model": "mlp(64, 512, 10)",
        "batch_size": 512}


def make_spec(optimizer: str, *, epochs: int = 4, **changes: object) -> Spec:
    fields = {"optimizer": optimizer, "problem": "quadratic", "epochs": epochs, "record": RECORD}
    return Spec.from_kwargs({**fields, **changes})


def metrics_only(trajectory: Trajectory) -> Trajectory:
    """Loss and norms: without ``lr``, which would flag an LR change by itself."""
    return Trajectory({s: trajectory[s] for s in METRICS}, trajectory.epoch, trajectory.batch)


def tighter(factor: float) -> dict[str, Tolerance]:
    """The defaults with rtol and atol divided by ``factor`` (to prove headroom)."""
    return {s: DEFAULTS[s].merged({"rtol": DEFAULTS[s].rtol / factor, "atol": DEFAULTS[s].atol / factor})
            for s in RECORD}


def assert_passes(golden: Trajectory, current: Trajectory, tolerances: dict[str, Tolerance]) -> None:
    verdict = compare(golden, current, tolerances)
    failed = {s.name: f"{series_reason(s)}; max rel {s.max_rel:.3g}" for s in verdict.failed}
    assert verdict.passed, failed


def test_defaults_are_the_documented_ones() -> None:
    assert DEFAULTS["lr"] == EXACT_SCHEDULE == Tolerance(rtol=1e-12, atol=0.0)
    assert all(DEFAULTS[s] == SERIES_DEFAULTS[s] for s in RECORD)
    assert all(DEFAULTS[s].mode == "step" and DEFAULTS[s].budget == 0 for s in RECORD)


@pytest.mark.parametrize("name", ["Adam", "Momentum"])
def test_one_vs_two_threads_passes_with_tenfold_headroom(name: str) -> None:
    spec = make_spec(OPTIMIZERS[name], epochs=2, **WIDE)
    before = torch.get_num_threads()
    two = train(spec, threads=2)
    one = train(spec, threads=1)
    assert torch.get_num_threads() == before
    assert_passes(two, one, DEFAULTS)
    assert_passes(two, one, tighter(10))


@pytest.mark.parametrize("name", ["Adam", "Momentum"])
def test_foreach_vs_for_loop_passes_with_tenfold_headroom(name: str) -> None:
    call = OPTIMIZERS[name]
    loop = train(make_spec(call[:-1] + ", foreach=False)"))
    fast = train(make_spec(call[:-1] + ", foreach=True)"))
    assert_passes(loop, fast, DEFAULTS)
    assert_passes(loop, fast, tighter(10))


def test_a_run_after_another_run_and_the_global_rng_is_bit_identical() -> None:
    spec = make_spec(OPTIMIZERS["Adam"])
    first = train(spec)
    train(make_spec("SGD(lr=0.05)", problem="blobs", epochs=1))
    torch.rand(1000)
    torch.manual_seed(1234)
    again = train(spec)
    for name in RECORD:
        np.testing.assert_array_equal(first[name], again[name], err_msg=name)
    assert_passes(first, again, DEFAULTS)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_lr_times_1_01_fails_on_the_loss_alone(name: str) -> None:
    spec = make_spec(OPTIMIZERS[name], epochs=2 if name == "LBFGS" else 4)
    golden = train(spec)
    twin = train(twin_spec(spec, 1.01))
    verdict = compare(metrics_only(golden), metrics_only(twin), DEFAULTS)
    assert not verdict.passed
    loss = next(s for s in verdict.series if s.name == "loss")
    assert not loss.passed
    assert loss.max_rel > 10 * DEFAULTS["loss"].rtol  # caught with a tenfold margin


BASE = 0.1


def _cosine(T: int, eta_min: float) -> list[float]:
    return [eta_min + (BASE - eta_min) * (1 + math.cos(math.pi * t / T)) / 2 for t in range(T)]


@pytest.mark.parametrize(
    ("scheduler", "closed_form"),
    [
        ("StepLR(step_size=30, gamma=0.1)", [BASE * 0.1 ** (t // 30) for t in range(300)]),
        ("CosineAnnealingLR(T_max=2000)", _cosine(2000, 0.0)),
        ("CosineAnnealingLR(T_max=2000, eta_min=0.001)", _cosine(2000, 0.001)),
    ],
)
def test_lr_series_matches_the_closed_form_within_exact_schedule(scheduler: str, closed_form: list[float]) -> None:
    spec = Spec.from_kwargs({"optimizer": f"SGD(lr={BASE})", "scheduler": scheduler, "record": ("lr",)})
    recursive = lr_schedule(spec, len(closed_form))
    exact = Trajectory({"lr": np.array(closed_form)[:, None]}, recursive.epoch, recursive.batch)
    assert_passes(exact, recursive, DEFAULTS)
    # ... and the tolerance is tight: an LR off by 1e-10 relative fails.
    nudged = Trajectory({"lr": exact["lr"] * (1 + 1e-10)}, recursive.epoch, recursive.batch)
    assert not compare(nudged, recursive, DEFAULTS).passed
