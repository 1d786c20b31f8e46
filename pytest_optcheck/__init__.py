"""pytest-optcheck: regression tests for training behaviour (loss, LR schedules) in pytest.

The public names below are imported lazily (PEP 562), so ``import pytest_optcheck`` —
which pytest does for every run once the plugin is installed — costs neither torch nor
matplotlib nor numpy.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Trajectory": "trajectory",
    "Spec": "spec",
    "Recorder": "record",
    "Tolerance": "compare",
    "register_model": "catalog",
    "register_problem": "catalog",
    "register_loss": "catalog",
    "register_optimizer": "catalog",
    "register_scheduler": "catalog",
    "Golden": "golden",
    "read_golden": "golden",
    "OptcheckError": "errors",
    "SpecError": "errors",
    "GoldenFileError": "errors",
}

# Stage functions (build, train, compare...) live in the submodules of the same names:
# ``from pytest_optcheck.train import train``.
__all__ = [
    "Golden",
    "GoldenFileError",
    "OptcheckError",
    "Recorder",
    "Spec",
    "SpecError",
    "Tolerance",
    "Trajectory",
    "__version__",
    "read_golden",
    "register_loss",
    "register_model",
    "register_optimizer",
    "register_problem",
    "register_scheduler",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'pytest_optcheck' has no attribute {name!r}")
    module = importlib.import_module(f".{_LAZY[name]}", __name__)
    value = getattr(module, "read" if name == "read_golden" else name)
    globals()[name] = value
    return value
