"""Unit tests for the spec stage: call syntax, merging, validation, canonical form."""

from __future__ import annotations

import functools

import pytest

from pytest_optcheck.declare.spec import DEFAULTS, Call, Spec, canonical_callable, merge_levels, parse_call
from pytest_optcheck.errors import SpecError


def test_parse_call_literals_only() -> None:
    call = parse_call("Adam(lr=1e-2, betas=(0.9, 0.99))", key="optimizer")
    assert call == Call("Adam", (), (("lr", 0.01), ("betas", (0.9, 0.99))))
    assert parse_call("Adam", key="optimizer") == Call("Adam")
    assert parse_call("mlp(1, 10, 1)", key="model").args == (1, 10, 1)
    assert parse_call("pkg.mod.Opt(lr=0.1)", key="optimizer").name == "pkg.mod.Opt"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("Adam(lr=LR)", "argument `LR` is not a literal"),
        ("Adam(lr=__import__('os').getcwd())", "is not a literal"),
        ("Adam(**kw)", "'**' is not allowed"),
        ("Adam(lr=", "not valid call syntax"),
        ("1 + 2", "must be a name or a call"),
    ],
)
def test_parse_call_rejects_non_literals(text: str, fragment: str) -> None:
    with pytest.raises(SpecError, match="optimizer=") as info:
        parse_call(text, key="optimizer")
    assert fragment in str(info.value)


def test_call_str_is_canonical() -> None:
    assert str(parse_call("SGD(momentum=0.9, lr=1e-2)", key="o")) == "SGD(lr=0.01, momentum=0.9)"


def test_merge_levels_closest_wins_per_key() -> None:
    merged = merge_levels([((), {"epochs": 3, "seed": 1}), ((), {"epochs": 4}), ((), {"seed": 2, "l1": 0.1})])
    assert merged == {"epochs": 4, "seed": 2, "l1": 0.1}


def test_merge_levels_rejects_positional_and_unknown_keys() -> None:
    with pytest.raises(SpecError, match="positional arguments"):
        merge_levels([(("Adam",), {})])
    with pytest.raises(SpecError, match="unknown key 'batchsize'.*Did you mean: batch_size"):
        merge_levels([((), {"batchsize": 3})])


def test_defaults_are_the_seeds() -> None:
    spec = Spec.from_kwargs({})
    assert (spec.model, spec.problem, spec.optimizer, spec.epochs, spec.batch_size) == (
        "mlp(1, 10, 1)", "quadratic", "SGD(lr=0.01)", 12, 32)
    assert spec.record == ("loss", "lr") and spec.interval == "epoch" and spec.seed == 0


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"interval": "batch"}, "interval='batch' is not one of epoch, step"),
        ({"epochs": 0}, "epochs=0 must be an integer >= 1"),
        ({"batch_size": 2.5}, "batch_size=2.5 must be an integer"),
        ({"l1": -1}, "l1=-1 must be a number >= 0"),
        ({"clip_grad_norm": 0}, "clip_grad_norm=0 must be a number > 0"),
        ({"dtype": "float33"}, "Did you mean: float32"),
        ({"optimizer": 3}, "must be a name in call syntax"),
        ({"record": ["loss", "grad"]}, "unknown series 'grad'"),
        ({"tolerance": {"loss": {"rtool": 1}}}, "rtool"),
        ({"tolerance": 3}, "must be a dict of series name to tolerance"),
    ],
)
def test_bad_values_name_key_value_and_fix(kwargs: dict, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        Spec.from_kwargs(kwargs)
    assert fragment in str(info.value)


def test_record_aliases_beta1_to_momentum_and_dedupes() -> None:
    assert Spec.from_kwargs({"record": ["loss", "beta1", "loss"]}).record == ("loss", "momentum")


def test_canonical_normalises_calls_and_names_callables() -> None:
    import torch

    spec = Spec.from_kwargs({"optimizer": "SGD(momentum=0.9, lr=1e-2)",
                             "scheduler": functools.partial(torch.optim.lr_scheduler.StepLR, step_size=4)})
    canonical = spec.canonical()
    assert canonical["optimizer"] == "SGD(lr=0.01, momentum=0.9)"
    assert canonical["scheduler"] == "partial(torch.optim.lr_scheduler.StepLR, step_size=4)"
    assert "tolerance" not in canonical
    # Keys added after the first goldens are left out at their default, so those goldens'
    # specs do not read "configuration changed"; comparison keys are never part of it.
    assert set(canonical) == set(DEFAULTS) - {"tolerance", "calibrate", "create_graph", "param_groups", "record_every"}
    assert spec.replace(record_every=100).canonical()["record_every"] == 100
    assert "create_graph" in spec.replace(create_graph=True).canonical()


def test_canonical_lambda_carries_its_source() -> None:
    a = canonical_callable(lambda epoch: 0.95**epoch)
    b = canonical_callable(lambda epoch: 0.96**epoch)
    assert a != b and "0.95" in a


def test_replace_validates() -> None:
    spec = Spec.from_kwargs({"epochs": 3})
    assert spec.replace(epochs=5).epochs == 5
    with pytest.raises(SpecError):
        spec.replace(epochs=-1)


def test_spec_constructor_validates_like_the_marker() -> None:
    with pytest.raises(SpecError, match=r"epochs='ten' must be an integer >= 1"):
        Spec(epochs="ten")
    with pytest.raises(SpecError, match=r"unknown series 'lrr'.*Did you mean: lr"):
        Spec(record=["loss", "lrr"])
    spec = Spec(record="lr", l1=1, optimizer="Adam(lr=0.1)")
    assert spec.record == ("lr",) and spec.l1 == 1.0 and isinstance(spec.l1, float)
    assert spec == Spec.from_kwargs({"record": ["lr"], "l1": 1.0, "optimizer": "Adam(lr=0.1)"})
