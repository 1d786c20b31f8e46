"""syrupy's TrajectoryExtension (pytest_optcheck.integrations.syrupy), its methods called as
syrupy calls them: the snapshot's text is a golden's, the comparison is optcheck's tolerance
check, the diff is optcheck's failure message. Fast: hand-made trajectories, no session (real
syrupy sessions: tests/e2e/test_syrupy_extension.py, tests/e2e/test_syrupy_sessions.py)."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest

pytest.importorskip("syrupy")
from syrupy.extensions.single_file import SingleFileSnapshotExtension

from pytest_optcheck.engine.tolerance import ToleranceError
from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.golden.environment import environment
from pytest_optcheck.golden.format import Golden, dumps, loads
from pytest_optcheck.integrations.syrupy import UPDATE_COMMAND, TrajectoryExtension, _environment

RUN = {"source": "loop", "optimizer": "SGD(lr=0.1)", "param_groups": ["2 tensors, 3 values"], "scheduler": None,
       "epochs": 1, "steps": 3}


def trajectory(*loss: float, run: dict[str, Any] | None = RUN, **meta: Any) -> Trajectory:
    values = np.array(loss, dtype=np.float64)
    return Trajectory({"loss": values, "lr": np.full((len(loss), 1), 0.1)}, [0] * len(loss), list(range(len(loss))),
                      meta={**({"run": run} if run is not None else {}), **meta})


def test_snapshots_are_trajectory_files_in_text() -> None:
    assert issubclass(TrajectoryExtension, SingleFileSnapshotExtension)
    assert TrajectoryExtension.file_extension == "trajectory"
    assert TrajectoryExtension.tolerance == {}
    assert UPDATE_COMMAND == "pytest --snapshot-update"


def test_serialize_writes_a_golden_whose_configuration_is_the_run() -> None:
    data = trajectory(1.0, 0.5, 0.25, libraries=["syrupy", "numpy"], note="kept")
    text = TrajectoryExtension().serialize(data)
    golden = loads(text)
    assert golden.spec == RUN
    assert golden.environment == environment("cpu", "float32", ["numpy", "syrupy"])
    assert list(golden.environment["libraries"]) == ["numpy", "syrupy"]
    assert golden.trajectory.meta == {"note": "kept"}  # run and libraries went to their own blocks
    np.testing.assert_array_equal(golden.trajectory["loss"], [1.0, 0.5, 0.25])
    assert text == dumps(Golden(data.derive(meta={"note": "kept"}), RUN, golden.environment))
    assert data.meta["run"] == RUN and "libraries" in data.meta  # the asserted trajectory is left alone


def test_serialize_names_autocast_in_the_dtype_and_takes_a_bare_trajectory() -> None:
    golden = loads(TrajectoryExtension().serialize(trajectory(1.0, run={**RUN, "autocast": "bfloat16"})))
    assert golden.environment["dtype"] == "float32 (autocast bfloat16)"
    assert "libraries" not in golden.environment
    bare = loads(TrajectoryExtension().serialize(Trajectory({"loss": [1.0, 0.5]})))
    assert bare.spec is None and bare.environment["dtype"] == "float32"
    assert loads(TrajectoryExtension().serialize(trajectory(1.0, run={**RUN, "autocast": None}))).environment[
        "dtype"] == "float32"


def test_serialize_refuses_anything_but_a_trajectory() -> None:
    with pytest.raises(TypeError) as error:
        TrajectoryExtension().serialize({"loss": [1.0]})
    assert str(error.value) == (
        "optcheck: TrajectoryExtension snapshots a Trajectory; got a dict. Make one with optcheck.train(), "
        "optcheck.record(...), a callback's .trajectory, or Trajectory({'loss': values}).")


def test_the_environment_block_is_empty_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pytest_optcheck.golden.environment", None)  # its import fails
    assert _environment(RUN, ["numpy"]) == {}
    assert loads(TrajectoryExtension().serialize(trajectory(1.0))).environment == {}


def snapshot_of(data: Trajectory) -> str:
    return TrajectoryExtension().serialize(data)


def test_matches_within_tolerance_not_text_equality() -> None:
    extension = TrajectoryExtension()
    golden = snapshot_of(trajectory(1.0, 0.5, 0.25))
    assert extension.matches(serialized_data=golden, snapshot_data=golden)
    near = snapshot_of(trajectory(1.0, 0.5 * (1 + 1e-7), 0.25))
    assert near != golden and extension.matches(serialized_data=near, snapshot_data=golden)
    far = snapshot_of(trajectory(1.0, 0.51, 0.25))
    assert not extension.matches(serialized_data=far, snapshot_data=golden)
    other_run = snapshot_of(trajectory(1.0, 0.5, 0.25, run={**RUN, "optimizer": "SGD(lr=0.2)"}))
    assert not extension.matches(serialized_data=other_run, snapshot_data=golden)  # a changed configuration


def test_diff_lines_are_optcheck_s_failure_message() -> None:
    extension = TrajectoryExtension()
    golden = snapshot_of(trajectory(1.0, 0.5, 0.25))
    lines = list(extension.diff_lines(snapshot_of(trajectory(1.0, 0.51, 0.25)), golden))
    assert lines[0] == "optcheck: 1 of 2 series differ from the golden (loss)"
    assert "    step  epoch  batch  golden  current  abs err  rel err" in lines
    assert lines[-1] == "update with: pytest --snapshot-update"
    assert all("\n" not in line for line in lines)
    assert list(extension.diff_lines(snapshot_of(trajectory(1.0)), "")) == []  # no snapshot yet: syrupy says so
    assert list(extension.diff_lines(golden, golden)) == [
        line for line in extension._judge(golden, golden).message.splitlines()]


def test_a_text_that_is_no_golden_is_an_error_not_a_crash() -> None:
    extension = TrajectoryExtension()
    golden = snapshot_of(trajectory(1.0, 0.5))
    outcome = extension._judge("not a golden", golden)
    assert outcome.status.name == "ERROR"
    with pytest.raises(Exception) as error:
        loads("not a golden")
    assert outcome.message == str(error.value)
    assert not extension.matches(serialized_data="not a golden", snapshot_data=golden)
    assert list(extension.diff_lines("not a golden", golden)) == str(error.value).splitlines()


def test_with_tolerance_makes_a_class_with_its_own_tolerances() -> None:
    loose = TrajectoryExtension.with_tolerance({"loss": "rtol=0.05", "lr": {"rtol": 0}})
    assert issubclass(loose, TrajectoryExtension) and loose is not TrajectoryExtension
    assert (loose.__name__, loose.__module__) == ("TrajectoryExtension", "pytest_optcheck.integrations.syrupy")
    assert loose.tolerance == {"loss": {"rtol": 0.05}, "lr": {"rtol": 0.0}}  # parsed: the marker's form
    assert TrajectoryExtension.tolerance == {}  # the base class keeps the defaults
    golden = snapshot_of(trajectory(1.0, 0.5, 0.25))
    far = snapshot_of(trajectory(1.0, 0.51, 0.25))
    assert loose().matches(serialized_data=far, snapshot_data=golden)
    assert not TrajectoryExtension().matches(serialized_data=far, snapshot_data=golden)
    tight = TrajectoryExtension.with_tolerance({"*": "rtol=0, atol=0"})
    near = snapshot_of(trajectory(1.0, 0.5 * (1 + 1e-7), 0.25))
    assert not tight().matches(serialized_data=near, snapshot_data=golden)
    assert next(iter(tight.tolerance)) == "*"


def test_with_tolerance_refuses_a_bad_one_naming_the_series() -> None:
    with pytest.raises(ToleranceError, match=r"TrajectoryExtension tolerance for 'loss'"):
        TrajectoryExtension.with_tolerance({"loss": "rtol=banana"})
