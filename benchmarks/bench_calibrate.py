"""Cost of recording a golden with ``calibrate=8`` against a plain recording.

Run: ``python benchmarks/bench_calibrate.py [--replicas 8] [--rounds 5] [--clock thread|wall]``.

A plain recording is one reference run (:func:`~pytest_optcheck.run.train.train`); a
calibrated one is that run plus N replicas from ulp-perturbed starts
(:func:`~pytest_optcheck.run.replicas.replicas`, stacked where it can) and the envelope.
Both are timed interleaved in one process with one intra-op thread, so contention from
other processes hits both sides alike; the script prints the median of each and the ratio,
for the seed's problem and for the chaotic tanh MLP of issue 11, and the envelope's size.

The clock is the thread's CPU time by default (``--clock thread``, as in bench_overhead.py):
with one intra-op thread all of torch's work runs on it, and time spent waiting for a core
another process holds is not counted, so the ratio holds on a busy machine. ``--clock wall``
uses ``time.perf_counter`` (the figure to quote for several ``--threads``, whose workers
the thread clock does not see).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.engine.envelope import measure
from pytest_optcheck.run.replicas import replicas
from pytest_optcheck.run.train import train

PROBLEMS = {
    "seed (mlp 1-10-1, quadratic, SGD lr 0.01, 384 steps)": Spec(),
    "chaotic (mlp 1-64-64-1 tanh, sine, SGD lr 0.1 m 0.9, 384 steps)": Spec(
        problem="sine", optimizer="SGD(lr=0.1, momentum=0.9)"),
}


CLOCKS: dict[str, Callable[[], float]] = {"thread": time.thread_time, "wall": time.perf_counter}


def plain(spec: Spec) -> None:
    train(spec)


def calibrated(spec: Spec, n: int) -> str:
    reference = train(spec)
    runs, path = replicas(spec, n)
    measure(reference, runs, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="thread",
                        help="thread CPU time (default) or wall-clock time")
    args = parser.parse_args()
    clock = CLOCKS[args.clock]
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} intra-op thread(s), {args.replicas} replicas, "
          f"median of {args.rounds} interleaved rounds, {args.clock} clock")
    for label, spec in PROBLEMS.items():
        calibrated(spec, 2)  # warm up (torch.func, the optimizer's first step)
        times: dict[str, list[float]] = {"plain": [], "calibrated": []}
        path = ""
        for _ in range(args.rounds):
            start = clock()
            plain(spec)
            middle = clock()
            path = calibrated(spec, args.replicas)
            times["plain"].append(middle - start)
            times["calibrated"].append(clock() - middle)
        t_plain, t_cal = statistics.median(times["plain"]), statistics.median(times["calibrated"])
        reference = train(spec)
        envelope = measure(reference, replicas(spec, args.replicas)[0]).envelope["loss"]
        rel = envelope / np.abs(reference["loss"])
        print(f"{label}\n  plain {t_plain:.3f} s, calibrate={args.replicas} {t_cal:.3f} s ({path}): "
              f"ratio {t_cal / t_plain:.2f}\n  loss envelope / |loss|: median {np.median(rel):.2g}, "
              f"max {rel.max():.2g}; absolute median {np.median(envelope):.2g}, max {envelope.max():.2g}")


if __name__ == "__main__":
    main()
