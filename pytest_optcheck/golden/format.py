"""The golden file format: a trajectory with the context it was recorded in, as text.

A golden is JSON, stable and readable in a code-review diff: a header (schema version,
the test, the canonical spec, the environment) and then the series. Floats are written
with Python's shortest round-trip repr, so reading a golden gives back the very same
float64 values; non-finite values are written as the strings ``"NaN"``, ``"Infinity"``,
``"-Infinity"``. Loading never executes code (plain ``json``, no pickle).

Schema 2 (written now; schema 1, one value per line, still reads) keeps long runs small
(docs/long-runs.md)::

  "steps": 100000,                   # the steps the run took
  "record_every": 100,               # only for a thinned run: then one row per 100 steps
  "epoch": {"ramps": [[0, 0, 391], [1, 0, 391], ...]},   # [first, increment, count]
  "batch": {"ramps": [[0, 1, 391], [0, 1, 391], ...]},   # (or a plain list)
  "step": {"ramps": [[0, 100, 1000]]},                   # only when thinned: each row's step
  "series": {
    "loss": [                        # a series that changes: 10 values a line,
      2.3025851249694824, 2.29..., ...  # line j holds rows 10j .. 10j+9
    ],
    "lr": {"runs": [                 # a piecewise-constant series: [value, count] runs
      [[0.1], 30000],                # (a row per param group for lr and momentum)
      [[0.01], 70000]
    ]}
  },
  "buckets": {                       # only when thinned: per bucket of record_every steps
    "loss": {"min": [...], "max": [...], "mean": [...]}
  }

Each series takes whichever of the two forms is shorter, so a review diff of a changed
learning rate shows the runs that moved, and of a changed loss the lines of the steps that
moved. A 100,000-step run of loss and a step-schedule lr takes about 21 bytes a step.

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
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.envelope import Calibration
from ..engine.trajectory import STATS, Buckets, Trajectory, decode_floats, encode_floats
from ..errors import GoldenFileError

#: Stands for a spec key one side does not have (a key added in a newer version).
ABSENT = "(absent)"

SCHEMA_KEY = "optcheck_golden"
#: The schema written; every version in READABLE_SCHEMAS reads.
SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)
#: Values (rows of a 1-D series) a line in the values form: line j holds rows 10j..10j+9.
VALUES_PER_LINE = 10
#: Runs (and ramps) a line.
RUNS_PER_LINE = 4


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
    lines.append(f'  "steps": {traj.total_steps},')
    if traj.buckets is not None:
        lines.append(f'  "record_every": {traj.every},')
    lines.append(f'  "epoch": {_int_text(traj.epoch, "  ")},')
    lines.append(f'  "batch": {_int_text(traj.batch, "  ")},')
    if traj.buckets is not None:
        lines.append(f'  "step": {_int_text(traj.steps, "  ")},')
    lines.append('  "series": {')
    lines += _object_lines({n: _series_text(traj[n], "    ") for n in traj.names}, "    ")
    lines.append("  }")
    if traj.buckets is not None:
        lines[-1] += ","
        lines.append('  "buckets": {')
        blocks = {}
        for name, stats in traj.buckets.stats.items():
            inner = _object_lines({s: _series_text(stats[s], "      ") for s in STATS}, "      ")
            blocks[name] = "{\n" + "\n".join(inner) + "\n    }"
        lines += _object_lines(blocks, "    ")
        lines.append("  }")
    if traj.epoch_series:  # per-epoch series (rec.log_epoch): only in goldens that have them
        lines[-1] += ","
        lines.append('  "epoch_series": {')
        lines += _object_lines({n: _series_text(v, "    ") for n, v in traj.epoch_series.items()}, "    ")
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _object_lines(items: Mapping[str, str], indent: str) -> list[str]:
    """``"key": text`` lines of a JSON object's body, comma-separated."""
    keys = list(items)
    return [f"{indent}{json.dumps(k, ensure_ascii=False)}: {items[k]}" + ("," if i < len(keys) - 1 else "")
            for i, k in enumerate(keys)]


def _float_texts(values: np.ndarray) -> list[str]:
    """Each value's shortest round-trip text (``repr``), non-finite ones as JSON strings."""
    flat = values.ravel().tolist()
    if np.isfinite(values).all():
        return list(map(repr, flat))
    return [json.dumps(_encode(x)) for x in flat]


def _encode(x: float) -> float | str:
    if math.isfinite(x):
        return x
    return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")


def _run_starts(values: np.ndarray) -> np.ndarray:
    """Rows where a new run of bit-identical rows starts (-0.0 and 0.0 differ, NaN == NaN)."""
    if values.size == 0:
        return np.zeros(0, dtype=np.int64)
    rows = np.ascontiguousarray(values.reshape(values.shape[0], -1)).view(np.int64)
    change = (rows[1:] != rows[:-1]).any(axis=1)
    return np.flatnonzero(np.concatenate([[True], change]))


def _series_text(values: np.ndarray, indent: str) -> str:
    """A series in the shorter of its two forms: runs of equal rows, or values 10 a line."""
    n = values.shape[0]
    grouped = values.ndim == 2
    texts = _float_texts(values)
    if grouped:
        g = values.shape[1]
        texts = ["[" + ", ".join(texts[i * g:(i + 1) * g]) + "]" for i in range(n)]
    starts = _run_starts(values)
    if n and len(starts) * 4 <= n:
        counts = np.diff(np.append(starts, n)).tolist()
        runs = [f"[{texts[i]}, {c}]" for i, c in zip(starts.tolist(), counts)]
        return '{"runs": ' + _wrapped(runs, RUNS_PER_LINE, indent) + "}"
    per_line = max(1, VALUES_PER_LINE // values.shape[1]) if grouped else VALUES_PER_LINE
    return _wrapped(texts, per_line, indent)


def _wrapped(items: list[str], per_line: int, indent: str) -> str:
    """A JSON list, ``per_line`` items a line."""
    if len(items) <= per_line:
        return "[" + ", ".join(items) + "]"
    rows = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    inner = indent + "  "
    return "[\n" + inner + (",\n" + inner).join(rows) + "\n" + indent + "]"


def _int_text(values: np.ndarray, indent: str) -> str:
    """Step positions (epoch, batch, step) as ramps ``[first, increment, count]`` when that
    is shorter, else as one list on one line."""
    ramps = _ramps(values)
    if ramps is None:
        return json.dumps(values.tolist())
    return '{"ramps": ' + _wrapped([json.dumps(r) for r in ramps], RUNS_PER_LINE, indent) + "}"


def _ramps(values: np.ndarray) -> list[list[int]] | None:
    """Greedy arithmetic runs of an int array, or None when they would not be shorter."""
    a = np.asarray(values, dtype=np.int64)
    n = a.shape[0]
    if n < 4:
        return None
    d = np.diff(a)
    ends = np.append(np.flatnonzero(d[1:] != d[:-1]), n - 2)  # last index of each run of equal increments
    if len(ends) * 2 > n:
        return None
    out: list[list[int]] = []
    i = 0
    while i < n:
        if i == n - 1:
            out.append([int(a[i]), 0, 1])
            break
        end = int(ends[np.searchsorted(ends, i)])  # d[i..end] share one increment
        out.append([int(a[i]), int(d[i]), end - i + 2])
        i = end + 2
    return out if len(out) * 4 <= n else None


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
    if version not in READABLE_SCHEMAS:
        raise GoldenFileError(
            f"optcheck: {where} has schema version {version!r}, but this pytest-optcheck reads "
            f"versions {', '.join(map(str, READABLE_SCHEMAS))}. Upgrade pytest-optcheck if the golden is newer, "
            f"or re-record it with `pytest --optcheck --snapshot-update`."
        )
    try:
        for key, kinds in (("series", dict), ("spec", (dict, type(None))), ("environment", (dict, type(None))),
                           ("meta", (dict, type(None))), ("buckets", dict), ("epoch_series", dict)):
            if key in data and not isinstance(data[key], kinds):
                raise ValueError(f"{key!r} is a {type(data[key]).__name__}, not an object")
        for key in ("series", "epoch", "batch"):
            if key not in data:
                raise ValueError(f"the {key!r} key is missing")
        _check_series(data, text)
        if version == 1:
            traj = Trajectory.from_dict(
                {"series": data["series"], "epoch": data["epoch"], "batch": data["batch"], "meta": data.get("meta")}
            )
            if "steps" in data and data["steps"] != len(traj):
                raise ValueError(f"header says {data['steps']} steps but the series have {len(traj)}")
        else:
            traj = _trajectory_v2(data)
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


def _trajectory_v2(data: Mapping[str, Any]) -> Trajectory:
    """The trajectory of a schema-2 golden (runs, ramps, buckets decoded)."""
    every = data.get("record_every", 1)
    total = data.get("steps")
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"'record_every' is {every!r}, not a whole number >= 1")
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise ValueError(f"'steps' is {total!r}, not a whole number >= 0")
    series = {name: _decode_series(value, name) for name, value in data["series"].items()}
    buckets = None
    if every > 1:
        stats = {name: {s: _decode_series(block[s], f"buckets.{name}.{s}") for s in STATS}
                 for name, block in data.get("buckets", {}).items()}
        buckets = Buckets(every, total, stats)
    per_epoch = {name: _decode_series(value, name) for name, value in data.get("epoch_series", {}).items()}
    traj = Trajectory(series, _decode_ints(data["epoch"], "epoch"), _decode_ints(data["batch"], "batch"),
                      data.get("meta"), steps=_decode_ints(data["step"], "step") if "step" in data else None,
                      buckets=buckets, epoch_series=per_epoch)
    if buckets is None and total != len(traj):
        raise ValueError(f"header says {total} steps but the series have {len(traj)}")
    return traj


def _decode_series(value: Any, name: str) -> np.ndarray:
    """A series' values: a list, or ``{"runs": [[value, count], ...]}``."""
    if isinstance(value, list):
        return decode_floats(value)
    if not isinstance(value, dict) or not isinstance(value.get("runs"), list):
        raise TypeError(f"series {name!r} is neither a list of values nor {{\"runs\": [...]}}")
    runs = value["runs"]
    if not all(isinstance(r, list) and len(r) == 2 and type(r[1]) is int and r[1] > 0 for r in runs):
        raise ValueError(f"series {name!r}: each run must be [value, count] with a count >= 1")
    rows = decode_floats([r[0] for r in runs])
    return np.repeat(rows, [r[1] for r in runs], axis=0)


def _decode_ints(value: Any, name: str) -> np.ndarray:
    """Step positions: a list of ints, or ``{"ramps": [[first, increment, count], ...]}``."""
    if isinstance(value, list):
        return np.asarray(value, dtype=np.int64)
    if not isinstance(value, dict) or not isinstance(value.get("ramps"), list):
        raise TypeError(f"{name!r} is neither a list of whole numbers nor {{\"ramps\": [...]}}")
    ramps = value["ramps"]
    if not all(isinstance(r, list) and len(r) == 3 and all(type(x) is int for x in r) and r[2] > 0 for r in ramps):
        raise ValueError(f"{name!r}: each ramp must be [first, increment, count] (whole numbers, count >= 1)")
    if not ramps:
        return np.zeros(0, dtype=np.int64)
    first, step, count = (np.array(c, dtype=np.int64) for c in zip(*ramps))
    starts = np.cumsum(count) - count
    offset = np.arange(int(count.sum()), dtype=np.int64) - np.repeat(starts, count)
    return np.repeat(first, count) + np.repeat(step, count) * offset


#: The strings a golden writes for non-finite values (see :func:`~..engine.trajectory.encode_floats`).
_NONFINITE_TEXT = ("NaN", "Infinity", "-Infinity")


def _check_series(data: Mapping[str, Any], text: str) -> None:
    """Blame damage on the series that holds it: a value that is no number names its series
    and its line; a series whose length disagrees with what the rest of the file says (the
    ``steps`` header, ``epoch``, ``batch``, the other series) is the one that lost (or gained)
    a line — not whichever series was read last."""
    from collections import Counter

    series = data["series"]
    lengths = [n for v in (data.get("epoch"), data.get("batch"), *series.values()) if (n := _length(v)) is not None]
    if isinstance(data.get("steps"), int) and data.get("record_every", 1) == 1:  # else: every k-th step stored
        lengths.append(data["steps"])
    expected = Counter(lengths).most_common(1)[0][0] if lengths else None  # what most of the file says
    for name, values in series.items():
        rows = values if isinstance(values, list) else _run_values(values)
        if rows is None:
            continue  # not a layout of values at all: the trajectory's reader says what it is
        for row in rows:
            for value in row if isinstance(row, list) else [row]:
                number = isinstance(value, (int, float)) and not isinstance(value, bool)
                if not number and value not in _NONFINITE_TEXT:
                    line = _line_of(text, name, json.dumps(value, ensure_ascii=False))
                    at = f" (line {line})" if line else ""
                    raise ValueError(f"series {name!r}: not a number: {value!r}{at}")
        length = _length(values)
        if expected is not None and length is not None and length != expected:
            raise ValueError(f"series {name!r} has {length} values but the golden has {expected} steps "
                             f"(its 'steps', 'epoch' and other series): a line of {name!r} was deleted or added")


def _length(value: Any) -> int | None:
    """How many steps a stored list, ``{"runs": [[value, count]...]}`` or ``{"ramps": [[first,
    increment, count]...]}`` covers; None when it is none of those (judged elsewhere)."""
    if isinstance(value, list):
        return len(value)
    if isinstance(value, dict):
        for key, index in (("runs", 1), ("ramps", 2)):
            items = value.get(key)
            if isinstance(items, list) and all(isinstance(r, list) and len(r) == index + 1 and type(r[index]) is int
                                               and r[index] > 0 for r in items):  # else the reader says why
                return sum(r[index] for r in items)
    return None


def _run_values(value: Any) -> list[Any] | None:
    """The values of a ``{"runs": [[value, count], ...]}`` series, or None."""
    runs = value.get("runs") if isinstance(value, dict) else None
    if not isinstance(runs, list) or not all(isinstance(r, list) and r for r in runs):
        return None
    return [r[0] for r in runs]


def _line_of(text: str, name: str, token: str) -> int | None:
    """The 1-based line of the first ``token`` after the key of series ``name``."""
    key = text.find(json.dumps(name, ensure_ascii=False) + ":", text.find('"series"'))
    where = text.find(token, key) if key >= 0 else -1
    return text.count("\n", 0, where) + 1 if where >= 0 else None


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
