"""Orphaned goldens: which tests own goldens (recorded at collection), whether the run was
full and green, and then listing or removing orphans. The rule itself is in
:mod:`pytest_optcheck.golden.orphans`; this module only gathers its inputs from pytest."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..golden.files import relative_to_cwd
from ..report.results import Results
from .gating import MARKER
from .options import Settings

if TYPE_CHECKING:
    from .checking import Checking

#: Fixtures through which a test checks against goldens.
USES_GOLDENS = ("optcheck", "trajectory_snapshot")


class Pruning:
    """Records owners at collection; lists (or with ``--optcheck-prune`` removes) orphans."""

    def __init__(self, settings: Settings, results: Results, checking: Checking) -> None:
        self.settings = settings
        self.results = results
        self.checking = checking
        #: (golden folder, file stem) of every collected test that can own goldens.
        self.owners: set[tuple[str, str]] = set()
        self.collected_files: set[str] = set()

    def pytest_itemcollected(self, item: pytest.Item) -> None:
        """Every collected test owns its goldens, even one a (sub-folder) conftest deselects
        before ``pytest_collection_modifyitems``: never judged an orphan."""
        self.collected_files.add(str(item.path))
        if item.get_closest_marker(MARKER) is not None or any(  # a non-Python item has no fixturenames
                f in getattr(item, "fixturenames", ()) for f in USES_GOLDENS):
            from ..golden.layout import GoldenLayout

            plain = GoldenLayout(self.settings.golden_root, self.settings.rootdir)
            self.owners.add(plain.owner(item.path, item.nodeid))

    def payload(self) -> dict[str, Any]:
        return {"owners": sorted(self.owners), "collected_files": sorted(self.collected_files)}

    def merge(self, payload: dict[str, Any]) -> None:
        self.owners.update(tuple(o) for o in payload.get("owners", []))
        self.collected_files.update(payload.get("collected_files", []))

    def finish(self, config: pytest.Config, session: pytest.Session) -> None:
        """At the end of the controller's session: list orphans, or prune them."""
        settings, results = self.settings, self.results
        if not self.owners and not settings.prune:
            return  # no optcheck test collected: nothing to judge, nothing to import
        from ..golden.orphans import Collected, find_orphans
        from ..run.devices import device_available

        full, why = is_full_run(config)
        if not full:
            if settings.prune:
                results.notes.append(f"--optcheck-prune removed nothing: not a full run ({why})")
            return
        collected = Collected(frozenset(self.owners), frozenset(self.collected_files), tuple(run_paths(config)))
        devices = set(settings.devices)
        orphans = find_orphans(self.checking.layout, collected, lambda d: d in devices and device_available(d))
        shown = [relative_to_cwd(p) for p in orphans]
        # A failure or error counts in testsfailed (under xdist on the controller too); a run
        # stopped early (-x, --maxfail, Ctrl-C, a plugin's shouldstop) ends with a nonzero status.
        green = session.testsfailed == 0 and session.exitstatus == 0
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


def is_full_run(config: pytest.Config) -> tuple[bool, str]:
    """Whether every test of the given paths was selected, and if not, why."""
    option = config.option
    if any("::" in str(arg) for arg in config.args):
        return False, "node ids were given"
    # -k, -m, --deselect, --ignore(-glob) and --co belong to pytest's core (always there);
    # --lf/--ff (cacheprovider) and --sw (stepwise) are gone with -p no:cacheprovider / no:stepwise.
    if option.keyword:
        return False, "-k was given"
    if option.markexpr:
        return False, "-m was given"
    if option.deselect:
        return False, "--deselect was given"
    if option.ignore or option.ignore_glob:
        return False, "--ignore was given"
    if getattr(option, "lf", False) or getattr(option, "failedfirst", False) or getattr(option, "stepwise", False):
        return False, "--lf/--ff/--sw selection was given"
    if option.collectonly:
        return False, "--collect-only was given"
    return True, ""


def run_paths(config: pytest.Config) -> list[Path]:
    """The files and folders this run collected from (its arguments or testpaths)."""
    base = Path(config.invocation_params.dir)
    return [(base / str(arg).split("::")[0]).resolve() for arg in config.args]
