"""A check against a golden file, as one function you can read top to bottom.

    read the golden -> compare configurations -> evaluate -> write when updating -> Outcome

With ``calibrate=N`` the write step first measures the run's noise envelope (N replicas
from ulp-perturbed starts, :mod:`pytest_optcheck.engine.envelope`) and stores it in the
golden; evaluating against a golden that holds an envelope allows, per step, the larger of
the tolerance and the envelope's factor times it. Only writing costs the replicas.

:func:`check_golden` is that path (pytest-regressions' ``perform_regression_check`` is the
model), for ``optcheck.check()`` and ``trajectory_snapshot`` alike; :func:`judge` is its pure
middle — no file system — which ``optcheck diff`` also calls on two files it has read. Nothing
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
from ..engine.messages import format_number
from ..engine.outcome import Outcome, Recorded, Status
from ..engine.tolerance import ToleranceError, resolve_tolerances
from ..errors import GoldenFileError, OptcheckError
from ..golden.environment import environment_changes, environment_text, library_change_text, library_changes
from ..golden.files import read_text, relative_to_cwd, write_atomic
from ..golden.format import Golden, dumps, loads, spec_change_lines, spec_changes
from ..golden.layout import GoldenLayout

if TYPE_CHECKING:
    from ..declare.spec import Spec
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
                return Outcome(Status.ERROR, unstable_text(unstable, shown), str(path), current=current)
            write_atomic(path, dumps(golden))
            return Outcome(Status.CREATED, f"optcheck: golden created at {shown}", str(path), current=golden,
                           notes=calibration_notes(golden.calibration))
        other_keys = layout.other_keys(path) if layout is not None else []
        key = layout.key if layout is not None else None
        return Outcome(Status.MISSING, missing_text(shown, update_command, other_keys, key), str(path),
                       current=current)
    outcome = judge(current, text, path=path, tolerance_layers=tolerance_layers,
                    update_command=update_command, picture=picture, calibrate=calibrate)
    stale = calibrate and outcome.golden is not None and _replicas(outcome.golden) != calibrate
    if outcome.status is Status.ERROR or not update or (outcome.ok and not stale):
        return outcome
    golden, unstable = _recorded(current, calibrate, replicate)
    if unstable:
        return outcome.with_status(Status.ERROR, unstable_text(unstable, shown))
    write_atomic(path, dumps(golden))
    return dataclasses.replace(outcome, status=Status.UPDATED, current=golden,
                               notes=calibration_notes(golden.calibration))


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


def _replicas(golden: Recorded) -> int:
    return golden.calibration.replicas if golden.calibration is not None else 0


# -- what the check is asked to do, decided from its inputs ---------------------------


def golden_configuration(current: Trajectory, spec: Spec, marked: bool,
                         declarative: bool) -> tuple[dict[str, Any] | None, Trajectory]:
    """The configuration a golden stores for ``current``, and the trajectory it stores.

    A run describes itself in ``meta["run"]``: the reference loop and ``lr_schedule`` by the
    spec that built them (the marker's, or ``train(**overrides)``'s), a recorded run — a
    user's loop, a framework's trainer — by :mod:`~pytest_optcheck.run.describe`, so the
    marker's keys, which that run never used, are not its configuration. The description
    moves out of the trajectory's meta into the golden's header. Any other trajectory keeps
    the marker's spec in a marked test; unmarked, it has none."""
    if "run" not in current.meta:
        return (spec.canonical() if (marked or declarative) else None), current
    from ..engine.trajectory import Trajectory

    meta = dict(current.meta)
    run = meta.pop("run")
    return run, Trajectory(current.series, current.epoch, current.batch, meta, epoch_series=current.epoch_series)


def replicas_asked(calibrate: int | None, marker: int | None, ini: int, repeatable: bool) -> int:
    """How many replicas calibrate the golden: ``calibrate`` of check() wins over the
    marker's, the marker's over the ini's. The ini's applies to the checks that can be
    re-run (``repeatable``); asking check() or the marker to calibrate a recorded
    trajectory is an error that says what to do instead."""
    from ..declare.spec import Spec

    if calibrate is not None:
        n, source = Spec(calibrate=calibrate).calibrate, "check()"
    elif marker is not None:
        n, source = marker, "the marker"
    else:
        return ini if repeatable else 0
    if n and not repeatable:
        raise OptcheckError(not_repeatable_text(n, source))
    return n or 0


def not_repeatable_text(calibrate: int, source: str) -> str:
    """calibrate asked of a check that was handed a recorded trajectory."""
    return (f"optcheck: calibrate={calibrate!r} (from {source}) needs a run it can repeat from perturbed "
            f"starts, but this check was given a trajectory already recorded. Let optcheck train it "
            f"(optcheck.check() with no trajectory), pass your loop as optcheck.check(run=fn) where fn(perturb) "
            f"seeds itself, builds the model, calls perturb(model) and returns the recorded trajectory, or set "
            f"calibrate=0.")


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
        return Outcome(Status.CONFIG_CHANGED, config_changed_text(changes, tail), where,
                       golden=golden, current=current)

    names = list(dict.fromkeys([*golden.trajectory.names, *current.trajectory.names]))
    try:
        tolerances = resolve_tolerances(names, *tolerance_layers)
    except ToleranceError as exc:
        return Outcome(Status.ERROR, str(exc), where, golden=golden, current=current)
    calibration: Calibration | None = golden.calibration
    notes = calibration_notes(calibration, asked=calibrate)
    verdict = compare(golden.trajectory, current.trajectory, tolerances, calibration)
    if verdict.passed:
        return Outcome(Status.PASSED, PASSED_TEXT, where, verdict, golden, current, tolerances, notes)

    env_changes = environment_changes(golden.environment, current.environment)
    header = [environment_text(golden.environment, current.environment, env_changes)] if env_changes else []
    if lib_changes := library_changes(golden.environment, current.environment):
        header.append(library_change_text(lib_changes))
    message = messages.render_verdict(verdict, golden.trajectory, current.trajectory, golden_path=shown,
                                      update_command=update_command, picture=picture, header=header,
                                      calibration=calibration)
    return Outcome(Status.FAILED, message, where, verdict, golden, current, tolerances, notes)


# -- the sentences of this check -----------------------------------------------------


PASSED_TEXT = "optcheck: within tolerance"


def config_changed_text(changes: Sequence[tuple[str, Any, Any]], tail: Sequence[str]) -> str:
    """The configuration a golden was recorded under is not the run's: key by key."""
    lines = ["optcheck: configuration changed since the golden was recorded (the numbers were not compared):"]
    lines += spec_change_lines(changes)
    lines.append("Re-record the golden if the change is intended.")
    return "\n".join([*lines, *tail])


def missing_text(path: str | None, update_command: str | None, other_keys: Sequence[str] = (),
                 key: str | None = None) -> str:
    """No golden: where it is expected, the exact command that creates it, and under which
    other keys (torch versions) this check does have one."""
    create = update_command or "pytest --optcheck --snapshot-update"
    lines = [f"optcheck: no golden for this check yet; expected at {path}.", f"Create it with: {create}"]
    if other_keys:
        lines.append(f"goldens of this test exist for: {', '.join(other_keys)} (optcheck_golden_key = "
                     f"{'torch-minor' if key else 'none'} looks under {key or 'the root'})")
    return "\n".join(lines)


def unstable_text(facts: Mapping[str, Any], shown: str | None) -> str:
    """The replicas of calibrate=N cannot measure rounding noise: they started apart (the
    loop draws its weights from the global RNG), or the run is unstable at the rounding level."""
    where = f" at {shown}." if shown else "."
    apart = facts.get("apart")
    if apart:
        return (f"optcheck: calibrate={facts['replicas']}: the replicas already differ at step {apart['step']}, "
                f"before any update: their {apart['series']} lies {apart['median']:.2g} (relative, median of "
                f"{facts['replicas']}; up to {apart['max']:.2g}) from the run's, where starts one ulp apart differ "
                f"by rounding (under {apart['limit']:.2g}). The replicas started from different weights: the function "
                f"initialises from the global RNG (or draws its data or dropout from it), so each call builds another "
                f"model, and an envelope measured from them would hide real changes. Seed inside the function: call "
                f"torch.manual_seed(0) at its top (or build with a torch.Generator made inside it), then "
                f"model = perturb(MyNet()). No golden was written" + where)
    parts = []
    if facts["diverged"]:
        first = min(step for _, _, step in facts["diverged"])
        parts.append(f"{len(facts['diverged'])} of {facts['replicas']} ulp-perturbed replicas went NaN/inf where "
                     f"the run did not (first at step {first})")
    for name, median in facts["wide"].items():
        parts.append(f"{name}'s noise envelope is {median:.2g} x its value on the median step")
    return (f"optcheck: calibrate={facts['replicas']}: {'; '.join(parts)}. The run is unstable at the rounding "
            f"level: one ulp changes its outcome, so a calibrated golden would allow almost anything and no golden "
            f"can tell noise from a change. Make the run stable (a smaller learning rate, more damping), or record "
            f"it without calibrate. No golden was written" + where)


def calibration_notes(calibration: Calibration | None, asked: int = 0) -> tuple[str, ...]:
    """What a check says about calibration in the report: how the golden's envelope was
    measured, or that the envelope asked for is not in the golden yet."""
    notes = []
    if calibration is not None:
        how = f", {calibration.path}" if calibration.path else ""
        notes.append(f"calibrated golden: allows {format_number(calibration.factor)} x the noise envelope of "
                     f"{calibration.replicas} ulp-perturbed replicas{how}")
    if asked and (calibration is None or calibration.replicas != asked):
        held = f"an envelope of {calibration.replicas} replicas" if calibration is not None else "no noise envelope"
        notes.append(f"calibrate={asked} asked, but the golden holds {held}: re-record it with --snapshot-update")
    return tuple(notes)
