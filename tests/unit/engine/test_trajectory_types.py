"""What a Trajectory holds whatever it was given: float64 series and buckets, int64 epoch,
batch and steps (so a golden file writes ``0``, not ``0.0``), meta that survives JSON, and
the label a plot is asked for."""

from __future__ import annotations

import numpy as np

from pytest_optcheck.engine.trajectory import Buckets, Trajectory, decode_floats


def test_integer_series_and_bucket_stats_become_float64() -> None:
    traj = Trajectory({"loss": [3, 2, 1]})
    assert traj["loss"].dtype == np.float64
    buckets = Buckets(2, 3, {"loss": {"min": [2, 1], "max": [3, 1], "mean": [2, 1]}})
    assert {s: a.dtype for s, a in buckets.stats["loss"].items()} == dict.fromkeys(("min", "max", "mean"), np.float64)


def test_epoch_and_batch_are_whole_numbers_in_the_file() -> None:
    given = Trajectory({"loss": [1.0, 2.0]}, epoch=np.array([0.0, 1.0]), batch=np.array([0.0, 0.0]))
    default = Trajectory({"loss": [1.0, 2.0]})
    for traj in (given, default):
        assert traj.epoch.dtype == traj.batch.dtype == traj.steps.dtype == np.int64
    assert '"epoch": [0, 1]' in given.to_json() and '"batch": [0, 0]' in given.to_json()
    assert '"epoch": [0, 0]' in default.to_json() and '"batch": [0, 1]' in default.to_json()


def test_decoded_whole_numbers_are_float64() -> None:
    assert decode_floats([1, 2]).dtype == np.float64
    assert decode_floats([[1, 2], [3, 4]]).dtype == np.float64


def test_meta_survives_json() -> None:
    traj = Trajectory({"loss": [1.0]}, meta={"run": {"seed": 7}})
    assert Trajectory.from_json(traj.to_json()).meta == {"run": {"seed": 7}}
    assert Trajectory.from_dict(traj.to_dict()).meta == {"run": {"seed": 7}}


def test_plot_uses_the_label_given() -> None:
    ax = Trajectory({"loss": [1.0, 0.5]}).plot(["loss"], label="mine")
    assert [line.get_label() for line in ax.get_lines()] == ["mine"]
