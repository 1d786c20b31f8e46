"""The golden file's exact text and its error sentences (pytest_optcheck.golden.format),
pinned where benchmarks/mutation.py showed the looser round-trip tests let changes
through: indentation of nested headers, non-ASCII kept as is, empty series, the name of
a second golden, and which file an error names.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.errors import GoldenFileError
from pytest_optcheck.golden.format import ABSENT, Golden, dumps, loads, read_golden, spec_changes

FIX = "Restore it from version control, or re-record it with `pytest --optcheck --snapshot-update` on the test that owns it."

EXPECTED = """{
  "optcheck_golden": 2,
  "test": "t.py::test_a[cpu]",
  "name": "short",
  "spec": {
    "model": {
      "name": "mlp",
      "sizes": [
        1,
        2
      ]
    },
    "optimizer": "Adam(lr=0.01)"
  },
  "environment": {
    "device": "cpu",
    "device_name": "Ünï"
  },
  "meta": {
    "kind": "train"
  },
  "steps": 2,
  "epoch": [0, 0],
  "batch": [0, 1],
  "series": {
    "lösś": [0.5, "NaN"],
    "lr": [[0.1], [0.1]]
  }
}
"""

#: The same golden as written by schema 1 (one value per line): it must still read.
EXPECTED_V1 = """{
  "optcheck_golden": 1,
  "test": "t.py::test_a[cpu]",
  "name": "short",
  "spec": {
    "model": {
      "name": "mlp",
      "sizes": [
        1,
        2
      ]
    },
    "optimizer": "Adam(lr=0.01)"
  },
  "environment": {
    "device": "cpu",
    "device_name": "Ünï"
  },
  "meta": {
    "kind": "train"
  },
  "steps": 2,
  "epoch": [0, 0],
  "batch": [0, 1],
  "series": {
    "lösś": [
      0.5,
      "NaN"
    ],
    "lr": [
      [0.1],
      [0.1]
    ]
  }
}
"""


def golden() -> Golden:
    trajectory = Trajectory({"lösś": [0.5, float("nan")], "lr": [[0.1], [0.1]]}, [0, 0], [0, 1], meta={"kind": "train"})
    spec = {"optimizer": "Adam(lr=0.01)", "model": {"name": "mlp", "sizes": [1, 2]}}
    return Golden(trajectory, spec, {"device_name": "Ünï", "device": "cpu"}, "t.py::test_a[cpu]", "short")


def test_the_exact_text_of_a_golden() -> None:
    assert dumps(golden()) == EXPECTED
    back = loads(EXPECTED)
    assert (back.name, back.test, back.spec, back.environment) == ("short", "t.py::test_a[cpu]", golden().spec,
                                                                   golden().environment)
    assert back.trajectory == golden().trajectory
    assert loads(EXPECTED_V1).trajectory == golden().trajectory  # schema 1 still reads
    empty = Golden(Trajectory({"loss": []}, [], []))
    assert dumps(empty).endswith('"steps": 0,\n  "epoch": [],\n  "batch": [],\n  "series": {\n    "loss": []\n  }\n}\n')


def test_errors_name_the_file_or_say_golden_data(tmp_path: Path) -> None:
    with pytest.raises(GoldenFileError) as info:
        loads("{")
    assert str(info.value) == (
        "optcheck: golden data is not valid JSON (Expecting property name enclosed in double quotes at line 1, "
        f"column 2); it may be truncated or hold a merge conflict. {FIX}"
    )
    text = EXPECTED.replace('"meta": {\n    "kind": "train"\n  }', '"meta": []')
    with pytest.raises(GoldenFileError) as info:
        loads(text, "g.json")
    assert str(info.value) == f"optcheck: golden file 'g.json' is damaged: 'meta' is a list, not an object. {FIX}"

    path = tmp_path / "g.json"
    with pytest.raises(GoldenFileError) as info:
        read_golden(path)
    assert str(info.value) == f"optcheck: no golden file at {str(path)!r}."
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(GoldenFileError) as info:
        read_golden(path)
    assert str(info.value) == f"optcheck: golden file {str(path)!r} is not an optcheck golden (no 'optcheck_golden' key). {FIX}"
    path.write_text(EXPECTED, encoding="utf-8")
    assert read_golden(path).trajectory == golden().trajectory


def test_spec_changes_mark_a_key_missing_on_either_side() -> None:
    assert spec_changes({"a": None}, {}) == [("a", None, ABSENT)]
    assert spec_changes({}, {"a": None}) == [("a", ABSENT, None)]
    assert spec_changes({"a": 1, "b": 2}, {"b": 3, "a": 1}) == [("b", 2, 3)]
    assert spec_changes(None, {"a": 1}) == [] == spec_changes({"a": 1}, None)
