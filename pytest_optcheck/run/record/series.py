"""The per-series stores of a recording: a logged series (:class:`Column`), a series
read from the param groups (:class:`GroupRows`), and the norm reducers' per-step vectors
(:class:`Vectors`). Each keeps what the loop hands it with a few appends a step and goes to
the host once, when the trajectory is read.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ...errors import OptcheckError
from .hosts import host_values, scalars_to_host, stack_scalars

#: How several values logged for one step are combined (``rec.log(loss=x, reduce=...)``).
REDUCTIONS: dict[str, Callable[[np.ndarray], float]] = {
    "mean": lambda v: math.fsum(v) / len(v),
    "sum": lambda v: math.fsum(v),
    "first": lambda v: float(v[0]),
    "last": lambda v: float(v[-1]),
    "min": lambda v: float(np.min(v)),
    "max": lambda v: float(np.max(v)),
}
DEFAULT_REDUCE = "mean"

#: Tensor values of one series are stacked into one device tensor every CHUNK steps, so a
#: long run holds a few large tensors rather than one small allocation per step.
CHUNK = 4096


class Column:
    """One recorded series: (step, value) entries, values Python floats or device tensors.

    Adding an entry is a few list appends (the common call, ``rec.log(loss=loss)``, runs
    inside the training loop, so it does as little as it can). A tensor on the CPU is read
    at once: its value is in host memory already, so reading it synchronises with nothing,
    and it costs less than keeping the tensor. A tensor on an accelerator is copied where it
    is (one kernel, no synchronisation; a later in-place change of the user's tensor leaves
    the copy alone), and every :data:`CHUNK` entries the block's copies are stacked on their
    device; they go to the host in :meth:`host`, one transfer for the whole series where its
    tensors share a device. ``read_cpu = False`` (tests) takes the accelerator's path on the
    CPU."""

    __slots__ = ("blocks", "last", "name", "read_cpu", "reduce", "steps", "tensors", "values")

    def __init__(self, name: str, read_cpu: bool = True) -> None:
        self.name = name
        self.read_cpu = read_cpu
        self.steps: list[int] = []  # the step of each entry
        self.values: list[Any] = []  # the open block: floats and tensors, in entry order
        self.tensors = 0  # how many of the open block's values are tensors
        self.blocks: list[tuple[np.ndarray, Any, np.ndarray]] = []  # closed: (tensor slots, stacked, floats)
        self.last = -1  # the step of the latest entry
        self.reduce: str | None = None

    def add(self, steps: int, value: Any) -> None:
        """Add ``value`` to the step it belongs to: before ``step()`` (or a second value of a
        step), the next step's; right after a step that has no value of this name, that
        step's. ``steps`` is the number of steps counted so far."""
        step = steps if self.last >= steps - 1 else steps - 1
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                raise self._shape_error(value)
            if value.is_cpu and self.read_cpu:  # in host memory already: read it now
                value = value.item()
                if type(value) is not float:
                    value = as_float(self.name, value)
            else:
                value = value.detach().clone()  # the value now, not the graph, nor later in-place changes
                self.tensors += 1
        elif type(value) is not float:
            value = as_float(self.name, value)
        self.last = step
        self.steps.append(step)
        self.values.append(value)
        if len(self.values) >= CHUNK:
            self._close_block()

    def _shape_error(self, value: torch.Tensor) -> OptcheckError:
        return OptcheckError(
            f"optcheck: rec.log({self.name}=...) needs one number per call; got a tensor of shape "
            f"{tuple(value.shape)}. Reduce it first (e.g. {self.name}=x.mean())."
        )

    def _close_block(self) -> None:
        values, tensors = self.values, self.tensors
        self.values, self.tensors = [], 0
        if not tensors:  # numbers only (every CPU recording): no tensor to stack
            self.blocks.append((np.empty(0, dtype=np.int64), None, np.array(values, dtype=np.float64)))
            return
        slots = [i for i, v in enumerate(values) if type(v) is not float]
        floats = np.array([v if type(v) is float else math.nan for v in values], dtype=np.float64)
        self.blocks.append((np.asarray(slots, dtype=np.int64), stack_scalars([values[i] for i in slots]), floats))

    def host(self, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """(step, value) of every entry for steps < ``steps``, values as float64. The
        tensors go to the host here, once: one transfer per device."""
        if self.values:
            self._close_block()
        pending = [stacked for _, stacked, _ in self.blocks if stacked is not None]
        if pending:
            numbers_ = scalars_to_host(pending)
            for slots, _, floats in self.blocks:
                floats[slots] = numbers_[:len(slots)]
                numbers_ = numbers_[len(slots):]
        values = np.concatenate([floats for _, _, floats in self.blocks]) if self.blocks else np.empty(0)
        self.blocks = [(np.empty(0, dtype=np.int64), None, values)]  # on the host from now on
        step_of = np.array(self.steps, dtype=np.int64)
        keep = step_of < steps
        return step_of[keep], values[keep]

    def series(self, steps: int) -> np.ndarray:
        """One value per step: NaN where nothing was logged, several combined by ``reduce``."""
        step_of, values = self.host(steps)
        out = np.full(steps, math.nan)
        if step_of.size == 0:
            return out
        if np.all(np.diff(step_of) > 0):  # one value per step: the common case, no reduction
            out[step_of] = values
            return out
        reduce = REDUCTIONS[self.reduce or DEFAULT_REDUCE]
        starts = np.flatnonzero(np.r_[True, np.diff(step_of) != 0])
        for start, stop in zip(starts, np.r_[starts[1:], step_of.size]):
            out[step_of[start]] = values[start] if stop - start == 1 else reduce(values[start:stop])
        return out


class GroupRows:
    """One series read from the param groups (``lr``, ``momentum``, a group key): each
    step's row of per-group values, kept flat (the values, and each row's width) so a step
    adds no list object for the garbage collector to track."""

    __slots__ = ("values", "widths")

    def __init__(self) -> None:
        self.values: list[Any] = []
        self.widths: list[int] = []

    def add(self, row: list[Any]) -> None:
        self.values.extend(row)
        self.widths.append(len(row))

    def array(self, steps: int) -> np.ndarray:
        """The first ``steps`` rows as a (steps, groups) float64 array; groups added during
        the run read NaN before they existed."""
        widths = np.array(self.widths, dtype=np.int64)[:steps]
        values = self.values[:int(widths.sum())]
        if set(map(type, values)) <= {float, int}:  # numbers only, as a rule: one conversion
            flat = np.array(values, dtype=np.float64)
        else:
            flat = host_values(values)
        width = int(widths.max(initial=0))
        if np.all(widths == width):
            return flat.reshape(len(widths), width)
        out = np.full((len(widths), width), math.nan)
        out[np.arange(width) < widths[:, None]] = flat  # a row's groups fill it from the left
        return out


class Vectors:
    """One small tensor per step (the norm series' vector), stacked on its device every
    :data:`CHUNK` steps and brought to the host once, as a (steps, rows) array."""

    __slots__ = ("chunks", "steps", "tensors")

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.tensors: list[torch.Tensor] = []
        self.chunks: list[torch.Tensor] = []

    def add(self, step: int, vector: torch.Tensor) -> None:
        self.steps.append(step)
        self.tensors.append(vector)
        if len(self.tensors) >= CHUNK:
            self.chunks.append(torch.stack(self.tensors))
            self.tensors = []

    def add_rows(self, steps: list[int], rows: torch.Tensor) -> None:
        """Many steps' vectors at once, as the rows of one (len(steps), width) tensor."""
        if self.tensors:
            self.chunks.append(torch.stack(self.tensors))
            self.tensors = []
        self.steps.extend(steps)
        self.chunks.append(rows)

    def host(self, steps: int, width: int) -> np.ndarray:
        """(steps, width) float64; NaN for a step whose post-step hook never ran (it raised)."""
        if self.tensors:
            self.chunks.append(torch.stack(self.tensors))
            self.tensors = []
        out = np.full((steps, width), math.nan)
        if not self.chunks:
            return out
        try:  # one transfer: the chunks are joined on their device first
            whole = torch.cat(self.chunks) if len(self.chunks) > 1 else self.chunks[0]
        except RuntimeError:  # read before (now on the host) and recorded on since
            whole = torch.cat([c.cpu() for c in self.chunks])
        values = whole.detach().cpu().numpy().astype(np.float64, copy=False).reshape(len(self.steps), width)
        self.chunks = [torch.from_numpy(values)]  # on the host from now on
        where = np.asarray(self.steps)
        keep = where < steps
        out[where[keep]] = values[keep]
        return out


def as_float(name: str, value: Any, call: str = "rec.log") -> float:
    """``value`` as a float, or the refusal that names the ``call`` it was given to."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise OptcheckError(
            f"optcheck: {call}({name}=...) needs a number or a one-element tensor; "
            f"got {type(value).__name__} {value!r}."
        ) from None

