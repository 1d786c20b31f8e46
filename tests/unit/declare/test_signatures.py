"""A marker's call checked against its target before anything is built: the hint for an argument of
the wrong kind, the keywords a target takes, the signature a failed bind quotes, the kind of class
and of result. Pure inspection: nothing here trains, and the tensors are 1-element."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from pytest_optcheck.declare.signatures import (
    Lead,
    argument_hint,
    check_call,
    check_class,
    check_result,
    signature,
)
from pytest_optcheck.errors import SpecError


def target(a: Any, *args: Any, b: Any = [1, 2], c: Any = [], d: float = 1.5, e: bool = True,  # noqa: B006
           f: Any = None, t: Any = (0.9, 0.999), n: int = 3, **kw: Any) -> None:
    """Defaults of every kind argument_hint tells apart."""


def strict(a: Any, /, b: int = 1, *, c: Any = (), d: float = 0.5) -> None:
    """No **kwargs: the keywords are checked one by one."""


def test_the_lead_placeholder_says_who_supplies_it() -> None:
    assert repr(Lead()) == "<supplied by optcheck>"


def test_a_builtin_without_a_signature_is_checked_when_called() -> None:
    assert signature(max) is None
    assert argument_hint(max, {"key": 3}) is None
    check_call(max, "loss", "max", (), {}, (), {"anything": 1})  # nothing to check against: no error
    assert str(signature(strict)) == "(a: 'Any', /, b: 'int' = 1, *, c: 'Any' = (), d: 'float' = 0.5) -> 'None'"


def test_a_scalar_for_a_list_default_names_the_list_and_its_fix() -> None:
    assert argument_hint(target, {"b": 3}) == (
        "argument 'b' of target takes a list, like its default [1, 2]; got 3 (a int). "
        "Write b=[1, 2], with your values.")


def test_a_scalar_for_an_empty_default_writes_the_fix_with_the_user_s_value() -> None:
    assert argument_hint(target, {"c": 3}) == (
        "argument 'c' of target takes a list, like its default []; got 3 (a int). "
        "Write c=(3,), with your values.")


def test_a_scalar_for_a_tuple_default() -> None:
    assert argument_hint(target, {"t": 0.9}) == (
        "argument 't' of target takes a tuple, like its default (0.9, 0.999); got 0.9 (a float). "
        "Write t=(0.9, 0.999), with your values.")


def test_a_string_for_a_number_default_is_named() -> None:
    assert argument_hint(target, {"d": "x"}) == (
        "argument 'd' of target takes a number, like its default 1.5; got 'x' (a str).")
    assert argument_hint(target, {"n": "3"}) == (
        "argument 'n' of target takes a number, like its default 3; got '3' (a str).")


@pytest.mark.parametrize("kwargs", [
    {"b": [5]}, {"b": (5,)}, {"t": [1, 2]}, {"d": 2}, {"n": 2.5}, {"d": True},  # same kinds
    {"e": "yes"},  # a bool default is not "a number"
    {"f": 3},  # no default to compare with
    {"b": None}, {"d": None},  # None is left to the target
    {"zzz": 3},  # not a parameter: _check_keywords' business
    {"a": 3},  # no default
])
def test_no_hint_when_the_kinds_agree_or_cannot_be_compared(kwargs: dict[str, Any]) -> None:
    assert argument_hint(target, kwargs) is None


def test_the_first_mismatched_argument_is_the_one_named() -> None:
    hint = argument_hint(target, {"d": 2.0, "b": 3, "n": "x"})
    assert hint is not None and hint.startswith("argument 'b' of target takes a list")
    hint = argument_hint(target, {"f": 1, "a": 2, "b": None, "t": 0.5})  # skipped ones do not end the search
    assert hint is not None and hint.startswith("argument 't' of target takes a tuple")


def test_a_callable_without_a_name_is_named_by_its_path() -> None:
    class Call:
        def __call__(self, lr: float = 0.1) -> None: ...

    hint = argument_hint(Call(), {"lr": "x"})
    assert hint is not None and "of " in hint and "Call" in hint and "takes a number" in hint


def test_an_unknown_keyword_lists_the_accepted_ones_without_the_supplied() -> None:
    with pytest.raises(SpecError) as info:
        check_call(strict, "optimizer", "strict(dd=1)", (object(),), {}, (), {"dd": 1})
    assert str(info.value) == (
        "optcheck: strict does not accept the keyword 'dd' in optimizer='strict(dd=1)'. Did you mean: d? "
        "Accepted keywords: b, c, d.")
    with pytest.raises(SpecError) as info:
        check_call(strict, "optimizer", "strict(a=1)", (), {"b": Lead()}, (), {"a": 1})
    assert "does not accept the keyword 'a'" in str(info.value)  # positional-only
    assert str(info.value).endswith("Accepted keywords: c, d.")  # b is supplied by keyword


def test_a_target_that_takes_no_keywords_says_none() -> None:
    def lone(x: Any, /) -> None: ...

    with pytest.raises(SpecError) as info:
        check_call(lone, "model", "lone(k=1)", (), {}, (), {"k": 1})
    assert str(info.value) == (
        "optcheck: lone does not accept the keyword 'k' in model='lone(k=1)'. Accepted keywords: (none).")


def test_a_target_with_var_keywords_accepts_any_keyword() -> None:
    check_call(target, "model", "target(1, anything=2)", (), {}, (1,), {"anything": 2})


def test_a_bind_failure_quotes_the_public_signature_without_the_supplied_arguments() -> None:
    with pytest.raises(SpecError) as info:
        check_call(target, "scheduler", "target()", (), {}, (), {})
    assert str(info.value) == (
        "optcheck: scheduler='target()' does not fit target(a, *args, b=[1, 2], c=[], d=1.5, e=True, f=None, "
        "t=(0.9, 0.999), n=3, **kw): missing a required argument: 'a'.")
    with pytest.raises(SpecError) as info:
        check_call(strict, "optimizer", "strict(1, 2)", (Lead(),), {}, (1, 2), {})
    assert str(info.value) == (
        "optcheck: optimizer='strict(1, 2)' does not fit strict(b=1, c=(), d=0.5): too many positional arguments.")


def test_the_lead_fills_the_first_positional_parameters() -> None:
    check_call(strict, "optimizer", "strict(b=2)", (Lead(),), {}, (), {"b": 2})
    with pytest.raises(SpecError, match="does not accept the keyword 'a'"):
        check_call(strict, "optimizer", "strict(a=2)", (Lead(),), {}, (), {"a": 2})


@pytest.mark.parametrize(("cls", "kind", "what"), [
    (nn.Linear, "optimizer", "a torch.optim.Optimizer subclass"),
    (torch.optim.SGD, "scheduler", "an LR scheduler (a class with a step() method)"),
    (nn.Linear, "scheduler", "an LR scheduler (a class with a step() method)"),
    (int, "scheduler", "an LR scheduler (a class with a step() method)"),
    (torch.optim.SGD, "model", "a torch.nn.Module subclass"),
])
def test_a_class_of_the_wrong_kind_is_named_with_what_was_expected(cls: type, kind: str, what: str) -> None:
    from pytest_optcheck.declare.spec import canonical_callable

    with pytest.raises(SpecError) as info:
        check_class(cls, kind, "X")
    assert str(info.value) == f"optcheck: {kind}='X' is {canonical_callable(cls)}, which is not {what}."


@pytest.mark.parametrize(("target_", "kind"), [
    (torch.optim.SGD, "optimizer"), (torch.optim.lr_scheduler.StepLR, "scheduler"), (nn.Linear, "model"),
    (nn.Linear, "loss"),  # no class check for losses or problems
    (nn.Linear, "problem"),
    (lambda: None, "optimizer"),  # not a class: its result is checked instead
])
def test_a_class_of_the_right_kind_or_an_unchecked_kind_passes(target_: Any, kind: str) -> None:
    check_class(target_, kind, "X")


@pytest.mark.parametrize(("result", "kind", "message"), [
    (3, "optimizer", "optcheck: optimizer='X' returned int, not a torch.optim.Optimizer."),
    (object(), "scheduler", "optcheck: scheduler='X' returned object, not a scheduler (with a step() method)."),
    ("net", "model", "optcheck: model='X' returned str, not a torch.nn.Module."),
    (3, "loss", "optcheck: loss='X' returned int, not a callable loss(pred, target)."),
])
def test_a_result_of_the_wrong_kind_is_named(result: Any, kind: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        check_result(result, kind, "X")
    assert str(info.value) == message


def test_a_result_of_the_right_kind_is_returned_as_is() -> None:
    param = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1)
    model = nn.Identity()
    for result, kind in [(opt, "optimizer"), (sched, "scheduler"), (model, "model"), (len, "loss"),
                         ([1, 2], "problem")]:
        assert check_result(result, kind, "X") is result
