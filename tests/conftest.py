"""Shared helpers for the plugin's end-to-end tests (pytester sessions)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two workers on two cores: one intra-op thread each, or they spin against each other
    # (measured: a 300-step run took 0.3 s alone and 1.4-2.4 s under contention).
    torch.set_num_threads(1)


def _warm_up_torch() -> None:
    """pytester's in-process runs restore ``sys.modules`` afterwards, dropping modules first
    imported inside a run; torch cannot load its extensions twice in one process (it
    crashes: "Only a single TORCH_LIBRARY..."). Its optimizers import ``torch._dynamo``
    lazily on the first step, so run each kind of step once here, before any inner run."""
    from pytest_optcheck.declare.spec import RECORDABLE, Spec
    from pytest_optcheck.golden import environment as golden
    from pytest_optcheck.run.train import lr_schedule, train

    for optimizer in ("Adam(lr=0.01)", "LBFGS(lr=0.01)"):
        train(Spec(optimizer=optimizer, epochs=1, batch_size=500, record=RECORDABLE))
    lr_schedule(Spec(scheduler="ReduceLROnPlateau(patience=1)"), 3)
    from pytest_optcheck.run.replicas import replicas

    replicas(Spec(epochs=1, batch_size=500), 1)  # torch.func's vmap, loaded once here
    golden.environment()


_warm_up_torch()

pytest_plugins = ["pytester"]


def golden_files(root: Path) -> list[str]:
    """Every golden under ``root/golden``, as sorted posix paths relative to ``root``."""
    base = root / "golden"
    if not base.exists():
        return []
    return sorted(p.relative_to(root).as_posix() for p in base.rglob("*.json"))


def read_golden(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester project with a rootdir marker (goldens go to ``<rootdir>/golden``)."""
    pytester.makeini("[pytest]\n")
    return pytester
