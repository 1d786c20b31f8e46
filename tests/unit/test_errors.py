"""errors.py: the exceptions users catch, and suggest() — the "Did you mean" of every
unknown name (marker keys, optimizers, series)."""

from __future__ import annotations

import pytest

import pytest_optcheck
from pytest_optcheck.errors import GoldenFileError, OptcheckError, RunError, SpecError, suggest


def test_close_names_are_suggested_closest_first_at_most_n() -> None:
    names = ["momentum", "lr", "loss", "grad_norm", "param_norm", "update_norm"]
    assert suggest("momentun", names) == " Did you mean: momentum?"
    assert suggest("gradnorm", names) == " Did you mean: grad_norm, param_norm?"
    assert suggest("gradnorm", names, n=1) == " Did you mean: grad_norm?"
    assert suggest("norm", ["grad_norm", "param_norm", "update_norm", "x_norm"]) == " Did you mean: x_norm, grad_norm?"
    assert suggest("norm", ["grad_norm", "param_norm", "update_norm", "x_norm"], n=1) == " Did you mean: x_norm?"
    assert suggest("zzz", names) == ""
    assert suggest("lr1", ["lr2", "lr3", "lr4", "lr5", "lr6"]) == " Did you mean: lr6, lr5, lr4?"  # three by default


def test_a_case_sensitive_match_comes_before_case_folding() -> None:
    assert suggest("SGD", ["SGD", "sgd_x", "Sgd2"]) == " Did you mean: SGD?"


def test_case_is_forgiven_when_nothing_else_is_close() -> None:
    assert suggest("ADAMW", ["AdamW", "SGD"]) == " Did you mean: AdamW?"
    assert suggest("STEPlr", ["StepLR", "ExponentialLR"]) == " Did you mean: StepLR?"
    assert suggest("ADAM", ["adamw", "adamax", "adam_x"], n=2) == " Did you mean: adamw, adamax?"
    assert suggest("sgd", ["SGD", "Adam"], n=1) == " Did you mean: SGD?"


def test_duplicates_are_suggested_once() -> None:
    assert suggest("adam", ["adamw", "adamw", "adamax"]) == " Did you mean: adamw, adamax?"


def test_the_hierarchy_users_catch() -> None:
    assert issubclass(SpecError, OptcheckError) and issubclass(SpecError, ValueError)
    assert issubclass(GoldenFileError, OptcheckError) and issubclass(RunError, OptcheckError)
    assert not issubclass(GoldenFileError, ValueError)


def test_an_unknown_public_name_is_an_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match=r"^module 'pytest_optcheck' has no attribute 'nope'$"):
        pytest_optcheck.nope  # noqa: B018
    assert pytest_optcheck.Trajectory is pytest_optcheck.__dict__["Trajectory"]  # imported once, then kept
    assert dir(pytest_optcheck) == pytest_optcheck.__all__
