"""Every branch of the check against a golden (checks/golden_check.py), its Outcome pinned
field by field — status, message, path, golden, current, tolerances, notes — with the message
functions that word them (checks/golden_check.py, engine/messages.py) as the oracle for the words: benchmarks/mutation.py found these
fields guarded only by end-to-end tests (47% before this file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pytest_optcheck.checks import golden_check
from pytest_optcheck.checks.golden_check import check_golden, judge
from pytest_optcheck.engine import messages
from pytest_optcheck.engine.compare import compare
from pytest_optcheck.engine.envelope import instability, measure
from pytest_optcheck.engine.outcome import Status
from pytest_optcheck.engine.tolerance import resolve_tolerances
from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.errors import GoldenFileError
from pytest_optcheck.golden import environment
from pytest_optcheck.golden.format import Golden, dumps, loads, spec_changes
from pytest_optcheck.golden.layout import GoldenLayout

STEPS = 8
EPOCH, BATCH = np.zeros(STEPS, dtype=int), np.arange(STEPS)
SPEC = {"optimizer": "SGD(lr=0.1)"}
ENV = {"torch": "2.13.0", "device": "cpu", "libraries": {"pytorch_optimizer": "4.1.0"}}
OLD_ENV = {"torch": "2.12.0", "device": "cpu", "libraries": {"pytorch_optimizer": "3.9.0"}}
CMD, PICTURE = "pytest --optcheck --snapshot-update t.py::test_a", "report/t.png"


def run(scale: float = 1.0, spec: dict = SPEC, env: dict = ENV) -> Golden:
    loss = np.linspace(1.0, 0.1, STEPS)
    loss[4:] *= scale
    return Golden(Trajectory({"loss": loss}, EPOCH, BATCH), spec=spec, environment=env, test="t.py::test_a")


CURRENT = run()


def replicate(n: int) -> tuple[list[Trajectory], str]:
    return [Trajectory({"loss": CURRENT.trajectory["loss"] * (1 + 1e-9 * (i + 1))}, EPOCH, BATCH)
            for i in range(n)], "by hand"


def blowing_up(n: int) -> tuple[list[Trajectory], str]:
    return [Trajectory({"loss": np.full(STEPS, np.nan)}, EPOCH, BATCH) for _ in range(n)], "by hand"


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # paths are shown relative to the working directory
    return tmp_path


def test_created(here: Path) -> None:
    path = here / "golden" / "g.json"
    outcome = check_golden(CURRENT, path, update=True)
    assert (outcome.status, outcome.message, outcome.path) == (
        Status.CREATED, f"optcheck: golden created at {Path('golden', 'g.json')}", str(path))
    assert outcome.current is CURRENT and outcome.notes == () and path.read_text(encoding="utf-8") == dumps(CURRENT)


def test_created_calibrated_carries_the_envelope_and_its_note(here: Path) -> None:
    path = here / "g.json"
    outcome = check_golden(CURRENT, path, update=True, calibrate=2, replicate=replicate)
    assert outcome.status is Status.CREATED and outcome.current.calibration.replicas == 2
    assert outcome.notes == golden_check.calibration_notes(outcome.current.calibration) != ()


def test_missing_names_the_other_keys(here: Path) -> None:
    layout = GoldenLayout(here / "golden", here, "torch-2.13")
    path = layout.path_for(here / "test_t.py", "test_a[cpu]")
    other = GoldenLayout(here / "golden", here, "torch-2.11").path_for(here / "test_t.py", "test_a[cpu]")
    other.parent.mkdir(parents=True)
    other.write_text(dumps(CURRENT), encoding="utf-8")
    outcome = check_golden(CURRENT, path, update_command=CMD, layout=layout)
    shown = str(path.relative_to(here))
    assert (outcome.status, outcome.message, outcome.path) == (
        Status.MISSING, golden_check.missing_text(shown, CMD, ["torch-2.11"], "torch-2.13"), str(path))
    assert outcome.current is CURRENT and not path.exists()


def test_unstable_replicas_write_no_golden(here: Path) -> None:
    path = here / "g.json"
    outcome = check_golden(CURRENT, path, update=True, calibrate=2, replicate=blowing_up)
    runs, _ = blowing_up(2)
    facts = instability(CURRENT.trajectory, runs, measure(CURRENT.trajectory, runs, "by hand"))
    assert (outcome.status, outcome.message, outcome.path) == (Status.ERROR, golden_check.unstable_text(facts, "g.json"),
                                                               str(path))
    assert outcome.current is CURRENT and not path.exists()
    path.write_text(dumps(run(1.5)), encoding="utf-8")  # a failing golden, then an update
    outcome = check_golden(CURRENT, path, update=True, calibrate=2, replicate=blowing_up)
    assert (outcome.status, outcome.message, outcome.path) == (Status.ERROR, golden_check.unstable_text(facts, "g.json"),
                                                               str(path))
    assert path.read_text(encoding="utf-8") == dumps(run(1.5))  # left alone


def test_updated_writes_the_run_and_keeps_the_verdict(here: Path) -> None:
    path = here / "g.json"
    path.write_text(dumps(run(1.5)), encoding="utf-8")
    failed = check_golden(CURRENT, path)
    outcome = check_golden(CURRENT, path, update=True)
    assert (outcome.status, outcome.message, outcome.path) == (Status.UPDATED, failed.message, str(path))
    assert outcome.current is CURRENT and outcome.notes == () and outcome.verdict is not None
    assert path.read_text(encoding="utf-8") == dumps(CURRENT)


def test_corrupt_names_where_to_act(here: Path) -> None:
    outcome = judge(CURRENT, "{not json", path=here / "g.json", update_command=CMD, picture=PICTURE)
    with pytest.raises(GoldenFileError) as error:
        loads("{not json", "g.json")
    expected = "\n".join([str(error.value), *messages.where_lines("g.json", CMD, PICTURE)])
    assert (outcome.status, outcome.message, outcome.path) == (Status.CORRUPT, expected, str(here / "g.json"))
    assert outcome.current is CURRENT and outcome.golden is None


def test_configuration_changed(here: Path) -> None:
    old = run(spec={"optimizer": "SGD(lr=0.2)"})
    outcome = judge(CURRENT, dumps(old), path=here / "g.json", update_command=CMD, picture=PICTURE)
    expected = golden_check.config_changed_text(spec_changes(old.spec, SPEC), messages.where_lines("g.json", CMD, PICTURE))
    assert (outcome.status, outcome.message, outcome.path) == (Status.CONFIG_CHANGED, expected, str(here / "g.json"))
    assert outcome.golden.spec == old.spec and outcome.current is CURRENT


def test_a_bad_tolerance_is_an_error_naming_the_key(here: Path) -> None:
    outcome = judge(CURRENT, dumps(CURRENT), path=here / "g.json", tolerance_layers=({"loss": {"rtol": -1}},))
    assert (outcome.status, outcome.message) == (
        Status.ERROR, "optcheck: tolerance for 'loss': rtol=-1 is negative; tolerances must be >= 0 (e.g. rtol=1).")
    assert outcome.path == str(here / "g.json") and outcome.golden.spec == SPEC and outcome.current is CURRENT


def test_passed_with_the_note_that_the_envelope_asked_for_is_missing(here: Path) -> None:
    layers = ({"loss": {"rtol": 0.5}},)
    outcome = judge(CURRENT, dumps(CURRENT), path=here / "g.json", tolerance_layers=layers, calibrate=2)
    assert (outcome.status, outcome.message, outcome.path) == (Status.PASSED, golden_check.PASSED_TEXT, str(here / "g.json"))
    assert outcome.verdict.passed and outcome.golden.spec == SPEC and outcome.current is CURRENT
    assert outcome.tolerances == resolve_tolerances(["loss"], *layers)
    assert outcome.notes == golden_check.calibration_notes(None, asked=2) != ()


def test_failed_says_first_what_changed_around_the_run(here: Path) -> None:
    old = run(1.5, env=OLD_ENV)
    outcome = judge(CURRENT, dumps(old), path=here / "g.json", update_command=CMD, picture=PICTURE)
    golden = loads(dumps(old))
    tolerances = resolve_tolerances(["loss"])
    verdict = compare(golden.trajectory, CURRENT.trajectory, tolerances)
    changes = ["torch 2.12.0 -> 2.13.0", "pytorch_optimizer 3.9.0 -> 4.1.0"]
    header = [environment.environment_text(OLD_ENV, ENV, changes),
              environment.library_change_text(["pytorch_optimizer 3.9.0 -> 4.1.0"])]
    expected = messages.render_verdict(verdict, golden.trajectory, CURRENT.trajectory, golden_path="g.json",
                                       update_command=CMD, picture=PICTURE, header=header)
    assert (outcome.status, outcome.message, outcome.path) == (Status.FAILED, expected, str(here / "g.json"))
    assert outcome.golden.environment == OLD_ENV and outcome.current is CURRENT
    assert outcome.tolerances == tolerances and outcome.notes == ()


def noisy(n: int) -> tuple[list[Trajectory], str]:
    """Replicas 1e-3 apart after the first step (where ulp-perturbed starts agree, or the
    calibration is refused as started apart): an envelope (x4) far wider than the default
    rtol of 1e-4."""
    drift = 1e-3 * (np.arange(STEPS) > 0)
    return [Trajectory({"loss": CURRENT.trajectory["loss"] * (1 + drift * (i + 1))}, EPOCH, BATCH)
            for i in range(n)], "by hand"


def test_a_calibrated_golden_widens_the_check_and_says_so(here: Path) -> None:
    path = here / "g.json"
    written = check_golden(CURRENT, path, update=True, calibrate=2, replicate=noisy).current
    assert written.calibration.path == "by hand" and written.calibration.replicas == 2
    within = judge(run(1.002), path.read_text(encoding="utf-8"), path=path)
    assert within.status is Status.PASSED  # 2e-3 off: outside rtol, inside 4 x the envelope
    assert within.notes == golden_check.calibration_notes(written.calibration) != ()
    outside = judge(run(1.5), path.read_text(encoding="utf-8"), path=path)
    golden = loads(path.read_text(encoding="utf-8"))
    expected = messages.render_verdict(outside.verdict, golden.trajectory, run(1.5).trajectory, golden_path="g.json",
                                       calibration=golden.calibration)
    assert outside.status is Status.FAILED and outside.message == expected
    assert outside.notes == golden_check.calibration_notes(golden.calibration)


def test_updating_with_calibrate_writes_and_reports_the_calibrated_golden(here: Path) -> None:
    path = here / "g.json"
    path.write_text(dumps(run(1.5)), encoding="utf-8")
    outcome = check_golden(CURRENT, path, update=True, calibrate=2, replicate=replicate)
    assert outcome.status is Status.UPDATED and outcome.current.calibration.replicas == 2
    assert path.read_text(encoding="utf-8") == dumps(outcome.current)
    assert outcome.notes == golden_check.calibration_notes(outcome.current.calibration) != ()


def test_an_uncalibrated_golden_is_rerecorded_for_one_replica(here: Path) -> None:
    path = here / "g.json"
    check_golden(CURRENT, path, update=True)
    outcome = check_golden(CURRENT, path, update=True, calibrate=1, replicate=replicate)
    assert outcome.status is Status.UPDATED and outcome.current.calibration.replicas == 1


def test_calibrating_needs_a_way_to_replicate(here: Path) -> None:
    with pytest.raises(ValueError) as error:
        check_golden(CURRENT, here / "g.json", update=True, calibrate=2)
    assert str(error.value) == "optcheck: calibrate > 0 needs a way to replicate the run (replicate=...)"


def test_check_golden_passes_its_settings_to_the_verdict(here: Path) -> None:
    path = here / "g.json"
    path.write_text(dumps(run(1.5)), encoding="utf-8")
    kwargs = {"update_command": CMD, "picture": PICTURE}
    failed = check_golden(CURRENT, path, **kwargs)
    assert failed.message == judge(CURRENT, dumps(run(1.5)), path=path, **kwargs).message
    assert f"update with: {CMD}" in failed.message and f"picture: {PICTURE}" in failed.message
    loose = check_golden(CURRENT, path, tolerance_layers=({"loss": {"rtol": 0.6}},), calibrate=2, **kwargs)
    assert loose.status is Status.PASSED and loose.notes == golden_check.calibration_notes(None, asked=2)


def test_without_a_path_nothing_names_a_file() -> None:
    outcome = judge(run(1.5), dumps(CURRENT))
    golden = loads(dumps(CURRENT))
    assert outcome.path is None
    assert outcome.message == messages.render_verdict(outcome.verdict, golden.trajectory, run(1.5).trajectory)


def test_a_tolerance_layer_decides_the_verdict() -> None:
    layers = ({"loss": {"rtol": 0.6}},)
    outcome = judge(run(1.5), dumps(CURRENT), tolerance_layers=layers)
    assert outcome.status is Status.PASSED and outcome.tolerances == resolve_tolerances(["loss"], *layers)
