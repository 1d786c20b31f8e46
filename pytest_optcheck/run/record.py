"""Stage 3: recording a run into a :class:`~pytest_optcheck.trajectory.Trajectory`.

:class:`Recorder` watches an optimizer through ``register_step_pre_hook`` and
``register_step_post_hook`` — no monkeypatching of the user's objects — so a user's own
loop needs one extra line per step (``rec.log(loss=loss)``). The reference loop in
:mod:`pytest_optcheck.train` records through the same class, so both paths agree on what
``lr[i]`` means: the learning rate the optimizer *used* at step ``i`` (read just before the
step runs, after any scheduler change).

Recording stays out of the training loop's way, on the CPU and on an accelerator:

* Nothing on an accelerator is converted to a Python number while the loop runs. A
  logged tensor is kept (detached) where it is, norms are computed by kernels on the
  parameters' device and kept as tensors, and every tensor series goes to the host once,
  when :attr:`Recorder.trajectory` is read (long runs stack their values into one device
  tensor per :data:`CHUNK` steps, still without a synchronisation). So recording adds no
  host-device synchronisation per step. Python numbers (``lr``, a logged ``float``) are
  kept as they are, and so is a tensor logged on the CPU, read when it is logged
  (:data:`READ_CPU_AT_LOG`): its value is in host memory already.
* Norms go through as few kernels as the device allows. Parameters small enough
  (:data:`FLAT_NUMEL`) on one device are copied, three calls a step, into a row of a
  history buffer, and a few kernels reduce :data:`HISTORY_ROWS` steps at a time; larger models go through ``torch._foreach_norm`` (one fused kernel per device
  and dtype on CUDA) each step. ``update_norm`` keeps the step's starting point in
  buffers allocated once, never a fresh ``clone()`` per parameter per step.

What the series mean:

* ``lr``, ``momentum`` and any other numeric key of the param groups (``weight_decay``,
  Prodigy's ``d``): one column per group, the value in effect when step ``i`` ran (read
  just before it). A group without the key reads NaN.
* ``grad_norm``: the L2 norm over all parameters of the gradients the step used — those
  present when ``step()`` is called, or, for a step that runs a closure
  (``step(closure)``: LBFGS, Lightning's automatic optimization), those right after the
  closure's first evaluation, i.e. at the step's starting point.
* ``param_norm``, ``update_norm``: the norm of the parameters after the step, and of what
  the step changed. ``sparsity``: the fraction of parameters with ``|w| <= SPARSITY_EPS``.
* Values passed to :meth:`Recorder.log` (``loss``, anything else): see there for which
  step a value belongs to and how several values of one step are combined.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Self

import numpy as np
import torch

from ..engine.trajectory import Trajectory
from ..errors import OptcheckError, suggest

#: |w| at or below this counts as zero for the ``sparsity`` series. Plain (sub)gradient
#: steps with an L1 penalty leave weights hovering near zero rather than exactly on it,
#: so an exact-zero count would always read 0; 1e-3 separates "pruned" from "small".
SPARSITY_EPS = 1e-3

#: Series the recorder computes itself through the optimizer's hooks.
HOOKED_SERIES = ("lr", "momentum", "grad_norm", "param_norm", "update_norm", "sparsity")
#: Hooked series that are norms of (or counts over) the parameters, one tensor per step.
TENSOR_SERIES = ("grad_norm", "param_norm", "update_norm", "sparsity")

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

#: A one-element tensor logged on the CPU is read as a number when it is logged: its value
#: is in host memory already, so reading it synchronises with nothing, and it costs less
#: than keeping the tensor (a long-lived allocation each step) and stacking the tensors
#: later. Tensors on an accelerator are kept and read once, with the trajectory. Tests set
#: this to False to run the accelerator's path on the CPU.
READ_CPU_AT_LOG = True

#: Tensor values of one series are stacked into one device tensor every CHUNK steps, so a
#: long run holds a few large tensors rather than one small allocation per step.
CHUNK = 4096
#: Parameters with at most this many elements in all (on one device, of one dtype) are
#: copied into a history buffer each step and reduced many steps at a time: for small
#: models the cost of a step is the number of kernels launched, not the bytes they read.
FLAT_NUMEL = 1 << 16
#: The history of such a model is reduced every HISTORY_ROWS steps, sooner where its rows
#: would hold more than HISTORY_BYTES.
HISTORY_ROWS = 256
HISTORY_BYTES = 8 << 20


def group_lrs(optimizer: torch.optim.Optimizer) -> list[float]:
    """The learning rate of every param group (a tensor lr is read as a float)."""
    return [float(g["lr"]) for g in optimizer.param_groups]


def group_momenta(optimizer: torch.optim.Optimizer) -> list[float]:
    """Momentum per group: ``momentum`` (SGD, RMSprop), else ``betas[0]`` (Adam family),
    else NaN (Adagrad has none)."""
    return [float(m) for m in _momenta(optimizer)]


def _momenta(optimizer: torch.optim.Optimizer) -> list[Any]:
    out: list[Any] = []
    for group in optimizer.param_groups:
        if "momentum" in group:
            out.append(group["momentum"])
        elif "betas" in group:
            out.append(group["betas"][0])
        else:
            out.append(math.nan)
    return out


def _is_number(value: Any) -> bool:
    """A real number or a one-element real tensor (a tensor lr), not a bool or None."""
    if isinstance(value, torch.Tensor):
        return value.numel() == 1 and not value.is_complex() and value.dtype != torch.bool
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _accumulator(device: torch.device) -> torch.dtype:
    """Norms accumulate in float64 wherever the device has it (MPS has not)."""
    return torch.float32 if device.type == "mps" else torch.float64


class HostFloat:
    """A number that stays where it was computed until something asks for it as a float.

    The reference loop hands the step's loss (and the epoch's mean loss) to the scheduler
    as one of these: ``ReduceLROnPlateau`` calls ``float()`` on its metric, so that
    scheduler synchronises once per call, and every other scheduler, which ignores the
    metric, never does. ``HostFloat.mean(values)`` is ``math.fsum(values) / len(values)``
    of the values as float64, whatever their device, with one transfer.
    """

    __slots__ = ("_mean", "_value", "_values")

    def __init__(self, value: Any, *, _mean: bool = False) -> None:
        self._values = value
        self._value: float | None = None
        self._mean = _mean

    @classmethod
    def mean(cls, values: Sequence[Any]) -> HostFloat:
        return cls(list(values), _mean=True)

    def __float__(self) -> float:
        if self._value is None:
            if self._mean:
                numbers_ = _host_values(self._values)
                self._value = math.fsum(numbers_) / len(numbers_) if len(numbers_) else math.nan
            else:
                self._value = float(_host_values([self._values])[0])
        return self._value

    def __format__(self, spec: str) -> str:
        return format(float(self), spec)

    def __repr__(self) -> str:
        return f"HostFloat({float(self)!r})"


def _host_values(values: Sequence[Any]) -> np.ndarray:
    """Numbers and 0-d / one-element tensors as one float64 array, with one transfer per
    device (tensors of one device are stacked there first)."""
    out = np.empty(len(values), dtype=np.float64)
    by_device: dict[torch.device, tuple[list[int], list[torch.Tensor]]] = {}
    for i, value in enumerate(values):
        if isinstance(value, HostFloat) and value._value is None and not value._mean:
            value = value._values  # still on its device: joins the one transfer
        if isinstance(value, torch.Tensor):
            slots, tensors = by_device.setdefault(value.device, ([], []))
            slots.append(i)
            tensors.append(value.reshape(()))
        else:
            out[i] = float(value)
    for slots, tensors in by_device.values():
        stacked = torch.stack(tensors) if len(tensors) > 1 else tensors[0].reshape(1)
        out[slots] = _to_numpy(stacked)
    return out


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """The one host transfer of a device tensor, as float64 numbers."""
    tensor = tensor.detach()
    if tensor.dtype in (torch.bfloat16, torch.float16) or tensor.dtype == torch.bool:
        tensor = tensor.float()
    return tensor.cpu().numpy().astype(np.float64, copy=False).reshape(-1)


def _stack_scalars(tensors: list[torch.Tensor]) -> Any:
    """One-element tensors as one 1-d tensor on their device (no synchronisation), or as a
    list of 1-element tensors where they sit on several devices; None for none."""
    if not tensors:
        return None
    try:
        return torch.stack(tensors).reshape(-1)
    except RuntimeError:
        pass
    try:  # shapes () and (1,) mixed
        return torch.stack([t.reshape(()) for t in tensors])
    except RuntimeError:  # several devices: kept apart
        return [t.reshape(1) for t in tensors]


def _scalars_to_host(stacked: list[Any]) -> np.ndarray:
    """What :func:`_stack_scalars` made, in order, as float64: one transfer where the
    tensors share a device, one per tensor where they do not."""
    flat: list[torch.Tensor] = []
    for item in stacked:
        flat.extend(item) if isinstance(item, list) else flat.append(item)
    try:
        flat = [torch.cat(flat)] if len(flat) > 1 else flat
    except RuntimeError:  # several devices
        pass
    return np.concatenate([_to_numpy(t) for t in flat])


class _Column:
    """One recorded series: (step, value) entries, values Python floats or device tensors.

    Adding an entry is a few list appends (the common call, ``rec.log(loss=loss)``, runs
    inside the training loop, so it does as little as it can). A tensor on the CPU is read
    at once (see :data:`READ_CPU_AT_LOG`); a tensor on an accelerator is kept, and every
    :data:`CHUNK` entries the block's tensors are stacked on their device (no
    synchronisation); they go to the host in :meth:`host`, one transfer for the whole
    series where its tensors share a device."""

    __slots__ = ("blocks", "last", "name", "reduce", "steps", "values", "versions")

    def __init__(self, name: str) -> None:
        self.name = name
        self.steps: list[int] = []  # the step of each entry
        self.values: list[Any] = []  # the open block: floats and tensors, in entry order
        self.versions: list[int] = []  # the open block: each kept tensor's version counter when logged
        self.blocks: list[tuple[np.ndarray, Any, np.ndarray]] = []  # closed: (tensor slots, stacked, floats)
        self.last = -1  # the step of the latest entry
        self.reduce: str | None = None

    def add(self, steps: int, value: Any) -> None:
        """Add ``value`` to the step it belongs to: before ``step()`` (or a second value of a
        step), the next step's; right after a step that has no value of this name, that
        step's. ``steps`` is the number of steps counted so far."""
        step = steps if self.last >= steps - 1 else steps - 1
        if isinstance(value, torch.Tensor):
            if value.is_cpu and READ_CPU_AT_LOG:  # in host memory already: read it now
                try:
                    value = value.item()
                except RuntimeError:
                    raise self._shape_error(value) from None
                if type(value) is not float:
                    value = _as_float(self.name, value)
            else:
                self._keep(value)
                if value.requires_grad:
                    value = value.detach()  # the value, not the graph that made it
        elif type(value) is not float:
            value = _as_float(self.name, value)
        self.last = step
        self.steps.append(step)
        self.values.append(value)
        if len(self.values) >= CHUNK:
            self._close_block()

    def _keep(self, value: torch.Tensor) -> None:
        """Check an accelerator's tensor and note its version counter (see :meth:`_close_block`)."""
        if value.numel() != 1:
            raise self._shape_error(value)
        try:
            self.versions.append(value._version)
        except RuntimeError:  # an inference tensor keeps no version counter
            self.versions.append(-1)

    def _shape_error(self, value: torch.Tensor) -> OptcheckError:
        return OptcheckError(
            f"optcheck: rec.log({self.name}=...) needs one number per call; got a tensor of shape "
            f"{tuple(value.shape)}. Reduce it first (e.g. {self.name}=x.mean())."
        )

    def _close_block(self) -> None:
        values, versions = self.values, self.versions
        self.values, self.versions = [], []
        if not versions:  # numbers only (every CPU recording): no tensor to stack
            self.blocks.append((np.empty(0, dtype=np.int64), None, np.array(values, dtype=np.float64)))
            return
        slots = [i for i, v in enumerate(values) if type(v) is not float]
        tensors = [values[i] for i in slots]
        if [t._version if v >= 0 else v for t, v in zip(tensors, versions)] != versions:
            raise OptcheckError(
                f"optcheck: a tensor logged as {self.name!r} was modified in place after "
                f"rec.log() (e.g. `loss /= n` or `loss.mul_(...)`), so its logged value is "
                f"lost. Log it after the change, or log a copy: rec.log({self.name}=x.clone())."
            )
        floats = np.array([v if type(v) is float else math.nan for v in values], dtype=np.float64)
        self.blocks.append((np.asarray(slots, dtype=np.int64), _stack_scalars(tensors), floats))

    def host(self, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """(step, value) of every entry for steps < ``steps``, values as float64. The
        tensors go to the host here, once: one transfer per device."""
        if self.values:
            self._close_block()
        pending = [stacked for _, stacked, _ in self.blocks if stacked is not None]
        if pending:
            numbers_ = _scalars_to_host(pending)
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


class _GroupRows:
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
            flat = _host_values(values)
        width = int(widths.max(initial=0))
        if np.all(widths == width):
            return flat.reshape(len(widths), width)
        out = np.full((len(widths), width), math.nan)
        out[np.arange(width) < widths[:, None]] = flat  # a row's groups fill it from the left
        return out


class _Vectors:
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


class _NoGrad:
    """``torch.no_grad()`` at a fifth of its cost: the hooks run once per step."""

    __slots__ = ("previous",)

    def __enter__(self) -> None:
        self.previous = torch.is_grad_enabled()
        torch._C._set_grad_enabled(False)

    def __exit__(self, *exc: object) -> None:
        torch._C._set_grad_enabled(self.previous)


def _dense(grad: torch.Tensor) -> torch.Tensor:
    return grad.to_dense() if grad.layout != torch.strided else grad


#: The norm series in the order of the per-step vector a reducer returns.
NORM_ROWS = ("param_norm", "update_norm", "grad_norm", "sparsity")


class _Norms:
    """The norm series of one recording: each step reduced to one small vector on the
    parameters' device, its entries the wanted ones of :data:`NORM_ROWS` in that order
    (``sparsity`` as the square root of the count of small weights: see :meth:`values`).
    Two ways, one meaning: :class:`_HistoryNorms` (small models) and
    :class:`_ForeachNorms` (the rest)."""

    def __init__(self, params: list[torch.Tensor], want: frozenset[str]) -> None:
        self.params = params
        self.want = want
        self.rows = tuple(n for n in NORM_ROWS if n in want)
        self.numel = sum(p.numel() for p in params)
        devices = {p.device for p in params}
        self.device = params[0].device if params else torch.device("cpu")
        self.acc = _accumulator(self.device) if len(devices) <= 1 else torch.float64
        self.vectors = _Vectors()  # the steps' vectors, on the device

    @staticmethod
    def make(params: list[torch.Tensor], want: frozenset[str]) -> _Norms:
        devices = {p.device for p in params}
        dtypes = {p.dtype for p in params}
        small = sum(p.numel() for p in params) <= FLAT_NUMEL
        if params and len(devices) == 1 and len(dtypes) == 1 and small:
            return _HistoryNorms(params, want)
        return _ForeachNorms(params, want)

    def before_step(self, grads: bool) -> None:
        """Keep what update_norm needs from before the step; with ``grads``, take the
        gradients too (a step without a closure)."""
        if grads:
            self.take_grads()

    def take_grads(self) -> None:
        """Take the gradients the step uses (just before it, or after its closure ran)."""

    def after_step(self, step: int) -> None:
        """Take this step's values (see the class doc); ``step`` is its index."""
        raise NotImplementedError

    def flush(self) -> None:
        """Put every step taken so far into :attr:`vectors` (a reducer that batches steps)."""

    def series(self, steps: int) -> dict[str, np.ndarray]:
        """The series of the first ``steps`` steps, on the host (one transfer)."""
        self.flush()
        return self.values(self.vectors.host(steps, len(self.rows)))

    def values(self, vectors: np.ndarray) -> dict[str, np.ndarray]:
        """The series from the (steps, rows) host array of every step's vector."""
        out = {name: vectors[:, i] for i, name in enumerate(self.rows)}
        if "sparsity" in out:
            count = np.rint(np.square(out["sparsity"]))  # integers: the rounding error goes
            out["sparsity"] = count / self.numel if self.numel else np.zeros_like(count)
        return out


class _HistoryNorms(_Norms):
    """Small models on one device, where a step costs the kernels launched, not the bytes
    read. Each step copies what the series need — the starting point and the gradients
    before the step (one ``torch._foreach_copy_``), the parameters after it (another) — into
    a staging block of views made once, and the block into one row of a history buffer; it
    reduces nothing. Every :data:`HISTORY_ROWS` steps (and when the trajectory is read) a
    few kernels reduce all the rows at once: norms of rows, of differences of rows, counts.

    update_norm copies each step's starting point rather than taking the previous step's
    row: that would hold only if nothing touched the parameters in between, and an edit
    through ``.data`` (weight clipping) leaves no trace to check that by."""

    PARTS = ("before", "grads", "after")

    def __init__(self, params: list[torch.Tensor], want: frozenset[str]) -> None:
        super().__init__(params, want)
        needed = {"before": "update_norm" in want, "grads": "grad_norm" in want,
                  "after": bool(want & {"param_norm", "update_norm", "sparsity"})}
        self.part = {name: i for i, name in enumerate(n for n in self.PARTS if needed[n])}
        p0 = params[0]
        self.staging = torch.empty((len(self.part), self.numel), dtype=p0.dtype, device=p0.device)
        self.views = {name: self._views(self.staging[i]) for name, i in self.part.items()}
        per_row = max(1, self.staging.numel() * p0.element_size())
        capacity = max(1, min(HISTORY_ROWS, HISTORY_BYTES // per_row))
        self.history = torch.empty((capacity, *self.staging.shape), dtype=p0.dtype, device=p0.device)
        self.history_rows = self.history.unbind(0)  # one view per row, made once: no indexing per step
        #: the pre-step copy's destinations when it takes the starting point and the gradients
        self.before_and_grads = self.views.get("before", []) + self.views.get("grads", [])
        self.row = 0
        self.steps: list[int] = []  # the step of each filled row

    def _views(self, row: torch.Tensor) -> list[torch.Tensor]:
        """``row`` cut into one view per parameter, shaped like it."""
        views, start = [], 0
        for p in self.params:
            views.append(row[start:start + p.numel()].view(p.shape))
            start += p.numel()
        return views

    def before_step(self, grads: bool) -> None:
        update = "before" in self.views
        if update and grads:  # the usual case: one call copies both
            try:
                torch._foreach_copy_(self.before_and_grads, self.params + [p.grad for p in self.params])
                return
            except (TypeError, RuntimeError):  # a parameter without a gradient, or a sparse one
                pass
        if update:
            torch._foreach_copy_(self.views["before"], self.params)
        if grads:
            self.take_grads()

    def take_grads(self) -> None:
        grads = [p.grad for p in self.params]
        views = self.views["grads"]
        if any(g is None or g.layout != torch.strided for g in grads):
            pairs = [(v, _dense(g)) for v, g in zip(views, grads) if g is not None]
            for v, g in zip(views, grads):
                if g is None:
                    v.zero_()
            if pairs:
                torch._foreach_copy_([v for v, _ in pairs], [g for _, g in pairs])
            return
        torch._foreach_copy_(views, grads)

    def after_step(self, step: int) -> None:
        if "after" in self.views:
            torch._foreach_copy_(self.views["after"], self.params)
        self.history_rows[self.row].copy_(self.staging)
        self.steps.append(step)
        self.row += 1
        if self.row == len(self.history_rows):
            self.flush()

    def flush(self) -> None:
        """The norm vectors of the filled rows, kept on the device; the rows are free again."""
        n, acc = self.row, self.acc
        if n == 0:
            return
        block = self.history[:n]
        part = {name: block[:, i] for name, i in self.part.items()}
        columns = []
        for name in self.rows:
            if name == "param_norm":
                columns.append(torch.linalg.vector_norm(part["after"], dim=1, dtype=acc))
            elif name == "grad_norm":
                columns.append(torch.linalg.vector_norm(part["grads"], dim=1, dtype=acc))
            elif name == "update_norm":
                columns.append(torch.linalg.vector_norm(part["after"] - part["before"], dim=1, dtype=acc))
            else:  # sparsity, as the square root of the count (see _Norms.values)
                columns.append(part["after"].abs().le_(SPARSITY_EPS).sum(dim=1, dtype=acc).sqrt_())
        self.vectors.add_rows(self.steps, torch.stack(columns, dim=1))
        self.steps, self.row = [], 0



class _ForeachNorms(_Norms):
    """Large models and accelerators: ``torch._foreach_norm`` (one fused kernel per device
    and dtype on CUDA) per series; update_norm keeps the step's starting point in buffers
    allocated once."""

    def __init__(self, params: list[torch.Tensor], want: frozenset[str]) -> None:
        super().__init__(params, want)
        self.snapshot: list[torch.Tensor] | None = None
        self.grad_norm: torch.Tensor | None = None

    def total_norm(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        """The L2 norm of all ``tensors`` together, as a 0-d tensor on the first device."""
        if not tensors:
            return torch.zeros((), dtype=self.acc, device=self.device)
        partial = []
        for device, group in _by_device(tensors).items():
            norms = _foreach_norm(group, _accumulator(device))
            partial.append(torch.linalg.vector_norm(torch.stack(norms)) if len(norms) > 1 else norms[0])
        if len(partial) == 1:
            return partial[0].to(self.acc)
        return torch.linalg.vector_norm(torch.stack([p.to(self.device, self.acc) for p in partial]))

    def before_step(self, grads: bool) -> None:
        if grads:
            self.take_grads()
        if "update_norm" in self.want:
            if self.snapshot is None:
                self.snapshot = [torch.empty_like(p) for p in self.params]
            torch._foreach_copy_(self.snapshot, self.params)

    def take_grads(self) -> None:
        self.grad_norm = self.total_norm([_dense(p.grad) for p in self.params if p.grad is not None])

    def after_step(self, step: int) -> None:
        values = []
        for name in self.rows:
            if name == "param_norm":
                values.append(self.total_norm(self.params))
            elif name == "update_norm":
                assert self.snapshot is not None
                torch._foreach_sub_(self.snapshot, self.params)  # before - after: the same norm
                values.append(self.total_norm(self.snapshot))
            elif name == "grad_norm":
                assert self.grad_norm is not None
                values.append(self.grad_norm)
                self.grad_norm = None
            else:
                values.append(self.small_count().sqrt())
        self.vectors.add(step, torch.stack(values))

    def small_count(self) -> torch.Tensor:
        if not self.params:
            return torch.zeros((), dtype=self.acc, device=self.device)
        counts = [torch.count_nonzero(p.abs() <= SPARSITY_EPS).to(self.device) for p in self.params]
        return torch.stack(counts).sum().to(self.acc)


def _foreach_norm(tensors: list[torch.Tensor], acc: torch.dtype) -> list[torch.Tensor]:
    """Each tensor's L2 norm, accumulated in ``acc``: one fused kernel on CUDA."""
    try:
        return list(torch._foreach_norm(tensors, 2.0, dtype=acc))
    except TypeError:  # torch < 2.3: no dtype argument
        return [torch.linalg.vector_norm(t, dtype=acc) for t in tensors]


def _by_device(tensors: Iterable[torch.Tensor]) -> dict[torch.device, list[torch.Tensor]]:
    out: dict[torch.device, list[torch.Tensor]] = {}
    for t in tensors:
        out.setdefault(t.device, []).append(t)
    return out


def _inner_optimizers(optimizer: Any) -> list[tuple[str, Any]]:
    """Optimizers a wrapper holds (SAM's ``base_optimizer``, Lightning's and Accelerate's
    ``optimizer``): the ones whose ``step()`` runs when the wrapper's does not."""
    found = []
    for attr in ("base_optimizer", "optimizer", "_optimizer", "inner_optimizer"):
        inner = getattr(optimizer, attr, None)
        if isinstance(inner, torch.optim.Optimizer) and inner is not optimizer:
            found.append((attr, inner))
    return found


def _describe(optimizer: Any) -> str:
    cls = type(optimizer)
    module = cls.__module__
    return cls.__qualname__ if module in ("builtins", "torch.optim") or module.startswith("torch.optim.") \
        else f"{module}.{cls.__qualname__}"


class Recorder:
    """Context manager recording one value per optimizer step.

    Use it around a loop::

        with Recorder(optimizer, scheduler, model) as rec:
            for epoch in range(3):
                rec.epoch = epoch
                for x, y in data:
                    loss = loss_fn(model(x), y)
                    optimizer.zero_grad(); loss.backward(); optimizer.step()
                    rec.log(loss=loss)
        trajectory = rec.trajectory

    ``record`` names the series: the ones the recorder computes (:data:`HOOKED_SERIES`),
    any numeric key of the optimizer's param groups (``"weight_decay"``, ``"d"``), and the
    values the loop logs (``"loss"``). The hooks are removed on exit, also when the loop
    raises. ``model`` chooses the parameters the norms are over (default: the optimizer's).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        scheduler: Any = None,
        model: torch.nn.Module | None = None,
        record: Iterable[str] = ("loss", "lr"),
    ) -> None:
        if isinstance(record, str):
            record = (record,)
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.model = model
        self.record = tuple(record)
        hooked = set(self.record) & set(HOOKED_SERIES)
        self._group_keys = tuple(n for n in self.record
                                 if n not in HOOKED_SERIES and n != "loss" and _group_key(optimizer, n))
        self._rows: dict[str, _GroupRows] = {
            n: _GroupRows() for n in self.record if n in ("lr", "momentum") or n in self._group_keys}
        #: lr's rows when lr is the only series read from the groups (the default recording)
        self._lr_alone = self._rows["lr"] if list(self._rows) == ["lr"] else None
        self._norms = frozenset(n for n in TENSOR_SERIES if n in hooked)
        self._want_grad = "grad_norm" in hooked
        self._logged: dict[str, _Column] = {}
        self._epochs: list[int] = []  # each step's epoch
        self._batch_starts: list[int] = []  # steps at which the batch count restarts
        self._epoch = 0
        self._reducer: _Norms | None = None
        self._grad_seen = False  # this step's gradients are taken (by a closure)
        self._no_grad = _NoGrad()
        self._handles: list[Any] = []
        self._entered = False

    # -- position -----------------------------------------------------------------
    @property
    def epoch(self) -> int:
        return self._epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        """Set at the start of each epoch; the batch counter restarts at 0."""
        if value != self._epoch:
            self._batch_starts.append(len(self._epochs))  # the next step is batch 0
        self._epoch = int(value)

    @property
    def steps(self) -> int:
        return len(self._epochs)

    # -- context ------------------------------------------------------------------
    def __enter__(self) -> Self:
        self._entered = True
        self._handles = [self.optimizer.register_step_pre_hook(self._pre_step)]
        if self._norms:  # the default recording needs no second hook
            self._handles.append(self.optimizer.register_step_post_hook(self._post_step))
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # -- hooks --------------------------------------------------------------------
    def _reduce(self) -> _Norms:
        """The norm series' reducer, made at the first step (lazy modules have their
        parameters by then): over ``model``'s parameters, else the optimizer's."""
        if self._reducer is None:
            if self.model is not None:
                params = list(self.model.parameters())
            else:
                params = [p for g in self.optimizer.param_groups for p in g["params"]]
            self._reducer = _Norms.make(params, self._norms)
        return self._reducer

    def _pre_step(self, optimizer: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # A step is counted as it starts: values logged from inside its closure are its own.
        self._epochs.append(self._epoch)
        groups = optimizer.param_groups
        if self._lr_alone is not None and len(groups) == 1 and type(lr := groups[0]["lr"]) is float:
            # the default recording's usual case: _GroupRows.add([lr]) without the list, as it runs every step
            self._lr_alone.values.append(lr)
            self._lr_alone.widths.append(1)
        elif self._rows:
            for name, series in self._rows.items():
                if name == "lr":
                    row = [groups[0]["lr"]] if len(groups) == 1 else [g["lr"] for g in groups]
                elif name == "momentum":
                    row = _momenta(self.optimizer)
                else:
                    row = [g.get(name, math.nan) for g in groups]
                for value in row:
                    if type(value) is not float and type(value) is not int:  # bool is neither
                        row = [_snapshot_number(v, name) for v in row]
                        break
                series.add(row)
        if not self._norms:
            return None
        closure = None
        if self._want_grad:
            closure = kwargs.get("closure") if "closure" in kwargs else (args[1] if len(args) > 1 else None)
            self._grad_seen = not callable(closure)  # no closure: the gradients are taken now
        with self._no_grad:
            self._reduce().before_step(grads=self._want_grad and self._grad_seen)
        if closure is not None and not self._grad_seen:
            wrapped = self._closure_taking_grads(closure)
            if "closure" in kwargs:
                return args, {**kwargs, "closure": wrapped}
            return (args[0], wrapped, *args[2:]), kwargs
        return None

    def _take_grads(self) -> None:
        with self._no_grad:
            self._reduce().take_grads()
        self._grad_seen = True

    def _closure_taking_grads(self, closure: Callable[[], Any]) -> Callable[[], Any]:
        """The closure, taking the gradients after its first evaluation: the gradients at
        the step's starting point, which the step uses."""

        def closure_then_take_grads() -> Any:
            loss = closure()
            if not self._grad_seen:
                self._take_grads()
            return loss

        return closure_then_take_grads

    def _post_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if self._want_grad and not self._grad_seen:
            self._take_grads()  # a closure the step never called: the gradients now
        with self._no_grad:
            self._reduce().after_step(self.steps - 1)

    # -- user values --------------------------------------------------------------
    def log(self, reduce: str | None = None, **values: Any) -> None:
        """Record values for the current step: ``rec.log(loss=loss)``.

        Each value is a number or a one-element tensor. A tensor on an accelerator is kept
        (detached) on its device, not converted, so logging never synchronises with it; do
        not modify it in place afterwards (``loss /= n``): that is reported. A tensor on the
        CPU is read at once (:data:`READ_CPU_AT_LOG`), so it keeps the value it had.

        Which step a value belongs to: values logged since the previous optimizer step
        belong to the next one, so logging before or after ``step()`` both work; a value
        logged right after a step that has none for that name is that step's. With
        gradient accumulation, log every micro-batch's loss before the step that applies
        them: the values of one step are combined by ``reduce`` — ``"mean"`` unless told
        otherwise (``"sum"``, ``"first"``, ``"last"``, ``"min"``, ``"max"``), set by the
        first ``log`` of that name. A value logged after the last step, with no step
        following it, is left out of the trajectory with a warning.
        """
        if reduce is not None and reduce not in REDUCTIONS:
            raise OptcheckError(
                f"optcheck: rec.log(reduce={reduce!r}): unknown reduction.{suggest(str(reduce), REDUCTIONS)} "
                f"Known: {', '.join(REDUCTIONS)}."
            )
        steps = len(self._epochs)
        logged = self._logged
        for name, value in values.items():
            column = logged.get(name)
            if column is None or reduce is not None:
                column = self._column(name, reduce)
            column.add(steps, value)

    def _column(self, name: str, reduce: str | None) -> _Column:
        """The column of a logged name (made on its first value), its reduction set once."""
        column = self._logged.get(name)
        if column is None:
            column = self._logged[name] = self._new_logged(name)
        if reduce is None:
            column.reduce = column.reduce or DEFAULT_REDUCE
        elif column.reduce not in (None, reduce):
            raise OptcheckError(
                f"optcheck: rec.log({name}=..., reduce={reduce!r}): the values of {name!r} are "
                f"already combined by reduce={column.reduce!r}. One rule per series."
            )
        else:
            column.reduce = reduce
        return column

    def _new_logged(self, name: str) -> _Column:
        if name in HOOKED_SERIES and name in self.record or name in self._group_keys:
            source = "the optimizer's param groups" if name in self._group_keys else "the optimizer's hooks"
            raise OptcheckError(
                f"optcheck: rec.log({name}=...): {name!r} is recorded from {source}; "
                f"log your own value under another name."
            )
        return _Column(name)

    # -- result -------------------------------------------------------------------
    @property
    def trajectory(self) -> Trajectory:
        """The recorded Trajectory (series in the order of ``record``, then user series).

        Tensor values go to the host here, one transfer per series."""
        steps = self.steps
        if steps == 0:
            raise OptcheckError(self._no_step_message())
        self._check_names()
        series: dict[str, Any] = {}
        norms = {}
        if self._reducer is not None:
            norms = self._reducer.series(steps)
        names = list(self.record) + [n for n in self._logged if n not in self.record]
        for name in names:
            if name in self._rows:
                series[name] = self._rows[name].array(steps)
            elif name in norms:
                series[name] = norms[name]
            elif name in self._logged:
                series[name] = self._logged[name].series(steps)
        if not series:
            raise OptcheckError(
                f"optcheck: the recording has {steps} step(s) but no series: record names "
                f"{', '.join(map(repr, self.record)) or 'nothing'} and nothing was logged. "
                f"Log the loss each step (rec.log(loss=loss)) or record a series the recorder computes "
                f"({', '.join(HOOKED_SERIES)})."
            )
        self._warn_unstepped(steps)
        return Trajectory(series, np.array(self._epochs, dtype=np.int64), self._batch_numbers(steps))

    def _batch_numbers(self, steps: int) -> np.ndarray:
        """Each step's batch: steps since the latest restart (an ``epoch`` change)."""
        index = np.arange(steps)
        restart = np.zeros(steps, dtype=bool)
        restart[0] = True
        restart[[s for s in self._batch_starts if s < steps]] = True
        return index - np.maximum.accumulate(np.where(restart, index, 0))

    def _check_names(self) -> None:
        for name in self.record:
            if name in HOOKED_SERIES or name in self._group_keys or name in self._logged or name == "loss":
                continue
            keys = sorted({k for g in self.optimizer.param_groups for k in g if k != "params"})
            raise OptcheckError(
                f"optcheck: record names {name!r}, but it is none of the series the recorder computes "
                f"({', '.join(HOOKED_SERIES)}), not a key of {_describe(self.optimizer)}'s param groups "
                f"({', '.join(keys)}), and no value was logged under it (rec.log({name}=...))."
                f"{suggest(name, [*HOOKED_SERIES, *keys, *self._logged])}"
            )

    def _warn_unstepped(self, steps: int) -> None:
        for column in self._logged.values():
            if column.last < steps:  # entries' steps never decrease: none is late
                continue
            late = sum(1 for s in column.steps if s >= steps)
            if late:
                warnings.warn(
                    f"optcheck: {late} value(s) of {column.name!r} logged after the last optimizer step "
                    f"were left out of the trajectory: no step followed them.",
                    UserWarning,
                    stacklevel=3,
                )

    def _no_step_message(self) -> str:
        watched = _describe(self.optimizer)
        lines = [(f"optcheck: the recording saw no optimizer step: it watched {watched} "
                 f"(id {id(self.optimizer):#x}), whose step() never ran while recording.")]
        if not self._entered:
            lines.append("The recorder was never entered: use it as `with Recorder(optimizer, ...) as rec:` "
                         "(or optcheck.record(...)) around the loop.")
        logged = sum(len(column.steps) for column in self._logged.values())
        if logged:
            lines.append(f"rec.log() took {logged} value(s), so the loop ran, but it stepped "
                         f"another optimizer.")
        inner = _inner_optimizers(self.optimizer)
        if inner:
            attr, opt = inner[0]
            lines.append(f"{watched} wraps {_describe(opt)} in `.{attr}`: watch that one, whose step() runs "
                         f"the update: Recorder(optimizer.{attr}, ...) / optcheck.record(optimizer.{attr}, ...).")
        else:
            lines.append("Watch the optimizer whose step() runs the update: the one the training loop or the "
                         "trainer steps (for a wrapper such as SAM, its `base_optimizer`; for Lightning's or "
                         "Accelerate's wrapped optimizers, their `.optimizer`), created before the recorder.")
        return "\n".join(lines)


def _as_float(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise OptcheckError(
            f"optcheck: rec.log({name}=...) needs a number or a one-element tensor; "
            f"got {type(value).__name__} {value!r}."
        ) from None


def _group_key(optimizer: torch.optim.Optimizer, name: str) -> bool:
    """Whether ``name`` is recorded from the param groups: a numeric key of at least one
    group. A key whose value is not a number is refused here, with what it holds."""
    groups = [g for g in optimizer.param_groups if name in g]
    if not groups:
        return False
    for g in groups:
        if not _is_number(g[name]):
            value = g[name]
            shown = f"a tensor of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) \
                else f"{value!r} ({type(value).__name__})"
            hint = " ('momentum' records betas[0])" if name == "betas" else ""
            raise OptcheckError(
                f"optcheck: record names {name!r}, a key of {_describe(optimizer)}'s param groups, but its value "
                f"is {shown}, not a number: only numeric keys can be recorded per group{hint}."
            )
    return True


def _snapshot_number(value: Any, name: str) -> Any:
    """A param-group value as recorded at this step: a tensor (a tensor lr, which a
    scheduler updates in place) is copied on its device; a number stays a number."""
    if isinstance(value, torch.Tensor):
        return value.detach().reshape(()).clone()
    if not _is_number(value) and not (isinstance(value, float) and math.isnan(value)):
        raise OptcheckError(f"optcheck: the param groups' {name!r} became {value!r}, not a number")
    return value
