"""Unit tests of tolerance parsing (pytest_optcheck.engine.tolerance): every place a user
writes a tolerance — a dict, a 'rtol=1e-4, mode=final' string, an ini line, check()'s
keywords — and the exact sentence each mistake gets.

Written from the survivors of benchmarks/mutation.py (docs/mutation.md): error messages are
pinned whole, because a message that names the wrong place or loses its fix is a bug users
meet, and a partial match lets it through.
"""

from __future__ import annotations

import pytest

from pytest_optcheck.engine.tolerance import (
    Tolerance,
    ToleranceError,
    check_layer,
    parse_tolerance,
    parse_tolerance_lines,
    resolve_tolerances,
)

FIELDS_LIST = "Valid fields: rtol, atol, mode, direction, budget, last, target."
PAIRS = "write field=value pairs separated by commas, e.g. 'rtol=1e-4, atol=0, mode=final'."
ENTRY = "each entry is 'SERIES: field=value, ...', e.g. 'loss: rtol=1e-4, mode=final' (or '*: rtol=1e-4' for every series)."
SERIES_HINT = " If 'loss' is a series name, give its fields under that series name."


def error(call, *args, **kwargs) -> str:
    with pytest.raises(ToleranceError) as info:
        call(*args, **kwargs)
    return str(info.value)


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        (", rtol=1e-3 atol=0", {"rtol": 1e-3, "atol": 0.0}),  # a leading separator is skipped, not the end
        ("mode='final' direction=\"lower\"", {"mode": "final", "direction": "lower"}),
        ("target=None", {"target": None}),
        ("target=none", {"target": None}),
        ("target='0.5', last=3", {"target": 0.5, "last": 3}),
    ],
)
def test_string_form(text: str, fields: dict) -> None:
    assert parse_tolerance(text, where="W") == fields


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("=1e-4", f"cannot read '=1e-4' in '=1e-4': {PAIRS}"),
        ("rtol=", f"cannot read 'rtol=' in 'rtol=': {PAIRS}"),
        ("rtol", f"cannot read 'rtol' in 'rtol': {PAIRS}"),
        ("mode=a=b", "mode='a=b' is not a valid mode. Use one of: step, final, auc, reach."),
        ("mode=finalX", "mode='finalX' is not a valid mode. Did you mean: final? Use one of: step, final, auc, reach."),
        ({"mode": "fnal"}, "mode='fnal' is not a valid mode. Did you mean: final? Use one of: step, final, auc, reach."),
        ({"direction": "up"}, "direction='up' is not a valid direction. Use one of: both, lower, higher."),
        ({"last": "abc"}, ("last='abc' must be a whole number of steps >= 1 (the final value is the mean of the last "
                          "`last` steps), e.g. last=10.")),
        ({"last": 0}, ("last=0 must be a whole number of steps >= 1 (the final value is the mean of the last "
                      "`last` steps), e.g. last=10.")),
        ({"target": "x"}, "target='x' is not usable: give a finite number, e.g. target=0.1."),
        ({"rtol": "x"}, "rtol='x' is not usable: give a number >= 0, e.g. rtol=1e-5."),
        ({"atol": -0.5}, "atol=-0.5 is negative; tolerances must be >= 0 (e.g. atol=0.5)."),
        ({"budget": 1}, ("budget=1 is out of range: it is the fraction of steps allowed outside tolerance, "
                        "0 <= budget < 1 (for 5% write budget=0.05).")),
        ({"rtl": 1}, f"unknown tolerance field 'rtl' (value 1). Did you mean: rtol? {FIELDS_LIST}"),
        ({"loss": 1}, f"unknown tolerance field 'loss' (value 1). {FIELDS_LIST}"),
        ({"loss": "final"}, f"unknown tolerance field 'loss' (value 'final'). {FIELDS_LIST}"),
        ({"loss": {"rtol": 1}}, f"unknown tolerance field 'loss' (value {{'rtol': 1}}). {FIELDS_LIST}{SERIES_HINT}"),
        ({"loss": "rtol=1"}, f"unknown tolerance field 'loss' (value 'rtol=1'). {FIELDS_LIST}{SERIES_HINT}"),
        (3, ("a tolerance must be a dict like {'rtol': 1e-4, 'mode': 'final'} or a string like "
            "'rtol=1e-4, mode=final'; got 3.")),
    ],
)
def test_each_mistake_gets_its_sentence(value: object, message: str) -> None:
    assert error(parse_tolerance, value, where="W") == f"optcheck: W: {message}"


def test_tolerance_objects_validate_and_name_themselves() -> None:
    assert Tolerance(rtol=1, last=2.0) == Tolerance(rtol=1.0, last=2)  # normalised on the way in
    assert Tolerance(mode="reach", target=0.1).merged({"target": "0.2"}).target == 0.2
    assert error(Tolerance, rtol=-1) == "optcheck: Tolerance(): rtol=-1 is negative; tolerances must be >= 0 (e.g. rtol=1)."
    assert error(Tolerance, mode="reach") == (
        "optcheck: Tolerance(): mode='reach' compares the first step reaching a target, but no target is set. "
        "Add target=<value>, e.g. 'mode=reach, target=0.1'."
    )
    assert error(Tolerance().merged, {"rtol": -1}) == (
        "optcheck: Tolerance.merged(): rtol=-1 is negative; tolerances must be >= 0 (e.g. rtol=1)."
    )


def test_ini_lines() -> None:
    lines = ["", "# a comment", "loss: rtol=1e-3", "*: atol=1e-9", "loss: mode=final"]
    assert parse_tolerance_lines(lines, where="W") == {"loss": {"rtol": 1e-3, "mode": "final"}, "*": {"atol": 1e-9}}
    for line in (": rtol=1", "rtol=1e-4", "rtol=1e-4, mode: final"):
        assert error(parse_tolerance_lines, [line], where="W") == f"optcheck: W: cannot read {line!r}: {ENTRY}"
    assert error(parse_tolerance_lines, ["loss: target=a:b"], where="W") == (
        "optcheck: W entry 'loss: target=a:b': target='a:b' is not usable: give a finite number, e.g. target=0.1."
    )


def test_resolve_names_the_series_of_a_bad_layer() -> None:
    assert error(resolve_tolerances, ["loss"], {"loss": {"rtol": -1}}) == (
        "optcheck: tolerance for 'loss': rtol=-1 is negative; tolerances must be >= 0 (e.g. rtol=1)."
    )


def test_check_layer_reads_both_forms_and_the_dict_wins() -> None:
    names = ["loss", "lr"]
    assert check_layer(None, {}, names, where="check()") == {}
    assert check_layer({"loss": "rtol=1e-3", "*": {"atol": 0}}, {}, names, where="check()") == {
        "loss": {"rtol": 1e-3}, "*": {"atol": 0.0}}
    short = {"rtol": 1e-2, "mode": "final", "loss": {"rtol": 0.5, "last": 3}}
    assert check_layer(None, short, names, where="check()") == {
        "*": {"rtol": 1e-2, "mode": "final"}, "loss": {"rtol": 0.5, "last": 3}}
    both = check_layer({"*": {"rtol": 1e-6}, "loss": {"last": 5}}, short, names, where="check()")
    assert both == {"*": {"rtol": 1e-6, "mode": "final"}, "loss": {"rtol": 0.5, "last": 5}}


def test_check_layer_refuses_what_it_cannot_read() -> None:
    assert error(check_layer, ["rtol"], {}, [], where="check()") == (
        "optcheck: check(): tolerance=['rtol'] must be a dict of series name (or '*') to tolerance, "
        "e.g. tolerance={'loss': {'rtol': 1e-3}, '*': 'atol=1e-9'}."
    )
    assert error(check_layer, {"loss": "rtol=-1"}, {}, [], where="check()") == (
        "optcheck: check() tolerance for 'loss': rtol='-1' is negative; tolerances must be >= 0 (e.g. rtol=1)."
    )
    assert error(check_layer, None, {"loss": "rtol=-1"}, [], where="check()") == (
        "optcheck: check() for series 'loss': rtol='-1' is negative; tolerances must be >= 0 (e.g. rtol=1)."
    )
    assert error(check_layer, None, {"rtol": -1}, [], where="check()") == (
        "optcheck: check(): rtol=-1 is negative; tolerances must be >= 0 (e.g. rtol=1)."
    )
    assert error(check_layer, None, {"last": 2, "budget": 0.1}, ["loss", "last", "budget"], where="check()") == (
        "optcheck: check(): budget=0.1 is ambiguous: this trajectory records a series named 'budget', which is "
        "also a tolerance field. Write tolerance={'budget': ...} for the series, or "
        "tolerance={'*': {'budget': ...}} for the field on every series."
    )
