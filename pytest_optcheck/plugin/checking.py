"""The checks of each test: the ``optcheck`` handle's and ``trajectory_snapshot``'s checks
go through :class:`TestChecks`, which asks :func:`~pytest_optcheck.checks.golden_check.check_golden`
and keeps each Outcome for the summary and the report when the test ends.

Per-test state lives in the TestChecks object the fixtures share for one test, and nowhere
else; run-wide state (the records) in :class:`~pytest_optcheck.report.results.Results`.
"""

from __future__ import annotations

import dataclasses
import shlex
from typing import TYPE_CHECKING, Any

import pytest

from ..errors import OptcheckError
from ..golden.files import relative_to_cwd
from ..report.results import Results
from ..run.devices import device_available, device_summary
from .gating import spec_for
from .options import Settings
from .ranks import judged, writes

if TYPE_CHECKING:
    from ..checks.golden_check import Replicate
    from ..declare.spec import Spec
    from ..engine.outcome import Outcome
    from ..engine.trajectory import Trajectory
    from ..golden.layout import GoldenLayout
    from ..handle import OptcheckHandle


class Checking:
    """Run-wide part of the checks: the golden layout and the session's Results."""

    def __init__(self, settings: Settings, results: Results) -> None:
        self.settings = settings
        self.results = results
        self._layout: GoldenLayout | None = None

    @property
    def layout(self) -> GoldenLayout:
        """Made on first use: the per-torch-version key imports torch."""
        if self._layout is None:
            from ..golden.environment import torch_minor_key

            key = torch_minor_key() if self.settings.golden_key == "torch-minor" else None
            from ..golden.layout import GoldenLayout

            self._layout = GoldenLayout(self.settings.golden_root, self.settings.rootdir, key)
        return self._layout

    def start(self, item: pytest.Item, device: str) -> TestChecks:
        """The checks of one test: its spec validated, its device present (else a skip)."""
        spec, marked = spec_for(item)
        if not device_available(device):
            pytest.skip(f"optcheck: device {device!r} is not available here ({device_summary()}); "
                        f"skipped, and no golden is written for it")
        return TestChecks(item, device, spec, marked, self.settings, self.layout)

    def finish(self, checks: TestChecks) -> None:
        """After the test: one record per check, and its picture when a report is asked for."""
        settings = self.settings
        for name, outcome in checks.outcomes:
            picture = None
            drawable = outcome.golden is not None or outcome.current is not None  # not a check without golden
            if settings.report_dir is not None and drawable and writes():
                from ..golden.layout import picture_name
                from ..report.picture import write_picture

                target = settings.report_dir / picture_name(checks.item.nodeid, name)
                title = checks.item.nodeid + (f" [{name}]" if name else "")
                picture = target.name if write_picture(target, outcome, title) else None
            self.results.add_outcome(checks.item.nodeid, name, outcome, picture)
        self.results.vacuous.extend(checks.vacuous)


@dataclasses.dataclass
class TestChecks:
    """The checks one test makes, in order; shared by its ``optcheck`` handle and its
    ``trajectory_snapshot``, so two checks can never write the same golden."""

    __test__ = False  # not a test class, whatever pytest's collector thinks of the name

    item: pytest.Item
    device: str
    spec: Spec
    marked: bool
    settings: Settings
    layout: GoldenLayout
    outcomes: list[tuple[str | None, Outcome]] = dataclasses.field(default_factory=list)
    vacuous: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    unnamed: int = 0

    def handle(self) -> OptcheckHandle:
        from ..declare.catalog import validate_names
        from ..handle import OptcheckHandle

        validate_names(self.spec)  # a typo fails at set-up, naming its key
        return OptcheckHandle(self.spec, self.device, self.check, threads=self.settings.threads,
                              reporter=self.report)

    def report(self, name: str | None, outcome: Outcome) -> None:
        """Keep the outcome of a check without a golden for the summary and the report."""
        self.outcomes.append((name, outcome))

    def next_unnamed(self) -> str | None:
        """syrupy's naming of repeated unnamed assertions: none, then "1", "2"..."""
        index, self.unnamed = self.unnamed, self.unnamed + 1
        return None if index == 0 else str(index)

    def check(self, current: Trajectory, name: str | None, layer: dict[str, Any], declarative: bool,
              calibrate: int | None = None, replicate: Replicate | None = None) -> Outcome:
        """Check ``current`` against this test's golden called ``name``; ``replicate`` (None for
        a recorded trajectory) re-runs it from perturbed starts when a golden is calibrated."""
        from ..checks.golden_check import check_golden, golden_configuration
        from ..golden.environment import environment
        from ..golden.format import Golden

        item, settings = self.item, self.settings
        path = self.layout.golden_path(item.path, item.nodeid, name)
        if any(o.path is not None and self.layout.golden_path(item.path, item.nodeid, n) == path
               for n, o in self.outcomes):
            raise OptcheckError(duplicate_golden_text(relative_to_cwd(path)))
        configuration, recorded = golden_configuration(current, self.spec, self.marked, declarative)
        golden = Golden(recorded, configuration, environment(self.device, self.spec.dtype, self.libraries()),
                        item.nodeid, name)
        marker_layer = dict(self.spec.tolerance or {})
        replicas = self.replicas_asked(calibrate, replicate is not None)
        outcome = judged(lambda update: check_golden(  # rank 0 judges for every rank of a torchrun
            golden, path,
            tolerance_layers=(settings.ini_tolerances, settings.cli_tolerances, marker_layer, layer),
            update=update,
            update_command=self.update_command(),
            picture=self.picture(name),
            layout=self.layout,
            calibrate=replicas,
            replicate=replicate,
        ), settings.update)
        self.outcomes.append((name, outcome))
        if declarative and settings.sensitivity and outcome.passed:
            from ..checks.sensitivity import probe

            vacuous = probe(self.spec, self.device, current, outcome, threads=settings.threads)
            if vacuous:
                self.vacuous.append({"nodeid": item.nodeid, "name": name, "detail": vacuous})
        if declarative and outcome.ok and (settings.resume or settings.parity):
            return self.differential(name) or outcome
        return outcome

    def differential(self, name: str | None) -> Outcome | None:
        """``--optcheck-resume`` / ``--optcheck-parity`` on a declarative check: each is kept
        as its own outcome (named ``resume`` / ``parity``, after the check's name); the first
        that fails is returned, so the test fails with its message."""
        from ..checks.differential.parity import check_parity, has_variants
        from ..checks.differential.resume import check_resume

        settings = self.settings
        outcomes = []
        if settings.resume:
            outcomes.append(("resume", check_resume(self.spec, self.device, threads=settings.threads)))
        if settings.parity and has_variants(self.spec, self.device):
            outcomes.append(("parity", check_parity(self.spec, self.device, threads=settings.threads)))
        for kind, outcome in outcomes:
            self.report(f"{name}:{kind}" if name else kind, outcome)
        return next((outcome for _, outcome in outcomes if not outcome.ok), None)

    def libraries(self) -> list[str]:
        """The third-party modules the spec's optimizer, scheduler and model come from."""
        from ..declare.catalog import library_modules

        return library_modules(self.spec)

    def replicas_asked(self, calibrate: int | None, repeatable: bool) -> int:
        """check()'s ``calibrate``, the marker's and the ini's, decided by
        :func:`~pytest_optcheck.checks.golden_check.replicas_asked`."""
        from ..checks.golden_check import replicas_asked

        return replicas_asked(calibrate, self.spec.calibrate, self.settings.calibrate, repeatable)

    def update_command(self) -> str:
        command = f"pytest --optcheck --snapshot-update {shlex.quote(self.item.nodeid)}"
        return command + (f" --optcheck-device={self.device}" if self.device != "cpu" else "")

    def picture(self, name: str | None) -> str | None:
        report_dir = self.settings.report_dir
        if report_dir is None:
            return None
        from ..golden.layout import picture_name

        return relative_to_cwd(report_dir / picture_name(self.item.nodeid, name))


def duplicate_golden_text(path: str) -> str:
    """Two checks of one test would write one golden: name them."""
    return (f"optcheck: two checks in this test use the same golden {path}; the second would overwrite "
            f"the first. Give each check its own name: check(name=...) / trajectory_snapshot(name=...).")
