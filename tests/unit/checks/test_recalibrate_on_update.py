"""``--snapshot-update`` re-records a golden that passes when ``calibrate`` asks for another number
of replicas than the golden's envelope holds — fewer as well as more — and leaves it alone when
the number agrees (checks/golden_check.py; issue 22, promise 4)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pytest_optcheck.checks.golden_check import check_golden
from pytest_optcheck.engine.outcome import Status
from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.golden.format import Golden

STEPS = 8
EPOCH, BATCH = np.zeros(STEPS, dtype=int), np.arange(STEPS)
LOSS = np.linspace(1.0, 0.1, STEPS)
CURRENT = Golden(Trajectory({"loss": LOSS}, EPOCH, BATCH), spec={"optimizer": "SGD(lr=0.1)"})


def replicate(n: int) -> tuple[list[Trajectory], str]:
    """n replicas a few ulp-sized steps away from the run: a small, stable envelope."""
    return [Trajectory({"loss": LOSS * (1 + 1e-9 * (i + 1))}, EPOCH, BATCH) for i in range(n)], "by hand"


def update(path: Path, calibrate: int) -> Status:
    return check_golden(CURRENT, path, update=True, calibrate=calibrate, replicate=replicate).status


def replicas(path: Path) -> int:
    return json.loads(path.read_text(encoding="utf-8"))["calibration"]["replicas"]


def test_another_number_of_replicas_rerecords_fewer_and_more(tmp_path: Path) -> None:
    path = tmp_path / "test_a.json"
    assert update(path, 4) is Status.CREATED and replicas(path) == 4
    assert update(path, 2) is Status.UPDATED and replicas(path) == 2  # fewer
    assert update(path, 3) is Status.UPDATED and replicas(path) == 3  # more
    written = path.read_bytes()
    assert update(path, 3) is Status.PASSED and path.read_bytes() == written  # the same: left alone
