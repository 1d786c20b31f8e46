"""The golden format's optional ``calibration`` block, pinned as text (pytest_optcheck.golden.format),
and the run-description helpers ``is_run_description`` / ``spec_changes``. benchmarks/mutation.py
showed the block's writer reached by no unit test of the module and ``spec_changes`` never
given two configurations of the same new kind.
"""

from __future__ import annotations

import numpy as np
import pytest

from pytest_optcheck.engine.envelope import Calibration
from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.golden.format import ABSENT, Golden, dumps, is_run_description, loads, spec_changes

TRAJ = Trajectory({"loss": [1.0, 0.5], "lr": [[0.1, 0.2], [0.1, 0.2]]}, [0, 0], [0, 1])
CAL = Calibration(3, {"loss": np.array([1.5e-7, 0.0]), "lr": np.zeros((2, 2)), "perte é": np.array([2.0, 1.0])},
                  factor=2.5, window=1, path="sequential (où)")
HEAD = """{
  "optcheck_golden": 2,
  "test": "t",
  "name": null,
  "spec": {
    "seed": 0
  },
  "environment": {},
  "meta": {},
"""
BLOCK = """  "calibration": {
    "factor": 2.5,
    "path": "sequential (où)",
    "replicas": 3,
    "window": 1,
    "envelope": {
      "loss": [1.5e-07, 0.0],
      "lr": [[0.0, 0.0], [0.0, 0.0]],
      "perte é": [2.0, 1.0]
    }
  },
"""
TAIL = """  "steps": 2,
  "epoch": [0, 0],
  "batch": [0, 1],
  "series": {
    "loss": [1.0, 0.5],
    "lr": [[0.1, 0.2], [0.1, 0.2]]
  }
}
"""
#: The same golden in schema 1 (one value per line), as goldens recorded before schema 2 hold it.
TAIL_V1 = """  "steps": 2,
  "epoch": [0, 0],
  "batch": [0, 1],
  "series": {
    "loss": [
      1.0,
      0.5
    ],
    "lr": [
      [0.1, 0.2],
      [0.1, 0.2]
    ]
  }
}
"""


def test_the_block_sits_after_meta_one_line_per_series_non_ascii_kept() -> None:
    assert dumps(Golden(TRAJ, {"seed": 0}, {}, "t", None, CAL)) == HEAD + BLOCK + TAIL
    assert dumps(Golden(TRAJ, {"seed": 0}, {}, "t", None)) == HEAD + TAIL


def test_one_series_has_no_trailing_comma() -> None:
    one = Calibration(8, {"loss": np.array([0.25, 0.5])}, path="stacked")
    text = dumps(Golden(TRAJ, {"seed": 0}, {}, "t", None, one))
    assert ('  "calibration": {\n    "factor": 4.0,\n    "path": "stacked",\n    "replicas": 8,\n    "window": 4,\n'
            '    "envelope": {\n      "loss": [0.25, 0.5]\n    }\n  },\n  "steps": 2,\n') in text


def test_the_block_reads_back_field_by_field() -> None:
    text = HEAD + BLOCK + TAIL
    back = loads(text)
    cal = back.calibration
    assert (cal.replicas, cal.factor, cal.window, cal.path) == (3, 2.5, 1, "sequential (où)")
    assert list(cal.envelope) == ["loss", "lr", "perte é"]
    np.testing.assert_array_equal(cal.envelope["loss"], [1.5e-7, 0.0])
    assert cal.envelope["lr"].shape == (2, 2)
    assert dumps(back) == text
    assert loads(HEAD + TAIL).calibration is None
    v1 = loads(HEAD.replace('"optcheck_golden": 2', '"optcheck_golden": 1') + BLOCK + TAIL_V1)
    assert v1.trajectory == back.trajectory and v1.calibration.replicas == 3  # schema 1 still reads


@pytest.mark.parametrize(("configuration", "expected"), [
    (None, False),
    ({}, False),
    ({"optimizer": "SGD(lr=0.1)", "seed": 0}, False),
    ({"source": "train.py::fit", "optimizer": "SGD"}, True),
    ({"source": None}, True),
])
def test_is_run_description(configuration: dict | None, expected: bool) -> None:
    assert is_run_description(configuration) is expected


def test_spec_changes_compare_configurations_of_one_kind_only() -> None:
    marker = {"optimizer": "SGD(lr=0.1)", "seed": 0}
    run = {"source": "train.py::fit", "optimizer": "SGD(lr=0.1)"}
    assert spec_changes(marker, run) == [] and spec_changes(run, marker) == []
    assert spec_changes(None, run) == [] and spec_changes(run, None) == []
    moved = {"source": "train.py::fit", "optimizer": "SGD(lr=0.2)", "epochs": 3}
    assert spec_changes(run, moved) == [("optimizer", "SGD(lr=0.1)", "SGD(lr=0.2)"), ("epochs", ABSENT, 3)]
    assert spec_changes(marker, {"seed": 1}) == [("optimizer", "SGD(lr=0.1)", ABSENT), ("seed", 0, 1)]
