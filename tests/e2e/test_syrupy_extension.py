"""syrupy's own ``snapshot`` with optcheck's TrajectoryExtension, in real syrupy sessions: a
golden is created with --snapshot-update, a re-run passes, a 1e-7 relative change passes (and is
not rewritten), a 2% LR change fails with optcheck's step table, --snapshot-update with -k
updates only what it selects, and an unused snapshot is reported (and removed) as syrupy does."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _not_an_xdist_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inner sessions are no xdist workers, even when this suite runs under -n: syrupy reads
    PYTEST_XDIST_WORKER and leaves its report (snapshots generated, updated, unused) to the
    controller of a worker, which an in-process session has not."""
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)


TESTS = """
import torch
from pytest_optcheck import Trajectory
from pytest_optcheck.integrations.syrupy import TrajectoryExtension

def run(optcheck, lr):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    x = torch.linspace(-1, 1, 16).reshape(8, 2)
    with optcheck.record(optimizer) as rec:
        for _ in range(5):
            loss = torch.nn.functional.mse_loss(model(x), x.sum(1, keepdim=True))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            rec.log(loss=loss)
    return rec.trajectory

def test_fit(optcheck, snapshot):
    trajectory = run(optcheck, 0.1 * {lr_factor})
    moved = Trajectory({{**trajectory.series, "loss": trajectory["loss"] * (1 + {eps})}}, trajectory.epoch,
                       trajectory.batch, trajectory.meta)
    assert moved == snapshot(extension_class=TrajectoryExtension)
{other}
"""
OTHER = """
def test_other(snapshot):
    assert Trajectory({"loss": [1.0, 0.5]}) == snapshot(extension_class=TrajectoryExtension)
"""


def _write(project: pytest.Pytester, lr_factor: float = 1.0, eps: float = 0.0, other: bool = True) -> None:
    project.makepyfile(test_snap=TESTS.format(lr_factor=lr_factor, eps=eps, other=OTHER if other else ""))


def _snapshots(project: pytest.Pytester) -> dict[str, bytes]:
    folder = project.path / "__snapshots__" / "test_snap"
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*"))} if folder.exists() else {}


def test_created_rerun_tolerant_and_failing_with_the_step_table(project: pytest.Pytester,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")  # pytest shortens long explanations unless -vv or on CI
    _write(project)
    created = project.runpytest("--snapshot-update")
    created.assert_outcomes(passed=2)
    created.stdout.fnmatch_lines(["*2 snapshots generated*"])
    files = _snapshots(project)
    assert sorted(files) == ["test_fit.trajectory", "test_other.trajectory"]
    text = files["test_fit.trajectory"].decode()
    assert text.startswith('{\n  "optcheck_golden": ') and '"source": "loop"' in text  # the golden format

    project.runpytest().assert_outcomes(passed=2)

    _write(project, eps=1e-7)  # a rounding-sized change: matches, and --snapshot-update keeps the bytes
    project.runpytest().assert_outcomes(passed=2)
    project.runpytest("--snapshot-update").assert_outcomes(passed=2)
    assert _snapshots(project) == files

    _write(project, lr_factor=1.02)
    failed = project.runpytest()
    failed.assert_outcomes(failed=1, passed=1)
    failed.stdout.fnmatch_lines([
        "*optcheck: 2 of 2 series differ from the golden (loss, lr)*",
        "*lr: 5 of 5 steps (100.0%) outside tolerance*",
        "*step  epoch  batch*golden*current*abs err*rel err*",
    ])
    assert "update with: pytest --snapshot-update" in failed.stdout.str()


def test_snapshot_update_with_k_and_unused_snapshots_as_syrupy_does(project: pytest.Pytester) -> None:
    _write(project)
    project.runpytest("--snapshot-update").assert_outcomes(passed=2)
    before = _snapshots(project)

    _write(project, lr_factor=1.02)
    updated = project.runpytest("--snapshot-update", "-k", "test_fit")
    updated.assert_outcomes(passed=1, deselected=1)
    updated.stdout.fnmatch_lines(["*1 snapshot updated*"])
    after = _snapshots(project)
    assert after["test_fit.trajectory"] != before["test_fit.trajectory"]
    assert after["test_other.trajectory"] == before["test_other.trajectory"]  # deselected: untouched
    project.runpytest().assert_outcomes(passed=2)

    _write(project, lr_factor=1.02, other=False)
    unused = project.runpytest()
    unused.assert_outcomes(passed=1)
    unused.stdout.fnmatch_lines(["*1 snapshot unused*"])
    assert unused.ret == pytest.ExitCode.TESTS_FAILED  # syrupy's own verdict on unused snapshots
    project.runpytest("--snapshot-update").stdout.fnmatch_lines(["*1 unused snapshot deleted*"])
    assert sorted(_snapshots(project)) == ["test_fit.trajectory"]


def test_a_snapshot_reads_with_the_optcheck_command(project: pytest.Pytester) -> None:
    from pytest_optcheck.cli import main

    _write(project)
    project.runpytest("--snapshot-update").assert_outcomes(passed=2)
    path = Path("__snapshots__") / "test_snap" / "test_fit.trajectory"
    assert main(["show", str(path)]) == 0


def test_other_snapshots_keep_syrupy_s_own_diff(project: pytest.Pytester) -> None:
    project.makepyfile(test_plain="def test_text(snapshot):\n    assert {'a': VALUE} == snapshot\n".replace(
        "VALUE", "1"))
    project.runpytest("--snapshot-update").assert_outcomes(passed=1)
    project.makepyfile(test_plain="def test_text(snapshot):\n    assert {'a': 2} == snapshot\n")
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*-   'a': 1,*", "*+   'a': 2,*"])
    assert "optcheck" not in result.stdout.str().split("FAILURES")[1].split("short test summary")[0]
