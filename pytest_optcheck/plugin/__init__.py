"""The pytest plugin (entry point ``optcheck``): options, the marker, fixtures — and the
registration of one plugin object per feature:

* :class:`~.gating.Gating` — ``--optcheck`` gating, ``[cpu]``/``[cuda]`` parametrisation, header;
* :class:`~.checking.Checking` — each test's checks against goldens;
* :class:`~.checking.FailAtEnd` — a test fails once, at its end, naming every failing check;
* :class:`~.failures.CleanFailures` — user errors reported by their message alone;
* :class:`~.pruning.Pruning` — goldens' owners, orphans, ``--optcheck-prune``;
* :class:`Summary` — the terminal summary and the report's index at the end;
* :class:`~.xdist.XdistMerge` — workers' results merged on the controller;
* :mod:`.ranks` — under torchrun, rank 0 alone writes, every rank ends with its verdict.

Everything they decide lives in importable modules that work without pytest. Importing this
package imports neither torch, nor numpy, nor matplotlib.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from ..errors import OptcheckError
from ..report.results import Results
from .checking import Checking, FailAtEnd, TestChecks
from .failures import CleanFailures
from .gating import Gating
from .options import Settings, add_options, read_settings
from .pruning import Pruning
from .ranks import launched, writes

if TYPE_CHECKING:
    from ..handle import OptcheckHandle
    from .snapshot import TrajectorySnapshot

CHECKING_KEY = pytest.StashKey[Checking]()
MARKER_HELP = (
    "optcheck(**spec): declare a training run checked against a golden: model, problem, loss, "
    "optimizer, scheduler, interval, epochs, batch_size, seed, dtype, l1, clip_grad_norm, record, "
    "tolerance. Levels merge module < class < function < pytest.param, closest wins. "
    "Runs only with --optcheck (or ini optcheck = true)."
)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    try:
        settings = read_settings(config)
    except OptcheckError as exc:
        raise pytest.UsageError(str(exc)) from None
    results = Results(probed=0 if settings.sensitivity else None)
    checking = Checking(settings, results)
    pruning = Pruning(settings, results, checking)
    config.stash[CHECKING_KEY] = checking
    plugins: dict[str, Any] = {
        "optcheck-gating": Gating(settings),
        "optcheck-failures": CleanFailures(),
        "optcheck-fail-at-end": FailAtEnd(),
        "optcheck-pruning": pruning,
        "optcheck-summary": Summary(config, settings, results, pruning),
    }
    if launched():
        from .ranks import EndOfTest

        plugins["optcheck-ranks"] = EndOfTest()
    if config.pluginmanager.hasplugin("xdist"):
        from .xdist import XdistMerge

        plugins["optcheck-xdist"] = XdistMerge(results, pruning)
    for name, plugin in plugins.items():
        config.pluginmanager.register(plugin, name)


class Summary:
    """At the session's end: the worker hands its payload over, or the controller judges
    orphans, writes the report's index and prints one summary block."""

    def __init__(self, config: pytest.Config, settings: Settings, results: Results, pruning: Pruning) -> None:
        self.config = config
        self.settings = settings
        self.results = results
        self.pruning = pruning

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            from .xdist import WORKER_KEY, worker_payload

            workeroutput[WORKER_KEY] = worker_payload(self.results, self.pruning)
            return
        if not writes():  # torchrun: rank 0 alone prunes, writes the report and the summary
            return
        self.pruning.finish(self.config, session)
        if self.settings.report_dir is not None and self.results.records:
            from ..report.index import write_index

            write_index(self.settings.report_dir, self.results)

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not writes():
            return
        lines = self.results.summary_lines()
        if self.settings.report_dir is not None and self.results.records:
            from ..golden.files import relative_to_cwd

            report = relative_to_cwd(self.settings.report_dir)
            lines.append(f"report: {relative_to_cwd(self.settings.report_dir / 'index.html')}")
            kept = sum(1 for r in self.results.records if r.get("result"))
            if kept:
                noun = "run" if kept == 1 else "runs"
                lines.append(f"current {noun} of {kept} failing or missing check(s) kept in {report}/results; "
                             f"to make them the goldens: optcheck accept {report}")
        if lines:
            terminalreporter.write_sep("-", "optcheck summary")
            for line in lines:
                terminalreporter.write_line(line)


@pytest.hookimpl(wrapper=True)
def pytest_assertrepr_compare(config: pytest.Config, op: str, left: Any, right: Any) -> Any:
    """optcheck's message, not a line diff, for ``trajectory == snapshot(extension_class=TrajectoryExtension)``
    (syrupy's ``snapshot``; see :func:`~pytest_optcheck.integrations.syrupy.explain_failure`). A
    wrapper, so it comes before syrupy's own explanation (pytest shows the first one given)."""
    results = yield
    if type(right).__module__ != "syrupy.assertion":  # anything else, at the cost of one attribute read
        return results
    executions = getattr(right, "executions", None) or {}  # syrupy's public record of its comparisons
    last = executions[max(executions)] if executions else None
    if not str(getattr(last, "snapshot_location", "")).endswith(".trajectory"):
        return results  # another extension's snapshot: nothing of optcheck's is imported
    from ..integrations.syrupy import explain_failure

    explained = explain_failure(right, op)
    return [explained, *results] if explained else results


@pytest.fixture
def _optcheck_device(request: pytest.FixtureRequest) -> str:
    """The device of this optcheck run (the ``[cpu]`` / ``[cuda]`` parameter)."""
    return str(getattr(request, "param", "cpu"))


@pytest.fixture
def _optcheck_checks(request: pytest.FixtureRequest, _optcheck_device: str) -> Iterator[TestChecks]:
    """This test's checks, shared by ``optcheck`` and ``trajectory_snapshot``; their
    outcomes go to the summary and the report when the test ends."""
    checking = request.config.stash[CHECKING_KEY]
    checks = checking.start(request.node, _optcheck_device)
    yield checks
    checking.finish(checks)


@pytest.fixture
def optcheck(_optcheck_checks: TestChecks) -> OptcheckHandle:
    """The optcheck handle of this test: ``.spec``, ``.device``, ``.build()``, ``.train()``,
    ``.lr_schedule(n)``, ``.record(optimizer, scheduler, model)`` and ``.check()``
    against the test's golden (``--snapshot-update`` writes it)."""
    return _optcheck_checks.handle()


@pytest.fixture
def trajectory_snapshot(_optcheck_checks: TestChecks) -> TrajectorySnapshot:
    """``assert trajectory == trajectory_snapshot``: the trajectory checked against this
    test's golden, with the tolerances of the marker, command line and ini
    (``trajectory_snapshot(name="short")`` for a second one)."""
    from .snapshot import TrajectorySnapshot

    return TrajectorySnapshot(_optcheck_checks)
