"""The Trajectory: named per-step series of one training run (or one LR schedule).

A Trajectory is plain numpy data with no reference to torch, so the comparison engine,
the golden files, the report and the command line can all work on it without importing
torch. Every series has one row per optimizer step (per scheduler interval for
``lr_schedule``); ``lr`` and ``momentum`` have one column per param group.

A *thinned* trajectory (``record_every=k``, :mod:`.thinning`) keeps every k-th step as
a row: ``steps`` holds each row's real step index, and :class:`Buckets` holds, per series,
the min, max and mean of every bucket of k steps, so a spike between kept rows is still
seen. A full trajectory has ``steps == arange(len)`` and no buckets.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

#: Series whose values are one per param group: stored as (steps, groups).
GROUPED_SERIES = frozenset({"lr", "momentum"})
#: The aggregates a thinned trajectory keeps for every bucket of ``every`` steps.
STATS = ("min", "max", "mean")


@dataclasses.dataclass(frozen=True, eq=False)
class Buckets:
    """Per-bucket aggregates of a thinned run (``record_every=every``).

    Bucket ``b`` covers steps ``b*every .. min((b+1)*every, total) - 1``; the kept row of
    that bucket is its first step. ``stats[name][stat]`` (stat in :data:`STATS`) has one
    row per bucket, shaped like the series (``(buckets,)`` or ``(buckets, groups)``).
    Plain numpy: no torch here."""

    every: int
    total: int
    stats: Mapping[str, Mapping[str, np.ndarray]]

    def __post_init__(self) -> None:
        if self.every < 1 or self.total < 0:
            raise ValueError(f"buckets need every >= 1 and total >= 0; got every={self.every}, total={self.total}")
        count = -(-self.total // self.every)
        fixed: dict[str, dict[str, np.ndarray]] = {}
        for name, stats in self.stats.items():
            missing = [s for s in STATS if s not in stats]
            if missing:
                raise ValueError(f"buckets of series {name!r} lack {', '.join(missing)}")
            fixed[name] = {}
            for stat in STATS:
                arr = np.array(stats[stat], dtype=np.float64)  # a copy: the caller's array stays writable
                if arr.ndim not in (1, 2) or arr.shape[0] != count:
                    raise ValueError(f"buckets of series {name!r}: {stat} has shape {arr.shape}, but "
                                     f"{self.total} steps in buckets of {self.every} make {count} buckets")
                arr.setflags(write=False)
                fixed[name][stat] = arr
        object.__setattr__(self, "stats", fixed)

    @property
    def count(self) -> int:
        """The number of buckets (the last one may be partial)."""
        return -(-self.total // self.every)

    def bounds(self, bucket: int) -> tuple[int, int]:
        """The first and last step of ``bucket``."""
        return bucket * self.every, min((bucket + 1) * self.every, self.total) - 1

    def only(self, names: Iterator[str] | list[str]) -> Buckets:
        return Buckets(self.every, self.total, {n: self.stats[n] for n in names if n in self.stats})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Buckets):
            return NotImplemented
        return (self.every, self.total, list(self.stats)) == (other.every, other.total, list(other.stats)) and all(
            np.array_equal(self.stats[n][s], other.stats[n][s], equal_nan=True) for n in self.stats for s in STATS)

    __hash__ = None  # type: ignore[assignment]


class Trajectory:
    """Named series, one value per step, with the epoch and batch of every step.

    ``trajectory["loss"]`` is a float64 array of shape ``(steps,)``;
    ``trajectory["lr"]`` has shape ``(steps, param_groups)``. ``epoch[i]`` and
    ``batch[i]`` say where step ``i`` happened, so a failure can name them.

    ``epoch_series`` holds the values that exist once an epoch (``rec.log_epoch``): each a
    float64 array of shape ``(epochs,)``, entry ``e`` the value of epoch ``e`` (NaN where
    none was logged). They are not steps: ``names`` and ``trajectory[name]`` cover the
    per-step series only.
    """

    __slots__ = ("_series", "batch", "buckets", "epoch", "epoch_series", "meta", "steps")

    def __init__(
        self,
        series: Mapping[str, Any],
        epoch: Any = None,
        batch: Any = None,
        meta: Mapping[str, Any] | None = None,
        *,
        steps: Any = None,
        buckets: Buckets | None = None,
        epoch_series: Mapping[str, Any] | None = None,
    ) -> None:
        converted: dict[str, np.ndarray] = {}
        rows: int | None = None
        for name, values in series.items():
            arr = np.array(values, dtype=np.float64)  # a copy: the caller's array stays writable, ours stays put
            if arr.ndim == 0 or arr.ndim > 2:
                raise ValueError(
                    f"series {name!r} must be 1-D (steps,) or 2-D (steps, groups); "
                    f"got shape {arr.shape}"
                )
            if rows is None:
                rows = arr.shape[0]
            elif arr.shape[0] != rows:
                raise ValueError(
                    f"series {name!r} has {arr.shape[0]} steps but the others have "
                    f"{rows}: every series needs one row per step"
                )
            arr.setflags(write=False)
            converted[name] = arr
        rows = rows or 0
        self._series = converted
        self.epoch = _index_array(epoch, rows, "epoch")
        self.batch = _index_array(batch, rows, "batch", fill=np.arange(rows))
        self.meta: dict[str, Any] = dict(meta or {})
        if buckets is not None and buckets.count != rows:
            raise ValueError(f"a thinned trajectory needs one row per bucket: {rows} rows, but {buckets.total} "
                             f"steps in buckets of {buckets.every} make {buckets.count}")
        if steps is None and buckets is not None:
            steps = np.arange(0, buckets.total, buckets.every)
        #: The real step index of every row: ``arange(len)`` unless thinned (``record_every``).
        self.steps = _index_array(steps, rows, "steps", fill=np.arange(rows))
        #: Per-bucket min/max/mean of a thinned run; None for a full one.
        self.buckets = buckets
        self.epoch_series: dict[str, np.ndarray] = {}
        for name, values in (epoch_series or {}).items():
            if name in converted:
                raise ValueError(f"series {name!r} is both a per-step and a per-epoch series")
            arr = np.array(values, dtype=np.float64)
            if arr.ndim != 1:
                raise ValueError(f"per-epoch series {name!r} must be 1-D (epochs,); got shape {arr.shape}")
            arr.setflags(write=False)
            self.epoch_series[name] = arr

    # -- mapping-like access -------------------------------------------------------
    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self._series[name]
        except KeyError:
            raise KeyError(
                f"no series {name!r} in this trajectory; it has {sorted(self._series)}. "
                f"Add it to the spec's `record` key to record it."
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._series

    def __iter__(self) -> Iterator[str]:
        return iter(self._series)

    def __len__(self) -> int:
        """The number of steps."""
        return int(self.epoch.shape[0])

    @property
    def names(self) -> list[str]:
        return list(self._series)

    @property
    def every(self) -> int:
        """``record_every``: 1 for a full trajectory, k when every k-th step is kept."""
        return 1 if self.buckets is None else self.buckets.every

    @property
    def total_steps(self) -> int:
        """The steps the run took (``len(self)`` rows unless thinned)."""
        return len(self) if self.buckets is None else self.buckets.total

    def row_of(self, step: int) -> int | None:
        """The row holding real step ``step``, or None (a step a thinned run did not keep)."""
        if self.buckets is None:
            return step if 0 <= step < len(self) else None
        row = int(np.searchsorted(self.steps, step))
        return row if row < len(self) and int(self.steps[row]) == step else None

    def derive(self, series: Mapping[str, Any] | None = None, meta: Mapping[str, Any] | None = None) -> Trajectory:
        """The same steps (and buckets, for the series kept, and per-epoch series) with other
        series or meta."""
        series = self.series if series is None else series
        buckets = None if self.buckets is None else self.buckets.only(list(series))
        return Trajectory(series, self.epoch, self.batch, self.meta if meta is None else meta,
                          steps=self.steps, buckets=buckets, epoch_series=self.epoch_series)

    @property
    def series(self) -> Mapping[str, np.ndarray]:
        return dict(self._series)

    def __eq__(self, other: object) -> bool:
        # Anything that is not a Trajectory (``trajectory_snapshot`` on the right of ==)
        # must get its own __eq__ called, so return NotImplemented.
        if not isinstance(other, Trajectory):
            return NotImplemented
        return (
            self.names == other.names
            and all(
                np.array_equal(self[n], other[n], equal_nan=True) for n in self.names
            )
            and np.array_equal(self.epoch, other.epoch)
            and np.array_equal(self.batch, other.batch)
            and np.array_equal(self.steps, other.steps)
            and self.buckets == other.buckets
            and list(self.epoch_series) == list(other.epoch_series)
            and all(np.array_equal(v, other.epoch_series[n], equal_nan=True) for n, v in self.epoch_series.items())
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = ", ".join([*(f"{n}{list(self[n].shape)}" for n in self.names),
                           *(f"{n}[{len(v)} epochs]" for n, v in self.epoch_series.items())])
        thinned = f", record_every={self.every} of {self.total_steps}" if self.buckets is not None else ""
        return f"Trajectory(steps={len(self)}{thinned}, {parts})"

    # -- conversions ------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; floats round-trip exactly (non-finite as strings). The
        ``epoch_series`` key is there only when the trajectory has per-epoch series."""
        out = {
            "steps": len(self),
            "epoch": self.epoch.tolist(),
            "batch": self.batch.tolist(),
            "series": {n: encode_floats(self[n]) for n in self.names},
            "meta": self.meta,
        }
        if self.buckets is not None:
            out["record_every"] = self.every
            out["total_steps"] = self.total_steps
            out["step"] = self.steps.tolist()
            out["buckets"] = {n: {s: encode_floats(a) for s, a in st.items()} for n, st in self.buckets.stats.items()}
        if self.epoch_series:
            out["epoch_series"] = {n: encode_floats(v) for n, v in self.epoch_series.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trajectory:
        series = {n: decode_floats(v) for n, v in data["series"].items()}
        buckets = None
        if data.get("buckets") is not None:
            stats = {n: {s: decode_floats(v) for s, v in st.items()} for n, st in data["buckets"].items()}
            buckets = Buckets(int(data["record_every"]), int(data["total_steps"]), stats)
        per_epoch = {n: decode_floats(v) for n, v in (data.get("epoch_series") or {}).items()}
        return cls(series, data.get("epoch"), data.get("batch"), data.get("meta"), steps=data.get("step"),
                   buckets=buckets, epoch_series=per_epoch)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Trajectory:
        return cls.from_dict(json.loads(text))

    def to_numpy(self) -> dict[str, np.ndarray]:
        """Arrays keyed by series name plus ``epoch`` and ``batch`` (for ``np.savez``)."""
        out = {n: self[n].copy() for n in self.names}
        out["epoch"] = self.epoch.copy()
        out["batch"] = self.batch.copy()
        if self.buckets is not None:  # a thinned run: its steps and buckets, under reserved keys
            out["record_every"] = np.array([self.every, self.total_steps], dtype=np.int64)
            out["step"] = self.steps.copy()
            for name, stats in self.buckets.stats.items():
                out.update({f"{name}.{stat}": values.copy() for stat, values in stats.items()})
        return out

    @classmethod
    def from_numpy(cls, arrays: Mapping[str, Any]) -> Trajectory:
        if "record_every" not in arrays:
            series = {k: v for k, v in arrays.items() if k not in ("epoch", "batch")}
            return cls(series, arrays.get("epoch"), arrays.get("batch"))
        every, total = (int(x) for x in np.asarray(arrays["record_every"]))
        reserved = {"epoch", "batch", "step", "record_every"}
        series = {k: v for k, v in arrays.items() if k not in reserved and "." not in k}
        stats = {n: {s: arrays[f"{n}.{s}"] for s in STATS} for n in series if f"{n}.min" in arrays}
        return cls(series, arrays.get("epoch"), arrays.get("batch"), steps=arrays.get("step"),
                   buckets=Buckets(every, total, stats))

    def plot(self, series: list[str] | None = None, ax: Any = None, label: str | None = None) -> Any:
        """Plot the series on matplotlib axes (one axis per series when ``ax`` is None).

        Loss-like series use a log scale when all values are positive (:func:`use_log_scale`).
        Without ``ax`` the axes belong to a new ``matplotlib.figure.Figure`` on an Agg canvas
        (``axes.figure.savefig(...)``): no pyplot, no backend switch, no global figure list,
        so a notebook's backend and open figures are left exactly as they were. Returns the
        axes. Drawn by :func:`pytest_optcheck.report.plotting.plot_trajectory`, imported
        here on the call: the engine itself never imports matplotlib or the report.
        """
        from ..report.plotting import plot_trajectory

        return plot_trajectory(self, series, ax, label)


def as_2d(values: Any) -> np.ndarray:
    """A series as float64 ``(steps, groups)``: a 1-D series becomes one column."""
    arr = np.asarray(values, dtype=np.float64)
    return arr.reshape(arr.shape[0], -1) if arr.ndim != 2 else arr


def use_log_scale(name: str, arrays: Any) -> bool:
    """The one log-scale rule of every picture: never for per-group schedule series
    (``lr``, ``momentum``), else when every finite value of every array is positive."""
    if name in GROUPED_SERIES:
        return False
    finite = [a[np.isfinite(a)] for a in (np.asarray(x, dtype=np.float64) for x in arrays)]
    return any(f.size for f in finite) and all(bool(np.all(f > 0)) for f in finite)


def json_ready(value: Any) -> Any:
    """Nested data made strict-JSON-ready: non-finite floats as ``"NaN"``, ``"Infinity"``,
    ``"-Infinity"`` (the golden files' convention), numpy scalars as Python numbers,
    tuples as lists, anything else unknown as its ``str``."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return _encode_float(value)
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def _index_array(values: Any, steps: int, what: str, fill: Any = None) -> np.ndarray:
    if values is None:
        arr = np.zeros(steps, dtype=np.int64) if fill is None else np.array(fill, dtype=np.int64)
    else:
        arr = np.array(values, dtype=np.int64)  # a copy, made read-only below
    if arr.shape != (steps,):
        raise ValueError(f"{what} must have one entry per step ({steps}); got shape {arr.shape}")
    arr.setflags(write=False)
    return arr


_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _encode_float(x: float) -> float | str:
    if math.isfinite(x):
        return x
    if math.isnan(x):
        return "NaN"
    return "Infinity" if x > 0 else "-Infinity"


def encode_floats(arr: np.ndarray) -> list[Any]:
    """Nested lists of Python floats (exact repr round-trip), non-finite as strings."""
    if arr.ndim == 1:
        return [_encode_float(float(x)) for x in arr]
    return [[_encode_float(float(x)) for x in row] for row in arr]


def decode_floats(values: Any) -> np.ndarray:
    """The inverse of :func:`encode_floats`: a list (or list of rows) of numbers, non-finite
    values as ``"NaN"``, ``"Infinity"``, ``"-Infinity"``; anything else is a ValueError.

    Plain numbers take one vectorised conversion (a million values in milliseconds)."""
    def dec(x: Any) -> float:
        if isinstance(x, str):
            if x not in _NONFINITE:
                raise ValueError(f"not a number: {x!r}")
            return _NONFINITE[x]
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise TypeError(f"not a number: {x!r}")
        return float(x)

    if values and isinstance(values[0], list):
        kinds = {type(x) for row in values for x in row}
        if kinds <= _PLAIN and len({len(row) for row in values}) == 1:
            return np.array(values, dtype=np.float64).reshape(len(values), -1)
        return np.array([[dec(x) for x in row] for row in values], dtype=np.float64).reshape(
            len(values), -1
        )
    if set(map(type, values)) <= _PLAIN:
        return np.array(values, dtype=np.float64)
    return np.array([dec(x) for x in values], dtype=np.float64)


_PLAIN = {float, int}
