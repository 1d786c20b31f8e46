"""A check against a golden file, as one function you can read top to bottom.

    read the golden -> compare configurations -> evaluate -> write when updating -> Outcome

:func:`check_golden` is that path (pytest-regressions' ``perform_regression_check`` is the
model); :func:`judge` is its pure middle — no file system — which ``optcheck diff`` and the
syrupy extension behind ``trajectory_snapshot`` call on texts they already hold. Nothing
here knows about pytest: the plugin passes the path, the tolerance layers and whether to
update, and gets an :class:`~pytest_optcheck.engine.outcome.Outcome` back.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from ..engine import messages
from ..engine.compare import compare
from ..engine.outcome import Outcome, Status
from ..engine.tolerance import ToleranceError, resolve_tolerances
from ..errors import GoldenFileError
from ..golden.environment import environment_changes, library_changes
from ..golden.files import read_text, relative_to_cwd, write_atomic
from ..golden.format import Golden, dumps, loads, spec_changes
from ..golden.layout import GoldenLayout

#: Tolerance layers, lowest precedence first: ini, command line, marker, check().
Layers = Sequence[Mapping[str, Mapping[str, Any]]]


def check_golden(
    current: Golden,
    path: str | os.PathLike[str],
    *,
    tolerance_layers: Layers = (),
    update: bool = False,
    update_command: str | None = None,
    picture: str | None = None,
    layout: GoldenLayout | None = None,
) -> Outcome:
    """Compare ``current`` with the golden at ``path``; with ``update``, write it when it
    is missing or out of tolerance (a golden within tolerance keeps its bytes)."""
    shown = relative_to_cwd(path)
    text = read_text(path)
    if text is None:
        if update:
            write_atomic(path, dumps(current))
            return Outcome(Status.CREATED, f"optcheck: golden created at {shown}", str(path), current=current)
        other_keys = layout.other_keys(path) if layout is not None else []
        key = layout.key if layout is not None else None
        return Outcome(Status.MISSING, messages.missing_text(shown, update_command, other_keys, key), str(path),
                       current=current)
    outcome = judge(current, text, path=path, tolerance_layers=tolerance_layers,
                    update_command=update_command, picture=picture)
    if outcome.ok or outcome.status is Status.ERROR or not update:
        return outcome
    write_atomic(path, dumps(current))
    return outcome.with_status(Status.UPDATED)


def judge(
    current: Golden,
    golden_text: str,
    *,
    path: str | os.PathLike[str] | None = None,
    tolerance_layers: Layers = (),
    update_command: str | None = None,
    picture: str | None = None,
) -> Outcome:
    """The verdict on ``current`` against a golden's text, in the order a reviewer asks:
    can the golden be read, was it recorded for the same configuration, and only then —
    do the numbers agree within tolerance."""
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
    verdict = compare(golden.trajectory, current.trajectory, tolerances)
    if verdict.passed:
        return Outcome(Status.PASSED, messages.PASSED_TEXT, where, verdict, golden, current, tolerances)

    env_changes = environment_changes(golden.environment, current.environment)
    header = [messages.environment_text(golden.environment, current.environment, env_changes)] if env_changes else []
    if lib_changes := library_changes(golden.environment, current.environment):
        header.append(messages.library_change_text(lib_changes))
    message = messages.render_verdict(verdict, golden.trajectory, current.trajectory, golden_path=shown,
                                      update_command=update_command, picture=picture, header=header)
    return Outcome(Status.FAILED, message, where, verdict, golden, current, tolerances)
