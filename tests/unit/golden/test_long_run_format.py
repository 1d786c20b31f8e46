"""Schema 2 on long runs (issue 21): a 100,000-step golden stays small in full and thinned,
reads back bit for bit, and the checks that matter still fail — a 2% LR change, a loss spike
on one step between the kept ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pytest_optcheck.checks.golden_check import check_golden
from pytest_optcheck.engine.compare import compare
from pytest_optcheck.engine.outcome import Status
from pytest_optcheck.engine.thinning import thin
from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.errors import GoldenFileError
from pytest_optcheck.golden.format import Golden, dumps, loads

STEPS = 100_000
PER_EPOCH = 391  # CIFAR-10 at batch 128


def run(lr_scale: float = 1.0, spike_at: int | None = None) -> Trajectory:
    """A synthetic 100,000-step run: a float32 loss decaying with noise, a step-schedule lr."""
    rng = np.random.default_rng(0)
    step = np.arange(STEPS)
    loss = (2.3 * np.exp(-step / 20_000) + 0.05 * rng.random(STEPS)).astype(np.float32).astype(np.float64)
    if spike_at is not None:
        loss[spike_at] *= 3.0
    lr = (0.1 * 0.1 ** (step // 30_000) * lr_scale).reshape(-1, 1)
    return Trajectory({"loss": loss, "lr": lr}, step // PER_EPOCH, step % PER_EPOCH)


@pytest.fixture(scope="module")
def goldens() -> dict[str, str]:
    full = run()
    return {"full": dumps(Golden(full)), "thinned": dumps(Golden(thin(full, 100)))}


def test_sizes_per_step_full_and_thinned(goldens: dict[str, str]) -> None:
    assert len(goldens["full"].encode()) / STEPS <= 24
    assert len(goldens["thinned"].encode()) / STEPS <= 1


def test_both_read_back_bit_for_bit(goldens: dict[str, str]) -> None:
    full = run()
    assert loads(goldens["full"]).trajectory == full
    back = loads(goldens["thinned"]).trajectory
    assert back == thin(full, 100)
    assert (back.every, back.total_steps, len(back)) == (100, STEPS, 1000)
    assert back.steps[:3].tolist() == [0, 100, 200] and back.epoch[3] == 300 // PER_EPOCH
    assert dumps(Golden(back)) == goldens["thinned"]


@pytest.mark.parametrize("form", ["full", "thinned"])
def test_rerun_passes_lr_change_and_single_step_spike_fail(goldens: dict[str, str], form: str) -> None:
    golden = loads(goldens[form]).trajectory
    every = golden.every

    def verdict(current: Trajectory):  # the run as it would record itself
        return compare(golden, thin(current, every))

    assert verdict(run()).passed
    lr = verdict(run(lr_scale=1.02))
    assert not lr.passed and [s.name for s in lr.failed] == ["lr"]
    spike = verdict(run(spike_at=4217))  # not a multiple of 100: between two kept steps
    assert not spike.passed and [s.name for s in spike.failed] == ["loss"]
    loss = spike.failed[0]
    if form == "thinned":
        assert loss.n_failed == 0 and loss.buckets is not None and loss.buckets.n_failed == 1
        first = loss.buckets.first
        assert (first.first_step, first.last_step, first.stat) == (4200, 4299, "max")
    else:
        assert loss.first_failure == 4217


def test_a_full_run_checks_against_a_thinned_golden(goldens: dict[str, str]) -> None:
    golden = loads(goldens["thinned"]).trajectory
    assert compare(golden, run()).passed
    failed = compare(golden, run(spike_at=4217)).failed
    assert failed[0].buckets.first.first_step == 4200


def test_piecewise_constant_series_are_runs_and_changing_ones_ten_values_a_line(goldens: dict[str, str]) -> None:
    data = json.loads(goldens["full"])
    assert data["optcheck_golden"] == 2 and data["steps"] == STEPS
    lr = run()["lr"][:, 0]
    assert data["series"]["lr"] == {"runs": [[[lr[0]], 30_000], [[lr[30_000]], 30_000], [[lr[60_000]], 30_000],
                                             [[lr[90_000]], 10_000]]}
    assert data["epoch"]["ramps"][:2] == [[0, 0, PER_EPOCH], [1, 0, PER_EPOCH]]
    assert data["batch"]["ramps"][:2] == [[0, 1, PER_EPOCH], [0, 1, PER_EPOCH]]
    lines = goldens["full"].splitlines()
    start = lines.index('    "loss": [') + 1
    assert len(lines[start].split(", ")) == 10  # line j holds steps 10j .. 10j+9
    assert float(lines[start + 421].split(", ")[7].rstrip(",")) == run()["loss"][4217]


def test_runs_keep_signed_zeros_and_nan_and_short_series_stay_lists() -> None:
    values = np.array([0.0] * 8 + [-0.0] * 8 + [np.nan] * 8)
    traj = Trajectory({"x": values})
    text = dumps(Golden(traj))
    assert json.loads(text)["series"]["x"] == {"runs": [[0.0, 8], [-0.0, 8], ["NaN", 8]]}
    back = loads(text).trajectory["x"]
    assert back.tobytes() == values.tobytes()
    assert json.loads(dumps(Golden(Trajectory({"x": [1.0, 1.0]}))))["series"]["x"] == [1.0, 1.0]


@pytest.mark.parametrize(("change", "expected"), [
    ({"series": {"loss": {"runs": [[1.0, 0]]}}}, "each run must be [value, count]"),
    ({"series": {"loss": {"values": [1.0]}}}, "neither a list of values nor"),
    ({"epoch": {"ramps": [[0, 1]]}}, "each ramp must be [first, increment, count]"),
    ({"steps": 7}, "header says 7 steps"),
    ({"record_every": 0}, "'record_every' is 0"),
])
def test_damaged_compact_forms_are_clean_errors(change: dict, expected: str) -> None:
    data = json.loads(dumps(Golden(Trajectory({"loss": [1.0] * 8}))))
    data.update(change)
    with pytest.raises(GoldenFileError, match="is damaged") as info:
        loads(json.dumps(data), "g.json")
    assert expected in str(info.value)


def test_update_rewrites_nothing_within_tolerance_and_schema_2_when_it_must(tmp_path: Path) -> None:
    """A schema-1 golden within tolerance keeps its bytes under --snapshot-update; one out of
    tolerance is rewritten, in schema 2."""
    traj = Trajectory({"loss": [1.0, 0.5, 0.25, 0.125], "lr": [[0.1]] * 4})
    v1 = ('{\n  "optcheck_golden": 1,\n  "test": null,\n  "name": null,\n  "spec": null,\n  "environment": {},\n'
          '  "meta": {},\n  "steps": 4,\n  "epoch": [0, 0, 0, 0],\n  "batch": [0, 1, 2, 3],\n  "series": {\n'
          '    "loss": [\n      1.0,\n      0.5,\n      0.25,\n      0.125\n    ],\n'
          '    "lr": [\n      [0.1],\n      [0.1],\n      [0.1],\n      [0.1]\n    ]\n  }\n}\n')
    path = tmp_path / "g.json"
    path.write_text(v1)
    assert check_golden(Golden(traj), path, update=True).status is Status.PASSED
    assert path.read_text() == v1
    changed = Trajectory({"loss": [1.0, 0.5, 0.25, 0.2], "lr": [[0.1]] * 4})
    assert check_golden(Golden(changed), path, update=True).status is Status.UPDATED
    assert json.loads(path.read_text())["optcheck_golden"] == 2
    assert loads(path.read_text()).trajectory == changed
