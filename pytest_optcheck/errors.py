"""User-facing errors: each names the thing, shows the value and says the fix.

The pytest glue turns these into clean failures (``pytest.fail(..., pytrace=False)``),
so users never read a traceback through the plugin's internals.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class OptcheckError(Exception):
    """Base of every error whose message is meant for the user as it is."""


class SpecError(OptcheckError, ValueError):
    """A marker key or value that cannot be used (unknown key, name, argument...)."""


class GoldenFileError(OptcheckError):
    """A golden file that cannot be read: corrupt, truncated, unknown schema."""


def suggest(value: str, choices: Iterable[str], n: int = 3) -> str:
    """' Did you mean: a, b?' for the closest valid names, or '' when none is close."""
    names = sorted(set(choices))
    close = difflib.get_close_matches(value, names, n=n, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in names}
        close = [lowered[c] for c in difflib.get_close_matches(value.lower(), list(lowered), n=n)]
    return f" Did you mean: {', '.join(close)}?" if close else ""


class RunError(OptcheckError):
    """An exception from the user's or a library's code during a run, with the call of the
    loop that raised it; the original is the ``__cause__`` (its frames are shown)."""
