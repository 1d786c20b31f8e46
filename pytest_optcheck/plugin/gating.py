"""Which tests run, on which devices, with which spec: ``--optcheck`` gating, the ``[cpu]`` /
``[cuda]`` parametrisation, the report header, and each test's merged marker.

A test is an *optcheck test* when an ``optcheck`` marker sits on it at any level — module,
class, function, or only on one of its ``pytest.param`` values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from ..golden.files import relative_to_cwd
from .options import Settings

if TYPE_CHECKING:
    from ..declare.spec import Spec

MARKER = "optcheck"
DEVICE_FIXTURE = "_optcheck_device"
SKIP_REASON = "optcheck test: run it with `pytest --optcheck` (or set `optcheck = true` in the ini file)"


class Gating:
    """Skips optcheck tests unless enabled, and runs each once per device."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        from importlib import metadata

        try:
            torch_version = metadata.version("torch")  # package metadata: no torch import
        except metadata.PackageNotFoundError:
            torch_version = "not installed"
        settings = self.settings
        state = "enabled" if settings.enabled else "disabled (use --optcheck)"
        root = relative_to_cwd(settings.golden_root)
        if settings.golden_key != "none":
            root += f" (per {settings.golden_key})"
        return [f"optcheck: {state}; torch {torch_version}; devices {', '.join(settings.devices)}; goldens in {root}"]

    @pytest.hookimpl(trylast=True)
    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if DEVICE_FIXTURE in metafunc.fixturenames and is_marked(metafunc.definition):
            devices = list(self.settings.devices)
            metafunc.parametrize(DEVICE_FIXTURE, devices, ids=devices, indirect=True)

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        if self.settings.enabled:
            return
        skip = pytest.mark.skip(reason=SKIP_REASON)
        for item in items:
            if item.get_closest_marker(MARKER) is not None:
                item.add_marker(skip)


def is_marked(definition: Any) -> bool:
    """Whether a test function carries an optcheck marker at any level, including only on
    some of its ``pytest.param`` values (those marks reach the items, not the definition)."""
    if definition.get_closest_marker(MARKER) is not None:
        return True
    for mark in definition.iter_markers("parametrize"):
        values = mark.args[1] if len(mark.args) > 1 else mark.kwargs.get("argvalues", ())
        for value in values:  # pytest's own parametrize (Gating runs last) has accepted them
            if any(m.name == MARKER for m in getattr(value, "marks", ())):  # pytest.param made them Marks
                return True
    return False


def marker_kwargs(item: pytest.Item) -> dict[str, Any] | None:
    """Merged ``optcheck`` marker keywords, farthest level first; None when unmarked."""
    levels = [(mark.args, mark.kwargs) for node in item.listchain() for mark in node.own_markers
              if mark.name == MARKER]
    if not levels:
        return None
    from ..declare.spec import merge_levels

    return merge_levels(levels)


def spec_for(item: pytest.Item) -> tuple[Spec, bool]:
    """The item's Spec and whether it was marked. A bad key or value raises a SpecError,
    which the plugin reports as its message alone (see :mod:`.failures`)."""
    from ..declare.spec import Spec

    kwargs = marker_kwargs(item)
    return Spec.from_kwargs(kwargs or {}), kwargs is not None
