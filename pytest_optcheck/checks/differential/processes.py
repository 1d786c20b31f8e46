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

With ``strategy="fsdp"`` the model is sharded by FSDP2's ``fully_shard`` (each layer with
parameters, then the whole model) instead of wrapped in DDP; its parameters and optimizer
state are compared whole (``full_tensor()``, see ``states.as_array``).

A user's own loop (``check_distributed(run=fn)``) runs the same way: ``fn(ctx)`` in each
rank, with the default process group initialised, returning its recording's (global)
Trajectory. The function travels by name — its module and qualified name, and the module's
file for test files imported under rootdir-relative names that ``sys.path`` alone cannot
find — so the rank imports the test file as pytest did.

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


def check_world(spec: Spec | None, world_size: Any, backend: str, device: str, strategy: str = "ddp") -> None:
    """Refuse what cannot run, naming the argument and the fix, before any process starts
    (``spec`` None: a user's own loop)."""
    import torch.distributed as dist

    from ...declare.catalog import resolve_optimizer

    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 2:
        raise OptcheckError(f"optcheck: check_distributed(world_size={world_size!r}): world_size must be an "
                            f"integer >= 2 (one process is the run it is compared with).")
    if strategy not in STRATEGIES:
        raise OptcheckError(f"optcheck: check_distributed(strategy={strategy!r}): one of "
                            f"{', '.join(map(repr, STRATEGIES))} (DistributedDataParallel, or FSDP2's fully_shard).")
    target = resolve_optimizer(spec.optimizer).target if spec is not None else None
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
    if backend == "nccl" and torch.cuda.device_count() < world_size:
        raise OptcheckError(f"optcheck: check_distributed(world_size={world_size}, backend='nccl') needs one GPU "
                            f"per process; {torch.cuda.device_count()} visible. Use backend='gloo' to share one.")


def check_shards(n: int, batch_size: int, world_size: int) -> None:
    """Every global batch must split into equal shards: DDP averages the ranks' gradients,
    which is the one-process gradient only when the ranks' losses weigh equally."""
    sizes = {min(batch_size, n), n % batch_size}  # the last batch's (0 when none is shorter: never odd)
    odd = sorted(s for s in sizes if s % world_size)
    if odd:
        raise OptcheckError(
            f"optcheck: check_distributed(world_size={world_size}): a global batch of {odd[0]} rows cannot be "
            f"split into {world_size} equal shards (batch_size={batch_size}, {n} rows per epoch). DDP averages "
            f"the ranks' gradients, which matches one process only for equal shards: choose batch_size and a "
            f"data size divisible by {world_size}.")


#: How the model of a spec-declared run is distributed.
STRATEGIES = ("ddp", "fsdp")


def distributed_runs(spec: Spec, world_size: int, backend: str = "gloo", device: str = "cpu",
                     timeout: float = 300.0, threads: int | None = None, strategy: str = "ddp") -> list[Run]:
    """One Run per rank (its loss: the global batch's); raises OptcheckError when a rank
    fails or does not finish in ``timeout`` seconds."""
    data = spawn({"kind": "spec", "spec": _payload(spec), "strategy": strategy}, [world_size], backend, device,
                 timeout, threads)
    return [_as_run(data[(world_size, rank)]) for rank in range(world_size)]


def loop_runs(run: Callable[[Any], Any], worlds: list[int], backend: str = "gloo", device: str = "cpu",
              timeout: float = 300.0, threads: int | None = None,
              record: tuple[str, ...] = ("loss", "lr")) -> dict[int, list[Any]]:
    """``run(ctx)`` in a world of each size in ``worlds``, all at once: world size -> the
    Trajectory of every rank."""
    from ...engine.trajectory import Trajectory

    job = {"kind": "loop", "function": function_reference(run), "record": tuple(record)}
    data = spawn(job, worlds, backend, device, timeout, threads)
    return {world: [Trajectory.from_dict(data[(world, rank)]["trajectory"]) for rank in range(world)]
            for world in worlds}


def spawn(job: dict[str, Any], worlds: list[int], backend: str, device: str, timeout: float,
          threads: int | None) -> dict[tuple[int, int], dict[str, Any]]:
    """``job`` in every rank of a world of each size in ``worlds`` (each world its own
    process group), at once; (world size, rank) -> what the rank wrote."""
    from ...run.record.world import TIMEOUT_ENV

    payload = pickle.dumps({**job, "exchange_timeout": os.environ.get(TIMEOUT_ENV)})
    context = _context()
    with tempfile.TemporaryDirectory(prefix="optcheck-ddp-") as out:
        processes: list[tuple[int, int, Any]] = []
        for world in worlds:
            init = f"tcp://127.0.0.1:{free_port()}"
            suffix = "" if worlds == [world] else f"-of-{world}"
            processes += [
                (world, rank, context.Process(
                    target=_worker, daemon=True, name=f"optcheck-rank-{rank}{suffix}",
                    args=(rank, world, init, backend, device, payload, out, threads or 1, timeout,
                          list(sys.path), os.getcwd())))
                for rank in range(world)]
        try:
            for _, _, process in processes:
                process.start()
            _wait(processes, timeout, Path(out))
        finally:
            _stop([process for _, _, process in processes])
        return {(world, rank): pickle.loads((Path(out) / f"rank-{rank}-of-{world}.pkl").read_bytes())
                for world, rank, _ in processes}


def function_reference(run: Any) -> tuple[str, str | None, str]:
    """(module, module's file, qualified name) of ``run``, which new processes import by name;
    refused, with the fix, when it is no module-level function."""
    module = getattr(run, "__module__", None)
    qualname = getattr(run, "__qualname__", None) or ""
    found: Any = sys.modules.get(module or "")
    for part in qualname.split("."):
        found = getattr(found, part, None)
    # a lambda's or a nested function's qualname ("<lambda>", "<locals>") never finds it
    if not callable(run) or module is None or found is not run or module == "__main__":
        shown = getattr(run, "__qualname__", None) or repr(run)
        raise OptcheckError(
            f"optcheck: check_distributed(run={shown}): the function runs in new processes, which import it by "
            f"name, so it must be defined at the top level of a module (the test file), not inside a test, "
            f"as a lambda, or in __main__. Move `def {shown.split('.')[-1].strip('<>')}(ctx): ...` to the "
            f"top of the test file.")
    return module, getattr(sys.modules[module], "__file__", None), qualname


def _import_function(reference: tuple[str, str | None, str]) -> Callable[[Any], Any]:
    """The function, imported by its module's name, else from its file under that name (a
    test file pytest imported under a rootdir-relative name that ``sys.path`` cannot find)."""
    import importlib
    import importlib.util

    module_name, file, qualname = reference
    try:
        module: Any = importlib.import_module(module_name)
    except ImportError:
        spec = importlib.util.spec_from_file_location(module_name, file)  # None without a file
        if spec is None or spec.loader is None:
            raise
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    for part in qualname.split("."):
        module = getattr(module, part)
    return module


class LoopContext:
    """What ``fn(ctx)`` of ``check_distributed(run=fn)`` gets in each rank: ``rank``,
    ``world_size``, ``device`` and ``record(...)`` (``optcheck.record``'s recorder, which
    records the global run), with the default process group initialised."""

    def __init__(self, rank: int, world_size: int, device: str, record: tuple[str, ...]) -> None:
        self.rank = rank
        self.world_size = world_size
        self.device = device
        self._record = record

    def __repr__(self) -> str:
        return f"LoopContext(rank={self.rank}, world_size={self.world_size}, device={self.device!r})"

    def record(self, optimizer: Any, scheduler: Any = None, model: Any = None, record: Any = None,
               reduce: Any = "mean") -> Any:
        """A recorder of the loop (``with ctx.record(optimizer, model=model) as rec:``)."""
        from ...run.own_loop import LoopRecorder

        return LoopRecorder(optimizer, scheduler, model, record=record or self._record, reduce=reduce)


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


def _wait(processes: list[tuple[int, int, Any]], timeout: float, out: Path) -> None:
    deadline = time.monotonic() + timeout
    while True:
        codes = [p.exitcode for _, _, p in processes]
        if all(code == 0 for code in codes):
            return
        failed = [(w, r, code) for (w, r, _), code in zip(processes, codes) if code not in (None, 0)]
        if failed:
            raise OptcheckError(_failure_text(failed, out))
        if time.monotonic() > deadline:
            running: dict[int, list[str]] = {}
            for (w, r, _), code in zip(processes, codes):
                if code is None:
                    running.setdefault(w, []).append(str(r))
            shown = "; ".join(f"{', '.join(ranks)} of {w}" for w, ranks in running.items())
            raise OptcheckError(
                f"optcheck: check_distributed(): rank(s) {shown} did "
                f"not finish within {timeout:g} s and were stopped. A rank that hangs usually waits in a "
                f"collective (all_reduce) its peers never reach: a rank that takes fewer steps, or skips "
                f"backward. Raise timeout= for a long run.")
        # read again: a rank that ended since `codes` was read leaves nothing to wait for here
        waiting = [p for _, _, p in processes if p.exitcode is None]
        if waiting:
            waiting[0].join(0.05)


def _failure_text(failed: list[tuple[int, int, int]], out: Path) -> str:
    """The error of the rank that failed first (the others often fail because it left)."""
    errors = sorted(out.glob("error-*.txt"), key=lambda path: path.stat().st_mtime)
    if errors:
        rank, world = (int(n) for n in errors[0].stem.split("-")[1::2])
        detail = errors[0].read_text(encoding="utf-8")
    else:
        world, rank, code = failed[0]
        detail = f"exit code {code} (no traceback)"
    return f"optcheck: check_distributed(): rank {rank} of {world} failed:\n{detail.rstrip()}"


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


def _as_run(data: dict[str, Any]) -> Run:
    from ...engine.trajectory import Trajectory

    return Run(Trajectory.from_dict(data["trajectory"]), data["tensors"])


# -- in each rank ----------------------------------------------------------------------------


def _worker(rank: int, world_size: int, init: str, backend: str, device: str, payload: bytes, out: str,
            threads: int, timeout: float, path: list[str], cwd: str) -> None:
    """One rank: run the job (a spec data-parallel, or the user's loop), write what it
    recorded (or the error) to ``out``.

    The caller's ``sys.path`` and working directory come first (a forkserver started
    earlier has older ones), so the spec's callables import as they do in the caller."""
    import torch.distributed as dist

    try:
        sys.path[:] = path
        os.chdir(cwd)
        job = pickle.loads(payload)
        from ...run.record.world import TIMEOUT_ENV

        # The ranks' own exchanges (a recording's end) give up before the parent's deadline,
        # so a rank that never arrives is named by the others rather than just stopped.
        os.environ[TIMEOUT_ENV] = job.get("exchange_timeout") or f"{max(1.0, timeout / 2):g}"
        rank_device = _rank_device(device, rank)
        if rank_device.startswith("cuda"):
            torch.cuda.set_device(torch.device(rank_device))
        # Collectives wait longer than the parent's deadline, so a hang ends in its message.
        dist.init_process_group(backend, init_method=init, rank=rank, world_size=world_size,
                                timeout=datetime.timedelta(seconds=timeout + 60))
        try:
            if job["kind"] == "spec":
                spec, registries = pickle.loads(job["spec"])
                from ...declare import catalog

                for kind, entries in registries.items():
                    catalog._REGISTRIES[kind].update(entries)
                run = rank_run(spec, rank, world_size, rank_device, threads, job["strategy"])
                data = {"trajectory": run.trajectory.to_dict(), "tensors": list(run.tensors)}
            else:
                data = {"trajectory": _loop(job, rank, world_size, rank_device, threads).to_dict()}
        finally:
            dist.destroy_process_group()
        (Path(out) / f"rank-{rank}-of-{world_size}.pkl").write_bytes(pickle.dumps(data))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, whatever it is
        (Path(out) / f"error-{rank}-of-{world_size}.txt").write_text(_user_traceback(exc), encoding="utf-8")
        os._exit(1)


def _rank_device(device: str, rank: int) -> str:
    """A rank's device: its own GPU where there are enough (nccl), else they share one (gloo)."""
    if not device.startswith("cuda"):
        return device
    return f"cuda:{rank % max(1, torch.cuda.device_count())}"


def _loop(job: dict[str, Any], rank: int, world_size: int, device: str, threads: int) -> Any:
    """The user's ``fn(ctx)`` in this rank; its Trajectory."""
    from ...engine.trajectory import Trajectory

    function = _import_function(job["function"])
    torch.set_num_threads(threads)
    result = function(LoopContext(rank, world_size, device, job["record"]))
    if not isinstance(result, Trajectory):
        raise OptcheckError(
            f"optcheck: check_distributed(run={job['function'][2]}): the function returned "
            f"{type(result).__name__}, not the Trajectory of its recording. End it with `return rec.trajectory` "
            f"(rec being `ctx.record(optimizer, model=model)`).")
    return result


def shard_layers(model: nn.Module) -> None:
    """FSDP2: ``fully_shard`` every module that holds parameters of its own, innermost
    first, then the whole model (torch >= 2.6: ``torch.distributed.fsdp.fully_shard``), over a
    mesh of the device the model is on: without one, fully_shard makes a CUDA mesh whenever
    the machine has a GPU and moves a CPU run's parameters there (seen on a GPU machine)."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard  # torch >= 2.6; the package needs >= 2.11

    device_type = next(model.parameters()).device.type
    mesh = init_device_mesh(device_type, (dist.get_world_size(),))
    modules = [m for m in model.modules() if m is not model and any(True for _ in m.parameters(recurse=False))]
    for module in reversed(modules):
        fully_shard(module, mesh=mesh)
    fully_shard(model, mesh=mesh)


def rank_run(spec: Spec, rank: int, world_size: int, device: str, threads: int | None,
             strategy: str = "ddp") -> Run:
    """This rank's data-parallel run of the reference loop (DDP, or FSDP2 shards)."""
    from torch.nn.parallel import DistributedDataParallel

    from ...run.train import train
    from .states import StepStates

    if strategy == "fsdp":
        built = build(spec, device, prepare=shard_layers)
        wrapped: nn.Module = built.model
    else:
        built = build(spec, device)
        ids = [built.device.index] if built.device.type == "cuda" else None
        wrapped = DistributedDataParallel(built.model, device_ids=ids)
    sharded: Built = dataclasses.replace(built, model=Shard(wrapped, rank, world_size),
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
            + "".join(traceback.format_list(frames)) + "".join(traceback.format_exception_only(exc)))
