"""The norm series of a recording (``grad_norm``, ``param_norm``, ``update_norm``,
``sparsity``): each step reduced to one small vector on the parameters' device, with as
few kernels as the device allows — a history buffer for small models, per-tensor norms
for the rest. See :mod:`.recorder` for what each series means.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

from .series import Vectors

#: |w| at or below this counts as zero for the ``sparsity`` series. Plain (sub)gradient
#: steps with an L1 penalty leave weights hovering near zero rather than exactly on it,
#: so an exact-zero count would always read 0; 1e-3 separates "pruned" from "small".
SPARSITY_EPS = 1e-3

#: Parameters with at most this many elements in all (on one device, of one dtype) are
#: copied into a history buffer each step and reduced many steps at a time: for small
#: models the cost of a step is the number of kernels launched, not the bytes they read.
FLAT_NUMEL = 1 << 16
#: The history of such a model is reduced every HISTORY_ROWS steps, sooner where its rows
#: would hold more than HISTORY_BYTES.
HISTORY_ROWS = 256
HISTORY_BYTES = 8 << 20


def _accumulator(device: torch.device) -> torch.dtype:
    """Norms accumulate in float64 wherever the device has it (MPS has not)."""
    return torch.float32 if device.type == "mps" else torch.float64


def _dense(grad: torch.Tensor) -> torch.Tensor:
    return grad.to_dense() if grad.layout != torch.strided else grad


#: The norm series in the order of the per-step vector a reducer returns.
NORM_ROWS = ("param_norm", "update_norm", "grad_norm", "sparsity")


class Norms:
    """The norm series of one recording: each step reduced to one small vector on the
    parameters' device, its entries the wanted ones of :data:`NORM_ROWS` in that order
    (``sparsity`` as the square root of the count of small weights: see :meth:`values`).
    Two ways, one meaning: :class:`_HistoryNorms` (small models) and
    :class:`_ForeachNorms` (the rest)."""

    def __init__(self, params: list[torch.Tensor], want: frozenset[str],
                 grads: Callable[[], list[torch.Tensor | None]] | None = None) -> None:
        self.params = params
        self.want = want
        #: the gradients the step uses, one per parameter (a sharded model's: its shards')
        self.grads = grads or (lambda: [p.grad for p in params])
        self.rows = tuple(n for n in NORM_ROWS if n in want)
        self.numel = sum(p.numel() for p in params)
        devices = {p.device for p in params}
        self.device = params[0].device if params else torch.device("cpu")
        self.acc = _accumulator(self.device) if len(devices) <= 1 else torch.float64
        self.vectors = Vectors()  # the steps' vectors, on the device

    @staticmethod
    def make(params: list[torch.Tensor], want: frozenset[str],
             grads: Callable[[], list[torch.Tensor | None]] | None = None) -> Norms:
        devices = {p.device for p in params}
        dtypes = {p.dtype for p in params}
        small = sum(p.numel() for p in params) <= FLAT_NUMEL
        if params and len(devices) == 1 and len(dtypes) == 1 and small:
            return _HistoryNorms(params, want, grads)
        return _ForeachNorms(params, want, grads)

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


class _HistoryNorms(Norms):
    """Small models on one device, where a step costs the kernels launched, not the bytes
    read. Each step copies what the series need — the starting point and the gradients
    before the step (one ``torch._foreach_copy_``), the parameters after it (another) — into
    a staging block of views made once, and the block into one row of a history buffer; it
    reduces nothing. Every :data:`HISTORY_ROWS` steps (and when the trajectory is read) a
    few kernels reduce all the rows at once: norms of rows, of differences of rows, counts.

    update_norm copies each step's starting point rather than taking the previous step's
    row: that would hold only if nothing touched the parameters in between, and an edit
    through ``.data`` (weight clipping) leaves no trace to check that by.

    The copies are ``torch._foreach_copy_`` (documented in torch's reference among the
    "foreach" operations, beta), the one underscore name the package keeps, because the
    public alternative costs far more than 1% a step: ``torch.cat([p.reshape(-1), ...], out=row)``
    measured +17 us/step with every series on the seed net's parameters (400 SGD steps, the
    two versions interleaved in one process, thread clock; a seed-net step is ~190-280 us)."""

    PARTS = ("before", "grads", "after")

    def __init__(self, params: list[torch.Tensor], want: frozenset[str],
                 grads: Callable[[], list[torch.Tensor | None]] | None = None) -> None:
        super().__init__(params, want, grads)
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
                torch._foreach_copy_(self.before_and_grads, self.params + self.grads())
                return
            except (TypeError, RuntimeError):  # a parameter without a gradient, or a sparse one
                pass
        if update:
            torch._foreach_copy_(self.views["before"], self.params)
        if grads:
            self.take_grads()

    def take_grads(self) -> None:
        grads = self.grads()
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
            else:  # sparsity, as the square root of the count (see Norms.values)
                columns.append(part["after"].abs().le_(SPARSITY_EPS).sum(dim=1, dtype=acc).sqrt_())
        self.vectors.add_rows(self.steps, torch.stack(columns, dim=1))
        self.steps, self.row = [], 0



class _ForeachNorms(Norms):
    """Large models, several devices or dtypes: per-tensor norms (``torch.linalg.vector_norm``,
    accumulated in float64) reduced to one per series; update_norm keeps the step's starting
    point in buffers allocated once. On a large model a step's cost is the bytes read, which
    fused kernels would not reduce."""

    def __init__(self, params: list[torch.Tensor], want: frozenset[str],
                 grads: Callable[[], list[torch.Tensor | None]] | None = None) -> None:
        super().__init__(params, want, grads)
        self.snapshot: list[torch.Tensor] | None = None
        self.grad_norm: torch.Tensor | None = None

    def total_norm(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        """The L2 norm of all ``tensors`` together, as a 0-d tensor on the first device."""
        if not tensors:
            return torch.zeros((), dtype=self.acc, device=self.device)
        partial = []
        for device, group in _by_device(tensors).items():
            acc = _accumulator(device)
            norms = [torch.linalg.vector_norm(t, dtype=acc) for t in group]
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
            for kept, p in zip(self.snapshot, self.params):
                kept.copy_(p)

    def take_grads(self) -> None:
        self.grad_norm = self.total_norm([_dense(g) for g in self.grads() if g is not None])

    def after_step(self, step: int) -> None:
        values = []
        for name in self.rows:
            if name == "param_norm":
                values.append(self.total_norm(self.params))
            elif name == "update_norm":
                assert self.snapshot is not None
                for kept, p in zip(self.snapshot, self.params):
                    kept.sub_(p)  # before - after: the same norm
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


def _by_device(tensors: Iterable[torch.Tensor]) -> dict[torch.device, list[torch.Tensor]]:
    out: dict[torch.device, list[torch.Tensor]] = {}
    for t in tensors:
        out.setdefault(t.device, []).append(t)
    return out

