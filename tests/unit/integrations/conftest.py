"""The frameworks' fixtures again, next to the tests that use them: benchmarks/mutation.py copies
a layer's conftest.py into its scratch folder, but not tests/conftest.py (whose fixtures these
override with the same ones)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def lightning() -> Any:
    """lightning.pytorch, and the integration built on it."""
    import lightning.pytorch

    from pytest_optcheck.integrations import lightning as integration  # noqa: F401

    return lightning.pytorch


@pytest.fixture(scope="session")
def transformers() -> Any:
    """transformers, and the integration built on it."""
    import transformers

    from pytest_optcheck.integrations import hf  # noqa: F401

    return transformers
