"""The Trajectory: named per-step series of one training run (or one LR schedule).

A Trajectory is plain numpy data with no reference to torch, so the comparison engine,
the golden files, the report and the command line can all work on it without importing
torch. Every series has one row per optimizer step (per scheduler interval for
``lr_schedule``); ``lr`` and ``momentum`` have one column per param group.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

#: Series whose values are one per param group: stored as (steps, groups).
GROUPED_SERIES = frozenset({"lr", "momentum"})


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

    __slots__ = ("_series", "batch", "epoch", "epoch_series", "meta")

    def __init__(
        self,
        series: Mapping[str, Any],
        epoch: Any = None,
        batch: Any = None,
        meta: Mapping[str, Any] | None = None,
        epoch_series: Mapping[str, Any] | None = None,
    ) -> None:
        converted: dict[str, np.ndarray] = {}
        steps: int | None = None
        for name, values in series.items():
            arr = np.asarray(values, dtype=np.float64)
            if arr.ndim == 0 or arr.ndim > 2:
                raise ValueError(
                    f"series {name!r} must be 1-D (steps,) or 2-D (steps, groups); "
                    f"got shape {arr.shape}"
                )
            if steps is None:
                steps = arr.shape[0]
            elif arr.shape[0] != steps:
                raise ValueError(
                    f"series {name!r} has {arr.shape[0]} steps but the others have "
                    f"{steps}: every series needs one row per step"
                )
            arr.setflags(write=False)
            converted[name] = arr
        steps = steps or 0
        self._series = converted
        self.epoch = _index_array(epoch, steps, "epoch")
        self.batch = _index_array(batch, steps, "batch", fill=np.arange(steps))
        self.meta: dict[str, Any] = dict(meta or {})
        self.epoch_series: dict[str, np.ndarray] = {}
        for name, values in (epoch_series or {}).items():
            if name in converted:
                raise ValueError(f"series {name!r} is both a per-step and a per-epoch series")
            arr = np.asarray(values, dtype=np.float64)
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
            and list(self.epoch_series) == list(other.epoch_series)
            and all(np.array_equal(v, other.epoch_series[n], equal_nan=True) for n, v in self.epoch_series.items())
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = ", ".join([*(f"{n}{list(self[n].shape)}" for n in self.names),
                           *(f"{n}[{len(v)} epochs]" for n, v in self.epoch_series.items())])
        return f"Trajectory(steps={len(self)}, {parts})"

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
        if self.epoch_series:
            out["epoch_series"] = {n: encode_floats(v) for n, v in self.epoch_series.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trajectory:
        series = {n: decode_floats(v) for n, v in data["series"].items()}
        per_epoch = {n: decode_floats(v) for n, v in (data.get("epoch_series") or {}).items()}
        return cls(series, data.get("epoch"), data.get("batch"), data.get("meta"), epoch_series=per_epoch)

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
        return out

    @classmethod
    def from_numpy(cls, arrays: Mapping[str, Any]) -> Trajectory:
        series = {k: v for k, v in arrays.items() if k not in ("epoch", "batch")}
        return cls(series, arrays.get("epoch"), arrays.get("batch"))

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
        arr = np.zeros(steps, dtype=np.int64) if fill is None else np.asarray(fill, dtype=np.int64)
    else:
        arr = np.asarray(values, dtype=np.int64)
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
    def dec(x: Any) -> float:
        if isinstance(x, str):
            if x not in _NONFINITE:
                raise ValueError(f"not a number: {x!r}")
            return _NONFINITE[x]
        return float(x)

    if values and isinstance(values[0], list):
        return np.array([[dec(x) for x in row] for row in values], dtype=np.float64).reshape(
            len(values), -1
        )
    return np.array([dec(x) for x in values], dtype=np.float64)
