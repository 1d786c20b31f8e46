"""The distributed part of a recording: what :class:`~.recorder.Recorder` does when it runs
inside an initialised ``torch.distributed`` process group (``torchrun``, a test's fixture,
``check_distributed(run=...)``'s processes).

Each rank records on its own, with no collective per step: its loss is its shard's, its
norms are over the parameters it holds. When the trajectory is read, one exchange
(:meth:`World.gather`, an ``all_gather_object`` of every rank's per-step arrays) makes the
*global* trajectory, the same on every rank:

* a logged value (``loss``) is combined over the ranks step by step — the mean unless
  ``reduce=`` says otherwise — so the recorded loss of data-parallel ranks with equal
  shards of a batch of which the loss is a mean is the one-process loss of the whole batch;
* the param-group series (``lr``...) are rank 0's: every rank steps the same schedule;
* the norms are the whole model's: replicated parameters (DistributedDataParallel, a
  ``Replicate`` DTensor) count once, as rank 0 holds them; the shards of sharded DTensors
  (FSDP2's ``fully_shard``) are summed over their mesh — every rank's squared sums, each
  divided by how many ranks hold a copy of the same shard.

Parameters that are DTensors are read through DTensor's public API (``to_local()``, a view of
this rank's shard), so the norm reducers never mix ``torch.Tensor`` and ``DTensor``.

Every exchange first meets at a ``monitored_barrier`` with a deadline (gloo; a gloo side group
when the default group is nccl): a rank that crashed or hangs makes the others fail with a
message naming it, never a hung suite. The deadline is :data:`DEFAULT_TIMEOUT` seconds, or
the environment variable :data:`TIMEOUT_ENV`.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import torch

from ...errors import OptcheckError, suggest
from .norms import NORM_ROWS, Norms
from .series import REDUCTIONS

#: Seconds every rank waits for the others at an exchange before failing with their ranks.
DEFAULT_TIMEOUT = 300.0
TIMEOUT_ENV = "OPTCHECK_DISTRIBUTED_TIMEOUT"

#: The exchange every rank makes after each test under a launcher (:meth:`World.end_test`).
TEST_END = "the end of the test"

#: Side groups (gloo) for exchanges when the default group's backend is not gloo, by default group
#: (the group itself, not its id(): a destroyed group's id can be a later one's).
_CONTROL: dict[Any, Any] = {}


def timeout() -> float:
    """The exchanges' deadline in seconds: ``$OPTCHECK_DISTRIBUTED_TIMEOUT``, else the default."""
    value = os.environ.get(TIMEOUT_ENV)
    if not value:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not seconds > 0:
        raise OptcheckError(f"optcheck: {TIMEOUT_ENV}={value!r}: a number of seconds > 0 (e.g. 120).")
    return seconds


def test_name() -> str:
    """The running test (pytest's ``PYTEST_CURRENT_TEST`` without its phase), or ''."""
    return os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]


@dataclasses.dataclass(frozen=True)
class World:
    """The initialised default process group, as a recording sees it."""

    rank: int
    size: int
    backend: str

    def gather(self, what: str, payload: Any) -> list[Any]:
        """Every rank's ``payload``, in rank order, on every rank: one ``all_gather_object``
        after a monitored barrier. ``what`` names the exchange; ranks at another exchange
        (a rank that left a test early) fail here, naming it."""
        if self.size == 1:
            return [payload]
        tag = (what, test_name())
        out = self._exchange(tag, payload)
        strays = [f"rank {rank} is at {theirs[0]}" + (f" of {theirs[1]}" if theirs[1] else "")
                  for rank, (theirs, _) in enumerate(out) if theirs != tag]
        if strays:
            left = any(theirs == (TEST_END, tag[1]) for theirs, _ in out)
            raise OptcheckError(
                f"optcheck: rank {self.rank} of {self.size} is at {what}" + (f" of {tag[1]}" if tag[1] else "")
                + f", but {'; '.join(strays)}: "
                + ("a rank left this test early (it failed before this point, or took another path)."
                   if left else "the ranks ran different code (one failed earlier, or skipped a test).")
                + " Every rank must run the same tests and loops.")
        return [payload for _, payload in out]

    def end_test(self) -> None:
        """Every rank at the end of the same test (the plugin calls it after each test under a
        launcher), so a rank that left a test early does not shift every later exchange: the
        ranks still inside the test fail their exchange with this one (it names the rank that
        left), end the test, and meet here again."""
        if self.size == 1:
            return
        mine = (TEST_END, test_name())
        for _ in range(8):  # each round, the ranks still inside the test fail and come here
            tags = [theirs for theirs, _ in self._exchange(mine, None)]
            if all(theirs == mine for theirs in tags):
                return
            if any(theirs[1] != mine[1] for theirs in tags):
                break
        shown = "; ".join(f"rank {rank}: {theirs[0]} of {theirs[1] or '?'}" for rank, theirs in enumerate(tags))
        raise OptcheckError(f"optcheck: rank {self.rank} of {self.size} ended {mine[1]}, but the ranks are in "
                            f"different tests ({shown}). Every rank must run the same tests in the same order "
                            f"(the same -k, -x, and skips on every rank).")

    def _exchange(self, tag: tuple[str, str], payload: Any) -> list[Any]:
        """(tag, payload) of every rank: a monitored barrier with the deadline, then one
        ``all_gather_object``."""
        import torch.distributed as dist

        group = self._group()
        seconds = timeout()
        try:
            dist.monitored_barrier(group=group, timeout=datetime.timedelta(seconds=seconds), wait_all_ranks=True)
        except RuntimeError as exc:
            raise OptcheckError(
                f"optcheck: rank {self.rank} of {self.size} waited {seconds:g} s for the other ranks at {tag[0]} "
                f"and not all of them came: {str(exc).strip()}\nA rank that crashed, failed earlier in this test, "
                f"took fewer steps or waits in another collective never arrives. Every rank must run the same "
                f"tests and loops; for slow ranks raise ${TIMEOUT_ENV} (seconds).") from None
        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, (tag, payload), group=group)
        return out

    def _group(self) -> Any:
        """The group the exchanges go through: the default one when it is gloo (monitored
        barriers need gloo), else a gloo side group made once (a collective: every rank
        makes it at the same exchange)."""
        import torch.distributed as dist

        if self.backend == "gloo":
            return None
        key = dist.group.WORLD
        if key not in _CONTROL:
            _CONTROL[key] = dist.new_group(backend="gloo", timeout=datetime.timedelta(seconds=timeout()))
        return _CONTROL[key]


def current() -> World | None:
    """The initialised default process group, or None outside one."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - a torch built without distributed
        return None
    if not dist.is_available() or not dist.is_initialized():
        return None
    return World(dist.get_rank(), dist.get_world_size(), str(dist.get_backend()))


# -- combining a recording over the ranks --------------------------------------------------

#: How a logged value is combined over the ranks (``reduce=``): numpy over the rank axis.
RANK_REDUCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": lambda v: v.sum(axis=0) / v.shape[0],
    "sum": lambda v: v.sum(axis=0),
    "first": lambda v: v[0],
    "last": lambda v: v[-1],
    "min": lambda v: v.min(axis=0),
    "max": lambda v: v.max(axis=0),
}
assert set(RANK_REDUCTIONS) == set(REDUCTIONS)


class Ranks:
    """A recording's view of the ranks: its ``reduce=`` rule, its DTensor-aware norms, and
    the one exchange that makes the global trajectory (:meth:`globalise`)."""

    def __init__(self, reduce: str | Mapping[str, str] = "mean") -> None:
        rules = {"*": reduce} if isinstance(reduce, str) else dict(reduce)
        for name, rule in rules.items():
            if rule not in RANK_REDUCTIONS:
                raise OptcheckError(
                    f"optcheck: record(reduce={reduce!r}): {rule!r} for {name!r} is no way to combine the ranks' "
                    f"values.{suggest(str(rule), RANK_REDUCTIONS)} Known: {', '.join(RANK_REDUCTIONS)}.")
        self.rules = rules

    def rule(self, name: str) -> str:
        return self.rules.get(name, self.rules.get("*", "mean"))

    @staticmethod
    def norms(params: list[torch.Tensor], want: frozenset[str]) -> Norms | ShardedNorms:
        """The norm reducer: the plain one, or one that reads DTensors' local shards."""
        if any(is_dtensor(p) for p in params):
            return ShardedNorms(params, want)
        return Norms.make(params, want)

    def globalise(self, series: dict[str, Any], logged: Iterable[str], reducer: Any, steps: int) -> dict[str, Any]:
        """The global series: ``series`` as this rank recorded it, combined over the ranks
        in one exchange (nothing happens outside a process group)."""
        world = current()
        sharded = isinstance(reducer, ShardedNorms)
        if world is None or (world.size == 1 and not sharded):
            return series
        logged = [n for n in logged if n in series]
        payload = {"steps": steps, "logged": {n: series[n] for n in logged},
                   "norms": reducer.raw(steps) if sharded else None}
        everyone = world.gather("the end of a recording", payload)
        counts = [p["steps"] for p in everyone]
        if len(set(counts)) > 1:
            shown = ", ".join(f"rank {r}: {c}" for r, c in enumerate(counts))
            raise OptcheckError(
                f"optcheck: the ranks recorded different numbers of optimizer steps ({shown}), so their values "
                f"cannot be combined step by step. Give every rank the same number of batches (a "
                f"DistributedSampler with drop_last=True, or equal shards).")
        out = dict(series)
        for name in logged:
            stacked = np.stack([np.asarray(p["logged"][name], dtype=np.float64) for p in everyone])
            out[name] = RANK_REDUCTIONS[self.rule(name)](stacked)
        if sharded:
            out.update(reducer.combine([p["norms"] for p in everyone]))
        return out


# -- norms of sharded parameters ---------------------------------------------------------------


def is_dtensor(tensor: Any) -> bool:
    """Whether ``tensor`` is a DTensor. Without importing DTensor's module (seconds on a busy
    machine): where nothing imported it, no DTensor exists."""
    module = sys.modules.get("torch.distributed.tensor")
    return module is not None and isinstance(tensor, module.DTensor)


def _copies(dtensor: Any) -> int:
    """How many ranks of the world hold the same shard of ``dtensor``: the mesh's
    replicated dimensions, times the ranks outside its mesh."""
    import torch.distributed as dist

    mesh = dtensor.device_mesh
    sharded = math.prod(mesh.size(i) for i, p in enumerate(dtensor.placements) if p.is_shard())
    return max(1, dist.get_world_size() // max(1, sharded))


def _local_grad(dtensor: Any) -> torch.Tensor | None:
    """This rank's part of a DTensor's gradient, laid out like the parameter (a gradient
    placed otherwise — a pending ``Partial`` sum — is redistributed first)."""
    grad = dtensor.grad
    if grad is None:
        return None
    if not is_dtensor(grad):
        return grad
    if tuple(grad.placements) != tuple(dtensor.placements):
        grad = grad.redistribute(dtensor.device_mesh, dtensor.placements)
    return grad.to_local()


class ShardedNorms:
    """Norms of a model whose parameters are (partly) DTensors: one plain reducer over the
    local shards of the sharded ones (grouped by how many ranks hold each shard), one over
    the rest (plain tensors and replicated DTensors, whole on every rank). Each rank reduces
    what it holds; :meth:`combine` makes the whole model's norms from every rank's vectors.

    Every row of a reducer's vector is a square root of a sum of squares (``sparsity`` of a
    count, see :class:`~.norms.Norms`), so the model's row is the square root of the sum of
    the parts' squares: shards summed over the ranks (divided by their copies), whole
    tensors taken once, from rank 0."""

    def __init__(self, params: list[torch.Tensor], want: frozenset[str]) -> None:
        self.rows = tuple(n for n in NORM_ROWS if n in want)
        self.numel = sum(p.numel() for p in params)  # a DTensor's numel is the global one
        groups: dict[int, list[Any]] = {}
        for p in params:
            copies = _copies(p) if is_dtensor(p) and any(pl.is_shard() for pl in p.placements) else 0
            groups.setdefault(copies, []).append(p)
        #: (copies, reducer): copies 0 for the whole tensors, read from rank 0
        self.parts: list[tuple[int, Norms]] = [
            (copies, Norms.make(*_locals(members, want))) for copies, members in sorted(groups.items())]

    def before_step(self, grads: bool) -> None:
        for _, part in self.parts:
            part.before_step(grads)

    def take_grads(self) -> None:
        for _, part in self.parts:
            part.take_grads()

    def after_step(self, step: int) -> None:
        for _, part in self.parts:
            part.after_step(step)

    def flush(self) -> None:
        for _, part in self.parts:
            part.flush()

    def raw(self, steps: int) -> list[tuple[int, np.ndarray]]:
        """Each part's (steps, rows) vectors on the host, with its copies."""
        out = []
        for copies, part in self.parts:
            part.flush()
            out.append((copies, part.vectors.host(steps, len(self.rows))))
        return out

    def series(self, steps: int) -> dict[str, np.ndarray]:
        """This rank's own values (its shards and the whole tensors); the recording replaces
        them with :meth:`combine`'s inside a process group."""
        return self.combine([self.raw(steps)])

    def combine(self, ranks: list[list[tuple[int, np.ndarray]]]) -> dict[str, np.ndarray]:
        """The whole model's series from every rank's :meth:`raw`."""
        total: np.ndarray | Any = 0.0
        for index, (copies, _) in enumerate(ranks[0]):
            if copies == 0:
                total = total + np.square(ranks[0][index][1])
            else:
                total = total + sum(np.square(rank[index][1]) for rank in ranks) / copies
        vectors = np.sqrt(total)
        out = {name: vectors[:, i] for i, name in enumerate(self.rows)}
        if "sparsity" in out:
            count = np.rint(np.square(out["sparsity"]))
            out["sparsity"] = count / self.numel if self.numel else np.zeros_like(count)
        return out


def _locals(params: list[Any], want: frozenset[str]
            ) -> tuple[list[torch.Tensor], frozenset[str], Callable[[], list[torch.Tensor | None]]]:
    """A plain reducer's parameters and gradients for ``params``: their local tensors
    (views of the shards, which the optimizer updates in place), and their gradients read
    through the DTensors each step."""
    locals_ = [p.to_local().detach() if is_dtensor(p) else p for p in params]
    return locals_, want, lambda: [_local_grad(p) if is_dtensor(p) else p.grad for p in params]
