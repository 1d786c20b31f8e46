"""Units of the spec (pytest_optcheck.declare.spec) that the real-setups and calibration merges
added, pinned exactly: run-size names and nested scheduler calls in call syntax, the
``create_graph`` / ``param_groups`` / ``calibrate`` validators, what ``canonical()`` leaves out,
and the stable names of callables defined in test files. benchmarks/mutation.py showed them
reached only through end-to-end runs (or not at all).
"""

from __future__ import annotations

import re
import sys
import types

import pytest

from pytest_optcheck.declare.spec import (
    COMPARISON_KEYS,
    Call,
    RunSize,
    Spec,
    _stable_module_name,
    canonical_callable,
    parse_call,
    run_sizes,
)
from pytest_optcheck.errors import SpecError

EXAMPLE = 'param_groups={"bias|norm": {"weight_decay": 0.0}}'
NOT_LITERAL = ("is not a literal. Call syntax takes literals (numbers, strings, tuples, lists, dicts, "
               "True/False/None), nested scheduler calls and the run-size names total_steps, steps_per_epoch, "
               "epochs; pass a callable (e.g. functools.partial) for anything else.")
CALIBRATE = ("must be a whole number of replicas >= 0 (0: off), e.g. calibrate=8 to record the golden with the "
             "noise envelope of 8 ulp-perturbed replicas.")


def test_run_sizes_count_a_partial_last_batch() -> None:
    assert run_sizes(100, 32, 3) == {"total_steps": 12, "steps_per_epoch": 4, "epochs": 3}
    assert run_sizes(96, 32, 2) == {"total_steps": 6, "steps_per_epoch": 3, "epochs": 2}


def test_run_size_names_and_nested_calls_parse_into_values() -> None:
    call = parse_call("OneCycleLR(max_lr=0.1, total_steps=total_steps)", key="scheduler")
    assert call.kwargs_dict == {"max_lr": 0.1, "total_steps": RunSize("total_steps")}
    assert str(call) == "OneCycleLR(max_lr=0.1, total_steps=total_steps)"
    text = ("SequentialLR(schedulers=[LinearLR(start_factor=0.1, total_iters=steps_per_epoch), "
            "torch.optim.lr_scheduler.CosineAnnealingLR(T_max=total_steps)], milestones=[steps_per_epoch])")
    call = parse_call(text, key="scheduler")
    assert call == Call("SequentialLR", (), (
        ("schedulers", [Call("LinearLR", (), (("start_factor", 0.1), ("total_iters", RunSize("steps_per_epoch")))),
                        Call("torch.optim.lr_scheduler.CosineAnnealingLR", (), (("T_max", RunSize("total_steps")),))]),
        ("milestones", [RunSize("steps_per_epoch")])))
    call = parse_call("X((epochs, 2), {'a': epochs, 'b': [1]}, W(1))", key="scheduler")
    assert call.args == ((RunSize("epochs"), 2), {"a": RunSize("epochs"), "b": [1]}, Call("W", (1,)))
    assert str(call) == "X((epochs, 2), {'a': epochs, 'b': [1]}, W(1))"


@pytest.mark.parametrize(("text", "bad"), [
    ("X(a=[y])", "y"), ("X(a=(y,))", "y"), ("X(a={y: 1})", "y"), ("X(a=Y(b=y))", "y"),
    ("X(a={**d})", "{**d}"), ("X(a=f()(1))", "f()(1)"), ("X(a=[Y(b=[y])])", "y"),
])
def test_a_non_literal_anywhere_names_the_key_the_text_and_the_argument(text: str, bad: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_call(text, key="scheduler")
    assert str(info.value) == f"optcheck: scheduler={text!r}: argument `{bad}` {NOT_LITERAL}"


def test_a_non_literal_dict_value_names_the_key_and_the_text() -> None:
    text = "X(a={'k': y})"
    with pytest.raises(SpecError) as info:
        parse_call(text, key="scheduler")
    assert str(info.value) == f"optcheck: scheduler={text!r}: argument `y` {NOT_LITERAL}"


def test_create_graph_takes_a_bool_only() -> None:
    assert Spec(create_graph=True).create_graph is True
    with pytest.raises(SpecError) as info:
        Spec(create_graph="yes")
    assert str(info.value) == "optcheck: create_graph='yes' must be True or False."


@pytest.mark.parametrize("value", [None, 0, 1, 8])
def test_calibrate_accepts_none_and_whole_numbers_from_zero(value: int | None) -> None:
    assert Spec(calibrate=value).calibrate == value


@pytest.mark.parametrize("value", [-1, True, False, 2.5, "8"])
def test_calibrate_rejects_the_rest_with_the_fix(value: object) -> None:
    with pytest.raises(SpecError) as info:
        Spec(calibrate=value)
    assert str(info.value) == f"optcheck: calibrate={value!r} {CALIBRATE}"


def test_param_groups_are_stored_as_plain_dicts_in_order() -> None:
    groups = {"bias|norm": types.MappingProxyType({"weight_decay": 0.0}), "head": {"lr": 0.5}}
    spec = Spec(param_groups=groups)
    assert spec.param_groups == {"bias|norm": {"weight_decay": 0.0}, "head": {"lr": 0.5}}
    assert type(spec.param_groups["bias|norm"]) is dict and list(spec.param_groups) == ["bias|norm", "head"]
    assert Spec(param_groups=None).param_groups is None


@pytest.mark.parametrize(("value", "message"), [
    ({}, "param_groups={} must be a non-empty dict of regex to hyperparameter overrides, e.g. " + EXAMPLE + "."),
    ([("a", {})], "param_groups=[('a', {})] must be a non-empty dict of regex to hyperparameter overrides, e.g. "
     + EXAMPLE + "."),
    ({1: {}}, "param_groups has the key 1, which is not a regex string; e.g. " + EXAMPLE + "."),
    ({"a": 1}, "param_groups['a']=1 must be a dict of hyperparameter name to value, e.g. " + EXAMPLE + "."),
    ({"a": {1: 2}}, "param_groups['a']={1: 2} must be a dict of hyperparameter name to value, e.g. " + EXAMPLE + "."),
    ({"a": {"lr": 1, "params": []}}, ("param_groups['a'] sets 'params'; the regex chooses the parameters, the dict "
                                      "holds only hyperparameters (lr, weight_decay...).")),
])
def test_param_groups_mistakes_name_the_key_and_the_fix(value: object, message: str) -> None:
    with pytest.raises(SpecError) as info:
        Spec(param_groups=value)
    assert str(info.value) == "optcheck: " + message


def test_a_param_groups_regex_that_does_not_compile() -> None:
    try:
        re.compile("(")
    except re.error as exc:
        reason = str(exc)
    with pytest.raises(SpecError) as info:
        Spec(param_groups={"ok": {}, "(": {}})
    assert str(info.value) == f"optcheck: param_groups regex '(' does not compile: {reason}."


def test_record_takes_other_identifiers_as_param_group_keys() -> None:
    assert Spec(record=["loss", "d", "weight_decay"]).record == ("loss", "d", "weight_decay")
    for bad, shown in ((3, "3"), ("not id", "'not id'")):
        with pytest.raises(SpecError) as info:
            Spec(record=["loss", bad])
        assert str(info.value).startswith(f"optcheck: record names unknown series {shown}. Recordable series: ")


def test_canonical_omits_new_keys_at_default_and_the_comparison_keys() -> None:
    plain = Spec().canonical()
    assert list(plain) == ["model", "problem", "loss", "optimizer", "scheduler", "interval", "epochs",
                           "batch_size", "seed", "dtype", "l1", "clip_grad_norm", "record"]
    assert COMPARISON_KEYS == ("tolerance", "calibrate")
    assert Spec(tolerance={"loss": "rtol=1e-3"}, calibrate=8).canonical() == plain
    groups = {"head": {"lr": 0.5, "betas": (0.9, 0.99)}, "bias|norm": {"weight_decay": 0.0}}
    # param_groups without create_graph: the default create_graph is skipped, not the end of the keys
    assert Spec(param_groups=groups).canonical() == {
        **plain, "param_groups": [["head", {"betas": [0.9, 0.99], "lr": 0.5}], ["bias|norm", {"weight_decay": 0.0}]]}
    full = Spec(create_graph=True, param_groups={"a": {"lr": 1}}, record="loss").canonical()
    assert list(full)[-3:] == ["record", "create_graph", "param_groups"]
    assert (full["record"], full["create_graph"], full["param_groups"]) == (["loss"], True, [["a", {"lr": 1}]])
    assert Spec(scheduler="StepLR(step_size=total_steps, gamma=0.5)").canonical()["scheduler"] == (
        "StepLR(gamma=0.5, step_size=total_steps)")


@pytest.fixture
def fake_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, file in [("examples.test_fake_opt", "/p/examples/test_fake_opt.py"),
                       ("pkg.fake_opt_test", "/p/pkg/fake_opt_test.py"),
                       ("pkg.conftest", "/p/pkg/conftest.py"),
                       ("pkg.fake_helpers", "/p/pkg/fake_helpers.py"),
                       ("pkg.test_data", "/p/pkg/test_data.txt"),
                       ("pkg.nofile", None)]:
        module = types.ModuleType(name)
        if file:
            module.__file__ = file
        monkeypatch.setitem(sys.modules, name, module)


@pytest.mark.usefixtures("fake_modules")
@pytest.mark.parametrize(("module", "stable"), [
    ("examples.test_fake_opt", "test_fake_opt"),
    ("pkg.fake_opt_test", "fake_opt_test"),
    ("pkg.conftest", "conftest"),
    ("pkg.fake_helpers", "pkg.fake_helpers"),
    ("pkg.test_data", "pkg.test_data"),
    ("pkg.nofile", "pkg.nofile"),
    ("not.imported.at_all", "not.imported.at_all"),
])
def test_a_test_file_s_callables_are_named_by_the_file_s_stem(module: str, stable: str) -> None:
    assert _stable_module_name(module) == stable


@pytest.mark.usefixtures("fake_modules")
def test_canonical_callable_uses_the_stable_module_name() -> None:
    def schedule(step: int) -> float:
        return 1.0

    schedule.__module__ = "examples.test_fake_opt"
    assert canonical_callable(schedule) == "test_fake_opt.test_canonical_callable_uses_the_stable_module_name.<locals>.schedule"
    # a callable without any __module__ attribute (a method-wrapper) is named, not an error
    assert canonical_callable((1).__add__) == "?.int.__add__"
