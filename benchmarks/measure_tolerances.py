"""Measure the noise and the signal that the default tolerances must separate.

Run: ``python benchmarks/measure_tolerances.py`` (about a minute on 2 CPU cores).

For each optimizer and problem it trains a baseline and, against it, runs that should
match (an identical rerun, 1 vs 2 intra-op threads, foreach vs for-loop, another run
and the global RNG consumed first, fused vs for-loop) and runs that should NOT match
(learning rate x1.01 and x1.02), plus float64 vs float32 for information. Per series it
prints the largest relative per-step difference and the relative difference at the last
step ("max/last"), and whether ``compare()`` with the built-in defaults
(``compare.SERIES_DEFAULTS``) passes on those four series (the ``lr`` series is left out:
it would flag an LR change by itself). Then the worst case of every class, and the
learning-rate schedules (recursive, as torch steps them, vs their closed forms).
The numbers are quoted in docs/tolerances.md.
"""

from __future__ import annotations

import argparse
import inspect
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_optcheck.checks.sensitivity import twin_spec
from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.engine.compare import compare
from pytest_optcheck.engine.messages import describe_tolerance
from pytest_optcheck.engine.tolerance import SERIES_DEFAULTS
from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.run.train import lr_schedule, train

RECORD = ("loss", "lr", "grad_norm", "param_norm", "update_norm")
SERIES = ("loss", "grad_norm", "param_norm", "update_norm")

# The seed's nine optimizers, from the example that checks them (one source of truth).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from test_seed_optimizers import SEED_OPTIMIZERS

CASES = [("quadratic", name) for name in SEED_OPTIMIZERS] + [
    (problem, name) for problem in ("blobs", "sparse_linear") for name in ("Adam", "Momentum")
]
#: The problems above are too small for intra-op threading to change anything (every
#: tensor is under torch's parallel grain size); this wider one is where threads show.
WIDE = {"problem": "blobs(n_samples=4096, n_features=64, n_classes=10)", "model": "mlp(64, 512, 10)",
        "batch_size": 512}
WIDE_NAME = "blobs-wide"
#: Classes that must pass under the defaults, and classes that must fail.
NOISE = ("identical", "threads 1v2", "foreach", "run order", "fused")
SIGNAL = ("lr x1.01", "lr x1.02")
INFO = ("float64",)


def spec_for(problem: str, optimizer: str, **changes: object) -> Spec:
    fields = {"optimizer": optimizer, "problem": problem, "epochs": 12, "batch_size": 32, "record": RECORD}
    if problem == WIDE_NAME:
        fields.update(WIDE)
    return Spec.from_kwargs({**fields, **changes})


def with_kwarg(call: str, key: str, value: object) -> str:
    """'Adam(lr=0.01)' -> 'Adam(lr=0.01, foreach=False)'."""
    return f"{call[:-1]}, {key}={value!r})"


def accepts(call: str, key: str) -> bool:
    return key in inspect.signature(getattr(torch.optim, call.split("(")[0])).parameters


@dataclass
class Row:
    problem: str
    optimizer: str
    kind: str
    max_rel: dict[str, float]
    last_rel: dict[str, float]
    passed: bool | None  # compare() with the defaults; None when not comparable (float64)
    series_passed: dict[str, bool]
    note: str = ""


def last_rel(golden: np.ndarray, current: np.ndarray) -> float:
    g, c = float(np.ravel(golden)[-1]), float(np.ravel(current)[-1])
    if g == c:
        return 0.0
    return abs(c - g) / abs(g) if g else math.inf


def without_lr(trajectory: Trajectory) -> Trajectory:
    """Only the loss and norms: the lr series would flag an LR change by itself, trivially."""
    return Trajectory({s: trajectory[s] for s in SERIES}, trajectory.epoch, trajectory.batch)


def measure(problem: str, name: str, kind: str, golden: Trajectory, current: Trajectory, note: str = "") -> Row:
    verdict = compare(without_lr(golden), without_lr(current), {s: SERIES_DEFAULTS[s] for s in SERIES})
    by_name = {s.name: s for s in verdict.series}
    return Row(
        problem,
        name,
        kind,
        {s: by_name[s].max_rel for s in SERIES},
        {s: last_rel(golden[s], current[s]) for s in SERIES},
        verdict.passed,
        {s: by_name[s].passed for s in SERIES},
        note,
    )


def measure_case(problem: str, name: str) -> list[Row]:
    call = SEED_OPTIMIZERS[name]
    spec = spec_for(problem, call)
    base = train(spec)
    rows = [measure(problem, name, "identical", base, train(spec))]
    rows.append(measure(problem, name, "threads 1v2", train(spec, threads=2), train(spec, threads=1)))
    if accepts(call, "foreach"):
        loop = train(spec_for(problem, with_kwarg(call, "foreach", False)))
        rows.append(measure(problem, name, "foreach", loop, train(spec_for(problem, with_kwarg(call, "foreach", True)))))
    train(spec_for("blobs", "SGD(lr=0.05)", epochs=2))  # another run first ...
    torch.rand(1000)  # ... and the global RNG consumed
    rows.append(measure(problem, name, "run order", base, train(spec)))
    if accepts(call, "fused"):
        loop = loop if accepts(call, "foreach") else base
        try:
            fused = train(spec_for(problem, with_kwarg(call, "fused", True)))
        except Exception as exc:  # noqa: BLE001 - report "unsupported" whatever torch raises
            rows.append(Row(problem, name, "fused", {}, {}, None, {}, f"not supported: {exc}"[:80]))
        else:
            rows.append(measure(problem, name, "fused", loop, fused))
    for scale in (1.01, 1.02):
        rows.append(measure(problem, name, f"lr x{scale}", base, train(twin_spec(spec, scale))))
    if (problem, name) == ("quadratic", "Adam"):
        row = measure(problem, name, "float64", train(spec_for(problem, call, dtype="float64")), base)
        rows.append(Row(**{**row.__dict__, "passed": None, "note": "float32 vs float64 golden"}))
    return rows


def measure_wide(name: str) -> list[Row]:
    spec = spec_for(WIDE_NAME, SEED_OPTIMIZERS[name])
    base = train(spec, threads=2)
    return [
        measure(WIDE_NAME, name, "threads 1v2", base, train(spec, threads=1)),
        measure(WIDE_NAME, name, "lr x1.01", base, train(twin_spec(spec, 1.01))),
    ]


def fmt(x: float) -> str:
    return "0" if x == 0 else ("inf" if math.isinf(x) else f"{x:.1e}")


def print_rows(rows: list[Row]) -> None:
    head = f"{'problem':<13} {'optimizer':<9} {'class':<11} " + " ".join(f"{s + ' max/last':<19}" for s in SERIES)
    print(head + " default")
    print("-" * len(head) + "--------")
    for r in rows:
        if not r.max_rel:
            print(f"{r.problem:<13} {r.optimizer:<9} {r.kind:<11} {r.note}")
            continue
        cells = " ".join(f"{fmt(r.max_rel[s]) + '/' + fmt(r.last_rel[s]):<19}" for s in SERIES)
        verdict = {None: "-", True: "pass", False: "FAIL"}[r.passed]
        print(f"{r.problem:<13} {r.optimizer:<9} {r.kind:<11} {cells} {verdict} {r.note}".rstrip())


def print_worst(rows: list[Row]) -> None:
    print("\nWorst case per class (max/last over all cases; for the LR classes the SMALLEST change):")
    for kind in NOISE + SIGNAL + INFO:
        rs = [r for r in rows if r.kind == kind and r.max_rel]
        if not rs:
            print(f"  {kind:<11} no measurement")
            continue
        pick = min if kind in SIGNAL else max
        cells = []
        for s in SERIES:
            r = pick(rs, key=lambda r, s=s: r.max_rel[s])
            cells.append(f"{s} {fmt(r.max_rel[s])} ({r.problem[:4]}/{r.optimizer})")
        expected = kind in SIGNAL
        wrong = [f"{r.problem}/{r.optimizer}" for r in rs if r.passed is not None and r.passed == expected]
        status = "" if kind in INFO else (f"  defaults WRONG on {', '.join(wrong)}" if wrong else "  defaults OK")
        print(f"  {kind:<11} " + "; ".join(cells) + status)
    print("\nPer series: worst noise (every class that must pass) vs smallest lr x1.01 change; margin = ratio;")
    print("cases where that series ALONE passes the defaults under lr x1.01 (would miss the change):")
    noise = [r for r in rows if r.kind in NOISE and r.max_rel]
    for s in SERIES:
        worst = max(noise, key=lambda r: r.max_rel[s])
        finite = [r for r in rows if r.kind == "lr x1.01" and math.isfinite(r.max_rel[s])]
        least = min(finite, key=lambda r: r.max_rel[s])
        missed = [f"{r.problem}/{r.optimizer} ({fmt(r.max_rel[s])})" for r in rows
                  if r.kind == "lr x1.01" and r.series_passed[s]]
        print(f"  {s:<11} noise {fmt(worst.max_rel[s])} ({worst.kind}, {worst.problem}/{worst.optimizer}); "
              f"signal {fmt(least.max_rel[s])} ({least.problem}/{least.optimizer}); "
              f"margin {least.max_rel[s] / worst.max_rel[s]:.0f}x; misses: {', '.join(missed) or 'none'}")
    lr = [r for r in rows if r.kind == "lr x1.01"]
    smallest = min(lr, key=lambda r: max(r.max_rel.values()))
    loss_only = min(lr, key=lambda r: r.max_rel["loss"])
    print(
        f"  lr x1.01: smallest loss change {fmt(loss_only.max_rel['loss'])} ({loss_only.problem}/"
        f"{loss_only.optimizer}); smallest change of any series {fmt(max(smallest.max_rel.values()))} "
        f"({smallest.problem}/{smallest.optimizer})"
    )


# -- learning-rate schedules ---------------------------------------------------------


def schedule_error(scheduler: str, steps: int, closed_form, base: float = 0.1) -> tuple[float, int]:
    """Max relative error of lr_schedule() vs the closed form, and the step where it is."""
    lrs = lr_schedule(Spec(optimizer=f"SGD(lr={base})", scheduler=scheduler, record=("lr",)), steps)["lr"][:, 0]
    exact = np.array([closed_form(t) for t in range(steps)])
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(lrs == exact, 0.0, np.abs(lrs - exact) / np.abs(exact))
    return float(rel.max()), int(rel.argmax())


def print_schedules() -> None:
    base = 0.1

    def cosine(T: int, eta_min: float = 0.0):
        return lambda t: eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / T)) / 2

    cases = []
    for T in (200, 20_000):
        cases.append((f"CosineAnnealingLR(T_max={T})", T, cosine(T)))
        cases.append((f"CosineAnnealingLR(T_max={T}, eta_min=0.001)", T, cosine(T, 0.001)))
        cases.append((f"StepLR(step_size={T // 10}, gamma=0.5)", T, lambda t, s=T // 10: base * 0.5 ** (t // s)))
        cases.append((f"ExponentialLR(gamma={1 - 10 / T})", T, lambda t, g=1 - 10 / T: base * g**t))
    cases.append(("CosineAnnealingLR(T_max=100000, eta_min=0.001)", 100_000, cosine(100_000, 0.001)))
    print(f"\nLR schedules, recursive (lr_schedule) vs closed form, base lr {base}:")
    print(f"  {'scheduler':<44} {'steps':>6}  max rel error (at step)")
    for text, steps, closed in cases:
        err, at = schedule_error(text, steps, closed, base)
        print(f"  {text:<44} {steps:>6}  {fmt(err)} ({at})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    start = time.perf_counter()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; defaults: "
          + ", ".join(f"{k}: {describe_tolerance(v)}" for k, v in SERIES_DEFAULTS.items() if k in RECORD))
    rows: list[Row] = []
    for problem, name in CASES:
        rows += measure_case(problem, name)
    for name in ("Adam", "Momentum"):
        rows += measure_wide(name)
    print_rows(rows)
    print_worst(rows)
    print_schedules()
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
