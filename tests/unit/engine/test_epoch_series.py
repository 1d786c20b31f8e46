"""Per-epoch series (issue 19, item 10): carried by the Trajectory beside the per-step ones,
round-tripped through JSON and the golden format, compared epoch by epoch, failures naming
epochs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_optcheck.engine.compare import compare
from pytest_optcheck.engine.messages import render_verdict
from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.golden.format import Golden, dumps, loads


def trajectory(val: list[float], **extra: list[float]) -> Trajectory:
    return Trajectory({"loss": [1.0, 0.9, 0.8, 0.7]}, [0, 0, 1, 1], epoch_series={"val_loss": val, **extra})


def test_round_trips_through_json_and_the_golden_format() -> None:
    t = trajectory([0.5, math.nan])
    assert Trajectory.from_json(t.to_json()) == t
    text = dumps(Golden(t))
    assert '"epoch_series": {\n    "val_loss": [0.5, "NaN"]\n  }' in text
    assert loads(text).trajectory == t
    assert t != trajectory([0.5, 0.4]) and t.names == ["loss"]


def test_goldens_without_per_epoch_values_are_written_as_before() -> None:
    t = Trajectory({"loss": [1.0]})
    assert "epoch_series" not in dumps(Golden(t)) and "epoch_series" not in t.to_dict()


def test_compared_per_epoch_and_failures_name_the_epoch() -> None:
    golden = trajectory([0.5, 0.4, 0.3])
    assert compare(golden, trajectory([0.5, 0.4, 0.3])).passed
    current = trajectory([0.5, 0.41, 0.3])
    verdict = compare(golden, current)
    assert not verdict.passed and [v.name for v in verdict.epoch_failed] == ["val_loss"]
    text = render_verdict(verdict, golden, current)
    assert "1 of 2 series differ from the golden (val_loss)" in text
    assert "val_loss (per epoch): 1 of 3 epochs outside tolerance" in text
    assert "first epoch outside tolerance: epoch 1 (golden 0.4, current 0.41)" in text
    assert "epoch by epoch" in text


def test_a_per_epoch_series_on_one_side_only_is_named() -> None:
    verdict = compare(trajectory([0.5], ema=[0.2]), trajectory([0.5]))
    assert verdict.missing_series == ["ema"] and not verdict.passed


def test_a_name_cannot_be_both_per_step_and_per_epoch() -> None:
    with pytest.raises(ValueError, match="both a per-step and a per-epoch"):
        Trajectory({"loss": [1.0]}, epoch_series={"loss": [1.0]})
    assert np.asarray(trajectory([0.5]).epoch_series["val_loss"]).flags.writeable is False
