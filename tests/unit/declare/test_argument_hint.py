"""A marker argument of the wrong kind is named with its fix (issue 19, item 5)."""

from __future__ import annotations

import pytest

from pytest_optcheck.declare.build import build
from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.errors import SpecError


def test_a_scalar_where_a_tuple_is_expected_names_optimizer_argument_and_fix() -> None:
    with pytest.raises(SpecError) as info:
        build(Spec(optimizer="AdamW(lr=1e-3, betas=0.9)"))
    text = str(info.value)
    assert "optimizer='AdamW(lr=1e-3, betas=0.9)'" in text
    assert "argument 'betas' of AdamW takes a tuple, like its default (0.9, 0.999); got 0.9 (a float)" in text
    assert "Write betas=(0.9, 0.999)" in text


def test_other_failures_keep_the_library_s_message() -> None:
    with pytest.raises(SpecError, match="could not build optimizer='AdamW.lr=-1.0.': ValueError: Invalid learning rate"):
        build(Spec(optimizer="AdamW(lr=-1.0)"))
