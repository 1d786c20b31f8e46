"""checks/differential/processes.py and distributed.py in this process, no rank spawned: the
refusals (pinned whole), a rank's shard and its loss, the parent's waiting, stopping and
failure texts, how a run= function travels by name, a rank's own work (``_worker``, the DDP
and FSDP2 runs) in a real gloo world of one process, and how check_distributed compares the
ranks' runs it is given. Where only several processes could answer (other ranks' losses, the
runs of a 2-process world, a process that ends), the answers are scripted at one seam:
``torch.distributed.all_gather``, ``processes.distributed_runs`` / ``loop_runs``, or the
process objects ``_wait`` / ``_stop`` look at. The spawning itself is
tests/unit/checks/test_distributed.py's (real gloo processes)."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import re
import socket
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.distributed as dist
from torch import nn

from pytest_optcheck.checks.differential import processes
from pytest_optcheck.checks.differential.distributed import (
    check_distributed,
    check_distributed_loop,
)
from pytest_optcheck.checks.differential.processes import (
    LoopContext,
    Shard,
    ShardLoss,
    _as_run,
    _failure_text,
    _import_function,
    _loop,
    _payload,
    _rank_device,
    _stop,
    _user_traceback,
    _wait,
    _worker,
    check_shards,
    check_world,
    distributed_runs,
    function_reference,
    loop_runs,
    rank_run,
    shard_layers,
    spawn,
)
from pytest_optcheck.checks.differential.states import record_run
from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.engine.outcome import Status
from pytest_optcheck.engine.stepwise import Run
from pytest_optcheck.engine.tolerance import Tolerance
from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.errors import OptcheckError
from pytest_optcheck.run.record.world import TIMEOUT_ENV

#: 1 epoch of 4 batches of 250 rows: a few milliseconds.
TINY = Spec(epochs=1, batch_size=250)
HERE = __name__


def error(call, *args, **kwargs) -> str:
    with pytest.raises(OptcheckError) as caught:
        call(*args, **kwargs)
    return str(caught.value)


@pytest.fixture
def world_of_one(tmp_path):
    """A real gloo process group of this one process, destroyed after the test."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        yield
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@pytest.fixture
def in_process(monkeypatch):
    """A rank's work run here: its os._exit(1) raises instead of ending the test process, and
    what it sets process-wide (sys.path, the cwd, the exchange deadline, torch's threads) is put back."""

    class Exited(Exception):
        pass

    def exit_(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(os, "_exit", exit_)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(os.getcwd())
    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    threads = torch.get_num_threads()
    try:
        yield Exited
    finally:
        torch.set_num_threads(threads)
        assert not dist.is_initialized()


# -- the run= functions (module level: they travel by name) -------------------------------------

SEEN: dict[str, Any] = {}


def tiny_loop(ctx):
    """2 SGD steps of a 1-weight model; notes what the rank saw."""
    SEEN.update(ctx=repr(ctx), threads=torch.get_num_threads(), cwd=os.getcwd(), deadline=os.environ.get(TIMEOUT_ENV),
                world=dist.get_world_size() if dist.is_initialized() else None)
    if dist.is_initialized():  # the group's backend and its collectives' timeout (a private attribute)
        SEEN.update(backend=dist.get_backend(),
                    group_timeout=dist.group.WORLD._get_backend(torch.device("cpu")).options._timeout)
    weight = nn.Parameter(torch.ones(1))
    optimizer = torch.optim.SGD([weight], lr=0.125)
    with ctx.record(optimizer) as rec:
        for _ in range(2):
            loss = (weight * 2.0).pow(2).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            rec.log(loss=loss)
    return rec.trajectory


def returns_a_number(ctx):
    return 1.5


def raises_on_purpose(ctx):
    raise ValueError("the user's loop broke")


def raises_in_german(ctx):
    raise ValueError("Verlust \u2265 0 erwartet, \u00fcberpr\u00fcfe die Daten")


class Holder:
    @staticmethod
    def method(ctx):
        return ctx


class NotCallable:
    """Named like a module-level function, found by that name, but nothing to call."""

    def __init__(self) -> None:
        self.__module__, self.__qualname__ = __name__, "NOT_CALLABLE"


NOT_CALLABLE = NotCallable()


class ThreadsSeen(nn.MSELoss):
    """The loss of a spec: notes the intra-op threads the run trains with."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        SEEN["loss threads"] = torch.get_num_threads()
        return super().forward(pred, target)


# -- a rank's shard of each global batch, and the loss it reports ------------------------------


def test_a_rank_feeds_its_own_rows_in_the_one_process_order() -> None:
    rows = torch.arange(7.0).reshape(7, 1)
    assert [Shard(nn.Identity(), rank, 3)(rows).flatten().tolist() for rank in range(3)] == [
        [0.0, 1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    shard = Shard(nn.Linear(1, 1), 1, 3)
    assert (shard.rank, shard.world_size) == (1, 3) and isinstance(shard.ddp, nn.Linear)


def test_the_reported_loss_is_the_global_batchs_and_the_gradient_this_ranks(monkeypatch) -> None:
    """3 ranks over 7 rows (shards of 3, 2, 2): rank 2's value is every rank's loss weighted by
    its shard's size; its gradient is that of its own shard's loss only."""
    generator = torch.Generator().manual_seed(0)
    pred_all, target = torch.randn(7, 1, generator=generator), torch.randn(7, 1, generator=generator)
    mse = nn.MSELoss()
    shards = [(p, t) for p, t in zip(pred_all.tensor_split(3), target.tensor_split(3))]
    sent: list[torch.Tensor] = []

    def all_gather(totals: list[torch.Tensor], tensor: torch.Tensor) -> None:  # what the 3 ranks send
        assert len(totals) == 3 and not tensor.requires_grad
        sent.append(tensor)
        for rank, (p, t) in enumerate(shards):
            totals[rank].copy_(tensor if rank == 2 else mse(p, t) * t.shape[0])

    monkeypatch.setattr(dist, "all_gather", all_gather)
    pred = shards[2][0].clone().requires_grad_(True)
    value = ShardLoss(mse, 2, 3)(pred, target)
    torch.testing.assert_close(sent[0], mse(*shards[2]) * 2)
    torch.testing.assert_close(value, mse(pred_all, target), rtol=1e-6, atol=0)
    value.backward()
    torch.testing.assert_close(pred.grad, 2 * (shards[2][0] - shards[2][1]) / 2)


def test_in_a_world_of_one_the_shard_loss_is_the_loss(world_of_one) -> None:
    pred = torch.tensor([[1.0], [2.0], [4.0]], requires_grad=True)
    target = torch.zeros(3, 1)
    value = ShardLoss(nn.MSELoss(), 0, 1)(pred, target)
    assert value.item() == pytest.approx(7.0)
    value.backward()
    assert pred.grad.flatten().tolist() == pytest.approx([2 / 3, 4 / 3, 8 / 3])


# -- refusals before any process starts -------------------------------------------------------


@pytest.mark.parametrize("world_size", [1, 0, True, 2.0, "2", None])
def test_a_world_size_that_is_no_integer_of_at_least_two_is_refused(world_size) -> None:
    assert error(check_world, TINY, world_size, "gloo", "cpu") == (
        f"optcheck: check_distributed(world_size={world_size!r}): world_size must be an integer >= 2 (one process "
        f"is the run it is compared with).")


def test_a_good_world_passes_and_its_strategy_is_one_of_two() -> None:
    assert check_world(TINY, 2, "gloo", "cpu") is None
    assert check_world(None, 3, "gloo", "cpu", "fsdp") is None
    assert error(check_world, TINY, 2, "gloo", "cpu", "zero3") == (
        "optcheck: check_distributed(strategy='zero3'): one of 'ddp', 'fsdp' (DistributedDataParallel, or FSDP2's "
        "fully_shard).")


def test_lbfgs_is_refused_for_a_spec_and_a_users_loop_is_not_asked() -> None:
    assert error(check_world, Spec(optimizer="LBFGS(lr=0.1)"), 2, "gloo", "cpu") == (
        "optcheck: check_distributed() does not run LBFGS: its closure re-evaluates the loss inside step() and its "
        "line search would need every rank's loss at every evaluation. Check a first-order optimizer, or LBFGS "
        "against its golden.")
    assert check_world(Spec(optimizer="Adam(lr=0.1)"), 2, "gloo", "cpu") is None


def test_a_backend_this_torch_lacks_is_refused_naming_those_it_has(monkeypatch) -> None:
    assert error(check_world, TINY, 2, "no-such", "cpu") == (
        "optcheck: check_distributed(backend='no-such'): this torch has no such backend here (available: gloo). "
        "Use backend='gloo' on CPUs.")
    monkeypatch.setattr(dist, "is_backend_available", lambda name: True)
    assert "(available: gloo, nccl, mpi, ucc, xccl)" in error(check_world, TINY, 2, "no-such", "cpu")
    monkeypatch.setattr(dist, "is_available", lambda: False)
    assert error(check_world, TINY, 2, "gloo", "cpu") == (
        "optcheck: check_distributed(backend='gloo'): this torch has no such backend here (available: none, "
        "torch.distributed is missing). Use backend='gloo' on CPUs.")


def test_nccl_needs_a_cuda_device_and_a_gpu_per_rank(monkeypatch) -> None:
    monkeypatch.setattr(dist, "is_backend_available", lambda name: name in ("gloo", "nccl"))
    assert error(check_world, TINY, 2, "nccl", "cpu") == (
        "optcheck: check_distributed(backend='nccl') needs a CUDA device; this run is on 'cpu'. Use backend='gloo'.")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert error(check_world, TINY, 2, "nccl", "cuda:0") == (
        "optcheck: check_distributed(world_size=2, backend='nccl') needs one GPU per process; 1 visible. Use "
        "backend='gloo' to share one.")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert check_world(TINY, 2, "nccl", "cuda") is None
    assert check_world(TINY, 3, "gloo", "cuda") is None  # gloo: the ranks share a GPU


@pytest.mark.parametrize(("n", "batch_size", "world_size", "odd"), [
    (1000, 33, 2, 33),  # every batch
    (1000, 300, 3, 100),  # the last, shorter batch only
    (10, 32, 4, 10),  # one batch, smaller than batch_size
    (10, 3, 2, 1),  # both odd: the smallest is named
])
def test_a_global_batch_that_splits_into_unequal_shards_is_refused(n, batch_size, world_size, odd) -> None:
    assert error(check_shards, n, batch_size, world_size) == (
        f"optcheck: check_distributed(world_size={world_size}): a global batch of {odd} rows cannot be split into "
        f"{world_size} equal shards (batch_size={batch_size}, {n} rows per epoch). DDP averages the ranks' "
        f"gradients, which matches one process only for equal shards: choose batch_size and a data size divisible "
        f"by {world_size}.")


@pytest.mark.parametrize(("n", "batch_size", "world_size"), [(1000, 200, 2), (12, 32, 4), (8, 4, 4), (10, 4, 2)])
def test_batches_that_split_evenly_pass(n, batch_size, world_size) -> None:
    assert check_shards(n, batch_size, world_size) is None


def test_a_spec_that_cannot_travel_is_refused_with_the_fix() -> None:
    assert error(_payload, Spec(loss=lambda pred, target: pred)).startswith(
        "optcheck: check_distributed() sends the spec to new processes, so every callable in it (and every "
        "registered name) must be importable by name; this one is not: ")
    assert error(_payload, Spec(loss=lambda pred, target: pred)).endswith(
        ". Use call syntax, a module-level function or class, or functools.partial of one.")
    from pytest_optcheck.declare import catalog

    assert pickle.loads(_payload(TINY)) == (TINY, catalog._REGISTRIES)


# -- the run= function travels by name ----------------------------------------------------------


def test_a_module_level_function_is_named_by_module_file_and_qualified_name() -> None:
    assert function_reference(tiny_loop) == (HERE, __file__, "tiny_loop")
    assert function_reference(Holder.method) == (HERE, __file__, "Holder.method")
    assert function_reference(len) == ("builtins", None, "len")  # a module without a file


def fix(shown: str, name: str) -> str:
    return (f"optcheck: check_distributed(run={shown}): the function runs in new processes, which import it by "
            f"name, so it must be defined at the top level of a module (the test file), not inside a test, as a "
            f"lambda, or in __main__. Move `def {name}(ctx): ...` to the top of the test file.")


def test_what_new_processes_cannot_import_is_refused_with_the_fix(monkeypatch) -> None:
    def innerX(ctx):
        return ctx

    qualname = "test_what_new_processes_cannot_import_is_refused_with_the_fix.<locals>"
    assert error(function_reference, innerX) == fix(f"{qualname}.innerX", "innerX")
    assert error(function_reference, NOT_CALLABLE) == fix("NOT_CALLABLE", "NOT_CALLABLE")
    assert error(function_reference, lambda ctx: ctx) == fix(f"{qualname}.<lambda>", "lambda")
    assert error(function_reference, 3) == fix("3", "3")
    in_main = type(tiny_loop)(tiny_loop.__code__, {}, "main_loop")
    in_main.__module__, in_main.__qualname__ = "__main__", "main_loop"
    monkeypatch.setattr(sys.modules["__main__"], "main_loop", in_main, raising=False)  # found there, still refused
    assert error(function_reference, in_main) == fix("main_loop", "main_loop")
    no_module = type(tiny_loop)(tiny_loop.__code__, {}, "loose")
    no_module.__module__, no_module.__qualname__ = None, "loose"
    assert error(function_reference, no_module) == fix("loose", "loose")
    impostor = type(tiny_loop)(tiny_loop.__code__, {}, "tiny_loop")  # its name finds another function
    impostor.__module__ = HERE
    assert error(function_reference, impostor) == fix("tiny_loop", "tiny_loop")


def test_a_function_is_imported_by_its_modules_name_else_from_its_file(tmp_path) -> None:
    assert _import_function((HERE, None, "tiny_loop")) is tiny_loop
    assert _import_function((HERE, "/nowhere.py", "Holder.method")) is Holder.method
    (tmp_path / "test_far.py").write_text("def loop(ctx):\n    return ctx * 2\n")
    name = "somewhere.under.rootdir.test_far_parts"
    try:
        function = _import_function((name, str(tmp_path / "test_far.py"), "loop"))
        assert function(21) == 42 and sys.modules[name].loop is function
    finally:
        sys.modules.pop(name, None)
    with pytest.raises(ModuleNotFoundError, match="no_such_module_here"):
        _import_function(("no_such_module_here", None, "loop"))
    (tmp_path / "notes.txt").write_text("not python")
    with pytest.raises(ModuleNotFoundError, match="no_such_module_here"):
        _import_function(("no_such_module_here", str(tmp_path / "notes.txt"), "loop"))


def test_the_loops_context_says_where_it_runs_and_records_the_global_run() -> None:
    ctx = LoopContext(1, 4, "cpu", ("loss", "lr", "grad_norm"))
    assert (ctx.rank, ctx.world_size, ctx.device) == (1, 4, "cpu")
    assert repr(ctx) == "LoopContext(rank=1, world_size=4, device='cpu')"
    weight = nn.Parameter(torch.ones(1))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1)
    model = nn.Linear(1, 1)
    rec = ctx.record(optimizer, scheduler, model)
    assert (rec.optimizer, rec.scheduler, rec.model) == (optimizer, scheduler, model)
    assert rec.record == ("loss", "lr", "grad_norm") and rec._ranks.rules == {"*": "mean"}
    rec = ctx.record(optimizer, record=("loss",), reduce="sum")
    assert rec.record == ("loss",) and rec._ranks.rules == {"*": "sum"}


# -- the parent: waiting, the failure, stopping ----------------------------------------------------


class Rank:
    """What _wait and _stop look at of a process: its exit code, joins, signals."""

    def __init__(self, exitcode: int | None = None, pid: int | None = 1, stubborn: bool = False) -> None:
        self.exitcode, self.pid, self.stubborn = exitcode, pid, stubborn
        self.calls: list[tuple] = []

    def is_alive(self) -> bool:
        return self.pid is not None and self.exitcode is None

    def join(self, timeout: float | None = None) -> None:
        self.calls.append(("join", timeout))

    def terminate(self) -> None:
        self.calls.append(("terminate",))
        if not self.stubborn:
            self.exitcode = -15

    def kill(self) -> None:
        self.calls.append(("kill",))
        self.exitcode = -9


def test_waiting_returns_once_every_rank_ended_well(tmp_path) -> None:
    ranks = [Rank(0), Rank(0)]
    _wait([(2, 0, ranks[0]), (2, 1, ranks[1])], 5, tmp_path)
    assert ranks[0].calls == ranks[1].calls == []


def test_waiting_polls_the_first_running_rank_a_twentieth_of_a_second(tmp_path) -> None:
    class EndsAtItsJoin(Rank):
        def join(self, timeout: float | None = None) -> None:
            super().join(timeout)
            self.exitcode = 0

    done, running, later = Rank(0), EndsAtItsJoin(), EndsAtItsJoin()
    _wait([(2, 0, done), (2, 1, running), (3, 0, later)], 60, tmp_path)
    assert done.calls == [] and running.calls == [("join", 0.05)] and later.calls == [("join", 0.05)]


def test_a_rank_that_failed_ends_the_wait_with_its_error(tmp_path) -> None:
    (tmp_path / "error-1-of-2.txt").write_text("ValueError: the user's loss broke on rank 1\n", encoding="utf-8")
    running = Rank(None)
    assert error(_wait, [(2, 0, running), (2, 1, Rank(1))], 60, tmp_path) == (
        "optcheck: check_distributed(): rank 1 of 2 failed:\nValueError: the user's loss broke on rank 1")
    assert running.calls == []


def test_a_rank_that_died_without_a_word_ends_the_wait_with_its_exit_code(tmp_path) -> None:
    assert error(_wait, [(2, 0, Rank(None)), (2, 1, Rank(-11))], 60, tmp_path) == (
        "optcheck: check_distributed(): rank 1 of 2 failed:\nexit code -11 (no traceback)")


def test_ranks_still_running_at_the_deadline_are_named_by_world(tmp_path) -> None:
    ranks = [(1, 0, Rank(None)), (2, 0, Rank(0)), (2, 1, Rank(None)), (3, 0, Rank(None)), (3, 2, Rank(None))]
    assert error(_wait, ranks, 0, tmp_path) == (
        "optcheck: check_distributed(): rank(s) 0 of 1; 1 of 2; 0, 2 of 3 did not finish within 0 s and were "
        "stopped. A rank that hangs usually waits in a collective (all_reduce) its peers never reach: a rank that "
        "takes fewer steps, or skips backward. Raise timeout= for a long run.")


def test_the_failure_named_is_the_first_rank_to_write_one(tmp_path) -> None:
    (tmp_path / "error-0-of-2.txt").write_text("RuntimeError: rank 1 left\n", encoding="utf-8")
    (tmp_path / "error-1-of-2.txt").write_text("ValueError: first\n\n", encoding="utf-8")
    os.utime(tmp_path / "error-0-of-2.txt", (2_000_000_000, 2_000_000_000))
    os.utime(tmp_path / "error-1-of-2.txt", (1_000_000_000, 1_000_000_000))
    assert _failure_text([(2, 0, 1), (2, 1, 1)], tmp_path) == (
        "optcheck: check_distributed(): rank 1 of 2 failed:\nValueError: first")


def test_a_rank_that_died_without_a_word_is_named_with_its_exit_code(tmp_path) -> None:
    assert _failure_text([(4, 3, -9), (4, 0, 1)], tmp_path) == (
        "optcheck: check_distributed(): rank 3 of 4 failed:\nexit code -9 (no traceback)")


def test_stopping_terminates_then_kills_and_reaps_every_started_rank() -> None:
    polite, stubborn, ended, never_started = Rank(None), Rank(None, stubborn=True), Rank(0), Rank(None, pid=None)
    _stop([polite, stubborn, ended, never_started])
    assert polite.calls == [("terminate",), ("join", 5)]
    assert stubborn.calls == [("terminate",), ("join", 5), ("kill",), ("join", None)]
    assert ended.calls == [("join", 5)]
    assert never_started.calls == []


def test_forkserver_starts_the_ranks_with_this_module_and_dynamo_loaded(monkeypatch) -> None:
    from multiprocessing import forkserver

    monkeypatch.setattr(forkserver._forkserver, "_preload_modules", ["__main__"])
    context = processes._context()
    assert context.get_start_method() == "forkserver"
    assert forkserver._forkserver._preload_modules == [processes.__name__, "torch._dynamo"]


def test_without_a_forkserver_the_ranks_are_spawned(monkeypatch) -> None:
    from multiprocessing import forkserver

    monkeypatch.setattr(forkserver._forkserver, "_preload_modules", ["__main__"])
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    assert processes._context().get_start_method() == "spawn"
    assert forkserver._forkserver._preload_modules == ["__main__"]


def test_a_free_port_is_one_this_process_can_listen_on() -> None:
    port = processes.free_port()
    assert isinstance(port, int) and 1024 < port < 65536
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))


# -- a rank's own work, in a world of one ---------------------------------------------------


def test_a_ranks_device_is_its_own_gpu_where_there_are_enough(monkeypatch) -> None:
    assert _rank_device("cpu", 3) == "cpu"
    assert _rank_device("mps", 1) == "mps"
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert _rank_device("cuda", 3) == "cuda:0"
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert [_rank_device("cuda:1", rank) for rank in range(4)] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]


def test_the_users_loop_runs_with_the_threads_given_and_must_return_a_trajectory(in_process) -> None:
    job = {"function": (HERE, __file__, "tiny_loop"), "record": ("loss",)}
    trajectory = _loop(job, 1, 3, "cpu", 2)
    assert isinstance(trajectory, Trajectory) and trajectory.names == ["loss"]
    assert SEEN["ctx"] == "LoopContext(rank=1, world_size=3, device='cpu')" and SEEN["threads"] == 2
    assert error(_loop, {"function": (HERE, None, "returns_a_number"), "record": ("loss",)}, 0, 2, "cpu", 1) == (
        "optcheck: check_distributed(run=returns_a_number): the function returned float, not the Trajectory of its "
        "recording. End it with `return rec.trajectory` (rec being `ctx.record(optimizer, model=model)`).")


def test_a_rank_runs_the_users_loop_in_its_group_and_writes_the_global_trajectory(in_process, tmp_path) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "cwd"
    out.mkdir(), elsewhere.mkdir()
    job = {"kind": "loop", "function": (HERE, __file__, "tiny_loop"), "record": ("loss", "lr"),
           "exchange_timeout": None}
    path = [str(tmp_path), *sys.path]
    _worker(0, 1, f"file://{tmp_path / 'store'}", "gloo", "cpu", pickle.dumps(job), str(out), 3, 9.0, path, str(elsewhere))
    assert sorted(p.name for p in out.iterdir()) == ["rank-0-of-1.pkl"]
    data = pickle.loads((out / "rank-0-of-1.pkl").read_bytes())
    assert list(data) == ["trajectory"]
    trajectory = Trajectory.from_dict(data["trajectory"])
    assert trajectory.names == ["loss", "lr"] and trajectory["loss"].tolist() == [4.0, 0.0]
    assert SEEN["world"] == 1 and SEEN["threads"] == 3 and SEEN["deadline"] == "4.5"
    assert SEEN["cwd"] == str(elsewhere) and sys.path == path
    assert SEEN["backend"] == "gloo" and SEEN["group_timeout"].total_seconds() == 69.0  # the deadline + 60 s


def test_a_rank_on_cuda_takes_its_own_gpu_before_it_joins_the_group(in_process, monkeypatch, tmp_path) -> None:
    chosen: list[Any] = []
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: chosen.append((device, dist.is_initialized())))
    job = {"kind": "loop", "function": (HERE, __file__, "tiny_loop"), "record": ("loss",), "exchange_timeout": None}
    _worker(0, 1, f"file://{tmp_path / 'store'}", "gloo", "cuda", pickle.dumps(job), str(tmp_path), 1, 5.0,
            list(sys.path), os.getcwd())
    assert chosen == [(torch.device("cuda:0"), False)]
    assert SEEN["ctx"] == "LoopContext(rank=0, world_size=1, device='cuda:0')"


def test_a_ranks_exchange_deadline_is_the_callers_else_half_the_checks_at_least_a_second(in_process, tmp_path) -> None:
    for exchange, timeout, seen in ((None, 1.0, "1"), ("7.5", 100.0, "7.5"), ("", 300.0, "150")):
        job = {"kind": "loop", "function": (HERE, __file__, "tiny_loop"), "record": ("loss",),
               "exchange_timeout": exchange}
        _worker(0, 1, f"file://{tmp_path / str(timeout)}", "gloo", "cpu", pickle.dumps(job), str(tmp_path), 1,
                timeout, list(sys.path), os.getcwd())
        assert SEEN["deadline"] == seen


def test_a_rank_that_fails_writes_the_users_traceback_and_exits_with_1(in_process, tmp_path) -> None:
    job = {"kind": "loop", "function": (HERE, __file__, "raises_on_purpose"), "record": ("loss",),
           "exchange_timeout": None}
    with pytest.raises(in_process) as exited:
        _worker(0, 1, f"file://{tmp_path / 'store'}", "gloo", "cpu", pickle.dumps(job), str(tmp_path), 1, 5.0,
                list(sys.path), os.getcwd())
    assert exited.value.args == (1,)
    text = (tmp_path / "error-0-of-1.txt").read_text(encoding="utf-8")
    assert text.startswith("Traceback (most recent call last; optcheck's frames left out):\n")
    assert "test_processes_parts.py" in text and "pytest_optcheck" not in text
    assert text.endswith("ValueError: the user's loop broke\n")
    assert not (tmp_path / "rank-0-of-1.pkl").exists()


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_a_rank_runs_a_spec_data_parallel_and_writes_its_run(in_process, monkeypatch, tmp_path, strategy) -> None:
    from pytest_optcheck.declare import catalog

    sharded = sharded_layers(monkeypatch)
    spec = Spec(epochs=1, batch_size=250, loss=ThreadsSeen)
    job = {"kind": "spec", "spec": _payload(spec), "strategy": strategy, "exchange_timeout": None}
    torch.set_num_threads(1)
    _worker(0, 1, f"file://{tmp_path / 'store'}", "gloo", "cpu", pickle.dumps(job), str(tmp_path), 3, 5.0,
            list(sys.path), os.getcwd())
    assert SEEN["loss threads"] == 3 and len(sharded) == (strategy == "fsdp")
    written = _as_run(pickle.loads((tmp_path / "rank-0-of-1.pkl").read_bytes()))
    single = record_run(spec)
    assert written.trajectory.names == single.trajectory.names
    np.testing.assert_allclose(written.trajectory["loss"], single.trajectory["loss"], rtol=1e-6)
    assert [list(step) for step in written.tensors] == [list(step) for step in single.tensors]
    assert "registries" not in catalog._REGISTRIES


def test_a_ranks_error_travels_in_utf_8_whatever_the_locale(in_process, tmp_path) -> None:
    import locale

    job = {"kind": "loop", "function": (HERE, __file__, "raises_in_german"), "record": ("loss",),
           "exchange_timeout": None}
    before = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")  # an ASCII locale: its default encoding cannot write the message
    try:
        with pytest.raises(in_process):
            _worker(0, 1, f"file://{tmp_path / 'store'}", "gloo", "cpu", pickle.dumps(job), str(tmp_path), 1, 5.0,
                    list(sys.path), os.getcwd())
        text = _failure_text([(1, 0, 1)], tmp_path)
    finally:
        locale.setlocale(locale.LC_CTYPE, before)
    assert text.endswith("\nValueError: Verlust \u2265 0 erwartet, \u00fcberpr\u00fcfe die Daten")


def sharded_layers(monkeypatch) -> list[nn.Module]:
    """The models shard_layers is given (it still shards them)."""
    models: list[nn.Module] = []
    real = processes.shard_layers

    def shard_layers_(model: nn.Module) -> None:
        models.append(model)
        real(model)

    monkeypatch.setattr(processes, "shard_layers", shard_layers_)
    return models


def test_a_ranks_ddp_run_in_a_world_of_one_is_the_one_process_run(world_of_one, monkeypatch) -> None:
    sharded = sharded_layers(monkeypatch)
    single = record_run(TINY)
    ranked = rank_run(TINY, 0, 1, "cpu", 1)
    assert sharded == []
    np.testing.assert_allclose(ranked.trajectory["loss"], single.trajectory["loss"], rtol=1e-6)
    assert len(ranked.tensors) == len(single.tensors) == 4
    for mine, theirs in zip(ranked.tensors, single.tensors):
        assert list(mine) == list(theirs)
        for name in mine:
            np.testing.assert_array_equal(mine[name], theirs[name])


def test_rank_1_of_2_trains_on_its_half_of_each_batch(world_of_one, monkeypatch) -> None:
    """The other rank's loss is scripted as this one's; the model (DDP in the world of one)
    sees this rank's 125 rows of each 250, with the threads asked for."""
    rows: list[int] = []

    def all_gather(totals: list[torch.Tensor], tensor: torch.Tensor) -> None:
        assert len(totals) == 2
        for total in totals:
            total.copy_(tensor)

    monkeypatch.setattr(dist, "all_gather", all_gather)
    real_build = processes.build

    def build_(spec, device, **kw):
        built = real_build(spec, device, **kw)
        built.model.register_forward_hook(lambda module, args, out: rows.append(args[0].shape[0]))
        return built

    monkeypatch.setattr(processes, "build", build_)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rank_run(Spec(epochs=1, batch_size=250, loss=ThreadsSeen), 1, 2, "cpu", 3)
    finally:
        torch.set_num_threads(before)
    assert rows == [125] * 4 and SEEN["loss threads"] == 3


def test_fsdp_shards_every_layer_with_parameters_then_the_model_on_its_devices_mesh(world_of_one) -> None:
    from torch.distributed.fsdp import FSDPModule
    from torch.distributed.tensor import DTensor

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Sequential(nn.Linear(3, 1)))
    shard_layers(model)
    assert [isinstance(m, FSDPModule) for m in model.modules()] == [True, True, False, False, True]
    for parameter in model.parameters():
        assert isinstance(parameter, DTensor)
        assert parameter.device_mesh.device_type == "cpu" and parameter.device_mesh.size() == 1


def test_fsdp_keeps_a_cpu_model_on_the_cpu_on_a_machine_with_a_gpu(world_of_one, monkeypatch) -> None:
    """fully_shard without a mesh takes the machine's accelerator (seen: a CPU run's parameters
    moved to CUDA); here the machine says it has one, and the model stays on its CPU mesh."""
    monkeypatch.setattr(torch._C, "_get_accelerator", lambda: torch.device("cuda"))
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    shard_layers(model)
    assert {p.device_mesh.device_type for p in model.parameters()} == {"cpu"}


def test_a_ranks_fsdp_run_in_a_world_of_one_trains_like_one_process(world_of_one, monkeypatch) -> None:
    from torch.distributed.fsdp import FSDPModule

    sharded = sharded_layers(monkeypatch)
    spec = Spec(epochs=1, batch_size=250, optimizer="Adam(lr=0.01)")
    single = record_run(spec)
    ranked = rank_run(spec, 0, 1, "cpu", 1, "fsdp")
    assert len(sharded) == 1 and isinstance(sharded[0], FSDPModule)
    np.testing.assert_allclose(ranked.trajectory["loss"], single.trajectory["loss"], rtol=1e-5)
    for mine, theirs in zip(ranked.tensors, single.tensors):
        assert list(mine) == list(theirs)
        for name in mine:
            np.testing.assert_allclose(mine[name], theirs[name], rtol=1e-5, atol=1e-7)


def test_spawn_starts_a_daemon_rank_per_world_and_reads_what_each_wrote(in_process, monkeypatch, tmp_path) -> None:
    """The processes are this process here: start() runs the rank's work at once (a world of one)."""
    started: list[Any] = []
    folders: list[Path] = []

    class Here:
        def __init__(self, target, daemon, name, args) -> None:
            self.target, self.daemon, self.name, self.args = target, daemon, name, args
            self.pid = self.exitcode = None

        def start(self) -> None:
            started.append(self)
            self.pid = os.getpid()
            folders.append(Path(self.args[6]))
            try:
                self.target(*self.args)
                self.exitcode = 0
            except in_process as exited:
                self.exitcode = exited.args[0]

        def is_alive(self) -> bool:
            return False

        def join(self, timeout: float | None = None) -> None:
            pass

    monkeypatch.setattr(processes, "_context", lambda: type("Context", (), {"Process": Here})())
    monkeypatch.setenv(TIMEOUT_ENV, "2.5")
    job = {"kind": "loop", "function": (HERE, __file__, "tiny_loop"), "record": ("loss",)}
    data = spawn(job, [1], "gloo", "cpu", 30.0, None)
    assert list(data) == [(1, 0)] and Trajectory.from_dict(data[(1, 0)]["trajectory"])["loss"].tolist() == [4.0, 0.0]
    (rank,) = started
    assert rank.target is _worker and rank.daemon is True and rank.name == "optcheck-rank-0"
    assert rank.args[:4] == (0, 1, rank.args[2], "gloo") and rank.args[2].startswith("tcp://127.0.0.1:")
    assert rank.args[4] == "cpu" and pickle.loads(rank.args[5]) == {**job, "exchange_timeout": "2.5"}
    assert rank.args[7:] == (1, 30.0, sys.path, os.getcwd()) and SEEN["deadline"] == "2.5"
    assert folders[0].name.startswith("optcheck-ddp-") and not folders[0].exists()  # the ranks' folder is gone
    data = spawn(job, [1, 1], "gloo", "cpu", 30.0, 4)
    assert [r.name for r in started[1:]] == ["optcheck-rank-0-of-1"] * 2 and started[1].args[7] == 4
    failing = {"kind": "loop", "function": (HERE, __file__, "raises_on_purpose"), "record": ("loss",)}
    message = error(spawn, failing, [1], "gloo", "cpu", 30.0, None)
    assert message.startswith("optcheck: check_distributed(): rank 0 of 1 failed:\nTraceback (most recent call last;")
    assert message.endswith("\nValueError: the user's loop broke")


def test_the_runs_of_a_spec_and_of_a_loop_are_read_rank_by_rank(monkeypatch) -> None:
    trajectory = Trajectory({"loss": [1.0, 0.5]})
    asked: list[tuple] = []

    def spawn_(job, worlds, backend, device, timeout, threads):
        asked.append((job, worlds, backend, device, timeout, threads))
        return {(w, r): {"trajectory": trajectory.to_dict(), "tensors": [{"w": np.array([w, r])}]}
                for w in worlds for r in range(w)}

    monkeypatch.setattr(processes, "spawn", spawn_)
    runs = distributed_runs(TINY, 3, "gloo", "cpu", 12.0, 2, "fsdp")
    assert [run.tensors[0]["w"].tolist() for run in runs] == [[3, 0], [3, 1], [3, 2]]
    assert all(run.trajectory["loss"].tolist() == [1.0, 0.5] for run in runs)
    job, *rest = asked[0]
    assert rest == [[3], "gloo", "cpu", 12.0, 2] and job["kind"] == "spec" and job["strategy"] == "fsdp"
    assert pickle.loads(job["spec"])[0] == TINY and list(job) == ["kind", "spec", "strategy"]
    worlds = loop_runs(tiny_loop, [1, 2], "gloo", "cpu", 7.0, 2, ("loss", "grad_norm"))
    assert list(worlds) == [1, 2] and [len(worlds[1]), len(worlds[2])] == [1, 2]
    assert all(t["loss"].tolist() == [1.0, 0.5] for t in worlds[2])
    assert asked[1] == ({"kind": "loop", "function": (HERE, __file__, "tiny_loop"), "record": ("loss", "grad_norm")},
                        [1, 2], "gloo", "cpu", 7.0, 2)
    loop_runs(tiny_loop, [1, 2])
    assert asked[2][2:] == ("gloo", "cpu", 300.0, None) and asked[2][0]["record"] == ("loss", "lr")
    distributed_runs(TINY, 2)
    assert asked[3][2:] == ("gloo", "cpu", 300.0, None) and asked[3][0]["strategy"] == "ddp"


# -- what a rank reports of an error -----------------------------------------------------------


def test_a_ranks_traceback_is_the_users_frames_one_by_one_then_the_error() -> None:
    try:
        _loop({"function": (HERE, __file__, "raises_on_purpose"), "record": ("loss",)}, 0, 1, "cpu",
              torch.get_num_threads())
    except ValueError as exc:
        text = _user_traceback(exc)
    text = re.sub(r'  File "[^"]*/mutmut/.*\n(?:    .*\n)*', "", text)  # a mutation run's trampoline, if any
    assert re.fullmatch(
        r"Traceback \(most recent call last; optcheck's frames left out\):\n"
        r'  File ".*test_processes_parts\.py", line \d+, in test_a_ranks_traceback_is_the_users_frames_one_by_one_then_the_error\n'
        r"    _loop\(.*\n"
        r'  File ".*test_processes_parts\.py", line \d+, in raises_on_purpose\n'
        r'    raise ValueError\("the user\'s loop broke"\)\n'
        r"ValueError: the user's loop broke\n", text), text


def test_a_ranks_traceback_keeps_the_users_and_the_libraries_frames_not_optchecks() -> None:
    try:
        _import_function(("no_such_module_for_traceback", None, "loop"))
    except ImportError as exc:
        text = _user_traceback(exc)
    assert text.startswith("Traceback (most recent call last; optcheck's frames left out):\n")
    assert 'test_processes_parts.py", line' in text and "importlib" in text and "processes.py" not in text
    assert text.endswith("ModuleNotFoundError: No module named 'no_such_module_for_traceback'\n")
    assert _user_traceback(OptcheckError("optcheck: step 3 of the loop raised")) == "optcheck: step 3 of the loop raised"
    try:
        try:
            raise ValueError("inner")
        except ValueError as cause:
            raise OptcheckError("optcheck: the loss raised") from cause
    except OptcheckError as exc:
        chained = _user_traceback(exc)
    assert chained.startswith("optcheck: the loss raised\nTraceback (most recent call last; optcheck's frames left")
    assert chained.endswith("ValueError: inner\n")
    noted = ValueError("the loss is NaN")
    noted.add_note("at step 7 of epoch 2")
    assert _user_traceback(noted).endswith(
        "left out):\nValueError: the loss is NaN\nat step 7 of epoch 2\n")  # no frames: it was never raised


# -- check_distributed on the runs its ranks return (scripted) --------------------------------------


def runs_of(monkeypatch, ranks: list[Run]) -> list[tuple]:
    asked: list[tuple] = []

    def distributed_runs_(*args):
        asked.append(args)
        return ranks

    monkeypatch.setattr(processes, "distributed_runs", distributed_runs_)
    return asked


def perturbed(run: Run, step: int, name: str, by: float) -> Run:
    tensors = [dict(t) for t in run.tensors]
    tensors[step][name] = tensors[step][name] + by
    return Run(run.trajectory, tensors)


def test_ranks_that_train_like_one_process_pass(monkeypatch) -> None:
    single = record_run(TINY)
    asked = runs_of(monkeypatch, [single, single])
    outcome = check_distributed(TINY, world_size=2, timeout=9.0, threads=1)
    assert outcome.status is Status.PASSED
    assert outcome.message == ("optcheck: DistributedDataParallel over 2 processes (gloo) trains like one process "
                               "(largest rel diff 0); ranks agree exactly")
    assert asked == [(TINY, 2, "gloo", "cpu", 9.0, 1, "ddp")]
    assert outcome.tolerances["params"] == Tolerance(rtol=1e-4, atol=1e-6)
    outcome = check_distributed(TINY, world_size=2, strategy="fsdp", loss="rtol=1e-3")
    assert outcome.message.startswith("optcheck: FSDP2 (fully_shard per layer) over 2 processes (gloo) trains like")
    assert asked[1][-1] == "fsdp" and outcome.tolerances["loss"].rtol == 1e-3


def test_a_rank_holding_other_parameters_fails_naming_it(monkeypatch) -> None:
    single = record_run(TINY)
    runs_of(monkeypatch, [single, perturbed(single, 2, "hidden.bias", 1e-7)])
    outcome = check_distributed(TINY, world_size=2)
    assert outcome.status is Status.FAILED and outcome.verdict is not None and outcome.verdict.passed
    assert outcome.message.splitlines()[:2] == [
        "optcheck: the 2 processes (gloo) hold different parameters",
        "ranks disagree (every rank must hold the same parameters after each step):"]
    assert outcome.message.splitlines()[2] == (
        "  hidden.bias[2] after step 2 (epoch 0, batch 2): rank 0 -0.955348492, rank 1 -0.955348372 (abs err "
        "1.19e-07, rel err 1.25e-07; tolerance rtol=0, atol=0, step by step)")
    assert outcome.message.splitlines()[3] == (
        "(loss: each rank's loss weighted by its shard's size, summed: the one-process loss when the loss is a mean "
        "over the batch; a summed loss or a wrongly scaled gradient shows here)")
    assert len(outcome.message.splitlines()) == 4


def test_a_distributed_run_unlike_one_process_fails_from_its_first_step(monkeypatch) -> None:
    single = record_run(TINY)
    doubled = Run(Trajectory({**{n: single.trajectory[n] for n in single.trajectory.names},
                              "loss": single.trajectory["loss"] * 2}), single.tensors)
    runs_of(monkeypatch, [doubled, single])  # rank 1 holds rank 0's tensors; its loss is not compared
    outcome = check_distributed(TINY, world_size=2)
    lines = outcome.message.splitlines()
    assert outcome.status is Status.FAILED and not outcome.verdict.passed
    assert outcome.tolerances["params"] == Tolerance(rtol=1e-4, atol=1e-6)
    assert lines[0] == ("optcheck: DistributedDataParallel over 2 processes (gloo) differs from the one-process run "
                        "from step 0 (epoch 0, batch 0) on")
    assert lines[1] == (
        "  loss at step 0 (epoch 0, batch 0): one-process 0.383166671, distributed 0.766333342 (abs err 0.383, rel "
        "err 1; tolerance rtol=0.0001, atol=1e-07, step by step; 4 of 4 steps (100.0%) outside tolerance)")
    assert len(lines) == 3 and lines[2].startswith("(loss: each rank's loss")
    assert check_distributed(TINY, world_size=2, loss="rtol=2").status is Status.PASSED
    assert check_distributed(TINY, world_size=2, strategy="fsdp").message.splitlines()[0] == (
        "optcheck: FSDP2 (fully_shard per layer) over 2 processes (gloo) differs from the one-process run from step "
        "0 (epoch 0, batch 0) on")


def test_a_rank_holding_other_optimizer_state_fails_naming_it(monkeypatch) -> None:
    spec = Spec(epochs=1, batch_size=250, optimizer="Adam(lr=0.01)")
    single = record_run(spec)
    runs_of(monkeypatch, [single, perturbed(single, 1, "exp_avg of hidden.bias", 1e-3)])
    outcome = check_distributed(spec, world_size=2)
    assert outcome.status is Status.FAILED
    assert outcome.message.splitlines()[2] == (
        "  exp_avg of hidden.bias[1] after step 1 (epoch 0, batch 1): rank 0 -0.0252390821, rank 1 -0.0242390819 (abs "
        "err 0.001, rel err 0.0396; tolerance rtol=0, atol=0, step by step)")


def test_the_defaults_and_the_threads_of_the_one_process_run(monkeypatch) -> None:
    spec = Spec(epochs=1, batch_size=250, loss=ThreadsSeen)
    single = record_run(spec)
    asked = runs_of(monkeypatch, [single, single])
    assert check_distributed(spec).status is Status.PASSED
    assert asked == [(spec, 2, "gloo", "cpu", 300.0, None, "ddp")]
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        check_distributed(spec, threads=3)
    finally:
        torch.set_num_threads(before)
    assert SEEN["loss threads"] == 3


def test_a_bad_tolerance_names_check_distributed(monkeypatch) -> None:
    runs_of(monkeypatch, [])
    worlds_of(monkeypatch, LOSS, [LOSS, LOSS])
    words = ("optcheck: check_distributed() for series 'loss': rtol='oops' is not usable: give a number >= 0, e.g. "
             "rtol=1e-5.")
    assert error(check_distributed, TINY, loss="rtol=oops") == words
    assert error(check_distributed_loop, tiny_loop, loss="rtol=oops") == words


NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal of a machine without CUDA")


@NO_CUDA
def test_a_run_on_cuda_is_built_on_cuda_so_a_machine_without_one_refuses_it(monkeypatch) -> None:
    asked = runs_of(monkeypatch, [])
    assert error(check_distributed, TINY, device="cuda").startswith(
        "optcheck: device 'cuda' was requested but CUDA is not available here")
    assert asked == []


@NO_CUDA
def test_a_ranks_run_on_cuda_is_built_on_cuda(world_of_one) -> None:
    for strategy in ("ddp", "fsdp"):
        assert error(rank_run, TINY, 0, 1, "cuda", 1, strategy).startswith(
            "optcheck: device 'cuda' was requested but CUDA is not available here")


def test_a_spec_is_refused_before_any_rank_is_asked(monkeypatch) -> None:
    asked = runs_of(monkeypatch, [])
    assert "world_size must be an integer >= 2" in error(check_distributed, TINY, world_size=1)
    assert "a global batch of 33 rows" in error(check_distributed, Spec(batch_size=33), world_size=2)
    assert "strategy='zero3'" in error(check_distributed, TINY, strategy="zero3")
    assert "does not run LBFGS" in error(check_distributed, Spec(optimizer="LBFGS(lr=0.1)"))
    monkeypatch.setattr(dist, "is_backend_available", lambda name: name in ("gloo", "nccl"))
    assert "this run is on 'cpu'" in error(check_distributed, TINY, backend="nccl")
    assert asked == []


# -- check_distributed(run=fn) on the trajectories its worlds return (scripted) ----------------------


def worlds_of(monkeypatch, single: Trajectory, ranks: list[Trajectory]) -> list[tuple]:
    asked: list[tuple] = []

    def loop_runs_(run, worlds, *args):
        asked.append((run, worlds, *args))
        return {1: [single], len(ranks): ranks}

    monkeypatch.setattr(processes, "loop_runs", loop_runs_)
    return asked


LOSS = Trajectory({"loss": [1.0, 0.5, 0.25], "lr": [0.1, 0.1, 0.1]})


def test_a_loop_that_records_the_one_process_run_passes(monkeypatch) -> None:
    asked = worlds_of(monkeypatch, LOSS, [LOSS, LOSS])
    outcome = check_distributed_loop(tiny_loop, world_size=2, timeout=8.0, threads=2, record=("loss", "lr"))
    assert outcome.status is Status.PASSED
    assert outcome.message == ("optcheck: tiny_loop() in 2 processes (gloo) records the run it records in one "
                               "(largest rel diff 0); ranks agree exactly")
    assert asked == [(tiny_loop, [1, 2], "gloo", "cpu", 8.0, 2, ("loss", "lr"))]
    check_distributed_loop(tiny_loop)
    assert asked[1] == (tiny_loop, [1, 2], "gloo", "cpu", 300.0, None, ("loss", "lr"))
    assert outcome.tolerances["params"] == outcome.tolerances["state"] == Tolerance(rtol=1e-4, atol=1e-6)
    assert set(outcome.tolerances) == {"loss", "lr", "params", "state"}


def test_a_loop_whose_ranks_record_different_runs_fails_naming_each_rank(monkeypatch) -> None:
    other = Trajectory({"loss": [1.0, 0.5, 0.3], "lr": [0.1, 0.1, 0.1]})
    worlds_of(monkeypatch, LOSS, [LOSS, LOSS, other])
    outcome = check_distributed_loop(Holder.method, world_size=3)
    lines = outcome.message.splitlines()
    assert outcome.status is Status.FAILED and outcome.verdict.passed
    assert lines[:2] == ["optcheck: Holder.method(): the 3 processes (gloo) recorded different trajectories",
                         "ranks disagree (each rank's recording is the global one, the same on every rank):"]
    assert lines[2] == ("  rank 2: loss at step 2 (epoch 0, batch 2): rank 0 0.25, rank 2 0.3 (abs err 0.05, rel err "
                        "0.2; tolerance rtol=0, atol=0, step by step; 1 of 3 steps (33.3%) outside tolerance)")
    assert lines[3] == (
        "(the loss recorded in a process group is each step's logged value averaged over the ranks: the one-process "
        "loss when each rank's loss is a mean over equal shards of the batch; a loss summed instead of averaged, or "
        "a gradient scaled by the world size, shows here)")
    assert len(lines) == 4


def test_a_loop_unlike_its_one_process_run_fails_from_its_first_step(monkeypatch) -> None:
    doubled = Trajectory({"loss": [2.0, 1.0, 0.5], "lr": [0.1, 0.1, 0.1]})
    worlds_of(monkeypatch, LOSS, [doubled, doubled])
    outcome = check_distributed_loop(tiny_loop, world_size=2)
    lines = outcome.message.splitlines()
    assert outcome.status is Status.FAILED and not outcome.verdict.passed
    assert set(outcome.tolerances) == {"loss", "lr", "params", "state"}
    assert lines[0] == ("optcheck: tiny_loop() in 2 processes (gloo) differs from its run in one process from step 0 "
                        "(epoch 0, batch 0) on")
    assert lines[1] == (
        "  loss at step 0 (epoch 0, batch 0): one-process 1, 2-process 2 (abs err 1, rel err 1; tolerance "
        "rtol=0.0001, atol=1e-07, step by step; 3 of 3 steps (100.0%) outside tolerance)")
    assert len(lines) == 3 and lines[2].startswith("(the loss recorded in a process group")
    assert check_distributed_loop(tiny_loop, world_size=2, loss="rtol=1").status is Status.PASSED


def test_rank_0_is_compared_with_one_process_and_every_other_rank_with_rank_0(monkeypatch) -> None:
    rank_0 = Trajectory({"loss": [1.0, 0.6, 0.25], "lr": [0.1, 0.1, 0.1]})
    rank_1 = Trajectory({"loss": [1.0, 0.55, 0.25], "lr": [0.1, 0.1, 0.1]})
    rank_2 = Trajectory({"loss": [1.0, 0.7, 0.25], "lr": [0.1, 0.1, 0.1]})
    worlds_of(monkeypatch, LOSS, [rank_0, rank_1, rank_2])
    assert check_distributed_loop(tiny_loop, world_size=3).message.splitlines()[:5] == [
        ("optcheck: tiny_loop() in 3 processes (gloo) differs from its run in one process from step 1 (epoch 0, batch "
        "1) on"),
        ("  loss at step 1 (epoch 0, batch 1): one-process 0.5, 3-process 0.6 (abs err 0.1, rel err 0.2; tolerance "
        "rtol=0.0001, atol=1e-07, step by step; 1 of 3 steps (33.3%) outside tolerance)"),
        "ranks disagree (each rank's recording is the global one, the same on every rank):",
        ("  rank 1: loss at step 1 (epoch 0, batch 1): rank 0 0.6, rank 1 0.55 (abs err 0.05, rel err 0.0833; "
         "tolerance rtol=0, atol=0, step by step; 1 of 3 steps (33.3%) outside tolerance)"),
        ("  rank 2: loss at step 1 (epoch 0, batch 1): rank 0 0.6, rank 2 0.7 (abs err 0.1, rel err 0.167; tolerance "
        "rtol=0, atol=0, step by step; 1 of 3 steps (33.3%) outside tolerance)")]


def test_ranks_that_record_other_series_disagree(monkeypatch) -> None:
    """Seen by this test: a rank recording a series rank 0 lacks (or lacking one) has no failed
    step, and the check passed saying the ranks agree exactly. Each rank is held to rank 0's
    series exactly, whatever another rank records (rank 3's lr, though rank 1 has none)."""
    more = Trajectory({"loss": [1.0, 0.5, 0.25], "lr": [0.1, 0.1, 0.1], "grad_norm": [1.0, 1.0, 1.0]})
    fewer = Trajectory({"loss": [1.0, 0.5, 0.25]})
    barely = Trajectory({"loss": [1.0, 0.5, 0.25], "lr": [0.1, 0.1, 0.1 + 1e-15]})  # every rank: exactly rank 0's
    worlds_of(monkeypatch, LOSS, [LOSS, fewer, more, barely])
    outcome = check_distributed_loop(tiny_loop, world_size=4)
    assert outcome.status is Status.FAILED
    assert outcome.message.splitlines()[:5] == [
        "optcheck: tiny_loop(): the 4 processes (gloo) recorded different trajectories",
        "ranks disagree (each rank's recording is the global one, the same on every rank):",
        "  rank 1: lr: recorded by rank 0 only",
        "  rank 2: grad_norm: recorded by rank 2 only",
        ("  rank 3: lr at step 2 (epoch 0, batch 2): rank 0 0.1, rank 3 0.100000000000001 (abs err 9.99e-16, rel err "
         "9.99e-15; tolerance rtol=0, atol=0, step by step; 1 of 3 steps (33.3%) outside tolerance)")]


def test_a_loop_is_refused_before_any_world_is_asked(monkeypatch) -> None:
    asked = worlds_of(monkeypatch, LOSS, [LOSS, LOSS])

    def inner(ctx):
        return ctx

    assert "must be defined at the top level of a module" in error(check_distributed_loop, inner)
    assert "world_size must be an integer >= 2" in error(check_distributed_loop, tiny_loop, world_size=1)
    monkeypatch.setattr(dist, "is_backend_available", lambda name: name in ("gloo", "nccl"))
    assert "this run is on 'cpu'" in error(check_distributed_loop, tiny_loop, backend="nccl")
    assert asked == []


def test_no_rank_process_is_left_behind() -> None:
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("optcheck-rank")]
