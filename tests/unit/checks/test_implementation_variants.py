"""checks/differential/implementations.py: which implementation the spec names, the flags
written into a call string or a partial, and an implementation the device refuses skipped
with the optimizer's own reason."""

from __future__ import annotations

import functools
from typing import Any

import pytest
import torch

from pytest_optcheck.checks.differential.implementations import (
    IMPLEMENTATIONS,
    _keywords,
    implementation_variants,
    reference_implementation,
    with_flags,
)
from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.errors import SpecError


class NoFusedKernel(torch.optim.SGD):
    """SGD that offers foreach and fused but, like a device without the kernel, refuses fused."""

    def __init__(self, params: Any, lr: float = 0.1, foreach: bool | None = None, fused: bool | None = None) -> None:
        if fused:
            raise RuntimeError("  no fused kernel for this device\nsecond line of the story\n")
        super().__init__(params, lr=lr, foreach=foreach)


def test_the_three_implementations_and_their_flags() -> None:
    assert IMPLEMENTATIONS == {"for-loop": {"foreach": False, "fused": None},
                               "foreach": {"foreach": True, "fused": None},
                               "fused": {"fused": True, "foreach": None}}


def test_the_reference_is_the_implementation_the_spec_names() -> None:
    assert reference_implementation("Adam(lr=0.1)") is None
    assert reference_implementation("Adam(fused=True)") == "fused"
    assert reference_implementation("Adam(fused=False, foreach=True)") == "foreach"
    assert reference_implementation("Adam(foreach=False)") == "for-loop"
    assert reference_implementation(functools.partial(torch.optim.Adam, foreach=False)) == "for-loop"


def test_keywords_collect_nested_partials_inner_first() -> None:
    value = functools.partial(functools.partial(torch.optim.Adam, lr=0.1, foreach=True), lr=0.2)
    accepted, given = _keywords(value)
    assert given == {"lr": 0.2, "foreach": True}
    assert {"params", "lr", "foreach", "fused"} <= accepted


def test_flags_replace_the_calls_own_and_none_drops_the_keyword() -> None:
    both = {"fused", "foreach"}
    assert with_flags("Adam(lr=0.1, foreach=True)", {"fused": True, "foreach": None}, both) == "Adam(fused=True, lr=0.1)"
    assert with_flags("Adam(lr=0.1)", {"foreach": False, "fused": None}, both) == "Adam(foreach=False, lr=0.1)"
    # A flag the optimizer does not take is left alone (not written, not removed).
    assert with_flags("Adam(lr=0.1, fused=True)", {"foreach": False, "fused": None}, {"foreach"}) == (
        "Adam(foreach=False, fused=True, lr=0.1)")
    partial = with_flags(torch.optim.Adam, {"fused": True, "foreach": None, "other": 1}, both)
    assert partial.keywords == {"fused": True, "foreach": None}


def test_an_implementation_the_optimizer_refuses_is_skipped_with_its_reason() -> None:
    variants, skipped = implementation_variants(Spec(optimizer=NoFusedKernel))
    assert set(variants) == {"for-loop", "foreach"}
    assert variants["foreach"]["optimizer"].keywords == {"foreach": True, "fused": None}
    assert skipped == {"fused": "not available on cpu (float32): no fused kernel for this device"}
    _, as_float64 = implementation_variants(Spec(optimizer=NoFusedKernel, dtype="float64"))
    assert as_float64["fused"].startswith("not available on cpu (float64): ")


def test_only_the_implementations_the_signature_offers() -> None:
    assert implementation_variants(Spec(optimizer="LBFGS(lr=0.1)")) == ({}, {})
    variants, _ = implementation_variants(Spec(optimizer="Adam(lr=0.01, fused=True)"))
    assert set(variants) == {"for-loop", "foreach"}


class Float64Kernel(torch.optim.SGD):
    """SGD whose fused kernel exists for float64 parameters only: the probe must use the spec's dtype."""

    def __init__(self, params: Any, lr: float = 0.1, foreach: bool | None = None, fused: bool | None = None) -> None:
        params = list(params)
        if fused and any(p.dtype != torch.float64 for p in params):
            raise RuntimeError("fused kernel for float64 only")
        super().__init__(params, lr=lr, foreach=foreach)


def test_the_probe_is_a_parameter_of_the_specs_dtype() -> None:
    assert "fused" in implementation_variants(Spec(optimizer=Float64Kernel, dtype="float64"))[0]
    assert implementation_variants(Spec(optimizer=Float64Kernel))[1] == {
        "fused": "not available on cpu (float32): fused kernel for float64 only"}


def unsigned(params: Any, foreach: bool | None = None) -> torch.optim.Optimizer:
    """An optimizer factory whose signature cannot be read: it offers no implementation."""
    return torch.optim.SGD(params, lr=0.1, foreach=foreach)


unsigned.__signature__ = "not a signature"  # type: ignore[attr-defined]


def test_an_unreadable_signature_offers_nothing() -> None:
    assert _keywords(unsigned) == (set(), {})
    assert implementation_variants(Spec(optimizer=unsigned)) == ({}, {})


def test_a_broken_call_string_is_named_as_the_optimizer() -> None:
    with pytest.raises(SpecError, match=r"^optcheck: optimizer='Adam\(lr=' is not valid call syntax"):
        with_flags("Adam(lr=", {"foreach": True}, {"foreach"})
