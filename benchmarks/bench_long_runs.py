"""Long runs (issue 21): golden size and the time from reading a golden to the verdict.

Run: ``python benchmarks/bench_long_runs.py [--steps 100000 1000000] [--rounds 3]``.

For each length, a synthetic run of ``loss`` (a float32 loss, decaying with noise, as a
model computes it) and ``lr`` (a step schedule: x0.1 every 30% of the run), epochs of 391
steps. Three goldens of it:

* ``schema 1``: one value per line, as goldens were written before schema 2 (the baseline);
* ``full``: schema 2 at full resolution;
* ``every 100``: schema 2 with ``record_every=100``.

For each it prints the size in bytes a step and the median time of the check as the plugin
runs it (:func:`~pytest_optcheck.checks.golden_check.judge`: parse the golden's text,
compare the configuration, resolve tolerances, compare every series) plus reading the file,
for an unchanged run (the verdict every passing test pays), and the ratio to schema 1 in the
same process. Targets (issue 21): <= 24 B a step full, <= 1 B a step every 100; 100,000
steps <= 0.5 s, 1,000,000 steps <= 3 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_optcheck.checks.golden_check import judge
from pytest_optcheck.engine.thinning import thin
from pytest_optcheck.engine.trajectory import Trajectory, encode_floats
from pytest_optcheck.golden.format import Golden, dumps

PER_EPOCH = 391
SPEC = {"optimizer": "SGD(lr=0.1)", "scheduler": "StepLR(step_size=30000, gamma=0.1)", "seed": 0}


def run(steps: int) -> Trajectory:
    rng = np.random.default_rng(0)
    step = np.arange(steps)
    loss = (2.3 * np.exp(-step / (steps / 5)) + 0.05 * rng.random(steps)).astype(np.float32).astype(np.float64)
    lr = (0.1 * 0.1 ** (step // max(1, int(steps * 0.3)))).reshape(-1, 1)
    return Trajectory({"loss": loss, "lr": lr}, step // PER_EPOCH, step % PER_EPOCH)


def schema_1(golden: Golden) -> str:
    """The text the schema-1 writer produced: one value per indented line."""
    traj = golden.trajectory
    lines = ["{", '  "optcheck_golden": 1,', f'  "test": {json.dumps(golden.test)},', '  "name": null,',
             '  "spec": ' + json.dumps(golden.spec, indent=2, sort_keys=True).replace("\n", "\n  ") + ",",
             '  "environment": {},', '  "meta": {},', f'  "steps": {len(traj)},',
             f'  "epoch": {json.dumps(traj.epoch.tolist())},', f'  "batch": {json.dumps(traj.batch.tolist())},',
             '  "series": {']
    for i, name in enumerate(traj.names):
        body = ",\n      ".join(json.dumps(v) for v in encode_floats(traj[name]))
        lines.append(f'    "{name}": [\n      {body}\n    ]' + ("," if i < len(traj.names) - 1 else ""))
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def check_time(path: Path, current: Golden, rounds: int) -> float:
    """Median seconds from reading the golden's file to the verdict."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        outcome = judge(current, path.read_text(encoding="utf-8"), path=path)
        times.append(time.perf_counter() - start)
        assert outcome.ok, outcome.message
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    targets = {100_000: 0.5, 1_000_000: 3.0}
    print(f"{'steps':>9}  {'golden':<10} {'B/step':>7} {'check s':>8} {'vs schema 1':>11}  target")
    with tempfile.TemporaryDirectory() as tmp:
        for steps in args.steps:
            full = run(steps)
            forms = {
                "schema 1": (schema_1(Golden(full, SPEC, test="t")), Golden(full, SPEC, test="t")),
                "full": (dumps(Golden(full, SPEC, test="t")), Golden(full, SPEC, test="t")),
                "every 100": (dumps(Golden(thin(full, 100), SPEC, test="t")),
                              Golden(thin(full, 100), SPEC, test="t")),
            }
            baseline = None
            for label, (text, current) in forms.items():
                path = Path(tmp) / f"{steps}-{label.replace(' ', '_')}.json"
                path.write_text(text, encoding="utf-8")
                seconds = check_time(path, current, args.rounds)
                baseline = baseline or seconds
                size = len(text.encode()) / steps
                target = {"full": "<= 24 B/step", "every 100": "<= 1 B/step"}.get(label, "")
                if label != "schema 1" and steps in targets:
                    target += f", <= {targets[steps]:g} s"
                print(f"{steps:>9,}  {label:<10} {size:>7.2f} {seconds:>8.3f} {seconds / baseline:>10.2f}x  {target}")


if __name__ == "__main__":
    main()
