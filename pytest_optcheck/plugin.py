"""pytest glue: options, the marker, fixtures and hooks — and nothing else.

Every decision is delegated to importable modules (:mod:`.settings`, :mod:`.spec`,
:mod:`.session`); this file only wires them to pytest. Importing it imports neither torch
nor matplotlib, so a project with the plugin installed pays nothing until an optcheck
test runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .errors import OptcheckError
from .settings import build_settings

if TYPE_CHECKING:
    from .handle import OptcheckHandle
    from .session import OptcheckSession

SESSION_KEY = pytest.StashKey["OptcheckSession"]()
MARKER = "optcheck"
MARKER_HELP = (
    "optcheck(**spec): declare a training run checked against a golden: model, problem, loss, "
    "optimizer, scheduler, interval, epochs, batch_size, seed, dtype, l1, clip_grad_norm, record, "
    "tolerance. Levels merge module < class < function < pytest.param, closest wins. "
    "Runs only with --optcheck (or ini optcheck = true)."
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("optcheck", "optcheck: regression checks of training behaviour")
    group.addoption("--optcheck", action="store_true", default=False, dest="optcheck",
                    help="Run tests marked @pytest.mark.optcheck (skipped otherwise).")
    group.addoption("--optcheck-device", dest="optcheck_device", default=None, metavar="DEVICES",
                    help="Comma-separated devices to run every optcheck test on, e.g. cpu,cuda "
                         "(ini: optcheck_devices; default cpu). Missing devices skip.")
    group.addoption("--optcheck-golden-dir", dest="optcheck_golden_dir", default=None, metavar="DIR",
                    help="Root folder of golden files, relative to the rootdir "
                         "(ini: optcheck_golden_dir; default golden).")
    group.addoption("--optcheck-tolerance", dest="optcheck_tolerance", action="append", default=None,
                    metavar="SERIES:FIELDS",
                    help="Tolerance for a series, e.g. 'loss: rtol=1e-3, mode=final' or '*: atol=1e-9'; "
                         "repeatable. Precedence: check() > marker > this option > ini optcheck_tolerance.")
    group.addoption("--optcheck-report", dest="optcheck_report", default=None, metavar="DIR",
                    help="Write a PNG per check, index.html and summary.json to DIR.")
    group.addoption("--optcheck-sensitivity", dest="optcheck_sensitivity", action="store_true", default=False,
                    help="Also run each declarative check with the learning rate scaled by 1.01 and "
                         "list checks whose tolerance would not notice it.")
    group.addoption("--optcheck-threads", dest="optcheck_threads", default=None, metavar="N",
                    help="Intra-op threads for the reference loop (ini: optcheck_threads; default: torch's). "
                         "1 makes CPU runs independent of the core count and suits pytest -n.")
    group.addoption("--optcheck-prune", dest="optcheck_prune", action="store_true", default=False,
                    help="Delete orphaned goldens (no collected test owns them) on a full, green run.")
    parser.addini("optcheck", "Run optcheck tests without --optcheck (true/false).", type="bool", default=False)
    parser.addini("optcheck_devices", "Comma-separated devices for optcheck tests (default cpu).", default="cpu")
    parser.addini("optcheck_golden_dir", "Root folder of golden files (default golden).", default="golden")
    parser.addini("optcheck_golden_key", "Keep goldens per torch version: none or torch-minor.", default="none")
    parser.addini("optcheck_threads", "Intra-op threads for the reference loop (default: torch's).", default="")
    parser.addini("optcheck_tolerance", "Per-series tolerances, one 'SERIES: FIELDS' per line.",
                  type="linelist", default=[])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    option = vars(config.option)
    ini = {name: config.getini(name) for name in
           ("optcheck", "optcheck_devices", "optcheck_golden_dir", "optcheck_golden_key", "optcheck_tolerance",
            "optcheck_threads")}
    try:
        settings = build_settings(rootdir=config.rootpath, option=option, ini=ini)
    except OptcheckError as exc:
        raise pytest.UsageError(str(exc)) from None
    from .session import OptcheckSession

    session = OptcheckSession(config, settings)
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(session, "optcheck-session")
    if config.pluginmanager.hasplugin("xdist"):
        from .session import XdistHooks

        config.pluginmanager.register(XdistHooks(session), "optcheck-xdist")


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        config.pluginmanager.unregister(session)
        del config.stash[SESSION_KEY]


def _session(config: pytest.Config) -> OptcheckSession:
    return config.stash[SESSION_KEY]


@pytest.fixture
def _optcheck_device(request: pytest.FixtureRequest) -> str:
    """The device of this optcheck run (the ``[cpu]`` / ``[cuda]`` parameter)."""
    return str(getattr(request, "param", "cpu"))


@pytest.fixture
def _optcheck_assertion(request: pytest.FixtureRequest, snapshot: Any) -> Iterator[Any]:
    """One syrupy assertion bound to the trajectory extension, shared by ``check()`` and
    ``trajectory_snapshot`` so their golden names never collide; its results are
    gathered for the summary and the report when the test ends."""
    session = _session(request.config)
    assertion = session.bind_assertion(snapshot)
    yield assertion
    session.collect(request.node, assertion)


@pytest.fixture
def optcheck(request: pytest.FixtureRequest, _optcheck_device: str, _optcheck_assertion: Any) -> OptcheckHandle:
    """The optcheck handle of this test: ``.spec``, ``.device``, ``.build()``, ``.train()``,
    ``.lr_schedule(n)``, ``.record(optimizer, scheduler, model)`` and ``.check()``
    against the test's golden (``--snapshot-update`` writes it)."""
    return _session(request.config).make_handle(request, _optcheck_device, _optcheck_assertion)


@pytest.fixture
def trajectory_snapshot(request: pytest.FixtureRequest, _optcheck_device: str, _optcheck_assertion: Any) -> Any:
    """syrupy's ``snapshot`` bound to the trajectory extension:
    ``assert trajectory == trajectory_snapshot`` (tolerances from marker, CLI and ini)."""
    return _session(request.config).prepare_snapshot(request, _optcheck_device, _optcheck_assertion)
