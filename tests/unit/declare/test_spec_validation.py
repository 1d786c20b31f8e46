"""Every marker key's validation sentence and the canonical form of callables
(pytest_optcheck.declare.spec), pinned whole: benchmarks/mutation.py showed the validators were
reached only through end-to-end runs that match fragments, and a lambda's canonical source
— what decides "configuration changed" — was never compared exactly.
"""

from __future__ import annotations

import functools

import pytest

from pytest_optcheck.declare.spec import Call, Spec, _lambda_source, canonical_callable, canonical_value, merge_levels
from pytest_optcheck.errors import SpecError

RECORDABLE = "loss, lr, momentum, grad_norm, param_norm, update_norm, sparsity"
KEYS = ("model, problem, loss, optimizer, scheduler, interval, epochs, batch_size, seed, dtype, l1, clip_grad_norm, "
        "record, create_graph, param_groups, record_every, tolerance, calibrate")
NOT_LITERAL = ("literals (numbers, strings, tuples, lists, dicts, True/False/None), nested scheduler calls and the "
               "run-size names total_steps, steps_per_epoch, epochs; pass a callable (e.g. functools.partial) for "
               "anything else.")

SHORT = lambda x, y=2: x  +  y
LONG = (lambda é: é + "a first line of the body, longer than the last"
        + "ü")
EDGE = (lambda a:
a + 1)
WIDE = lambda a: (a + 1, a + 2, a + 3, a + 4, a + 5, a + 6, a + 7, a + 8, a + 9, a + 10, a + 11, a + 12, a + 13,
                  a + 14, a + 15, a + 16, a + 17, a + 18, a + 19, a + 20, a + 21, a + 22, a + 23, a + 24, a + 25)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interval": "epochs"}, "interval='epochs' is not one of epoch, step. Did you mean: epoch?"),
        ({"dtype": "float8"}, ("dtype='float8' is not one of float32, float64, float16, bfloat16. "
                              "Did you mean: float64, float32, float16?")),
        ({"epochs": 0}, "epochs=0 must be an integer >= 1."),
        ({"epochs": True}, "epochs=True must be an integer >= 1."),
        ({"epochs": 2.0}, "epochs=2.0 must be an integer >= 1."),
        ({"seed": -1}, "seed=-1 must be an integer >= 0."),
        ({"l1": -0.1}, "l1=-0.1 must be a number >= 0."),
        ({"l1": True}, "l1=True must be a number >= 0."),
        ({"l1": "0"}, "l1='0' must be a number >= 0."),
        ({"clip_grad_norm": 0}, "clip_grad_norm=0 must be a number > 0, or None for no clipping."),
        ({"clip_grad_norm": 0.5 - 0.5}, "clip_grad_norm=0.0 must be a number > 0, or None for no clipping."),
        ({"clip_grad_norm": "1"}, "clip_grad_norm='1' must be a number > 0, or None for no clipping."),
        ({"clip_grad_norm": True}, "clip_grad_norm=True must be a number > 0, or None for no clipping."),
        ({"record": []}, f"record=[] must be a non-empty list of series names from {RECORDABLE}."),
        ({"record": 5}, f"record=5 must be a non-empty list of series names from {RECORDABLE}."),
        ({"record": ["loss", "los"]}, (f"record names unknown series 'los'. Did you mean: loss? Recordable series: "
                                       f"{RECORDABLE}, or a numeric key of the optimizer's param groups "
                                       f"(e.g. 'd', 'weight_decay').")),
        ({"optimizer": 5}, "optimizer=5 must be a name in call syntax (a string) or a callable; got int."),
        ({"scheduler": 5}, "scheduler=5 must be a name in call syntax (a string) or a callable; got int."),
        ({"optimizer": "a.b(c)(1)"}, "optimizer='a.b(c)(1)': the callee must be a plain name."),
        ({"optimizer": "x[0].Adam(lr=1)"}, "optimizer='x[0].Adam(lr=1)': the callee must be a plain name."),
        ({"optimizer": "x[0].Adam"}, "optimizer='x[0].Adam': the callee must be a plain name."),
        ({"optimizer": "Adam(lr=x)"}, f"optimizer='Adam(lr=x)': argument `x` is not a literal. Call syntax takes {NOT_LITERAL}"),
        ({"optimizer": "(lambda: 1)()"}, "optimizer='(lambda: 1)()': the callee must be a plain name."),
        ({"model": "mlp(1, x)"}, f"model='mlp(1, x)': argument `x` is not a literal. Call syntax takes {NOT_LITERAL}"),
        ({"tolerance": {"loss": "rtol=-1"}}, ("marker key 'tolerance' for 'loss': rtol='-1' is negative; "
                                             "tolerances must be >= 0 (e.g. rtol=1).")),
        ({"bogus": 1}, f"unknown key 'bogus' in the marker. Valid keys: {KEYS}."),
    ],
)
def test_each_bad_value_gets_its_sentence(kwargs: dict, message: str) -> None:
    with pytest.raises(SpecError) as info:
        Spec.from_kwargs(kwargs)
    assert str(info.value) == f"optcheck: {message}"


def test_good_values_are_stored_normalised() -> None:
    spec = Spec.from_kwargs({"interval": "step", "dtype": "float64", "epochs": 1, "seed": 0, "batch_size": 1,
                             "l1": 0, "clip_grad_norm": 0.5, "record": "loss", "tolerance": {"loss": "rtol=1e-3"}})
    assert (spec.interval, spec.dtype, spec.l1, spec.clip_grad_norm, spec.record) == ("step", "float64", 0.0, 0.5,
                                                                                     ("loss",))
    assert spec.tolerance == {"loss": {"rtol": 1e-3}}
    canonical = Spec.from_kwargs({"optimizer": "Adam(betas=(0.9, 0.99), lr=1e-2)", "record": ["loss", "lr"]}).canonical()
    assert canonical["optimizer"] == "Adam(betas=(0.9, 0.99), lr=0.01)" and canonical["record"] == ["loss", "lr"]
    assert "tolerance" not in canonical


def test_merge_levels_and_ini_name_where_a_key_came_from() -> None:
    for where in ("marker", "ini"):
        with pytest.raises(SpecError) as info:
            merge_levels([((), {"bogus": 1})], where=where)
        assert str(info.value) == f"optcheck: unknown key 'bogus' in the {where}. Valid keys: {KEYS}."
    with pytest.raises(SpecError) as info:
        Spec.from_kwargs({"bogus": 1}, where="ini")
    assert str(info.value) == f"optcheck: unknown key 'bogus' in the ini. Valid keys: {KEYS}."
    with pytest.raises(SpecError) as info:
        merge_levels([((), {"bogus": 1})])
    assert "in the marker." in str(info.value)


def test_call_text_and_canonical_values() -> None:
    assert str(Call("Adam", (1, "a"), (("lr", 0.1), ("betas", (0.9, 0.99))))) == "Adam(1, 'a', betas=(0.9, 0.99), lr=0.1)"
    assert canonical_value({"b": (1, [2, None]), 3: {"z": 1.5, "a": object}, "c": 1j}) == {
        "3": {"a": "builtins.object", "z": 1.5}, "b": [1, [2, None]], "c": "1j"}
    partial = functools.partial(sorted, [1, (2, len)], key=len, reverse=True)
    assert canonical_callable(partial) == "partial(builtins.sorted, [1, (2, builtins.len)], key=builtins.len, reverse=True)"
    assert canonical_callable(functools.partial(sorted, int)) == "partial(builtins.sorted, builtins.int)"
    assert canonical_callable([].append) == "?.list.append"  # a builtin method's __module__ is None

    class Step:
        def __call__(self) -> None: ...

    assert canonical_callable(Step()) == "test_spec_validation.test_call_text_and_canonical_values.<locals>.Step"


def test_a_lambda_is_named_by_its_own_source_only() -> None:
    module = "test_spec_validation"  # a test file's callables are named by the file's stem (spec.py)
    assert canonical_callable(SHORT) == f"{module}.<lambda> = lambda x, y=2: x + y"
    assert canonical_callable(LONG) == (
        f"{module}.<lambda> = lambda é: é + \"a first line of the body, longer than the last\" + \"ü\"")
    assert canonical_callable(EDGE) == f"{module}.<lambda> = lambda a: a + 1"  # a body at column 0
    wide = canonical_callable(WIDE)
    assert wide.startswith(f"{module}.<lambda> = lambda a: (a + 1, a + 2") and len(wide) == len(module) + 12 + 200
    assert canonical_callable(eval("lambda: 1")).endswith(".<lambda> = <source unavailable>")
    assert _lambda_source(len) == "<source unavailable>"  # no code object at all
