"""pytest-optcheck: regression tests for training behaviour (loss, LR schedules) in pytest.

The public names below are imported lazily (PEP 562), so ``import pytest_optcheck`` —
which pytest does for every run once the plugin is installed — costs neither torch nor
matplotlib nor numpy.

The checks: against a golden file (``optcheck.check()``, ``trajectory_snapshot``), and
without one — resume from a checkpoint (``check_resume``), implementation parity
(``check_parity``: for-loop, foreach, fused or your own variants) and distributed
training against one process (``check_distributed``); ``--optcheck-sensitivity`` adds
to each declarative golden check a negative control that says when its tolerance would
miss a 1% change of the optimizer's steps.

The package is layered, imports going one way (``declare`` and ``golden`` use ``engine``,
``run`` uses ``declare``; ``checks`` uses all of them; ``report`` uses ``engine`` and
``golden``; ``plugin``, ``integrations``, ``handle`` and ``cli`` sit on top):

* ``engine/``  — trajectory, tolerance and the one bound it allows, compare, outcome,
  messages: pure numpy;
* ``declare/`` — a run as the markers declare it: spec -> catalog, problems, build;
* ``run/``     — running and recording it: the reference loop, ``record/`` (the Recorder),
  calibration replicas: a Trajectory;
* ``golden/``  — the golden store: format, layout, files, environment, orphans;
* ``checks/``  — the checks: against a golden, sensitivity, and ``differential/`` (resume,
  parity, distributed, with the support only they use);
* ``report/``  — results, pictures (``plotting`` draws every figure), index.html and summary.json;
* ``integrations/`` — the framework callbacks (Lightning, Hugging Face) and their base;
* ``plugin/``  — the pytest glue, one plugin object per feature.
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
    "Spec": ("declare.spec", "Spec"),
    "Problem": ("declare.problems", "Problem"),
    "Recorder": ("run.record", "Recorder"),
    "OptcheckHandle": ("handle", "OptcheckHandle"),
    "register_model": ("declare.catalog", "register_model"),
    "register_problem": ("declare.catalog", "register_problem"),
    "register_loss": ("declare.catalog", "register_loss"),
    "register_optimizer": ("declare.catalog", "register_optimizer"),
    "register_scheduler": ("declare.catalog", "register_scheduler"),
    "Golden": ("golden.format", "Golden"),
    "read_golden": ("golden.format", "read_golden"),
    "OptcheckError": ("errors", "OptcheckError"),
    "SpecError": ("errors", "SpecError"),
    "GoldenFileError": ("errors", "GoldenFileError"),
    "RunError": ("errors", "RunError"),
}

__all__ = [
    "Golden",
    "GoldenFileError",
    "OptcheckError",
    "OptcheckHandle",
    "Outcome",
    "Problem",
    "Recorder",
    "RunError",
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
