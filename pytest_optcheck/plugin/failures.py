"""How a user-facing error reads in the pytest report: its message, the test line that
raised it and — when it wraps an exception from the user's code or torch — those frames;
never a traceback through the plugin's internals, and never twice."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import pytest

from ..errors import OptcheckError

PACKAGE_DIR = str(Path(__file__).resolve().parent.parent)


class CleanFailures:
    """Rewrites the report of a test that failed (or errored at set-up) on an OptcheckError."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        excinfo = call.excinfo
        if excinfo is not None and report.failed and excinfo.errisinstance(OptcheckError):
            report.longrepr = clean_failure(excinfo.value, excinfo.traceback, item)
        return report


def clean_failure(error: BaseException, tb: Any, item: pytest.Item) -> str:
    """The text of an OptcheckError's failure (see :class:`CleanFailures`)."""
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
