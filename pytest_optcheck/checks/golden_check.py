"""A check against a golden file, as one function you can read top to bottom.

    read the golden -> compare configurations -> evaluate -> write when updating -> Outcome

With ``calibrate=N`` the write step first measures the run's noise envelope (N replicas
from ulp-perturbed starts, :mod:`pytest_optcheck.engine.envelope`) and stores it in the
golden; evaluating against a golden that holds an envelope allows, per step, the larger of
the tolerance and the envelope's factor times it. Only writing costs the replicas.

:func:`check_golden` is that path (pytest-regressions' ``perform_regression_check`` is the
model); :func:`judge` is its pure middle — no file system — which ``optcheck diff`` and the
syrupy extension behind ``trajectory_snapshot`` call on texts they already hold. Nothing
here knows about pytest: the plugin passes the path, the tolerance layers and whether to
update, and gets an :class:`~pytest_optcheck.engine.outcome.Outcome` back.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..engine import messages
from ..engine.compare import compare
from ..engine.envelope import Calibration, instability, measure
from ..engine.outcome import Outcome, Status
from ..engine.tolerance import ToleranceError, resolve_tolerances
from ..errors import GoldenFileError
from ..golden.environment import environment_changes, library_changes
from ..golden.files import read_text, relative_to_cwd, write_atomic
from ..golden.format import Golden, dumps, loads, spec_changes
from ..golden.layout import GoldenLayout

if TYPE_CHECKING:
    from ..engine.trajectory import Trajectory

#: Tolerance layers, lowest precedence first: ini, command line, marker, check().
Layers = Sequence[Mapping[str, Mapping[str, Any]]]
#: ``replicate(n)`` -> n replicas of the checked run from ulp-perturbed starts, and the
#: path that ran them ("stacked", "sequential (...)").
Replicate = Callable[[int], tuple[list["Trajectory"], str]]


def check_golden(
    current: Golden,
    path: str | os.PathLike[str],
    *,
    tolerance_layers: Layers = (),
    update: bool = False,
    update_command: str | None = None,
    picture: str | None = None,
    layout: GoldenLayout | None = None,
    calibrate: int = 0,
    replicate: Replicate | None = None,
) -> Outcome:
    """Compare ``current`` with the golden at ``path``; with ``update``, write it when it
    is missing or out of tolerance (a golden within tolerance keeps its bytes, unless
    ``calibrate`` asks for an envelope it does not hold). A golden written with
    ``calibrate=N`` carries the noise envelope of ``replicate(N)``."""
    shown = relative_to_cwd(path)
    text = read_text(path)
    if text is None:
        if update:
            golden, unstable = _recorded(current, calibrate, replicate)
            if unstable:
                return Outcome(Status.ERROR, messages.unstable_text(unstable, shown), str(path), current=current)
            write_atomic(path, dumps(golden))
            return Outcome(Status.CREATED, f"optcheck: golden created at {shown}", str(path), current=golden,
                           notes=messages.calibration_notes(golden.calibration))
        other_keys = layout.other_keys(path) if layout is not None else []
        key = layout.key if layout is not None else None
        return Outcome(Status.MISSING, messages.missing_text(shown, update_command, other_keys, key), str(path),
                       current=current)
    outcome = judge(current, text, path=path, tolerance_layers=tolerance_layers,
                    update_command=update_command, picture=picture, calibrate=calibrate)
    stale = calibrate and outcome.golden is not None and _replicas(outcome.golden) != calibrate
    if outcome.status is Status.ERROR or not update or (outcome.ok and not stale):
        return outcome
    golden, unstable = _recorded(current, calibrate, replicate)
    if unstable:
        return outcome.with_status(Status.ERROR, messages.unstable_text(unstable, shown))
    write_atomic(path, dumps(golden))
    written = Status.REPAIRED if outcome.status is Status.CORRUPT else Status.UPDATED
    return dataclasses.replace(outcome, status=written, current=golden,
                               notes=messages.calibration_notes(golden.calibration))


def _recorded(current: Golden, calibrate: int, replicate: Replicate | None) -> tuple[Golden, dict[str, Any] | None]:
    """The golden to write: ``current``, with its noise envelope when calibrating; and the
    facts of an unstable run (replicas that blew up), for which no golden is written."""
    if not calibrate:
        return current, None
    if replicate is None:
        raise ValueError("optcheck: calibrate > 0 needs a way to replicate the run (replicate=...)")
    runs, path = replicate(calibrate)
    calibration = measure(current.trajectory, runs, path)
    return dataclasses.replace(current, calibration=calibration), instability(current.trajectory, runs, calibration)


def _replicas(golden: Golden) -> int:
    return golden.calibration.replicas if golden.calibration is not None else 0


def judge(
    current: Golden,
    golden_text: str,
    *,
    path: str | os.PathLike[str] | None = None,
    tolerance_layers: Layers = (),
    update_command: str | None = None,
    picture: str | None = None,
    calibrate: int = 0,
) -> Outcome:
    """The verdict on ``current`` against a golden's text, in the order a reviewer asks:
    can the golden be read, was it recorded for the same configuration, and only then —
    do the numbers agree within tolerance (widened by the golden's noise envelope, if it
    has one; ``calibrate`` only adds a note when the golden lacks the envelope asked for)."""
    shown = relative_to_cwd(path) if path is not None else None
    where = str(path) if path is not None else None
    tail = messages.where_lines(shown, update_command, picture)
    try:
        golden = loads(golden_text, shown)
    except GoldenFileError as exc:
        return Outcome(Status.CORRUPT, "\n".join([str(exc), *tail]), where, current=current)

    changes = spec_changes(golden.spec, current.spec)
    if changes:
        return Outcome(Status.CONFIG_CHANGED, messages.config_changed_text(changes, tail), where,
                       golden=golden, current=current)

    names = list(dict.fromkeys([*golden.trajectory.names, *current.trajectory.names]))
    try:
        tolerances = resolve_tolerances(names, *tolerance_layers)
    except ToleranceError as exc:
        return Outcome(Status.ERROR, str(exc), where, golden=golden, current=current)
    calibration: Calibration | None = golden.calibration
    notes = messages.calibration_notes(calibration, asked=calibrate)
    verdict = compare(golden.trajectory, current.trajectory, tolerances, calibration)
    if verdict.passed:
        return Outcome(Status.PASSED, messages.PASSED_TEXT, where, verdict, golden, current, tolerances, notes)

    env_changes = environment_changes(golden.environment, current.environment)
    header = [messages.environment_text(golden.environment, current.environment, env_changes)] if env_changes else []
    if lib_changes := library_changes(golden.environment, current.environment):
        header.append(messages.library_change_text(lib_changes))
    message = messages.render_verdict(verdict, golden.trajectory, current.trajectory, golden_path=shown,
                                      update_command=update_command, picture=picture, header=header,
                                      calibration=calibration)
    return Outcome(Status.FAILED, message, where, verdict, golden, current, tolerances, notes)
