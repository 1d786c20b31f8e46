"""check_distributed(run=fn): a user's own loop in one process and in two (gloo), its global
trajectories compared step by step; strategy="fsdp" for a spec; the arguments read as such."""

from __future__ import annotations

import sys
import time

import pytest
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from pytest_optcheck.checks.differential.distributed import check_distributed, check_distributed_loop
from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.engine.outcome import Status
from pytest_optcheck.errors import OptcheckError
from pytest_optcheck.handle import OptcheckHandle

RECORD = ("loss", "lr", "grad_norm")


def _loop(ctx, reduction: str = "mean", sleep_on: int | None = None):
    """4 steps of SGD on 8-row global batches, each rank on its half; DDP averages the gradients."""
    generator = torch.Generator().manual_seed(1)
    x, y = torch.randn(32, 3, generator=generator), torch.randn(32, 1, generator=generator)
    x, y = x.to(ctx.device), y.to(ctx.device)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1)).to(ctx.device)
    ddp = DistributedDataParallel(model, device_ids=[torch.device(ctx.device).index] if "cuda" in ctx.device else None)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with ctx.record(optimizer, model=model, record=RECORD) as rec:
        for i in range(4):
            xb = x[8 * i:8 * (i + 1)].tensor_split(ctx.world_size)[ctx.rank]
            yb = y[8 * i:8 * (i + 1)].tensor_split(ctx.world_size)[ctx.rank]
            loss = nn.functional.mse_loss(ddp(xb), yb, reduction=reduction)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            rec.log(loss=loss)
    if ctx.rank == sleep_on:
        time.sleep(60)  # never reaches the recording's exchange in time
    return rec.trajectory


def ddp_loop(ctx):
    return _loop(ctx)


def summed_loop(ctx):
    return _loop(ctx, reduction="sum")


def late_rank_1(ctx):
    return _loop(ctx, sleep_on=1 if ctx.world_size > 1 else None)


def test_a_correct_ddp_loop_records_the_one_process_run() -> None:
    outcome = check_distributed_loop(ddp_loop, world_size=2, record=RECORD)
    assert outcome.status is Status.PASSED, outcome.message
    assert "ddp_loop() in 2 processes (gloo) records the run it records in one" in outcome.message


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_a_correct_ddp_loop_on_cuda_records_the_one_process_run() -> None:
    backend = "nccl" if torch.cuda.device_count() > 1 else "gloo"  # gloo lets both ranks share one GPU
    outcome = check_distributed_loop(ddp_loop, device="cuda", world_size=2, backend=backend, record=RECORD)
    assert outcome.status is Status.PASSED, outcome.message


def test_a_loss_summed_instead_of_averaged_fails_naming_step_and_series() -> None:
    outcome = check_distributed_loop(summed_loop, world_size=2, record=RECORD)
    assert outcome.status is Status.FAILED
    message = outcome.message
    assert "summed_loop() in 2 processes (gloo) differs from its run in one process from step 0" in message
    assert "loss at step 0 (epoch 0, batch 0): one-process" in message and "rel err 0.5" in message
    assert "grad_norm at step 0" in message


def test_a_rank_that_never_reaches_the_exchange_is_named_by_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTCHECK_DISTRIBUTED_TIMEOUT", "1.5")  # the ranks' exchanges; the check's own: 60 s
    with pytest.raises(OptcheckError) as excinfo:
        check_distributed_loop(late_rank_1, world_size=2, record=RECORD, timeout=60)
    message = str(excinfo.value)
    assert "rank 0 of 2 failed" in message
    assert "waited 1.5 s for the other ranks at the end of a recording" in message
    assert "1" in message.split("not all of them came:")[1]


def test_a_function_defined_inside_a_test_is_refused_with_the_fix() -> None:
    def inner(ctx):
        return _loop(ctx)

    with pytest.raises(OptcheckError, match="must be defined at the top level of a module"):
        check_distributed_loop(inner, world_size=2)


def test_fsdp_shards_a_spec_and_trains_adam_like_one_process() -> None:
    spec = Spec(epochs=1, batch_size=250, optimizer="Adam(lr=0.01)", record=RECORD)
    outcome = check_distributed(spec, world_size=2, strategy="fsdp")
    assert outcome.status is Status.PASSED, outcome.message
    assert "FSDP2 (fully_shard per layer) over 2 processes (gloo) trains like one process" in outcome.message


def test_an_unknown_strategy_is_refused() -> None:
    with pytest.raises(OptcheckError, match=r"strategy='zero3'\): one of 'ddp', 'fsdp'"):
        check_distributed(Spec(epochs=1, batch_size=250), world_size=2, strategy="zero3")


def test_the_handle_reads_run_and_strategy_as_arguments_not_tolerances(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_optcheck.checks.differential import distributed

    calls = []
    passed = distributed.Outcome(Status.PASSED, "ok")
    monkeypatch.setattr(distributed, "check_distributed_loop", lambda run, device, **kw: calls.append((run, kw))
                        or passed)
    monkeypatch.setattr(distributed, "check_distributed", lambda spec, device, **kw: calls.append((spec, kw))
                        or passed)
    handle = OptcheckHandle(Spec(record=RECORD))
    handle.check_distributed(run=ddp_loop, loss="rtol=1e-6")
    handle.check_distributed(strategy="fsdp")
    (run, loop_kw), (_, spec_kw) = calls
    assert run is ddp_loop and loop_kw["record"] == RECORD and loop_kw["loss"] == "rtol=1e-6"
    assert spec_kw["strategy"] == "fsdp"
    with pytest.raises(OptcheckError, match="Leave strategy out"):
        handle.check_distributed(run=ddp_loop, strategy="fsdp")


def test_a_function_whose_module_name_sys_path_cannot_find_is_imported_from_its_file(tmp_path) -> None:
    from pytest_optcheck.checks.differential.processes import _import_function

    (tmp_path / "test_far.py").write_text("def loop(ctx):\n    return ctx * 2\n")
    function = _import_function(("somewhere.under.rootdir.test_far", str(tmp_path / "test_far.py"), "loop"))
    assert function(21) == 42
    sys.modules.pop("somewhere.under.rootdir.test_far")
