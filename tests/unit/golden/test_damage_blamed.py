"""Damaged goldens: the message names the series and the line that hold the damage (issue 19, item 9)."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.errors import GoldenFileError
from pytest_optcheck.golden.format import Golden, dumps, loads


def _text() -> str:
    """25 steps: the loss over three lines (ten values a line), the LR as runs."""
    trajectory = Trajectory({"loss": 1 / np.arange(1, 26), "lr": [[0.1]] * 12 + [[0.05]] * 13})
    return dumps(Golden(trajectory, {"optimizer": "SGD(lr=0.1)"}))


def test_a_value_that_is_no_number_names_its_series_and_line() -> None:
    text = _text()
    line = next(i for i, row in enumerate(text.split("\n"), 1) if " 0.25," in row)
    with pytest.raises(GoldenFileError, match=rf"series 'loss': not a number: 'abc' \(line {line}\)"):
        loads(text.replace(" 0.25,", ' "abc",'), "g.json")


def test_a_deleted_loss_line_is_blamed_on_loss() -> None:
    rows = _text().split("\n")
    rows.remove(next(row for row in rows if row.strip().startswith("0.09090909090909091,")))
    with pytest.raises(GoldenFileError, match="series 'loss' has 15 values but the golden has 25 steps") as info:
        loads("\n".join(rows), "g.json")
    assert "'lr'" not in str(info.value)


def test_a_damaged_lr_run_is_blamed_on_lr() -> None:
    text = _text().replace("[[0.05], 13]", "[[0.05], 3]")
    with pytest.raises(GoldenFileError, match="series 'lr' has 15 values but the golden has 25 steps"):
        loads(text, "g.json")
