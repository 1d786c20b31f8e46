"""Orphaned goldens: files no collected test owns any more (a test renamed or deleted).

syrupy is never told about goldens (see :mod:`.extension`), so syrupy deletes nothing —
not under ``--snapshot-update``, not for a crashed, skipped, deselected or never-reached
test, not under xdist. This module lists orphans in the terminal summary, and removes
them only when **all** of these hold:

* ``--optcheck-prune`` was given, and optcheck tests ran (``--optcheck`` / ini);
* the run was a *full* run: no node ids (``file.py::test``), no ``-k``, ``-m``,
  ``--deselect``, ``--ignore``/``--ignore-glob``, ``--lf``/``--ff``/``--sw``, not ``--co``;
* the run was green and complete: exit status 0, no failure or error, not stopped early
  (``-x`` / ``--maxfail``, Ctrl-C).

Orphans are listed on full runs only (with or without ``--optcheck-prune``). A golden is
an orphan when

* the test file it mirrors was collected in this run but no collected test has its name
  (a test renamed or deleted, a parametrize id changed), or
* the test file it mirrors no longer exists and lay inside this run's paths (a test file
  renamed or deleted). Goldens of test files outside the run's paths are never judged,
  nor those in a folder whose name had to be sanitised (its test file cannot be told).

Never judged, so never listed or removed: goldens of a device this run did not cover or
this machine lacks (``test[cuda].json`` on a CPU-only run or machine), goldens under
another ``optcheck_golden_key`` folder, hidden files, and JSON files that are not
optcheck goldens.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from . import golden as goldens
from .settings import device_available

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
    if getattr(option, "ignore", None) or getattr(option, "ignore_glob", None):
        return False, "--ignore was given"
    if getattr(option, "lf", False) or getattr(option, "failedfirst", False) or getattr(option, "stepwise", False):
        return False, "--lf/--ff/--sw selection was given"
    if getattr(option, "collectonly", False):
        return False, "--collect-only was given"
    return True, ""


def run_paths(config: pytest.Config) -> list[Path]:
    """The files and folders this run collected from (its arguments or testpaths)."""
    base = Path(config.invocation_params.dir)
    return [(base / str(arg).split("::")[0]).resolve() for arg in config.args]


#: A device parameter id inside a golden's file name: ``[cpu]``, ``[a-cuda]``, ``[cuda_1]``
#: (``cuda:1`` after :func:`~pytest_optcheck.golden.safe_filename`).
_DEVICE_ID = re.compile(r"(?<=[\[-])(cpu|cuda(?:_\d+)?|mps)(?=[\]-])")


def device_of(filename: str) -> str | None:
    """The device a golden was recorded on, read from its file name (None: no device id)."""
    bracket = filename.rfind("]")
    found = _DEVICE_ID.findall(filename[: bracket + 1]) if bracket >= 0 else []
    return found[-1].replace("_", ":") if found else None


def find_orphans(session: OptcheckSession) -> list[Path]:
    layout = session.layout
    base = layout.base
    if not base.is_dir():
        return []
    owners: dict[str, set[str]] = {}
    for folder, stem in session.owners:
        owners.setdefault(folder, set()).add(stem)
    # Compare golden folders, not test paths: a folder name may be sanitised (and hashed).
    plain = goldens.GoldenLayout(layout.root, layout.rootdir)
    collected = {plain.folder_for(p).relative_to(plain.root).as_posix() for p in session.collected_files}
    rootdir = session.settings.rootdir.resolve()
    paths = run_paths(session.config)
    devices = set(session.settings.devices)
    judged: dict[str, bool] = {}
    orphans = []
    for path in sorted(base.rglob(f"*{goldens.SUFFIX}")):
        relative = path.relative_to(base)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if layout.key is None and goldens.KEY_FOLDER.match(relative.parts[0]):
            continue  # goldens of a per-torch-version key: not this run's
        device = device_of(path.name)
        if device is not None:
            if device not in judged:
                judged[device] = device in devices and device_available(device)
            if not judged[device]:
                continue
        folder = path.parent.relative_to(base).as_posix()
        if folder in collected:
            stems = owners.get(folder, set())
            if any(_owned(path.name, stem) for stem in stems):
                continue
        else:
            if "~" in folder:
                continue  # a sanitised folder: which test file it mirrors cannot be told
            test_file = (rootdir / folder).with_suffix(".py")
            if test_file.exists() or not _mirrors_a_test_file(folder) or not _inside(test_file, paths):
                continue
        if _is_optcheck_golden(path):
            orphans.append(path)
    return orphans


def _owned(filename: str, stem: str) -> bool:
    return filename == stem + goldens.SUFFIX or filename.startswith(stem + "--")


def _mirrors_a_test_file(folder: str) -> bool:
    """Only folders that look like a test module's mirror are judged (never e.g. a
    folder a user keeps other data in)."""
    name = Path(folder).name
    return name.startswith("test") or name.endswith("_test")


def _inside(test_file: Path, paths: list[Path]) -> bool:
    return any(test_file == p or test_file.is_relative_to(p) for p in paths)


def _is_optcheck_golden(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            head = handle.read(256)
    except OSError:
        return False
    return f'"{goldens.SCHEMA_KEY}"'.encode() in head


def handle_orphans(session: OptcheckSession, pytest_session: pytest.Session) -> None:
    settings = session.settings
    if not session.owners and not settings.prune:
        return
    results = session.results
    full, why = is_full_run(session.config)
    if not full:
        if settings.prune:
            results.notes.append(f"--optcheck-prune removed nothing: not a full run ({why})")
        return
    orphans = find_orphans(session)
    shown = [goldens.relative_to_cwd(p) for p in orphans]
    stopped = bool(getattr(pytest_session, "shouldstop", False) or getattr(pytest_session, "shouldfail", False))
    green = (not session.failed and not stopped and pytest_session.testsfailed == 0
             and int(getattr(pytest_session, "exitstatus", 0) or 0) == 0)
    if settings.prune and settings.enabled and green:
        for path in orphans:
            path.unlink(missing_ok=True)
        results.pruned.extend(shown)
        return
    results.orphans.extend(shown)
    if settings.prune and orphans:
        why = ("optcheck tests did not run (add --optcheck)" if not settings.enabled
               else "the run had failures or stopped early")
        results.notes.append(f"--optcheck-prune removed nothing: {why}")
