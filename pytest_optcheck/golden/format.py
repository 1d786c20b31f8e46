"""The golden file format: a trajectory with the context it was recorded in, as text.

A golden is JSON, stable and readable in a code-review diff: a header (schema version,
the test, the canonical spec, the environment) and then one value per line for every
series, so a review shows exactly which steps moved. Floats are written with Python's
shortest round-trip repr, so reading a golden gives back the very same float64 values;
non-finite values are written as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.
Loading never executes code (plain ``json``, no pickle).

A trajectory with per-epoch series (``rec.log_epoch``) has one more block after ``series``,
``"epoch_series": {"val_loss": [one value per epoch, one a line]}``; goldens without them
read and write exactly as before.

A golden recorded with ``calibrate=N`` has one more header block, ``calibration`` (after
``meta``; goldens without it read and compare exactly as before)::

    "calibration": {
      "factor": 4.0,                 # the check allows max(tolerance, factor x envelope)
      "path": "stacked",             # how the replicas ran (or "sequential (<why>)")
      "replicas": 8,                 # N, the ulp-perturbed replicas measured
      "window": 4,                   # envelope[i] = max over steps i-4..i+4 ...
      "envelope": {                  # ... of max over replicas |replica - this run|,
        "loss": [1.2e-07, ...],      # per series and step, 3 significant digits rounded up
        "lr": [[0.0], ...]           # (steps x groups for grouped series), one line each
      }
    },
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..engine.envelope import Calibration
from ..engine.trajectory import Trajectory, encode_floats
from ..errors import GoldenFileError

#: Stands for a spec key one side does not have (a key added in a newer version).
ABSENT = "(absent)"

SCHEMA_KEY = "optcheck_golden"
SCHEMA_VERSION = 1


@dataclasses.dataclass
class Golden:
    """A trajectory with the context it was recorded in."""

    trajectory: Trajectory
    spec: dict[str, Any] | None = None
    environment: dict[str, Any] = dataclasses.field(default_factory=dict)
    test: str | None = None
    name: str | None = None
    #: The noise envelope measured when the golden was recorded with ``calibrate=N``.
    calibration: Calibration | None = None

    @property
    def label(self) -> str:
        """A short human label: the optimizer (and scheduler) of the spec, else the test."""
        if self.spec:
            parts = [str(self.spec.get("optimizer"))]
            if self.spec.get("scheduler"):
                parts.append(str(self.spec["scheduler"]))
            return " + ".join(parts)
        return self.test or "trajectory"


# -- text format -------------------------------------------------------------------


def dumps(golden: Golden) -> str:
    """Serialise with a fixed key order and LF line endings."""
    traj = golden.trajectory
    head = {
        SCHEMA_KEY: SCHEMA_VERSION,
        "test": golden.test,
        "name": golden.name,
        "spec": golden.spec,
        "environment": golden.environment,
        "meta": traj.meta,
    }
    lines = ["{"]
    for key, value in head.items():
        block = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
        lines.append(f'  "{key}": ' + block.replace("\n", "\n  ") + ",")
    if golden.calibration is not None:
        lines += _calibration_lines(golden.calibration)
    lines.append(f'  "steps": {len(traj)},')
    lines.append(f'  "epoch": {json.dumps(traj.epoch.tolist())},')
    lines.append(f'  "batch": {json.dumps(traj.batch.tolist())},')
    lines.append('  "series": {')
    lines += _series_lines(traj.series)
    if traj.epoch_series:  # per-epoch series (rec.log_epoch): only in goldens that have them
        lines[-1] += ","
        lines.append('  "epoch_series": {')
        lines += _series_lines(traj.epoch_series)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _series_lines(series: Mapping[str, Any]) -> list[str]:
    """One value (or one row of groups) a line, then the closing brace of the block."""
    lines = []
    names = list(series)
    for i, name in enumerate(names):
        rows = [json.dumps(v) for v in encode_floats(series[name])]
        body = ",\n      ".join(rows)
        key = json.dumps(name, ensure_ascii=False)
        lines.append(f"    {key}: [" + (f"\n      {body}\n    ]" if rows else "]"))
        if i < len(names) - 1:
            lines[-1] += ","
    lines.append("  }")
    return lines


def _calibration_lines(calibration: Calibration) -> list[str]:
    """The calibration block: its scalars, then one line per series' envelope."""
    data = calibration.to_dict()
    envelope = data.pop("envelope")
    lines = ['  "calibration": {']
    lines += [f"    {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in data.items()]
    lines.append('    "envelope": {')
    rows = [f"      {json.dumps(name, ensure_ascii=False)}: {json.dumps(values)}" for name, values in envelope.items()]
    lines += [row + ("," if i < len(rows) - 1 else "") for i, row in enumerate(rows)]
    lines += ["    }", "  },"]
    return lines


def loads(text: str, path: str | os.PathLike[str] | None = None) -> Golden:
    """Parse a golden; any problem is a GoldenFileError naming the file and the fix."""
    where = f"golden file {str(path)!r}" if path else "golden data"
    fix = (
        "Restore it from version control, or re-record it with "
        "`pytest --optcheck --snapshot-update` on the test that owns it."
    )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GoldenFileError(
            f"optcheck: {where} is not valid JSON ({exc.msg} at line {exc.lineno}, column "
            f"{exc.colno}); it may be truncated or hold a merge conflict. {fix}"
        ) from None
    if not isinstance(data, dict) or SCHEMA_KEY not in data:
        raise GoldenFileError(f"optcheck: {where} is not an optcheck golden (no {SCHEMA_KEY!r} key). {fix}")
    version = data[SCHEMA_KEY]
    if version != SCHEMA_VERSION:
        raise GoldenFileError(
            f"optcheck: {where} has schema version {version!r}, but this pytest-optcheck reads "
            f"version {SCHEMA_VERSION}. Upgrade pytest-optcheck if the golden is newer, or "
            f"re-record it with `pytest --optcheck --snapshot-update`."
        )
    try:
        for key, kinds in (("series", dict), ("spec", (dict, type(None))), ("environment", (dict, type(None))),
                           ("meta", (dict, type(None))), ("epoch_series", dict)):
            if key in data and not isinstance(data[key], kinds):
                raise ValueError(f"{key!r} is a {type(data[key]).__name__}, not an object")
        for key in ("series", "epoch", "batch"):
            if key not in data:
                raise ValueError(f"the {key!r} key is missing")
        traj = Trajectory.from_dict(
            {"series": data["series"], "epoch": data["epoch"], "batch": data["batch"], "meta": data.get("meta"),
             "epoch_series": data.get("epoch_series")}
        )
        if "steps" in data and data["steps"] != len(traj):
            raise ValueError(f"header says {data['steps']} steps but the series have {len(traj)}")
        calibration = Calibration.from_dict(data["calibration"]) if "calibration" in data else None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        # any malformed content: a clean message naming the file, never a traceback
        raise GoldenFileError(f"optcheck: {where} is damaged: {exc}. {fix}") from None
    return Golden(
        trajectory=traj,
        spec=data.get("spec"),
        environment=data.get("environment") or {},
        test=data.get("test"),
        name=data.get("name"),
        calibration=calibration,
    )


def read_golden(path: str | os.PathLike[str]) -> Golden:
    """Read and parse the golden at ``path``; any problem is a GoldenFileError naming it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GoldenFileError(f"optcheck: no golden file at {str(path)!r}.") from None
    except UnicodeDecodeError:
        raise GoldenFileError(f"optcheck: golden file {str(path)!r} is not UTF-8 text.") from None
    return loads(text, path)


def is_run_description(configuration: Mapping[str, Any] | None) -> bool:
    """Whether a golden's configuration describes a recorded run (``run/describe.py``: it
    names its ``source``) rather than holding a marker's spec."""
    return configuration is not None and "source" in configuration


def spec_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[tuple[str, Any, Any]]:
    """Keys whose canonical values differ, as ``(key, old, new)`` (ABSENT for a missing key).

    Configurations of two kinds are not compared: a golden recorded before recorded runs
    described themselves holds the marker's spec, whose keys that run never used."""
    if old is None or new is None or is_run_description(old) != is_run_description(new):
        return []
    keys = list(dict.fromkeys([*old, *new]))
    return [(k, old.get(k, ABSENT), new.get(k, ABSENT)) for k in keys if old.get(k, ABSENT) != new.get(k, ABSENT)]


def spec_change_lines(changes: Sequence[tuple[str, Any, Any]]) -> list[str]:
    """'  optimizer: 'SGD(lr=0.01)' -> 'SGD(lr=0.02)'' per changed key."""
    return [f"  {key}: {_show(old)} -> {_show(new)}" for key, old, new in changes]


def _show(value: Any) -> str:
    return ABSENT if value == ABSENT else repr(value)
