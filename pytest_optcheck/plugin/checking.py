"""The checks of each test: the ``optcheck`` handle's and ``trajectory_snapshot``'s checks
go through :class:`TestChecks`, which asks :func:`~pytest_optcheck.checks.golden_check.check_golden`
and keeps each Outcome for the summary and the report when the test ends.

A failing check does not stop its test: every check of a test is evaluated and reported
(a GAN's generator and discriminator), and :class:`FailAtEnd` fails the test once, when its
body has returned, naming every failing check (docs/checks.md).

Per-test state lives in the TestChecks object the fixtures share for one test, and nowhere
else; run-wide state (the records) in :class:`~pytest_optcheck.report.results.Results`.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
from collections.abc import Generator
from pathlib import Path
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


CHECKS_KEY = pytest.StashKey["TestChecks"]()


class FailAtEnd:
    """Fails a test whose checks failed, once, after its body returned: every check ran.

    The failure is raised in the call phase (the test reads FAILED, not ERROR; ``xfail``
    and ``-x`` see it as the test's own failure), as an AssertionError whose message names
    every failing check and the line of the test that made it. When the body itself raised
    after a failing check, that exception stands and the checks' failures are added to the
    report as a section of their own."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        __tracebackhide__ = True
        try:
            result = yield
        except BaseException:
            checks = item.stash.get(CHECKS_KEY, None)
            if checks is not None and checks.failures():
                item.add_report_section("call", "optcheck checks that failed before", checks.failure_text())
            raise
        checks = item.stash.get(CHECKS_KEY, None)
        if checks is not None and checks.failures():
            raise AssertionError(checks.failure_text())
        return result


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
        checks = TestChecks(item, device, spec, marked, self.settings, self.layout)
        item.stash[CHECKS_KEY] = checks
        return checks

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
            result = None
            if settings.report_dir is not None:  # the current run kept beside the report, to accept
                from ..report.obtained import write_result

                result = write_result(settings.report_dir, settings.rootdir, outcome)
            self.results.add_outcome(checks.item.nodeid, name, outcome, picture, result)
        self.results.vacuous.extend(checks.vacuous)
        if settings.sensitivity:
            self.results.probed = (self.results.probed or 0) + checks.probed


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
    #: Where in the test each outcome's check was made ("test_gan.py:14"), by outcome.
    lines: list[str | None] = dataclasses.field(default_factory=list)
    vacuous: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    unnamed: int = 0
    probed: int = 0

    def handle(self) -> OptcheckHandle:
        from ..declare.catalog import validate_names
        from ..handle import OptcheckHandle

        validate_names(self.spec)  # a typo fails at set-up, naming its key
        return OptcheckHandle(self.spec, self.device, self.check, threads=self.settings.threads,
                              reporter=self.report, defer=True)

    def report(self, name: str | None, outcome: Outcome) -> None:
        """Keep the outcome of a check without a golden for the summary and the report."""
        self._keep(name, outcome)

    def _keep(self, name: str | None, outcome: Outcome) -> None:
        self.outcomes.append((name, outcome))
        self.lines.append(self._test_line())

    def _test_line(self) -> str | None:
        """``file.py:LINE`` of the innermost frame of the test's own file on the stack."""
        target = Path(self.item.path)
        frame = sys._getframe(1)
        while frame is not None:
            if Path(frame.f_code.co_filename) == target:
                return f"{target.name}:{frame.f_lineno}"
            frame = frame.f_back  # type: ignore[assignment]
        return None

    def failures(self) -> list[tuple[str | None, Outcome, str | None]]:
        """The checks of this test that failed, in the order they were made."""
        return [(name, outcome, line) for (name, outcome), line in zip(self.outcomes, self.lines, strict=True)
                if not outcome.ok]

    def failure_text(self) -> str:
        """The test's failure: one failing check's message as it is; several, under a line
        that counts them ("2 of 2 checks failed"), each headed by its name and test line."""
        failed = self.failures()
        total = len(self.outcomes)
        if len(failed) == 1:
            name, outcome, line = failed[0]
            tail = [f"(checked at {line})"] if line else []
            if total > 1:
                tail.append(f"(1 of {total} checks of this test failed: {name or '(unnamed)'}; the others passed)")
            return "\n".join([outcome.message, *tail])
        names = ", ".join(name or "(unnamed)" for name, _, _ in failed)
        parts = [f"optcheck: {len(failed)} of {total} checks failed: {names}"]
        for name, outcome, line in failed:
            where = f" (checked at {line})" if line else ""
            parts += ["", f"--- check {name or '(unnamed)'}{where} ---", outcome.message]
        return "\n".join(parts)

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
        current, libraries = self.run_libraries(current)
        configuration, recorded = golden_configuration(current, self.spec, self.marked, declarative)
        dtype = self.spec.dtype
        if configuration is not None and configuration.get("autocast"):  # a recorded run under autocast
            dtype = f"{dtype} (autocast {configuration['autocast']})"
        golden = Golden(recorded, configuration, environment(self.device, dtype, libraries), item.nodeid, name)
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
        self._keep(name, outcome)
        if declarative and settings.sensitivity and outcome.passed:
            from ..checks.sensitivity import probe

            self.probed += 1
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

    def run_libraries(self, current: Trajectory) -> tuple[Trajectory, list[str]]:
        """The third-party packages whose versions the golden's environment keeps: those a
        recorded framework run names (``meta["libraries"]``: the framework, the optimizer's
        package), moved out of its meta; else the spec's."""
        if "libraries" not in current.meta:
            return current, self.libraries()
        meta = dict(current.meta)
        libraries = sorted(meta.pop("libraries"))
        return current.derive(meta=meta), libraries

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
