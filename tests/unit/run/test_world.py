"""run/record/world.py without a process group: the reduce= rule is validated, nothing is
exchanged outside a group, and sharded norms combine as the whole model's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pytest_optcheck.errors import OptcheckError
from pytest_optcheck.run.record import Recorder
from pytest_optcheck.run.record.world import RANK_REDUCTIONS, Ranks, ShardedNorms, current, timeout


def test_outside_a_process_group_a_recording_is_left_as_it_is() -> None:
    assert current() is None
    series = {"loss": np.array([1.0, 2.0])}
    assert Ranks().globalise(series, ["loss"], None, 2) is series


def test_an_unknown_reduce_is_refused_with_the_known_ones() -> None:
    model = torch.nn.Linear(2, 1)
    with pytest.raises(OptcheckError, match=r"reduce='avg'.*Known: mean, sum, first, last, min, max"):
        Recorder(torch.optim.SGD(model.parameters(), lr=0.1), reduce="avg")


def test_rank_reductions_combine_over_the_rank_axis() -> None:
    stacked = np.array([[1.0, 4.0], [3.0, 2.0]])  # (ranks, steps)
    assert RANK_REDUCTIONS["mean"](stacked).tolist() == [2.0, 3.0]
    assert RANK_REDUCTIONS["sum"](stacked).tolist() == [4.0, 6.0]
    assert RANK_REDUCTIONS["first"](stacked).tolist() == [1.0, 4.0]


def test_shards_add_their_squares_and_whole_tensors_count_once() -> None:
    norms = ShardedNorms.__new__(ShardedNorms)  # the arithmetic alone: no DTensor outside a group
    norms.rows, norms.numel = ("grad_norm", "sparsity"), 10
    shard = lambda norm, count: np.array([[norm, np.sqrt(count)]])
    # part 0: whole tensors (rank 0's); part 1: shards held once; part 2: shards held by 2 ranks (HSDP)
    ranks = [[(0, shard(3.0, 1)), (1, shard(4.0, 2)), (2, shard(2.0, 1))],
             [(0, shard(3.0, 1)), (1, shard(12.0, 3)), (2, shard(2.0, 1))]]
    out = norms.combine(ranks)
    assert out["grad_norm"][0] == pytest.approx(np.sqrt(9 + 16 + 144 + (4 + 4) / 2))
    assert out["sparsity"][0] == pytest.approx((1 + 2 + 3 + 1) / 10)


def test_the_exchange_deadline_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTCHECK_DISTRIBUTED_TIMEOUT", "12")
    assert timeout() == 12.0
    monkeypatch.setenv("OPTCHECK_DISTRIBUTED_TIMEOUT", "soon")
    with pytest.raises(OptcheckError, match="OPTCHECK_DISTRIBUTED_TIMEOUT='soon': a number of seconds"):
        timeout()


def _cuda_loop() -> tuple[list[float], list[float]]:
    """3 SGD steps of a linear model on the GPU, DDP-wrapped inside a process group:
    (losses, grad norms) as recorded."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    generator = torch.Generator().manual_seed(0)
    model = torch.nn.Linear(4, 1)
    with torch.no_grad():
        model.weight.copy_(torch.randn(1, 4, generator=generator))
        model.bias.copy_(torch.randn(1, generator=generator))  # both runs start alike (seen differ on a GPU)
    model = model.cuda()
    net = DistributedDataParallel(model, device_ids=[0]) if dist.is_initialized() else model
    x, y = torch.randn(3, 8, 4, generator=generator).cuda(), torch.randn(3, 8, 1, generator=generator).cuda()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with Recorder(optimizer, model=model, record=("loss", "lr", "grad_norm")) as rec:
        for i in range(3):
            loss = torch.nn.functional.mse_loss(net(x[i]), y[i])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            rec.log(loss=loss)
    trajectory = rec.trajectory
    return trajectory["loss"].tolist(), trajectory["grad_norm"].tolist()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (nccl)")
def test_under_nccl_the_exchanges_go_through_a_gloo_side_group(tmp_path: Path) -> None:
    """nccl has no monitored_barrier: the ranks' exchanges go through a gloo side group. A
    world of one rank (one GPU is enough) records what the same loop records outside any
    group, and an exchange (the barrier and the gather) goes through that side group."""
    import torch.distributed as dist

    alone = _cuda_loop()
    dist.init_process_group("nccl", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1,
                            device_id=torch.device("cuda:0"))
    try:
        world = current()
        assert world is not None and world.backend == "nccl"
        grouped = _cuda_loop()
        assert dist.get_backend(world._group()) == "gloo"
        assert world._exchange(("an exchange", "this test"), 7) == [(("an exchange", "this test"), 7)]
    finally:
        dist.destroy_process_group()
    assert grouped[0] == alone[0]
    np.testing.assert_allclose(grouped[1], alone[1], rtol=1e-6)
