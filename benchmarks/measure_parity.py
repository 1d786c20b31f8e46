"""Measure what the parity check's default tolerance must separate.

Run: ``python benchmarks/measure_parity.py`` (about a minute on 2 CPU cores, one thread);
``--distributed``: the seed's optimizers, one process against DDP over 2 and 4 processes;
``--fsdp``: the same against FSDP2 (``fully_shard`` per layer) over 2 and 4 processes;
``--atol X``: the atol at which the needed rtol is computed (default 1e-7).

For every torch optimizer with a ``foreach`` or ``fused`` keyword, on the seed problem
(``quadratic``, ``mlp(1, 10, 1)``, 12 epochs of batch 32 = 384 steps), it records the
for-loop run and each other implementation with every parameter and optimizer-state tensor
after every step (``checks/differential/states.py``), and compares them element by element: the must-pass
class. The must-fail class is the learning rate x1.01 (``sensitivity.twin_spec``), the
smallest regression the plugin's defaults are built to catch. Per pair it prints the
largest abs and rel difference of the loss, the parameters and the state, and the rtol an
element needs at ``atol=ATOL`` (``max (|d| - atol) / |ref|``). Quoted in docs/tolerances.md.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_optcheck.checks.differential.implementations import implementation_variants
from pytest_optcheck.checks.differential.states import record_run
from pytest_optcheck.checks.sensitivity import twin_spec
from pytest_optcheck.declare.catalog import torch_optimizers
from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.engine.stepwise import Run, tensor_kind

ATOL = float(sys.argv[sys.argv.index("--atol") + 1]) if "--atol" in sys.argv else 1e-7

CASES = {
    **{name: f"{name}(lr=0.01)" for name in torch_optimizers() if name not in ("LBFGS", "Muon", "SparseAdam")},
    "SGD-momentum": "SGD(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.01)",
    "Adam-amsgrad": "Adam(lr=0.01, amsgrad=True, weight_decay=0.01)",
    "AdamW-wd": "AdamW(lr=0.01, weight_decay=0.1)",
    "Adagrad-decay": "Adagrad(lr=0.01, lr_decay=0.01, weight_decay=0.01)",
}


def needed_rtol(ref: np.ndarray, other: np.ndarray, atol: float) -> float:
    d = np.abs(other - ref) - atol
    over = d > 0
    if not over.any():
        return 0.0
    with np.errstate(divide="ignore"):
        return float(np.max(np.where(over, d / np.abs(ref), 0.0)))


def measure(a: Run, b: Run) -> dict[str, tuple[float, float, float]]:
    """kind -> (max abs, max rel, rtol needed at ATOL) over all steps."""
    out: dict[str, list[float]] = {k: [0.0, 0.0, 0.0] for k in ("loss", "params", "state")}

    def fold(kind: str, ref: np.ndarray, other: np.ndarray) -> None:
        ref, other = np.asarray(ref, np.float64), np.asarray(other, np.float64)
        diff = np.abs(other - ref)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(diff == 0, 0.0, diff / np.abs(ref))
        row = out[kind]
        row[0] = max(row[0], float(diff.max(initial=0)))
        row[1] = max(row[1], float(rel.max(initial=0)))
        row[2] = max(row[2], needed_rtol(ref, other, ATOL))

    fold("loss", a.trajectory["loss"], b.trajectory["loss"])
    for ra, rb in zip(a.tensors, b.tensors):
        for name in ra:
            fold(tensor_kind(name), ra[name], rb[name])
    return {k: tuple(v) for k, v in out.items()}  # type: ignore[misc]


SEED = {
    "SGD": "SGD(lr=0.01)", "Momentum": "SGD(lr=0.01, momentum=0.9)", "Adagrad": "Adagrad(lr=0.01)",
    "Adadelta": "Adadelta(lr=0.01)", "RMSprop": "RMSprop(lr=0.01, alpha=0.9)",
    "Adam": "Adam(lr=0.01, betas=(0.9, 0.99))", "Adamax": "Adamax(lr=0.01, betas=(0.9, 0.99))",
    "AdamW": "AdamW(lr=0.01, betas=(0.9, 0.99))",
}


def distributed(world_size: int, strategy: str = "ddp") -> None:
    """The seed's optimizers (LBFGS aside), one process against DDP (or FSDP2) over ``world_size``."""
    from pytest_optcheck.checks.differential.processes import distributed_runs

    worst = {k: 0.0 for k in ("loss", "params", "state")}
    for label, optimizer in SEED.items():
        spec = Spec(optimizer=optimizer, batch_size=32 if world_size != 3 else 30)
        single = record_run(spec, threads=1)
        ranks = distributed_runs(spec, world_size, strategy=strategy)
        row = measure(single, ranks[0])
        across = measure(ranks[0], ranks[-1])
        cells = "  ".join(f"{k} {v[0]:.2g}/{v[1]:.2g}/{v[2]:.2g}" for k, v in row.items())
        print(f"{label:10s} {strategy.upper()} x{world_size}  {cells}   across ranks: {max(v[0] for v in across.values()):.2g}")
        for k, v in row.items():
            worst[k] = max(worst[k], v[2])
    print("worst rtol needed (must pass):", {k: f"{v:.2g}" for k, v in worst.items()})


def main() -> None:
    torch.set_num_threads(1)
    if "--distributed" in sys.argv or "--fsdp" in sys.argv:
        for world_size in (2, 4):
            distributed(world_size, "fsdp" if "--fsdp" in sys.argv else "ddp")
        return
    print(f"rtol needed at atol={ATOL:g}; columns: max abs / max rel / rtol needed")
    worst_pass = {k: 0.0 for k in ("loss", "params", "state")}
    least_fail = {k: math.inf for k in ("loss", "params", "state")}
    for label, optimizer in CASES.items():
        spec = Spec(optimizer=optimizer)
        variants, skipped = implementation_variants(spec)
        base = record_run(spec.replace(**variants.pop("for-loop")), threads=1)
        rows = {name: measure(base, record_run(spec.replace(**o), threads=1)) for name, o in variants.items()}
        rows["lr x1.01"] = measure(base, record_run(twin_spec(spec), threads=1))
        for name, row in rows.items():
            cells = "  ".join(f"{k} {v[0]:.2g}/{v[1]:.2g}/{v[2]:.2g}" for k, v in row.items())
            print(f"{label:15s} {name:9s} {cells}")
            for k, v in row.items():
                if name == "lr x1.01":
                    least_fail[k] = min(least_fail[k], v[1])
                else:
                    worst_pass[k] = max(worst_pass[k], v[2])
        for name, reason in skipped.items():
            print(f"{label:15s} {name:9s} skipped: {reason}")
    print("worst rtol needed by an implementation (must pass):", {k: f"{v:.2g}" for k, v in worst_pass.items()})
    print("smallest max rel change of lr x1.01 (must fail):", {k: f"{v:.2g}" for k, v in least_fail.items()})


if __name__ == "__main__":
    main()
