"""Thinned trajectories (``record_every=k``): every k-th step kept, every step still seen.

A long run recorded in full makes a golden of tens of bytes a step. Keeping only every k-th
step would hide a spike between the kept steps, so a thinned trajectory keeps, besides the
rows of steps ``0, k, 2k, ...``, the min, max and mean of every series over each bucket of
k steps (:class:`~.trajectory.Buckets`). The check compares the kept rows step by step as
for a full run, and each bucket's min, max and mean with the series' tolerance
(:func:`compare_buckets`): a loss spike on step 4217 moves bucket 42's max, and fails.

Buckets can be merged: a run thinned by 50 can be compared with a golden thinned by 100
(:func:`align` thins both to a common multiple), and a full run with any thinned golden.

Pure numpy, like the rest of the engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .tolerance import Tolerance
from .trajectory import STATS, Buckets, Trajectory, as_2d


def thin(trajectory: Trajectory, every: int) -> Trajectory:
    """``trajectory`` with every ``every``-th step kept and each bucket's min, max, mean.

    A trajectory already thinned by ``j`` can be thinned further by a multiple of ``j``;
    ``every=1`` (or the trajectory's own ``every``) gives it back unchanged."""
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"record_every={every!r} must be a whole number of steps >= 1")
    have = trajectory.every
    if every == have:
        return trajectory
    if every % have:
        raise ValueError(f"a trajectory recorded with record_every={have} cannot be thinned to every {every} "
                         f"steps: {every} is no multiple of {have}")
    m = every // have  # rows (or buckets) merged into one
    total = trajectory.total_steps
    stats: dict[str, dict[str, np.ndarray]] = {}
    for name in trajectory.names:
        if trajectory.buckets is None:
            stats[name] = _aggregate(trajectory[name], m)
        else:
            stats[name] = _merge(trajectory.buckets.stats[name], m, have, total)
    buckets = Buckets(every, total, stats)
    series = {n: trajectory[n][::m] for n in trajectory.names}
    # no steps=: Trajectory derives a thinned run's steps from its buckets (0, every, 2*every, ...)
    return Trajectory(series, trajectory.epoch[::m], trajectory.batch[::m], trajectory.meta,
                      buckets=buckets, epoch_series=trajectory.epoch_series)


def _aggregate(values: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Min, max and mean over consecutive blocks of ``k`` rows (the last one may be short).

    NaN propagates (a NaN anywhere in a bucket makes its stats NaN), so a step that blew up
    between kept rows is seen."""
    arr = np.asarray(values, dtype=np.float64)
    n = arr.shape[0]
    full = n // k
    shape = (full, k, *arr.shape[1:])
    head = arr[: full * k].reshape(shape)
    parts = {"min": [head.min(axis=1)], "max": [head.max(axis=1)], "mean": [head.mean(axis=1)]}
    if n > full * k:
        tail = arr[full * k:]
        parts["min"].append(tail.min(axis=0, keepdims=True))
        parts["max"].append(tail.max(axis=0, keepdims=True))
        parts["mean"].append(tail.mean(axis=0, keepdims=True))
    return {s: np.concatenate(parts[s]) for s in STATS}


def _merge(stats: Any, m: int, every: int, total: int) -> dict[str, np.ndarray]:
    """Buckets of ``every`` steps merged ``m`` at a time (the mean weighted by bucket size)."""
    count = stats["min"].shape[0]
    sizes = np.full(count, float(every))
    if count:
        sizes[-1] = total - (count - 1) * every
    weight = sizes.reshape(-1, *([1] * (stats["mean"].ndim - 1)))
    merged = {"min": _aggregate(stats["min"], m)["min"], "max": _aggregate(stats["max"], m)["max"]}
    sums = _block_sum(stats["mean"] * weight, m)
    merged["mean"] = sums / _block_sum(weight, m)
    return merged


def _block_sum(arr: np.ndarray, m: int) -> np.ndarray:
    n = arr.shape[0]
    full = n // m
    out = [arr[: full * m].reshape(full, m, *arr.shape[1:]).sum(axis=1)]
    if n > full * m:
        out.append(arr[full * m:].sum(axis=0, keepdims=True))
    return np.concatenate(out)


def align(golden: Trajectory, current: Trajectory) -> tuple[Trajectory, Trajectory]:
    """Both trajectories at one ``record_every``: the smallest common multiple of theirs (a
    full run checked against a golden thinned by 100 is thinned by 100 first)."""
    if golden.every == current.every:
        return golden, current
    every = math.lcm(golden.every, current.every)
    return thin(golden, every), thin(current, every)


@dataclass
class BucketFailure:
    """The first bucket whose min, max or mean is outside tolerance (JSON-ready values)."""

    bucket: int
    first_step: int
    last_step: int
    stat: str
    group: int
    golden: float
    current: float

    def to_dict(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "first_step": self.first_step, "last_step": self.last_step,
                "stat": self.stat, "group": self.group, "golden": self.golden, "current": self.current}


@dataclass
class BucketVerdict:
    """How one series' buckets compare: how many fail, and the first that does."""

    every: int
    n_checked: int
    n_failed: int
    first: BucketFailure | None

    def to_dict(self) -> dict[str, Any]:
        return {"every": self.every, "n_checked": self.n_checked, "n_failed": self.n_failed,
                "first": None if self.first is None else self.first.to_dict()}


def compare_buckets(name: str, golden: Buckets, current: Buckets, tol: Tolerance) -> BucketVerdict | None:
    """Each bucket's min, max and mean of series ``name`` against the golden's, with the
    series' tolerance (the element rule of :func:`~.compare.outside_tolerance`).

    Only step-by-step tolerances look at buckets: a summary mode (``final``, ``auc``,
    ``reach``) says that only its summary matters. None when there is nothing to compare."""
    from .compare import outside_tolerance  # compare imports this module

    if tol.mode != "step" or name not in golden.stats or name not in current.stats:
        return None
    n = min(golden.count, current.count)
    bad_any = np.zeros(n, dtype=bool)
    firsts: list[tuple[int, str, int]] = []
    for stat in STATS:
        g = as_2d(golden.stats[name][stat])[:n]
        c = as_2d(current.stats[name][stat])[:n]
        k = min(g.shape[1], c.shape[1])
        bad = outside_tolerance(g[:, :k], c[:, :k], tol).any(axis=1)  # no groups (k == 0): none bad
        bad_any |= bad
        if bad.any():
            b = int(np.argmax(bad))
            firsts.append((b, stat, int(np.argmax(outside_tolerance(g[b, :k], c[b, :k], tol)))))
    first = None
    if firsts:
        b, stat, group = min(firsts, key=lambda f: (f[0], STATS.index(f[1])))
        lo, hi = current.bounds(b)
        first = BucketFailure(b, lo, hi, stat, group, float(as_2d(golden.stats[name][stat])[b, group]),
                              float(as_2d(current.stats[name][stat])[b, group]))
    return BucketVerdict(golden.every, n, int(np.count_nonzero(bad_any)), first)
