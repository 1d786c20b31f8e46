"""plugin/failures.py: an OptcheckError reads as its message, the test's line and the user's
frames of its cause — in a real, torch-free pytest session (pytester, in process) and
through clean_failure itself. Fast, and run by benchmarks/mutation.py too."""

from __future__ import annotations

import re

import numpy  # noqa: F401  (imported once, before any inner session: it cannot load twice)
import pytest

from pytest_optcheck.errors import OptcheckError, suggest
from pytest_optcheck.plugin.failures import clean_failure
from pytest_optcheck.plugin.options import parse_threads

pytest_plugins = ["pytester"]


def _users_code() -> None:
    raise ValueError("shapes (3,) and (4,) differ")


def test_the_message_the_tests_line_and_the_users_frames(request: pytest.FixtureRequest) -> None:
    with pytest.raises(OptcheckError) as excinfo:
        try:
            _users_code()
        except ValueError as exc:
            raise OptcheckError("optcheck: the model failed") from exc
    line = excinfo.traceback[-1].lineno + 1
    lines = clean_failure(excinfo.value, excinfo.traceback, request.node).split("\n")
    assert lines[:3] == ["optcheck: the model failed", f"(at test_clean_failures.py:{line})",
                         "caused by (most recent call last):"]
    assert lines[-1] == "ValueError: shapes (3,) and (4,) differ"
    body = "\n".join(lines[3:-1])
    assert body.count("test_clean_failures.py") == 2 and "in _users_code" in body
    assert 'raise ValueError("shapes (3,) and (4,) differ")' in body
    assert "" not in lines  # each frame's text without its own trailing newline


def test_a_frames_source_line_is_shown_whole(request: pytest.FixtureRequest) -> None:
    X = ValueError("v")  # the user's line below ends in X
    with pytest.raises(OptcheckError) as excinfo:
        try:
            raise X
        except ValueError as exc:
            raise OptcheckError("optcheck: raised") from exc
    lines = clean_failure(excinfo.value, excinfo.traceback, request.node).split("\n")
    assert lines[-2:] == ["    raise X", "ValueError: v"]


def test_only_the_last_four_frames_of_the_cause(request: pytest.FixtureRequest) -> None:
    def deep(n: int) -> None:
        if n == 0:
            _users_code()
        deep(n - 1)

    with pytest.raises(OptcheckError) as excinfo:
        try:
            deep(6)
        except ValueError as exc:
            raise OptcheckError("optcheck: deep") from exc
    text = clean_failure(excinfo.value, excinfo.traceback, request.node)
    assert text.count('  File "') == 4 and text.count("in deep") == 3 and "in _users_code" in text


def test_the_plugins_frames_are_left_out_of_the_cause(request: pytest.FixtureRequest) -> None:
    # errors.py is never mutated: no mutmut trampoline frame between the test and the package
    with pytest.raises(OptcheckError) as excinfo:
        try:
            suggest("adam", 3)  # type: ignore[arg-type]  (raises inside the package)
        except TypeError as exc:
            raise OptcheckError("optcheck: outer") from exc
    text = clean_failure(excinfo.value, excinfo.traceback, request.node)
    assert "errors.py" not in text and text.count('  File "') == 1 and "in test_the_plugins_frames" in text
    assert text.endswith("TypeError: 'int' object is not iterable")


def test_no_cause_no_test_line(request: pytest.FixtureRequest) -> None:
    error = OptcheckError("optcheck: alone")
    error.__cause__ = ValueError("never raised")  # no traceback: nothing to show
    assert clean_failure(error, [], request.node) == "optcheck: alone"
    with pytest.raises(OptcheckError) as excinfo:
        parse_threads("x", "w")  # raised from the package: no frame in the test file
    assert clean_failure(excinfo.value, excinfo.traceback[1:], request.node) == (
        "optcheck: w='x' must be a positive integer (or none).")


def test_a_session_reports_the_message_alone(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_user="""
import pytest
from pytest_optcheck.errors import OptcheckError, suggest

@pytest.fixture
def broken():
    raise OptcheckError("optcheck: bad fixture")

def test_call():
    raise OptcheckError("optcheck: bad call")

def test_setup(broken):
    pass

def test_other():
    raise KeyError("plain")

@pytest.mark.xfail(raises=OptcheckError, strict=True)
def test_expected():
    raise OptcheckError("optcheck: expected")
""")
    result = pytester.runpytest_inprocess("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:xdist", "-rxX")
    result.assert_outcomes(failed=2, errors=1, xfailed=1)
    out = result.stdout.str()
    assert re.search(r" ERROR at setup of test_setup _+\noptcheck: bad fixture\n\(at test_user.py:6\)\n=", out)
    assert re.search(r" test_call _+\noptcheck: bad call\n\(at test_user.py:9\)\n_", out)  # no traceback
    assert 'raise KeyError("plain")' in out and "E       KeyError: 'plain'" in out  # others keep pytest's report
    assert "XFAIL test_user.py::test_expected\n" in out
