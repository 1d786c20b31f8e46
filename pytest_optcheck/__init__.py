"""pytest-optcheck: regression tests for training behaviour (loss, LR schedules) in pytest.

The public names below are imported lazily (PEP 562), so ``import pytest_optcheck`` —
which pytest does for every run once the plugin is installed — costs neither torch nor
matplotlib nor numpy.

The package is layered, imports going one way (``run`` and ``golden`` use ``engine``;
``checks`` uses all three; ``plugin``, ``report`` and ``cli`` sit on top):

* ``run/``     — spec (markers) -> catalog, problems, build -> record, train: a Trajectory;
* ``engine/``  — trajectory, tolerance, compare, outcome, messages: pure numpy;
* ``golden/``  — the golden store: format, layout, files, environment, orphans;
* ``checks/``  — the checks themselves: against a golden, sensitivity;
* ``plugin/``  — the pytest glue, one plugin object per feature;
* ``report/``  — results, pictures, index.html and summary.json.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Public name -> (module, attribute).
_LAZY: dict[str, tuple[str, str]] = {
    "Trajectory": ("engine.trajectory", "Trajectory"),
    "Tolerance": ("engine.tolerance", "Tolerance"),
    "ToleranceError": ("engine.tolerance", "ToleranceError"),
    "Outcome": ("engine.outcome", "Outcome"),
    "Status": ("engine.outcome", "Status"),
    "Spec": ("run.spec", "Spec"),
    "Problem": ("run.problems", "Problem"),
    "Recorder": ("run.record", "Recorder"),
    "OptcheckHandle": ("handle", "OptcheckHandle"),
    "register_model": ("run.catalog", "register_model"),
    "register_problem": ("run.catalog", "register_problem"),
    "register_loss": ("run.catalog", "register_loss"),
    "register_optimizer": ("run.catalog", "register_optimizer"),
    "register_scheduler": ("run.catalog", "register_scheduler"),
    "Golden": ("golden.format", "Golden"),
    "read_golden": ("golden.format", "read_golden"),
    "OptcheckError": ("errors", "OptcheckError"),
    "SpecError": ("errors", "SpecError"),
    "GoldenFileError": ("errors", "GoldenFileError"),
}

__all__ = [
    "Golden",
    "GoldenFileError",
    "OptcheckError",
    "OptcheckHandle",
    "Outcome",
    "Problem",
    "Recorder",
    "Spec",
    "SpecError",
    "Status",
    "Tolerance",
    "ToleranceError",
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
    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(f".{module}", __name__), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
