"""Shared by the declare tests: the catalog's registries restored after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_optcheck.declare import catalog


@pytest.fixture(autouse=True)
def _restore_registries() -> Iterator[None]:
    """Registrations made by a test must not leak into the next one."""
    saved = {kind: dict(entries) for kind, entries in catalog._REGISTRIES.items()}
    yield
    for kind, entries in saved.items():
        catalog._REGISTRIES[kind].clear()
        catalog._REGISTRIES[kind].update(entries)
