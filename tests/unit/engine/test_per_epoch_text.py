"""The failure text of a per-epoch series (engine/per_epoch.py), pinned whole: its facts name
epochs, its table shows the epochs around the first failure (three before, three after, cut
at either end of the shorter run) and marks each epoch outside tolerance with "!"."""

from __future__ import annotations

import numpy as np

from pytest_optcheck.engine.compare import compare
from pytest_optcheck.engine.per_epoch import epoch_block
from pytest_optcheck.engine.trajectory import Trajectory

GOLDEN = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]


def block(golden: list[float], current: list[float]) -> str:
    def trajectory(val: list[float]) -> Trajectory:
        return Trajectory({"loss": [1.0] * 4}, [0, 0, 1, 1], epoch_series={"val_loss": val})

    (verdict,) = compare(trajectory(golden), trajectory(current)).epoch_failed
    return "\n".join(epoch_block(verdict, np.array(golden), np.array(current)))


def test_a_failure_mid_run_shows_three_epochs_either_side_and_marks_each_failing_one() -> None:
    current = list(GOLDEN)
    current[5], current[9] = 0.55, 0.2
    assert block(GOLDEN, current) == """\
val_loss (per epoch): 2 of 10 epochs outside tolerance
  tolerance: rtol=1e-05, atol=1e-08, epoch by epoch
  first epoch outside tolerance: epoch 5 (golden 0.5, current 0.55)
  per epoch:
    epoch  golden  current  abs err  rel err
        2     0.8      0.8        0        0
        3     0.7      0.7        0        0
        4     0.6      0.6        0        0
        5     0.5     0.55     0.05      0.1  !
        6     0.4      0.4        0        0
        7     0.3      0.3        0        0
        8     0.2      0.2        0        0"""


def test_a_failure_at_epoch_0_starts_the_table_there() -> None:
    current = list(GOLDEN)
    current[0], current[2] = 1.5, 0.7
    assert block(GOLDEN, current) == """\
val_loss (per epoch): 2 of 10 epochs outside tolerance
  tolerance: rtol=1e-05, atol=1e-08, epoch by epoch
  first epoch outside tolerance: epoch 0 (golden 1, current 1.5)
  per epoch:
    epoch  golden  current  abs err  rel err
        0       1      1.5      0.5      0.5  !
        1     0.9      0.9        0        0
        2     0.8      0.7      0.1    0.125  !
        3     0.7      0.7        0        0"""


def test_runs_of_other_lengths_are_named_and_the_table_stops_at_the_shorter() -> None:
    assert block(GOLDEN, GOLDEN[:2]) == """\
val_loss (per epoch): current run has 2 epochs, the golden 10
  tolerance: rtol=1e-05, atol=1e-08, epoch by epoch
  per epoch:
    epoch  golden  current  abs err  rel err
        0       1        1        0        0
        1     0.9      0.9        0        0"""
    assert block(GOLDEN[:3], GOLDEN).splitlines()[0] == "val_loss (per epoch): current run has 10 epochs, the golden 3"
    assert block(GOLDEN[:3], GOLDEN).splitlines()[-1] == "        2     0.8      0.8        0        0"
