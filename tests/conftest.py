"""Shared by every test: the pytester plugin (for tests/e2e) and the frameworks' fixtures.

Nothing here trains or imports torch at import: collecting the suite stays cheap. The warm-up
the in-process pytester sessions need lives in tests/e2e/conftest.py."""

from __future__ import annotations

import os
from typing import Any

import pytest

# Declared here, in the top-level conftest: pytest accepts ``pytest_plugins`` nowhere else.
pytest_plugins = ["pytester"]


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # Two workers on two cores: one intra-op thread each, or they spin against each other
        # (measured: a 300-step run took 0.3 s alone and 1.4-2.4 s under contention).
        import torch

        torch.set_num_threads(1)


@pytest.fixture(scope="session")
def lightning() -> Any:
    """lightning.pytorch, imported in this process before any pytester run needs it (a module
    first imported inside an in-process run is dropped after it), and only by the worker that
    runs a test asking for it."""
    import lightning.pytorch

    from pytest_optcheck.integrations import lightning as integration  # noqa: F401  (before any inner run)

    return lightning.pytorch


@pytest.fixture(scope="session")
def transformers() -> Any:
    """transformers, imported as ``lightning`` above is, for the same reason."""
    import transformers

    from pytest_optcheck.integrations import hf  # noqa: F401  (before any inner run)

    return transformers
