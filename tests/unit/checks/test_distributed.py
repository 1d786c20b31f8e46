"""check_distributed: DistributedDataParallel over local processes (gloo) against one
process; bad input, a failing rank and a hanging rank end in clear messages."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch import nn

from pytest_optcheck.checks.differential.distributed import check_distributed
from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.engine.outcome import Status
from pytest_optcheck.errors import OptcheckError

#: 2 epochs of 5 global batches of 200 rows: 100 per rank.
SMALL = {"epochs": 2, "batch_size": 200, "record": ("loss", "lr", "grad_norm")}


@pytest.mark.parametrize("optimizer", ["SGD(lr=0.05, momentum=0.9)", "Adam(lr=0.01)"])
def test_ddp_with_a_mean_loss_trains_like_one_process(optimizer: str) -> None:
    spec = Spec(**SMALL, optimizer=optimizer, scheduler="ReduceLROnPlateau(patience=0, threshold=0.5)")
    outcome = check_distributed(spec, world_size=2)
    assert outcome.status is Status.PASSED, outcome.message
    assert "over 2 processes (gloo) trains like one process" in outcome.message
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("optcheck-rank")]


def test_a_summed_loss_fails_from_the_first_step() -> None:
    outcome = check_distributed(Spec(**SMALL, loss="MSELoss(reduction='sum')"), world_size=2)
    assert outcome.status is Status.FAILED
    message = outcome.message
    assert "differs from the one-process run from step 0 (epoch 0, batch 0) on" in message
    assert "loss at step 0 (epoch 0, batch 0): one-process" in message and "rel err 0.5" in message
    assert "first tensor outside tolerance: hidden.weight[" in message


@pytest.mark.parametrize(("keys", "arguments", "words"), [
    ({}, {"world_size": 1}, "world_size must be an integer >= 2"),
    ({"optimizer": "LBFGS(lr=0.1)"}, {}, "does not run LBFGS"),
    ({}, {"backend": "no-such-backend"}, "backend='no-such-backend'): this torch has no such backend here"),
    ({"batch_size": 33}, {}, "a global batch of 33 rows cannot be split into 2 equal shards"),
    ({"batch_size": 300}, {}, "a global batch of 100 rows cannot be split into 3 equal shards"),
])
def test_bad_input_is_refused_before_any_process_starts(keys: dict, arguments: dict, words: str) -> None:
    arguments = {"world_size": 3, **arguments} if "batch_size" in keys and keys["batch_size"] == 300 else arguments
    with pytest.raises(OptcheckError) as excinfo:
        check_distributed(Spec(**{**SMALL, **keys}), **arguments)
    assert words in str(excinfo.value)


def test_a_spec_that_cannot_travel_is_refused_by_name() -> None:
    with pytest.raises(OptcheckError, match="must be importable by name"):
        check_distributed(Spec(**SMALL, loss=lambda pred, target: (pred - target).pow(2).mean()))


class RaisingOnRank1(nn.MSELoss):
    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if dist.is_initialized() and dist.get_rank() == 1:
            raise ValueError("the user's loss broke on rank 1")
        return super().forward(pred, target)


class HangingOnRank1(nn.MSELoss):
    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if dist.is_initialized() and dist.get_rank() == 1:
            time.sleep(600)
        return super().forward(pred, target)


def test_a_failing_rank_reports_its_error_with_the_users_frames() -> None:
    with pytest.raises(OptcheckError) as excinfo:
        check_distributed(Spec(**SMALL, loss=RaisingOnRank1), timeout=120)
    message = str(excinfo.value)
    assert "rank 1 of 2 failed" in message
    assert "ValueError: the user's loss broke on rank 1" in message and "test_distributed.py" in message
    assert "pytest_optcheck" not in message.split("failed:")[1]
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("optcheck-rank")]


def test_a_hanging_rank_ends_in_a_timeout_and_no_process_is_left() -> None:
    with pytest.raises(OptcheckError) as excinfo:
        check_distributed(Spec(**SMALL, loss=HangingOnRank1), timeout=4)
    message = str(excinfo.value)
    assert "did not finish within 4 s and were stopped" in message and "Raise timeout=" in message
    assert "1" in message.split("rank(s)")[1].split("of")[0]
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("optcheck-rank")]


def test_waiting_survives_a_rank_that_ends_between_two_looks() -> None:
    """Seen in CI: every rank ended between reading the exit codes and picking one to join,
    and the wait raised StopIteration instead of returning."""
    from pytest_optcheck.checks.differential.processes import _wait

    class EndsAfterFirstLook:
        def __init__(self) -> None:
            self.looks = 0

        @property
        def exitcode(self) -> int | None:
            self.looks += 1
            return None if self.looks == 1 else 0

        def join(self, timeout: float) -> None:
            raise AssertionError("nothing is left to join")

    rank = EndsAfterFirstLook()
    _wait([(1, 0, rank)], timeout=5, out=Path("."))
    assert rank.looks >= 3
