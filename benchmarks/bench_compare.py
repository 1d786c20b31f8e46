"""Time compare() + render_verdict() on long trajectories with a planted regression.

Run: ``python benchmarks/bench_compare.py [--repeat N]``. Prints the median milliseconds
per trajectory length (four series: loss, lr with 2 groups, grad_norm, param_norm) and
the ratio to the 1e3-step case. Target: 100 000 steps well under 100 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_optcheck.engine.compare import compare
from pytest_optcheck.engine.messages import render_verdict
from pytest_optcheck.engine.trajectory import Trajectory

LENGTHS = (1_000, 10_000, 100_000, 1_000_000)


def make_pair(steps: int, seed: int = 0) -> tuple[Trajectory, Trajectory]:
    """A golden and a current run that drifts from 60% of the way on (loss and grad_norm)."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps, dtype=np.float64)
    loss = 2.0 * np.exp(-t / (steps / 5)) + 0.05 + 0.01 * rng.random(steps)
    lr = np.stack([0.1 * 0.5 * (1 + np.cos(np.pi * t / steps)), np.full(steps, 0.01)], axis=1)
    grad_norm = 1.0 + rng.random(steps)
    param_norm = 10.0 + np.cumsum(rng.random(steps)) * 1e-4
    epoch, batch = np.arange(steps) // 100, np.arange(steps) % 100
    golden = Trajectory({"loss": loss, "lr": lr, "grad_norm": grad_norm, "param_norm": param_norm},
                        epoch=epoch, batch=batch)
    drift = np.where(t >= 0.6 * steps, 1.0 + 1e-3, 1.0)
    current = Trajectory({"loss": loss * drift, "lr": lr, "grad_norm": grad_norm * drift,
                          "param_norm": param_norm}, epoch=epoch, batch=batch)
    return golden, current


def time_once(golden: Trajectory, current: Trajectory) -> float:
    start = time.perf_counter()
    verdict = compare(golden, current)
    text = render_verdict(verdict, golden, current, golden_path="golden/x.json",
                          update_command="pytest --optcheck --snapshot-update")
    elapsed = time.perf_counter() - start
    assert not verdict.passed and "loss" in text  # the planted regression is found
    return elapsed * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    print(f"{'steps':>10}  {'median ms':>10}  {'x 1e3 case':>10}")
    base = None
    for steps in LENGTHS:
        golden, current = make_pair(steps)
        time_once(golden, current)  # warm-up
        repeat = args.repeat if steps < 1_000_000 else max(3, args.repeat // 3)
        median = statistics.median(time_once(golden, current) for _ in range(repeat))
        base = base or median
        print(f"{steps:>10}  {median:>10.2f}  {median / base:>10.1f}")


if __name__ == "__main__":
    main()
