"""The per-run state behind the plugin: gating, device parametrization, checks against
goldens, the terminal summary, xdist merging, orphans and the report.

Registered as a plugin object by :func:`pytest_optcheck.plugin.pytest_configure`; its
hooks stay short and call into the stage modules.
"""

from __future__ import annotations

import json
import shlex
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import golden as goldens
from .context import CheckContext
from .errors import OptcheckError
from .results import Results
from .settings import Settings, device_available, device_summary
from .spec import Spec, merge_levels

if TYPE_CHECKING:
    from .handle import OptcheckHandle
    from .verdict import Outcome

MARKER = "optcheck"
DEVICE_FIXTURE = "_optcheck_device"
USES_GOLDENS = ("optcheck", "trajectory_snapshot")
WORKER_KEY = "optcheck"


def marker_kwargs(item: pytest.Item) -> dict[str, Any] | None:
    """Merged ``optcheck`` marker keywords, farthest level first; None when unmarked."""
    levels = []
    for node in item.listchain():
        for mark in node.own_markers:
            if mark.name == MARKER:
                levels.append((mark.args, mark.kwargs))
    if not levels:
        return None
    return merge_levels(levels)


class OptcheckSession:
    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.results = Results()
        self._layout: goldens.GoldenLayout | None = None
        #: (folder, filename stem) of every collected test that can own goldens.
        self.owners: set[tuple[str, str]] = set()
        self.collected_files: set[str] = set()
        self.failed = False

    # -- layout -------------------------------------------------------------------
    @property
    def layout(self) -> goldens.GoldenLayout:
        if self._layout is None:
            key = goldens.torch_minor_key() if self.settings.golden_key == "torch-minor" else None
            self._layout = goldens.GoldenLayout(self.settings.golden_root, self.settings.rootdir, key)
        return self._layout

    # -- hooks --------------------------------------------------------------------
    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        from importlib import metadata

        try:
            torch_version = metadata.version("torch")
        except metadata.PackageNotFoundError:
            torch_version = "not installed"
        state = "enabled" if self.settings.enabled else "disabled (use --optcheck)"
        root = goldens.relative_to_cwd(self.settings.golden_root)
        if self.settings.golden_key != "none":
            root += f" (per {self.settings.golden_key})"
        return [(f"optcheck: {state}; torch {torch_version}; devices {', '.join(self.settings.devices)}; "
                f"goldens in {root}")]

    @pytest.hookimpl(trylast=True)
    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if metafunc.definition.get_closest_marker(MARKER) is None:
            return
        if DEVICE_FIXTURE in metafunc.fixturenames:
            devices = list(self.settings.devices)
            metafunc.parametrize(DEVICE_FIXTURE, devices, ids=devices, indirect=True)

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        if self.settings.enabled:
            return
        skip = pytest.mark.skip(
            reason="optcheck test: run it with `pytest --optcheck` (or set `optcheck = true` in the ini file)"
        )
        for item in items:
            if item.get_closest_marker(MARKER) is not None:
                item.add_marker(skip)

    def pytest_itemcollected(self, item: pytest.Item) -> None:
        """Every collected test owns its goldens, even one a (sub-folder) conftest deselects
        before :meth:`pytest_collection_modifyitems` sees it: never judged an orphan."""
        self.collected_files.add(str(item.path))
        if item.get_closest_marker(MARKER) is not None or any(
                f in getattr(item, "fixturenames", ()) for f in USES_GOLDENS):
            self.owners.add(self.layout_for_item(item))

    def layout_for_item(self, item: pytest.Item) -> tuple[str, str]:
        """(folder relative to the golden base, file stem) of the item's goldens.

        Computed without the per-torch-version key, so collection never imports torch."""
        plain = goldens.GoldenLayout(self.settings.golden_root, self.settings.rootdir)
        folder, stem = plain.stem_prefixes(item.path, snapshot_name(item))
        return folder.relative_to(plain.root).as_posix(), stem

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        """A user-facing OptcheckError (a bad spec found while building) is reported by its
        message, the test line that raised it and — when it wraps an exception from the
        user's own code or torch — that code's frames; never the plugin's internals."""
        report = yield
        excinfo = call.excinfo
        if excinfo is not None and report.failed and excinfo.errisinstance(OptcheckError):
            report.longrepr = clean_failure(excinfo.value, excinfo.traceback, item)
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.failed = True

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            payload = self.results.payload()
            payload["owners"] = sorted(self.owners)
            payload["collected_files"] = sorted(self.collected_files)
            workeroutput[WORKER_KEY] = json.dumps(payload)
            return
        from .orphans import handle_orphans

        handle_orphans(self, session)
        if self.settings.report_dir is not None and self.results.records:
            from .report import write_index

            write_index(self.settings.report_dir, self.results)

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        lines = self.results.summary_lines()
        if self.settings.report_dir is not None and self.results.records:
            lines.append(f"report: {goldens.relative_to_cwd(self.settings.report_dir / 'index.html')}")
        if not lines:
            return
        terminalreporter.write_sep("-", "optcheck summary")
        for line in lines:
            terminalreporter.write_line(line)

    # -- fixtures' work -----------------------------------------------------------
    def spec_for(self, item: pytest.Item) -> tuple[Spec, bool]:
        """The item's Spec and whether it was marked; bad keys fail the test cleanly."""
        try:
            kwargs = marker_kwargs(item)
            return Spec.from_kwargs(kwargs or {}), kwargs is not None
        except OptcheckError as exc:
            pytest.fail(str(exc), pytrace=False)

    def require_device(self, device: str) -> None:
        """Skip (never fail, never write a golden) on a device this machine lacks."""
        if not device_available(device):
            pytest.skip(f"optcheck: device {device!r} is not available here ({device_summary()}); "
                        f"skipped, and no golden is written for it")

    def bind_assertion(self, snapshot: Any) -> Any:
        from .extension import TrajectoryExtension

        return snapshot.use_extension(TrajectoryExtension)

    def make_handle(self, request: pytest.FixtureRequest, device: str, assertion: Any) -> OptcheckHandle:
        from .handle import OptcheckHandle

        spec, marked = self.spec_for(request.node)
        self.require_device(device)
        self.validate_names(spec)

        def checker(trajectory: Any, name: str | None, layer: dict[str, Any], declarative: bool) -> Outcome:
            __tracebackhide__ = True
            record_spec = spec if (marked or declarative) else None
            outcome = self.run_check(request, assertion, trajectory, name, layer, device, record_spec)
            if declarative and self.settings.sensitivity and outcome.passed:
                from .sensitivity import probe

                vacuous = probe(spec, device, trajectory, outcome, threads=self.settings.threads)
                if vacuous:
                    self.results.vacuous.append({"nodeid": request.node.nodeid, "name": name, "detail": vacuous})
            return outcome

        return OptcheckHandle(spec, device, checker, threads=self.settings.threads)

    def validate_names(self, spec: Spec) -> None:
        """Resolve every name of the spec now, so a typo fails at setup with its key."""
        from . import catalog

        try:
            catalog.resolve_model(spec.model)
            catalog.resolve_problem(spec.problem)
            catalog.resolve_optimizer(spec.optimizer)
            catalog.resolve_scheduler(spec.scheduler)
            if spec.loss is not None:
                catalog.resolve_loss(spec.loss)
        except OptcheckError as exc:
            pytest.fail(str(exc), pytrace=False)

    def prepare_snapshot(self, request: pytest.FixtureRequest, device: str, assertion: Any) -> Any:
        spec, marked = self.spec_for(request.node)
        self.require_device(device)
        context = self.context_for(request, device, spec if marked else None, {}, None)
        assertion.extension.context = context
        return assertion

    def context_for(self, request: pytest.FixtureRequest, device: str, spec: Spec | None,
                    layer: dict[str, Any], name: str | None) -> CheckContext:
        nodeid = request.node.nodeid
        settings = self.settings
        marker_layer = dict(spec.tolerance or {}) if spec is not None else {}
        dtype = spec.dtype if spec is not None else "float32"
        command = f"pytest --optcheck --snapshot-update {shlex.quote(nodeid)}"
        if device not in ("cpu",):
            command += f" --optcheck-device={device}"
        picture = None
        if settings.report_dir is not None:
            picture = goldens.relative_to_cwd(settings.report_dir / picture_name(nodeid, name))
        return CheckContext(
            layout=self.layout,
            test=nodeid,
            spec=spec.canonical() if spec is not None else None,
            environment=goldens.environment(device, dtype),
            tolerance_layers=(settings.ini_tolerances, settings.cli_tolerances, marker_layer, layer),
            update_command=command,
            picture=picture,
            name=name,
        )

    def run_check(self, request: pytest.FixtureRequest, assertion: Any, trajectory: Any, name: str | None,
                  layer: dict[str, Any], device: str, spec: Spec | None) -> Outcome:
        extension = assertion.extension
        extension.context = self.context_for(request, device, spec, layer, name)
        extension.outcome = None
        assertion(name=name) == trajectory  # noqa: B015 - syrupy records the result
        return outcome_of(assertion, assertion.executions[assertion.num_executions - 1])

    def collect(self, item: pytest.Item, assertion: Any) -> None:
        """After the test: one record per check, and its picture when a report is asked."""
        for result in assertion.executions.values():
            outcome = outcome_of(assertion, result)
            name = outcome.current.name if outcome.current is not None else None
            record = {
                "nodeid": item.nodeid,
                "name": name,
                "status": outcome.status,
                "path": goldens.relative_to_cwd(result.snapshot_location),
                "worst": outcome.worst(),
                "message": "" if outcome.status in ("passed", "created") else outcome.message,
                "picture": None,
            }
            if self.settings.report_dir is not None:
                from .report import write_picture

                picture = self.settings.report_dir / picture_name(item.nodeid, name)
                record["picture"] = picture.name
                write_picture(picture, outcome, title=item.nodeid + (f" [{name}]" if name else ""))
            self.results.add(record)


def outcome_of(assertion: Any, result: Any) -> Outcome:
    """The Outcome of one syrupy assertion result, with created/updated folded in.

    ``matches`` stores an Outcome per golden path; a check whose golden did not exist
    never reaches ``matches``, so its Outcome is made here from what was asserted."""
    from .verdict import ERROR, Outcome, missing

    extension = assertion.extension
    location = result.snapshot_location
    outcome = extension.outcomes.get(location)
    if outcome is None:
        current = goldens.loads(result.asserted_data) if result.asserted_data else None
        context = extension.context
        if result.exception is not None:
            outcome = Outcome(ERROR, f"optcheck: the check raised {result.exception!r}", location, current=current)
        else:
            outcome = missing(current, location, context.update_command if context is not None else None,
                              context.layout if context is not None else None)
        extension.outcomes[location] = outcome
    if result.created:
        outcome.status = "created"
    elif result.updated:
        outcome.status = "updated"
    return outcome


class XdistHooks:
    """Registered only when pytest-xdist is present (its hooks are unknown otherwise)."""

    def __init__(self, session: OptcheckSession) -> None:
        self.session = session

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        raw = getattr(node, "workeroutput", {}).get(WORKER_KEY)
        if not raw:
            return
        payload = json.loads(raw)
        self.session.results.merge(payload)
        self.session.owners.update(tuple(o) for o in payload.get("owners", []))
        self.session.collected_files.update(payload.get("collected_files", []))


PACKAGE_DIR = str(Path(__file__).resolve().parent)


def clean_failure(error: BaseException, tb: Any, item: pytest.Item) -> str:
    """The text of an OptcheckError's failure (see ``pytest_runtest_makereport``)."""
    lines = [str(error)]
    in_test = [entry for entry in tb if Path(entry.path) == Path(item.path)]
    if in_test:
        lines.append(f"(at {item.path.name}:{in_test[-1].lineno + 1})")
    cause = error.__cause__
    if cause is not None and cause.__traceback__ is not None:
        frames = [f for f in traceback.extract_tb(cause.__traceback__) if not f.filename.startswith(PACKAGE_DIR)]
        if frames:
            lines.append("caused by (most recent call last):")
            lines += [line.rstrip("\n") for line in traceback.format_list(frames[-4:])]
            lines.append(f"{type(cause).__name__}: {cause}")
    return "\n".join(lines)


def snapshot_name(item: pytest.Item) -> str:
    """The test id syrupy uses: ``TestClass.test_name[params]`` (the golden's file stem)."""
    classname = ".".join(item.nodeid.split("::")[1:-1])
    return f"{classname}.{item.name}" if classname else item.name


def picture_name(nodeid: str, name: str | None) -> str:
    stem = nodeid.replace("/", "__").replace("::", "--") + (f"--{name}" if name else "")
    return goldens.safe_filename(stem) + ".png"
