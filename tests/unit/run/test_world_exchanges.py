"""run/record/world.py in one process: a real gloo world of one rank (set up and torn down
by each test that needs it) for the exchanges, the side group and DTensor parameters; where
only several processes could answer (the replies of other ranks, a rank that never comes),
the replies are scripted at the one seam, ``World._exchange`` / ``World.gather``, so the
messages a rank gives and the way the ranks' values are combined are pinned whole."""

from __future__ import annotations

import datetime
import types

import numpy as np
import pytest
import torch

from pytest_optcheck.errors import OptcheckError
from pytest_optcheck.run.record import Recorder
from pytest_optcheck.run.record import world as world_module
from pytest_optcheck.run.record.norms import Norms
from pytest_optcheck.run.record.world import (
    _CONTROL,
    DEFAULT_TIMEOUT,
    RANK_REDUCTIONS,
    TEST_END,
    TIMEOUT_ENV,
    Ranks,
    ShardedNorms,
    World,
    _copies,
    current,
    is_dtensor,
    timeout,
)
from pytest_optcheck.run.record.world import test_name as running_test

RECORDING = "the end of a recording"


@pytest.fixture
def world_of_one(tmp_path):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        yield current()
    finally:
        _CONTROL.pop(dist.group.WORLD, None)
        dist.destroy_process_group()


def error(call, *args) -> str:
    with pytest.raises(OptcheckError) as caught:
        call(*args)
    return str(caught.value)


def test_the_deadline_is_the_default_unless_the_environment_gives_seconds(monkeypatch) -> None:
    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    assert timeout() == DEFAULT_TIMEOUT == 300.0
    monkeypatch.setenv(TIMEOUT_ENV, "")
    assert timeout() == 300.0
    monkeypatch.setenv(TIMEOUT_ENV, "0.5")
    assert timeout() == 0.5
    for bad in ("0", "-2", "nan", "soon"):
        monkeypatch.setenv(TIMEOUT_ENV, bad)
        assert error(timeout) == f"optcheck: OPTCHECK_DISTRIBUTED_TIMEOUT={bad!r}: a number of seconds > 0 (e.g. 120)."


def test_the_running_test_is_named_without_its_phase(monkeypatch) -> None:
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "tests/a.py::test_x[a b] (call)")
    assert running_test() == "tests/a.py::test_x[a b]"
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    assert running_test() == ""


def test_a_world_of_one_rank_exchanges_nothing() -> None:
    assert current() is None  # outside a process group
    alone = World(0, 1, "gloo")  # no group behind it: a world of one never calls one
    assert alone.gather(RECORDING, {"loss": 1.0}) == [{"loss": 1.0}]
    assert alone.end_test() is None


def test_in_a_world_of_one_the_exchange_meets_itself_through_gloo(world_of_one, monkeypatch) -> None:
    import torch.distributed as dist

    assert world_of_one == World(0, 1, "gloo")
    barriers, gathers, groups = [], [], []
    real = dist.monitored_barrier, dist.all_gather_object, dist.new_group

    def barrier(**kwargs):
        barriers.append(kwargs)
        return real[0](**kwargs)

    def gather(out, obj, **kwargs):
        gathers.append(kwargs)
        return real[1](out, obj, **kwargs)

    def new_group(**kwargs):
        groups.append(kwargs)
        return real[2](**kwargs)

    monkeypatch.setattr(dist, "monitored_barrier", barrier)
    monkeypatch.setattr(dist, "all_gather_object", gather)
    monkeypatch.setattr(dist, "new_group", new_group)
    monkeypatch.setenv(TIMEOUT_ENV, "2.5")
    assert world_of_one._group() is None  # the default group is gloo: used as it is
    assert world_of_one._exchange((RECORDING, "t"), 5) == [((RECORDING, "t"), 5)]
    assert barriers == [{"group": None, "timeout": datetime.timedelta(seconds=2.5), "wait_all_ranks": True}]
    assert gathers == [{"group": None}]
    under_nccl = World(0, 1, "nccl")  # no monitored barrier there: a gloo side group, made once
    side = under_nccl._group()
    assert side is not None and dist.get_backend(side) == "gloo" and under_nccl._group() is side
    assert groups == [{"backend": "gloo", "timeout": datetime.timedelta(seconds=2.5)}]  # the deadline is its own
    assert under_nccl._exchange(("a checkpoint", ""), None) == [(("a checkpoint", ""), None)]
    assert barriers[-1]["group"] is side and gathers[-1] == {"group": side}


def test_a_new_process_group_gets_a_new_side_group(tmp_path) -> None:
    """A test suite may set up and destroy several groups in one process: each has its own."""
    import torch.distributed as dist

    sides = []
    for attempt in range(2):
        dist.init_process_group("gloo", init_method=f"file://{tmp_path / str(attempt)}", rank=0, world_size=1)
        try:
            world = World(0, 1, "nccl")
            sides.append(world._group())
            assert world._exchange(("a checkpoint", ""), attempt) == [(("a checkpoint", ""), attempt)]
        finally:
            dist.destroy_process_group()
    for side in sides:
        _CONTROL.pop(next((k for k, v in _CONTROL.items() if v is side), None), None)
    assert sides[0] is not sides[1]


def test_a_rank_that_never_comes_fails_the_others_with_the_deadline_and_the_cause(monkeypatch) -> None:
    import torch.distributed as dist

    def barrier(**kwargs):  # what gloo's monitored barrier raises when ranks 1 and 2 never come
        raise RuntimeError("  Ranks 1, 2 failed to pass monitoredBarrier in 1500 ms \n")

    monkeypatch.setattr(dist, "monitored_barrier", barrier)
    monkeypatch.setenv(TIMEOUT_ENV, "1.5")
    with pytest.raises(OptcheckError) as caught:
        World(0, 3, "gloo")._exchange((RECORDING, "t.py::test_a"), None)
    assert str(caught.value) == (
        "optcheck: rank 0 of 3 waited 1.5 s for the other ranks at the end of a recording and not all of them came: "
        "Ranks 1, 2 failed to pass monitoredBarrier in 1500 ms\nA rank that crashed, failed earlier in this test, "
        "took fewer steps or waits in another collective never arrives. Every rank must run the same tests and "
        "loops; for slow ranks raise $OPTCHECK_DISTRIBUTED_TIMEOUT (seconds).")
    assert caught.value.__suppress_context__


def replies(monkeypatch, *rounds) -> list:
    """``World._exchange`` answering each call with the next round: every rank's (tag, payload)
    as ``all_gather_object`` returns them, None standing for this rank's own."""
    calls: list = []
    queue = list(rounds)

    def exchange(self, tag, payload):
        calls.append((tag, payload))
        return [(tag, payload) if reply is None else reply for reply in queue.pop(0)]

    monkeypatch.setattr(World, "_exchange", exchange)
    return calls


def test_gather_gives_every_rank_s_payload_in_rank_order(monkeypatch) -> None:
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "t.py::test_a (call)")
    tag = (RECORDING, "t.py::test_a")
    calls = replies(monkeypatch, [None, (tag, "p1"), (tag, "p2")])
    assert World(0, 3, "gloo").gather(RECORDING, "p0") == ["p0", "p1", "p2"]
    assert calls == [(tag, "p0")]


def test_a_rank_at_another_exchange_fails_the_gather_saying_where_each_rank_is(monkeypatch) -> None:
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "t.py::test_a (call)")
    replies(monkeypatch, [None, ((RECORDING, "t.py::test_b"), 1), ((TEST_END, "t.py::test_a"), None)])
    assert error(World(0, 3, "gloo").gather, RECORDING, 0) == (
        "optcheck: rank 0 of 3 is at the end of a recording of t.py::test_a, but rank 1 is at the end of a "
        "recording of t.py::test_b; rank 2 is at the end of the test of t.py::test_a: a rank left this test early "
        "(it failed before this point, or took another path). Every rank must run the same tests and loops.")
    monkeypatch.delenv("PYTEST_CURRENT_TEST")  # outside pytest: no test to name
    replies(monkeypatch, [(("a checkpoint", ""), 1), None])
    assert error(World(1, 2, "gloo").gather, RECORDING, 0) == (
        "optcheck: rank 1 of 2 is at the end of a recording, but rank 0 is at a checkpoint: the ranks ran "
        "different code (one failed earlier, or skipped a test). Every rank must run the same tests and loops.")


def test_the_ranks_meet_at_the_end_of_a_test_once_those_still_inside_it_failed(monkeypatch) -> None:
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "t.py::test_a (teardown)")
    mine = (TEST_END, "t.py::test_a")
    inside = ((RECORDING, "t.py::test_a"), None)
    calls = replies(monkeypatch, [None, inside], [None, None])
    assert World(0, 2, "gloo").end_test() is None
    assert calls == [(mine, None), (mine, None)]  # met on the second round
    calls = replies(monkeypatch, *[[None, inside]] * 9)
    assert error(World(0, 2, "gloo").end_test) == (
        "optcheck: rank 0 of 2 ended t.py::test_a, but the ranks are in different tests (rank 0: the end of the "
        "test of t.py::test_a; rank 1: the end of a recording of t.py::test_a). Every rank must run the same tests "
        "in the same order (the same -k, -x, and skips on every rank).")
    assert len(calls) == 8  # eight rounds, then it gives up


def test_a_rank_in_another_test_fails_the_end_of_the_test_at_once(monkeypatch) -> None:
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "t.py::test_a (teardown)")
    calls = replies(monkeypatch, [None, ((TEST_END, "t.py::test_b"), None), (("a checkpoint", ""), None)],
                    [None, None, None])
    assert error(World(2, 3, "gloo").end_test) == (
        "optcheck: rank 2 of 3 ended t.py::test_a, but the ranks are in different tests (rank 0: the end of the "
        "test of t.py::test_a; rank 1: the end of the test of t.py::test_b; rank 2: a checkpoint of ?). Every rank "
        "must run the same tests in the same order (the same -k, -x, and skips on every rank).")
    assert len(calls) == 1


def test_each_rule_combines_the_ranks_values_step_by_step() -> None:
    stacked = np.array([[1.0, 4.0], [3.0, 2.0], [2.0, 0.0]])  # (ranks, steps)
    assert {name: rule(stacked).tolist() for name, rule in RANK_REDUCTIONS.items()} == {
        "mean": [2.0, 2.0], "sum": [6.0, 6.0], "first": [1.0, 4.0], "last": [2.0, 0.0], "min": [1.0, 0.0],
        "max": [3.0, 4.0]}


def test_reduce_is_one_rule_or_one_per_name_with_a_default() -> None:
    assert Ranks().rule("loss") == "mean"
    assert Ranks("max").rule("loss") == "max"
    per_name = Ranks({"loss": "sum"})
    assert per_name.rule("loss") == "sum" and per_name.rule("acc") == "mean"
    assert Ranks({"*": "min", "loss": "sum"}).rule("acc") == "min"
    assert error(Ranks, {"loss": "sum", "acc": "maxx"}) == (
        "optcheck: record(reduce={'loss': 'sum', 'acc': 'maxx'}): 'maxx' for 'acc' is no way to combine the ranks' "
        "values. Did you mean: max? Known: mean, sum, first, last, min, max.")
    assert error(Ranks, "avg") == (
        "optcheck: record(reduce='avg'): 'avg' for '*' is no way to combine the ranks' values. "
        "Known: mean, sum, first, last, min, max.")


def scripted_world(monkeypatch, *others) -> list:
    """A world of 1 + len(others) ranks whose gather answers with ``others``' payloads after this rank's."""
    asked: list = []

    def gather(self, what, payload):
        asked.append((what, payload))
        return [payload, *others]

    monkeypatch.setattr(world_module, "current", lambda: World(0, 1 + len(others), "gloo"))
    monkeypatch.setattr(World, "gather", gather)
    return asked


def test_logged_series_are_combined_over_the_ranks_the_rest_are_rank_0_s(monkeypatch) -> None:
    other = {"steps": 2, "logged": {"loss": [3.0, 5.0], "acc": [1.0, 0.25]}, "norms": None}
    asked = scripted_world(monkeypatch, other)
    series = {"loss": np.array([1.0, 2.0]), "acc": np.array([0.0, 0.5]), "lr": np.array([[0.1], [0.2]])}
    out = Ranks({"acc": "max"}).globalise(series, ["loss", "acc", "never logged"], None, 2)
    assert out["loss"].tolist() == [2.0, 3.5] and out["acc"].tolist() == [1.0, 0.5] and out["lr"] is series["lr"]
    assert series["loss"].tolist() == [1.0, 2.0]  # this rank's own series are left as they were
    assert len(asked) == 1 and asked[0][0] == RECORDING
    assert asked[0][1]["steps"] == 2 and asked[0][1]["norms"] is None and list(asked[0][1]["logged"]) == ["loss", "acc"]


def test_ranks_that_recorded_different_numbers_of_steps_are_refused(monkeypatch) -> None:
    scripted_world(monkeypatch, {"steps": 3, "logged": {}, "norms": None}, {"steps": 2, "logged": {}, "norms": None})
    assert error(Ranks().globalise, {"loss": np.zeros(2)}, ["loss"], None, 2) == (
        "optcheck: the ranks recorded different numbers of optimizer steps (rank 0: 2, rank 1: 3, rank 2: 2), so "
        "their values cannot be combined step by step. Give every rank the same number of batches (a "
        "DistributedSampler with drop_last=True, or equal shards).")


def test_a_world_of_one_without_sharded_parameters_leaves_the_recording_as_it_is(world_of_one) -> None:
    series = {"loss": np.array([1.0, 2.0])}
    assert Ranks().globalise(series, ["loss"], Norms.make([], frozenset()), 2) is series


def test_a_shard_is_held_by_the_ranks_of_the_mesh_s_replicated_dimensions_and_those_outside_it(monkeypatch) -> None:
    """_copies reads a DTensor's mesh sizes and placements, and the world's size: a 2x2 mesh
    needs four processes, so its sizes are given here as such a mesh would give them."""
    import torch.distributed as dist
    from torch.distributed.tensor import Replicate, Shard

    def layout(sizes, placements):
        return types.SimpleNamespace(device_mesh=types.SimpleNamespace(size=lambda dim: sizes[dim]),
                                     placements=placements)

    monkeypatch.setattr(dist, "get_world_size", lambda group=None: 8)
    assert _copies(layout((8,), (Shard(0),))) == 1  # FSDP over the world
    assert _copies(layout((4, 2), (Replicate(), Shard(0)))) == 4  # HSDP: 4 replicas of 2 shards
    assert _copies(layout((2, 4), (Shard(0), Shard(1)))) == 1
    assert _copies(layout((2,), (Shard(0),))) == 4  # a mesh of 2 in a world of 8
    assert _copies(layout((16,), (Shard(0),))) == 1  # never fewer than one
    assert _copies(layout((1,), (Shard(0),))) == 8  # a mesh of one rank: every rank holds its own whole copy
    assert type(_copies(layout((3,), (Shard(0),)))) is int  # ranks are counted whole (8 // 3)


def test_sparsity_of_a_model_without_elements_is_zero() -> None:
    norms = ShardedNorms.__new__(ShardedNorms)
    norms.rows, norms.numel = ("sparsity",), 0
    assert norms.combine([[(0, np.zeros((2, 1)))]])["sparsity"].tolist() == [0.0, 0.0]


def test_sharded_norms_are_combined_with_the_other_ranks_shards(monkeypatch) -> None:
    """Rank 0's whole tensors count once, every rank's shards add their squares."""
    want = frozenset({"param_norm"})
    whole, shard = torch.tensor([3.0], dtype=torch.float64), torch.tensor([4.0], dtype=torch.float64)
    norms = ShardedNorms.__new__(ShardedNorms)  # the parts a rank holds, without DTensors
    norms.rows, norms.numel, norms.parts = ("param_norm",), 3, [(0, Norms.make([whole], want)),
                                                                 (1, Norms.make([shard], want))]
    norms.before_step(grads=False)
    norms.after_step(0)
    theirs = {"steps": 1, "logged": {}, "norms": [(0, np.array([[100.0]])), (1, np.array([[12.0]]))]}
    asked = scripted_world(monkeypatch, theirs)
    out = Ranks().globalise({"param_norm": np.array([5.0])}, [], norms, 1)
    assert out["param_norm"].tolist() == [13.0]  # sqrt(3**2 + 4**2 + 12**2): their whole copy is not counted
    assert [copies for copies, _ in asked[0][1]["norms"]] == [0, 1]


def test_sharded_parameters_record_the_norms_of_the_whole_model(world_of_one) -> None:
    """DTensor parameters (a shard, a replicated one) beside a plain one, one sometimes
    without a gradient: the recording reads their local shards, and the norms are those of
    the same model of plain tensors."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor

    mesh = init_device_mesh("cpu", (1,))

    def record(distributed: bool) -> dict[str, list[float]]:
        generator = torch.Generator().manual_seed(0)
        values = [torch.randn(3, 2, generator=generator, dtype=torch.float64),
                  torch.randn(2, generator=generator, dtype=torch.float64),
                  torch.tensor([0.0, 1.5, -2.0], dtype=torch.float64),
                  torch.randn(4, generator=generator, dtype=torch.float64)]
        values[0][0, 0] = 0.0
        if distributed:
            values[0] = distribute_tensor(values[0], mesh, [Shard(0)])
            values[1] = distribute_tensor(values[1], mesh, [Replicate()])
            values[3] = distribute_tensor(values[3], mesh, [Shard(0)])
        model = torch.nn.Module()
        model.w, model.b, model.c, model.d = (torch.nn.Parameter(v) for v in values)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        wanted = ("grad_norm", "param_norm", "update_norm", "sparsity")
        with Recorder(optimizer, model=model, record=wanted) as rec:
            if distributed:
                assert isinstance(rec._reduce(), ShardedNorms) and is_dtensor(model.w) and not is_dtensor(model.c)
                # the replicated and plain parameters are whole on every rank (0); the shards held once (1)
                assert [(copies, len(part.params)) for copies, part in rec._reduce().parts] == [(0, 2), (1, 2)]
            for step in range(3):
                optimizer.zero_grad()
                parts = [(model.w * model.w).sum(), (model.b ** 3).sum()] + ([model.d.sum()] if step % 2 else [])
                if distributed:
                    parts = [part.full_tensor() for part in parts]
                (sum(parts) + model.c.abs().sum()).backward()
                optimizer.step()
        return {name: rec.trajectory[name].tolist() for name in wanted}

    plain, sharded = record(False), record(True)
    assert plain["sparsity"][0] > 0
    for name in plain:
        np.testing.assert_allclose(sharded[name], plain[name], rtol=1e-12, err_msg=name)


def test_is_dtensor_without_dtensor_s_module_imported(monkeypatch) -> None:
    import sys

    monkeypatch.delitem(sys.modules, "torch.distributed.tensor", raising=False)
    assert not is_dtensor(torch.zeros(1))
