"""Orphaned goldens: files no collected test owns any more (a test renamed or deleted).

syrupy is never told about goldens (see :mod:`.extension`), so nothing is deleted behind
the user's back. This module lists orphans, and removes them only when all of these hold:

* ``--optcheck-prune`` was given;
* the run was a *full* run: no node ids (``file.py::test``), no ``-k``, ``-m``,
  ``--deselect``, ``--lf``/``--ff``-style selection;
* every test passed (no failure, no error, exit status 0), and the run was not stopped
  early (``-x`` / ``--maxfail``).

A golden counts as orphaned when the test file it mirrors was collected in this run but no
collected test has its name, or when that test file no longer exists. Goldens of test
files outside this run's paths (``--ignore``, another folder) are never considered.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from . import golden as goldens

if TYPE_CHECKING:
    import pytest

    from .session import OptcheckSession


def is_full_run(config: pytest.Config) -> tuple[bool, str]:
    """Whether every test of the given paths was selected, and if not, why."""
    option = config.option
    if any("::" in str(arg) for arg in config.args):
        return False, "node ids were given"
    for attr, flag in (("keyword", "-k"), ("markexpr", "-m")):
        if getattr(option, attr, ""):
            return False, f"{flag} was given"
    if getattr(option, "deselect", None):
        return False, "--deselect was given"
    if getattr(option, "lf", False) or getattr(option, "failedfirst", False) or getattr(option, "stepwise", False):
        return False, "--lf/--ff/--sw selection was given"
    return True, ""


def find_orphans(session: OptcheckSession) -> list[Path]:
    layout = session.layout
    base = layout.base
    if not base.is_dir():
        return []
    owners: dict[str, set[str]] = {}
    for folder, stem in session.owners:
        owners.setdefault(folder, set()).add(stem)
    collected = {Path(p).resolve() for p in session.collected_files}
    rootdir = session.settings.rootdir.resolve()
    orphans = []
    for path in sorted(base.rglob(f"*{goldens.SUFFIX}")):
        if path.name.startswith("."):
            continue
        folder = path.parent.relative_to(base).as_posix()
        test_file = (rootdir / folder).with_suffix(".py")
        if test_file in collected:
            stems = owners.get(folder, set())
            if not any(_owned(path.name, stem) for stem in stems):
                orphans.append(path)
        elif not test_file.exists() and _mirrors_a_test_file(folder):
            orphans.append(path)
    return orphans


def _owned(filename: str, stem: str) -> bool:
    return filename == stem + goldens.SUFFIX or filename.startswith(stem + "--")


def _mirrors_a_test_file(folder: str) -> bool:
    """Only folders that look like a test module's mirror are judged (never e.g. a
    folder a user keeps other data in)."""
    name = Path(folder).name
    return name.startswith("test") or name.endswith("_test")


def handle_orphans(session: OptcheckSession, pytest_session: pytest.Session) -> None:
    if not session.owners and not session.settings.prune:
        return
    full, why = is_full_run(session.config)
    if not full:
        if session.settings.prune:
            session.results.notes.append(f"--optcheck-prune removed nothing: not a full run ({why})")
        return
    orphans = find_orphans(session)
    results = session.results
    shown = [goldens.relative_to_cwd(p) for p in orphans]
    stopped = bool(getattr(pytest_session, "shouldstop", False) or getattr(pytest_session, "shouldfail", False))
    can_prune = session.settings.prune and not session.failed and not stopped and pytest_session.testsfailed == 0
    if can_prune:
        for path in orphans:
            path.unlink(missing_ok=True)
        results.pruned.extend(shown)
    else:
        results.orphans.extend(shown)
        if session.settings.prune and orphans:
            results.notes.append("--optcheck-prune removed nothing: the run had failures or stopped early")
