"""The spec trained by DistributedDataParallel over ``world_size`` local processes.

torch.distributed does the work (gloo here; nccl on GPUs): ``world_size`` processes are
spawned, meet at a free port on 127.0.0.1, and each runs the *reference loop itself*
(``train.train``) with two wrappers that make it data-parallel without copying it:

* the model is wrapped in DDP, behind a module that keeps this rank's shard of each
  global batch (``tensor_split`` of the batch, in the one-process order: rank 0 the
  first rows);
* the loss computes this rank's loss on its shard — DDP then averages the gradients —
  and *reports* the loss of the whole global batch: each rank's loss weighted by its
  shard's size, summed over ranks in rank order (``all_gather``). So the recorded loss, and the metric
  a ReduceLROnPlateau steps on, is the one-process loss whenever the loss is a mean over
  the batch, and every rank steps its scheduler on the same number.

Each rank records its trajectory and its tensors after every step (``states.StepStates``)
into a file the parent reads. The parent waits with a deadline: a rank that raises ends
the run at once (the others are terminated) with that rank's error; a rank that hangs —
in a collective its peers never reach — is terminated at the deadline with a message.
No process outlives the call.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import pickle
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...declare.build import Built, build
from ...declare.spec import Spec
from ...engine.stepwise import Run
from ...errors import OptcheckError

#: The package's own directory: its frames are left out of a rank's traceback.
_PACKAGE = str(Path(__file__).resolve().parents[2])  # pytest_optcheck/


class Shard(nn.Module):
    """The DDP model fed with this rank's rows of each global batch."""

    def __init__(self, ddp: nn.Module, rank: int, world_size: int) -> None:
        super().__init__()
        self.ddp = ddp
        self.rank = rank
        self.world_size = world_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ddp(x.tensor_split(self.world_size)[self.rank])


class ShardLoss:
    """This rank's loss for the gradient; the global batch's loss for the value."""

    def __init__(self, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], rank: int,
                 world_size: int) -> None:
        self.loss_fn = loss_fn
        self.rank = rank
        self.world_size = world_size

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        shard = target.tensor_split(self.world_size)[self.rank]
        local = self.loss_fn(pred, shard)
        with torch.no_grad():
            # Gathered and summed in rank order, not all_reduce'd: a reduction may add in
            # another order on each rank, and the ranks must step their schedulers on one number.
            totals = [torch.empty_like(local) for _ in range(self.world_size)]
            dist.all_gather(totals, local.detach() * shard.shape[0])
            combined = torch.stack(totals).sum() / target.shape[0]
        # Value exactly ``combined`` (``local - local`` is exactly 0), gradient this rank's.
        return combined + (local - local.detach())


def check_world(spec: Spec, world_size: Any, backend: str, device: str) -> None:
    """Refuse what cannot run, naming the argument and the fix, before any process starts."""
    import torch.distributed as dist

    from ...declare.catalog import resolve_optimizer

    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 2:
        raise OptcheckError(f"optcheck: check_distributed(world_size={world_size!r}): world_size must be an "
                            f"integer >= 2 (one process is the run it is compared with).")
    target = resolve_optimizer(spec.optimizer).target
    if isinstance(target, type) and issubclass(target, torch.optim.LBFGS):
        raise OptcheckError("optcheck: check_distributed() does not run LBFGS: its closure re-evaluates the loss "
                            "inside step() and its line search would need every rank's loss at every evaluation. "
                            "Check a first-order optimizer, or LBFGS against its golden.")
    available = [b for b in ("gloo", "nccl", "mpi", "ucc", "xccl")
                 if dist.is_available() and dist.is_backend_available(b)]
    if backend not in available:
        raise OptcheckError(f"optcheck: check_distributed(backend={backend!r}): this torch has no such backend "
                            f"here (available: {', '.join(available) or 'none, torch.distributed is missing'}). "
                            f"Use backend='gloo' on CPUs.")
    if backend == "nccl" and not device.startswith("cuda"):
        raise OptcheckError(f"optcheck: check_distributed(backend='nccl') needs a CUDA device; this run is on "
                            f"{device!r}. Use backend='gloo'.")
    if device.startswith("cuda") and torch.cuda.device_count() < world_size:
        raise OptcheckError(f"optcheck: check_distributed(world_size={world_size}) on {device!r} needs one GPU "
                            f"per process; {torch.cuda.device_count()} visible.")


def check_shards(n: int, batch_size: int, world_size: int) -> None:
    """Every global batch must split into equal shards: DDP averages the ranks' gradients,
    which is the one-process gradient only when the ranks' losses weigh equally."""
    sizes = {min(batch_size, n)} | ({n % batch_size} if n % batch_size else set())
    odd = sorted(s for s in sizes if s % world_size)
    if odd:
        raise OptcheckError(
            f"optcheck: check_distributed(world_size={world_size}): a global batch of {odd[0]} rows cannot be "
            f"split into {world_size} equal shards (batch_size={batch_size}, {n} rows per epoch). DDP averages "
            f"the ranks' gradients, which matches one process only for equal shards: choose batch_size and a "
            f"data size divisible by {world_size}.")


def distributed_runs(spec: Spec, world_size: int, backend: str = "gloo", device: str = "cpu",
                     timeout: float = 300.0, threads: int | None = None) -> list[Run]:
    """One Run per rank (its loss: the global batch's); raises OptcheckError when a rank
    fails or does not finish in ``timeout`` seconds."""
    payload = _payload(spec)
    context = _context()
    with tempfile.TemporaryDirectory(prefix="optcheck-ddp-") as out:
        init = f"tcp://127.0.0.1:{free_port()}"
        processes = [
            context.Process(target=_worker, daemon=True, name=f"optcheck-rank-{rank}",
                            args=(rank, world_size, init, backend, device, payload, out, threads or 1, timeout,
                                  list(sys.path), os.getcwd()))
            for rank in range(world_size)
        ]
        try:
            for process in processes:
                process.start()
            _wait(processes, timeout, Path(out))
        finally:
            _stop(processes)
        return [_read(Path(out), rank) for rank in range(world_size)]


def _context() -> Any:
    """torch.multiprocessing's forkserver where the platform has one, else spawn.

    Both start clean processes (no fork of a parent that has run torch). The forkserver
    imports torch and this module once, then forks each rank from that: measured on 2 CPU
    cores, 3 runs of 2 ranks took 23 s with spawn and 8.7 s with forkserver, each spawned
    rank paying ~1.4 s to import torch and more for the optimizers' first step. Neither
    re-runs the caller's ``__main__`` (forkserver is not asked to preload it)."""
    import multiprocessing

    import torch.multiprocessing

    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = torch.multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload([__name__, "torch._dynamo"])
    return context


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _payload(spec: Spec) -> bytes:
    """The spec and the registered names, pickled for the new processes."""
    from ...declare import catalog

    try:
        return pickle.dumps((spec, catalog._REGISTRIES))
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise OptcheckError(
            f"optcheck: check_distributed() sends the spec to new processes, so every callable in it (and every "
            f"registered name) must be importable by name; this one is not: {exc}. Use call syntax, a "
            f"module-level function or class, or functools.partial of one.") from None


def _wait(processes: list[Any], timeout: float, out: Path) -> None:
    deadline = time.monotonic() + timeout
    while True:
        codes = [p.exitcode for p in processes]
        if all(code == 0 for code in codes):
            return
        failed = [rank for rank, code in enumerate(codes) if code not in (None, 0)]
        if failed:
            raise OptcheckError(_failure_text(failed, codes, out))
        if time.monotonic() > deadline:
            running = [rank for rank, code in enumerate(codes) if code is None]
            raise OptcheckError(
                f"optcheck: check_distributed(): rank(s) {', '.join(map(str, running))} of {len(processes)} did "
                f"not finish within {timeout:g} s and were stopped. A rank that hangs usually waits in a "
                f"collective (all_reduce) its peers never reach: a rank that takes fewer steps, or skips "
                f"backward. Raise timeout= for a long run.")
        next(p for p in processes if p.exitcode is None).join(0.05)


def _failure_text(failed: list[int], codes: list[int | None], out: Path) -> str:
    """The error of the rank that failed first (the others often fail because it left)."""
    errors = sorted(out.glob("error-*.txt"), key=lambda path: path.stat().st_mtime)
    rank = int(errors[0].stem.split("-")[1]) if errors else failed[0]
    error = out / f"error-{rank}.txt"
    detail = error.read_text(encoding="utf-8") if error.exists() else f"exit code {codes[rank]} (no traceback)"
    return f"optcheck: check_distributed(): rank {rank} of {len(codes)} failed:\n{detail.rstrip()}"


def _stop(processes: list[Any]) -> None:
    """Terminate, then kill, every process still running; reap them all."""
    started = [p for p in processes if p.pid is not None]
    for process in started:
        if process.is_alive():
            process.terminate()
    for process in started:
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join()


def _read(out: Path, rank: int) -> Run:
    from ...engine.trajectory import Trajectory

    data = pickle.loads((out / f"rank-{rank}.pkl").read_bytes())
    return Run(Trajectory.from_dict(data["trajectory"]), data["tensors"])


# -- in each rank ----------------------------------------------------------------------------


def _worker(rank: int, world_size: int, init: str, backend: str, device: str, payload: bytes, out: str,
            threads: int, timeout: float, path: list[str], cwd: str) -> None:
    """One rank: train the spec data-parallel, write the Run (or the error) to ``out``.

    The caller's ``sys.path`` and working directory come first (a forkserver started
    earlier has older ones), so the spec's callables import as they do in the caller."""
    import torch.distributed as dist

    try:
        sys.path[:] = path
        os.chdir(cwd)
        spec, registries = pickle.loads(payload)
        from ...declare import catalog

        for kind, entries in registries.items():
            catalog._REGISTRIES[kind].update(entries)
        rank_device = f"cuda:{rank}" if device.startswith("cuda") else device
        # Collectives wait longer than the parent's deadline, so a hang ends in its message.
        dist.init_process_group(backend, init_method=init, rank=rank, world_size=world_size,
                                timeout=datetime.timedelta(seconds=timeout + 60))
        try:
            run = rank_run(spec, rank, world_size, rank_device, threads)
        finally:
            dist.destroy_process_group()
        data = {"trajectory": run.trajectory.to_dict(), "tensors": list(run.tensors)}
        (Path(out) / f"rank-{rank}.pkl").write_bytes(pickle.dumps(data))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, whatever it is
        (Path(out) / f"error-{rank}.txt").write_text(_user_traceback(exc), encoding="utf-8")
        os._exit(1)


def rank_run(spec: Spec, rank: int, world_size: int, device: str, threads: int | None) -> Run:
    """This rank's data-parallel run of the reference loop."""
    from torch.nn.parallel import DistributedDataParallel

    from ...run.train import train
    from .states import StepStates

    built = build(spec, device)
    ids = [built.device.index] if built.device.type == "cuda" else None
    ddp = DistributedDataParallel(built.model, device_ids=ids)
    sharded: Built = dataclasses.replace(built, model=Shard(ddp, rank, world_size),
                                         loss_fn=ShardLoss(built.loss_fn, rank, world_size))
    with StepStates(built.model, built.optimizer) as states:
        trajectory = train(spec, device, built=sharded, threads=threads)
    return Run(trajectory, states.steps)


def _user_traceback(exc: BaseException) -> str:
    """The exception with the user's and the libraries' frames, not optcheck's (a RunError
    saying which call of the loop raised: its message, then its cause's frames)."""
    if isinstance(exc, OptcheckError):
        cause = exc.__cause__
        return str(exc) if cause is None else f"{exc}\n{_user_traceback(cause)}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(_PACKAGE)]
    return ("Traceback (most recent call last; optcheck's frames left out):\n"
            + "".join(traceback.format_list(frames)) + "".join(traceback.format_exception_only(type(exc), exc)))
