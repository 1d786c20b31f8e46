"""Stage 5: a golden and a current recording in, an :class:`Outcome` out.

The order of questions is the order a reviewer would ask them: is there a golden, can it
be read, was it recorded for the same configuration, and only then — do the numbers
agree within tolerance. Each answer carries the text a user reads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from . import golden as goldens
from .compare import Tolerance, ToleranceError, Verdict, compare, resolve_tolerances
from .errors import GoldenFileError
from .message import render_verdict

PASSED = "passed"
FAILED = "failed"
CONFIG_CHANGED = "config-changed"
MISSING = "missing"
CORRUPT = "corrupt"
ERROR = "error"


@dataclasses.dataclass
class Outcome:
    status: str
    message: str
    path: str | None = None
    verdict: Verdict | None = None
    golden: goldens.Golden | None = None
    current: goldens.Golden | None = None
    tolerances: Mapping[str, Tolerance] | None = None

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def worst(self) -> dict[str, Any] | None:
        """The worst series (largest relative error) as a small JSON-ready dict."""
        if self.verdict is None:
            return None
        worst = self.verdict.worst()
        if worst is None:
            return None
        return {"series": worst.name, "max_rel": worst.max_rel, "max_abs": worst.max_abs,
                "first_failure": worst.first_failure}


def evaluate(
    current: goldens.Golden,
    golden_text: str | None,
    *,
    path: str | None = None,
    tolerance_layers: tuple[Mapping[str, Mapping[str, Any]], ...] = (),
    update_command: str | None = None,
    picture: str | None = None,
    layout: goldens.GoldenLayout | None = None,
) -> Outcome:
    """Judge ``current`` against the golden text (None when there is no golden file)."""
    shown = goldens.relative_to_cwd(path) if path else None
    tail = _tail(shown, update_command, picture)
    if golden_text is None or golden_text == "":
        return missing(current, path, update_command, layout)
    try:
        golden = goldens.loads(golden_text, shown)
    except GoldenFileError as exc:
        return Outcome(CORRUPT, "\n".join([str(exc), *tail]), path, current=current)

    changes = goldens.spec_changes(golden.spec, current.spec)
    if changes:
        lines = [("optcheck: configuration changed since the golden was recorded "
                 "(the numbers were not compared):")]
        lines += [f"  {key}: {_show(old)} -> {_show(new)}" for key, old, new in changes]
        lines.append("Re-record the golden if the change is intended.")
        return Outcome(CONFIG_CHANGED, "\n".join(lines + tail), path, golden=golden, current=current)

    names = list(dict.fromkeys([*golden.trajectory.names, *current.trajectory.names]))
    try:
        tolerances = resolve_tolerances(names, *tolerance_layers)
    except ToleranceError as exc:
        return Outcome(ERROR, str(exc), path, golden=golden, current=current)
    verdict = compare(golden.trajectory, current.trajectory, tolerances)
    if verdict.passed:
        return Outcome(PASSED, "optcheck: within tolerance", path, verdict, golden, current, tolerances)
    header = []
    env_changes = goldens.environment_changes(golden.environment, current.environment)
    if env_changes:
        header.append(
            f"environment differs: recorded with {goldens.describe_environment(golden.environment)}; "
            f"now {goldens.describe_environment(current.environment)} ({'; '.join(env_changes)})"
        )
    message = render_verdict(
        verdict,
        golden.trajectory,
        current.trajectory,
        golden_path=shown,
        update_command=update_command,
        picture=picture,
        header=header,
    )
    return Outcome(FAILED, message, path, verdict, golden, current, tolerances)


def missing(current: goldens.Golden | None, path: str | None, update_command: str | None,
            layout: goldens.GoldenLayout | None = None) -> Outcome:
    """No golden file: say where it is expected, the exact command that creates it, and
    (with ``layout``) under which other keys — torch versions — this check has one."""
    shown = goldens.relative_to_cwd(path) if path else None
    create = update_command or "pytest --optcheck --snapshot-update"
    message = f"optcheck: no golden for this check yet; expected at {shown}.\nCreate it with: {create}"
    hint = goldens.missing_hint(layout, path) if layout is not None and path else ""
    return Outcome(MISSING, message + (f"\n{hint}" if hint else ""), path, current=current)


def _show(value: Any) -> str:
    return goldens.ABSENT if value == goldens.ABSENT else repr(value)


def _tail(path: str | None, update_command: str | None, picture: str | None) -> list[str]:
    lines = []
    if path:
        lines.append(f"golden: {path}")
    if update_command:
        lines.append(f"update with: {update_command}")
    if picture:
        lines.append(f"picture: {picture}")
    return lines
