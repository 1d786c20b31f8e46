"""Damaged goldens: the message names the series and the line that hold the damage (issue 19, item 9)."""

from __future__ import annotations

import pytest

from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.errors import GoldenFileError
from pytest_optcheck.golden.format import Golden, dumps, loads


def _text() -> str:
    trajectory = Trajectory({"loss": [1.0, 0.5, 0.25], "lr": [[0.1], [0.1], [0.05]]})
    return dumps(Golden(trajectory, {"optimizer": "SGD(lr=0.1)"}))


def test_a_value_that_is_no_number_names_its_series_and_line() -> None:
    text = _text()
    line = next(i for i, row in enumerate(text.split("\n"), 1) if row.strip() == "0.5,")
    with pytest.raises(GoldenFileError, match=rf"series 'loss': not a number: 'abc' \(line {line}\)"):
        loads(text.replace("0.5,", '"abc",'), "g.json")


def test_a_deleted_loss_line_is_blamed_on_loss() -> None:
    rows = _text().split("\n")
    rows.remove("      0.5,")
    with pytest.raises(GoldenFileError, match="series 'loss' has 2 values but the golden has 3 steps") as info:
        loads("\n".join(rows), "g.json")
    assert "'lr'" not in str(info.value)


def test_a_deleted_lr_line_is_blamed_on_lr() -> None:
    rows = _text().split("\n")
    rows.remove("      [0.1],")
    with pytest.raises(GoldenFileError, match="series 'lr' has 2 values"):
        loads("\n".join(rows), "g.json")
