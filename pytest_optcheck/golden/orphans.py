"""Orphaned goldens: files no collected test owns any more (a test renamed or deleted).

syrupy is never told about goldens (see :mod:`pytest_optcheck.plugin.snapshot`), so syrupy
deletes nothing — not under ``--snapshot-update``, not for a crashed, skipped, deselected or
never-reached test, not under xdist. Orphans are listed in the terminal summary, and removed
(:mod:`pytest_optcheck.plugin.pruning`) only when **all** of these hold:

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

This module is the pure part: which files are orphans, given what the run collected.
Never judged, so never listed or removed: goldens of a device this run did not cover or
this machine lacks (``test[cuda].json`` on a CPU-only run or machine), goldens under
another ``optcheck_golden_key`` folder, hidden files, and JSON files that are not
optcheck goldens.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path

from .format import SCHEMA_KEY
from .layout import KEY_FOLDER, SUFFIX, GoldenLayout, device_of, owns


@dataclasses.dataclass(frozen=True)
class Collected:
    """What a (full) run collected, as plain data: all that orphan finding needs."""

    #: (folder relative to the golden root, file stem) of every test that can own goldens.
    owners: frozenset[tuple[str, str]]
    #: Every collected test file.
    files: frozenset[str]
    #: The files and folders the run collected from (its arguments or testpaths).
    paths: tuple[Path, ...]


def find_orphans(layout: GoldenLayout, collected: Collected, device_judged: Callable[[str], bool]) -> list[Path]:
    """Goldens under ``layout`` that no collected test owns (see the module docstring).

    ``device_judged(device)`` says whether goldens of ``device`` are judged in this run
    (the run covered it and this machine has it)."""
    base = layout.base
    if not base.is_dir():
        return []
    owners: dict[str, set[str]] = {}
    for folder, stem in collected.owners:
        owners.setdefault(folder, set()).add(stem)
    # Compare golden folders, not test paths: a folder name may be sanitised (and hashed).
    plain = GoldenLayout(layout.root, layout.rootdir)
    folders = {plain.folder_for(p).relative_to(plain.root).as_posix() for p in collected.files}
    rootdir = layout.rootdir.resolve()
    judged: dict[str, bool] = {}
    orphans = []
    for path in sorted(base.rglob(f"*{SUFFIX}")):
        relative = path.relative_to(base)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if layout.key is None and KEY_FOLDER.match(relative.parts[0]):
            continue  # goldens of a per-torch-version key: not this run's
        device = device_of(path.name)
        if device is not None:
            if device not in judged:
                judged[device] = device_judged(device)
            if not judged[device]:
                continue
        folder = path.parent.relative_to(base).as_posix()
        if folder in folders:
            if any(owns(path.name, stem) for stem in owners.get(folder, set())):
                continue
        else:
            if "~" in folder:
                continue  # a sanitised folder: which test file it mirrors cannot be told
            test_file = (rootdir / folder).with_suffix(".py")
            if test_file.exists() or not _mirrors_a_test_file(folder) or not _inside(test_file, collected.paths):
                continue
        if _is_optcheck_golden(path):
            orphans.append(path)
    return orphans


def _mirrors_a_test_file(folder: str) -> bool:
    """Only folders that look like a test module's mirror are judged (never e.g. a
    folder a user keeps other data in)."""
    name = Path(folder).name
    return name.startswith("test") or name.endswith("_test")


def _inside(test_file: Path, paths: Iterable[Path]) -> bool:
    return any(test_file == p or test_file.is_relative_to(p) for p in paths)


def _is_optcheck_golden(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            head = handle.read(256)
    except OSError:
        return False
    return f'"{SCHEMA_KEY}"'.encode() in head
