"""pytest launched by torchrun (two ranks, gloo, CPU): a DDP loop and an FSDP2 loop recorded
with ``optcheck.record`` get one golden per test, holding the global run — the one-process
full-batch loss and gradient norm within 1e-5 (asserted inside the session, on every rank).
Rank 0 alone writes; both ranks reach the same verdict.

Three sessions, in order: the update run (torchrun) creates the goldens; a plain run passes
the unchanged loops on both ranks and fails a 2% LR change on both, and a rank that fails a
test early fails that test on both ranks, not the later ones; an update run with nothing
changed rewrites nothing. The last two start the ranks from optcheck's forkserver (torch
imported once) with the variables torchrun sets: a torchrun session costs ~3x more."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TORCHRUN = Path(sys.executable).with_name("torchrun")

CONFTEST = '''
import pytest
import torch.distributed as dist


@pytest.fixture(scope="session", autouse=True)
def world():
    dist.init_process_group("gloo")  # RANK, WORLD_SIZE, MASTER_ADDR/PORT from torchrun
    yield
    dist.destroy_process_group()
'''

TESTS = '''
import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.nn.parallel import DistributedDataParallel

RECORD = ("loss", "lr", "grad_norm")
generator = torch.Generator().manual_seed(1)
X, Y = torch.randn(32, 3, generator=generator), torch.randn(32, 1, generator=generator)


def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1))


def loop(optcheck, module, params, rank, world, lr=0.01):
    """4 steps of Adam on 8-row global batches, each rank on its rows."""
    optimizer = torch.optim.Adam(params, lr=lr)
    with optcheck.record(optimizer, model=module, record=RECORD) as rec:
        for i in range(4):
            x = X[8 * i:8 * (i + 1)].tensor_split(world)[rank]
            y = Y[8 * i:8 * (i + 1)].tensor_split(world)[rank]
            loss = nn.functional.mse_loss(module(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            rec.log(loss=loss)
    return rec.trajectory


def assert_one_process_run(optcheck, trajectory):
    single = model()
    expected = loop(optcheck, single, single.parameters(), 0, 1)
    for name in RECORD:
        np.testing.assert_allclose(trajectory[name], expected[name], rtol=0, atol=1e-5)


def ddp_run(optcheck, lr=0.01):
    m = model()
    return loop(optcheck, DistributedDataParallel(m), m.parameters(), dist.get_rank(), dist.get_world_size(), lr)


@pytest.mark.optcheck
def test_ddp(optcheck):
    trajectory = ddp_run(optcheck)
    optcheck.check(trajectory)
    assert_one_process_run(optcheck, trajectory)


def test_a_rank_fails_early(optcheck):
    m = model()
    optimizer = torch.optim.SGD(m.parameters(), lr=0.1)
    with optcheck.record(optimizer) as rec:
        loss = m(X).pow(2).mean()
        loss.backward()
        optimizer.step()
        rec.log(loss=loss)
    if os.environ.get("FAIL_RANK") == str(dist.get_rank()):
        raise RuntimeError("this rank broke before its recording's end")
    assert rec.trajectory.names


@pytest.mark.optcheck
def test_fsdp(optcheck):
    m = model()
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))  # without it, a CUDA mesh on a GPU machine
    for layer in m:
        if list(layer.parameters()):
            fully_shard(layer, mesh=mesh)
    fully_shard(m, mesh=mesh)
    trajectory = loop(optcheck, m, m.parameters(), dist.get_rank(), dist.get_world_size())
    optcheck.check(trajectory)
    assert_one_process_run(optcheck, trajectory)


@pytest.mark.optcheck
def test_ddp_lr(optcheck):
    optcheck.check(ddp_run(optcheck, lr=0.01 * float(os.environ.get("LR_SCALE", "1"))))
'''


def launch(project: Path, *args: str, **env: str) -> tuple[int, list[str]]:
    """Two ranks of ``pytest --optcheck ...`` in ``project``, as torchrun starts them (``RANK``,
    ``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT``), but forked from optcheck's forkserver,
    which has torch imported already: its exit code (the first non-zero) and each rank's output."""
    from pytest_optcheck.checks.differential.processes import _context, _stop, free_port

    context = _context()
    outputs = [project / f"rank-{rank}.out" for rank in (0, 1)]
    world = {"WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), **env}
    ranks = [context.Process(target=_rank_session, name=f"optcheck-test-rank-{rank}",
                             args=(str(project), ["-p", "no:cacheprovider", "-p", "no:randomly", "--optcheck", "-q", *args],
                                   {**world, "RANK": str(rank), "LOCAL_RANK": str(rank)}, str(outputs[rank])))
             for rank in (0, 1)]
    try:
        for process in ranks:
            process.start()
        for process in ranks:
            process.join(180)
    finally:
        _stop(ranks)
    codes = [process.exitcode for process in ranks]
    return next((c for c in codes if c), 0), [path.read_text() for path in outputs]


def _rank_session(project: str, args: list[str], env: dict[str, str], output: str) -> None:
    """One rank: pytest in ``project``, its output to a file."""
    os.chdir(project)
    for key in [k for k in os.environ if k.startswith(("PYTEST_", "OPTCHECK_"))]:
        del os.environ[key]
    os.environ.update(env)
    import torch

    torch.set_num_threads(1)  # as torchrun sets OMP_NUM_THREADS=1: two ranks on two cores
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    code = pytest.main(args)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(code))


def torchrun(project: Path, *args: str, **env: str) -> tuple[int, list[str]]:
    """``torchrun --nproc-per-node=2 -m pytest --optcheck ...`` in ``project``: its exit
    code and each rank's stdout."""
    logs = project / f"logs-{len(list(project.glob('logs-*')))}"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "OPTCHECK_"))}
    # this checkout first, then whatever the caller's path holds (a --target install on a GPU machine)
    environment.update(PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])), **env)
    command = [str(TORCHRUN), "--standalone", "--nproc-per-node=2", "--log-dir", str(logs), "--redirects", "3",
               "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "--optcheck", "-q", *args]
    done = subprocess.run(command, cwd=project, env=environment, capture_output=True, text=True, timeout=300,
                          check=False)
    outputs = [next(logs.rglob(f"attempt_0/{rank}/stdout.log")).read_text() for rank in (0, 1)]
    if done.returncode:  # what failed before pytest could print (a missing plugin): the ranks' stderr too
        outputs = [out + next(logs.rglob(f"attempt_0/{rank}/stderr.log")).read_text() + done.stderr
                   for rank, out in enumerate(outputs)]
    return done.returncode, outputs


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed beside this python")
def test_ddp_and_fsdp2_loops_under_torchrun_keep_one_golden_each(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_loops.py").write_text(TESTS)
    golden = tmp_path / "golden" / "test_loops"

    code, (rank0, rank1) = torchrun(tmp_path, "--snapshot-update")
    assert code == 0, rank0 + rank1
    assert "4 passed" in rank0 and "4 passed" in rank1
    assert "3 checks: 3 created" in rank0 and "optcheck summary" not in rank1  # rank 0 alone writes
    files = sorted(p.name for p in golden.iterdir())
    assert files == ["test_ddp[cpu].json", "test_ddp_lr[cpu].json", "test_fsdp[cpu].json"]
    environment = json.loads((golden / "test_fsdp[cpu].json").read_text())["environment"]
    assert environment["world_size"] == 2 and environment["backend"] == "gloo"
    written = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in golden.iterdir()}

    code, (rank0, rank1) = launch(tmp_path, LR_SCALE="1.02", FAIL_RANK="1")
    assert code != 0
    for output in (rank0, rank1):  # the same verdict on both ranks
        assert "2 passed" in output and "2 failed" in output, output
        assert "FAILED test_loops.py::test_ddp_lr[cpu]" in output
        assert "lr: " in output and "golden/test_loops/test_ddp_lr[cpu].json" in output
    # rank 1 left a test early: rank 0 fails that test naming it; the later tests are unaffected
    assert "rank 1 is at the end of the test of test_loops.py::test_a_rank_fails_early" in rank0
    assert "a rank left this test early" in rank0
    assert "RuntimeError: this rank broke before its recording's end" in rank1

    code, (rank0, rank1) = launch(tmp_path, "--snapshot-update")
    assert code == 0, rank0 + rank1
    assert "3 checks: 3 passed" in rank0 and "4 passed" in rank1
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in golden.iterdir()} == written
