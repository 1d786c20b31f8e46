"""check_parity's sentences and its variants' form (checks/differential/parity.py), pinned whole
on hand-made comparisons; the runs themselves: tests/unit/checks/test_parity.py."""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import pytest
import torch

from pytest_optcheck.checks.differential import parity as p
from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.engine.compare import compare
from pytest_optcheck.engine.stepwise import RunComparison, TensorVerdict
from pytest_optcheck.engine.tolerance import Tolerance
from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.errors import OptcheckError

REF = Trajectory({"loss": [1.0, 0.5]}, epoch=[0, 0], batch=[0, 1])
OTHER = Trajectory({"loss": [1.0, 0.6]}, epoch=[0, 0], batch=[0, 1])
EXACT = {"loss": Tolerance(rtol=0.0, atol=0.0)}
DIFFERS = RunComparison(compare(REF, OTHER, EXACT), TensorVerdict(None))
AGREES = RunComparison(compare(REF, REF, EXACT), TensorVerdict(None, max_rel=0.25, compared=3))
LOSS_LINE = ("  loss at step 1 (epoch 0, batch 1): reference 0.5, fused 0.6 (abs err 0.1, rel err 0.2; tolerance "
             "rtol=0, atol=0, step by step; 1 of 2 steps (50.0%) outside tolerance)")


def test_the_tensor_defaults_are_the_measured_ones() -> None:
    assert p.PARITY_DEFAULTS == {"params": {"rtol": 1e-4, "atol": 1e-6}, "state": {"rtol": 1e-4, "atol": 1e-6}}


def test_the_failure_names_the_variant_its_setup_the_step_and_the_others() -> None:
    head = ("optcheck: implementation 'fused' (optimizer='Adam(fused=True)') differs from the reference "
            "(optimizer='Adam()') from step 1 (epoch 0, batch 1) on")
    text = p.parity_failed_text("fused", "optimizer='Adam(fused=True)'", "optimizer='Adam()'", DIFFERS, REF, OTHER,
                                ["foreach: within tolerance", "for-loop: skipped"])
    assert text.split("\n") == [head, LOSS_LINE, "other implementations: foreach: within tolerance; for-loop: skipped"]
    alone = p.parity_failed_text("fused", "optimizer='Adam(fused=True)'", "optimizer='Adam()'", DIFFERS, REF, OTHER, [])
    assert alone.split("\n") == [head, LOSS_LINE]


def test_the_summaries_and_the_pass() -> None:
    assert p.parity_variant_text("foreach", DIFFERS) == "foreach: differs (largest rel diff 0.2)"
    assert p.parity_variant_text("foreach", AGREES) == "foreach: within tolerance (largest rel diff 0.25)"
    assert p.parity_skipped_text("fused", "not here") == "fused: skipped, not here"
    assert p.parity_passed_text(["a", "b"], ["c"]) == (
        "optcheck: 2 implementation(s) agree with the reference step by step\n  a\n  b\n  c")


def test_nothing_to_compare_says_why() -> None:
    assert p.parity_none_text("'LBFGS(lr=0.1)'", []) == (
        "optcheck: optimizer='LBFGS(lr=0.1)' has no other implementation to compare on this device (its signature "
        "has neither foreach nor fused); pass variants={name: {spec overrides}} to compare your own")
    assert p.parity_none_text("'X'", ["fused: skipped, r", "q"]) == (
        "optcheck: optimizer='X' has no other implementation to compare on this device (fused: skipped, r; q); "
        "pass variants={name: {spec overrides}} to compare your own")


def test_the_optimizer_is_named_as_the_golden_header_names_it() -> None:
    assert p._optimizer(Spec(optimizer="Adam( lr=0.01 )")) == "'Adam(lr=0.01)'"


def test_given_variants_are_spec_overrides_named_by_strings() -> None:
    spec = Spec(optimizer="SGD(lr=0.1)")
    specs, skipped = p.variant_specs(spec, {"fast": {"optimizer": "SGD(lr=0.2)"}, 3: {"epochs": 2}}, "cpu")
    assert specs == {"fast": spec.replace(optimizer="SGD(lr=0.2)"), "3": spec.replace(epochs=2)} and skipped == {}
    form = (r"^optcheck: check_parity\(variants=VALUE\): give a dict of variant name to spec overrides, e\.g\. "
            r"variants=\{'fused': \{'optimizer': 'Adam\(lr=0\.01, fused=True\)'\}\}\.$")
    with pytest.raises(OptcheckError, match=form.replace("VALUE", r"\['fused'\]")):
        p.variant_specs(spec, ["fused"], "cpu")  # type: ignore[arg-type]
    with pytest.raises(OptcheckError, match=form.replace("VALUE", r"\{'fast': 'SGD\(\)'\}")):
        p.variant_specs(spec, {"fast": "SGD()"}, "cpu")  # type: ignore[dict-item]
    found, _ = p.variant_specs(Spec(optimizer="Adamax(lr=0.01)"), None, "cpu")
    assert found == {"for-loop": spec.replace(optimizer="Adamax(foreach=False, lr=0.01)"),
                     "foreach": spec.replace(optimizer="Adamax(foreach=True, lr=0.01)")}


class FusedOnly(torch.optim.Optimizer):
    """Plain SGD offering only ``fused``, whose kernel does not exist here."""

    seen: ClassVar[list[int]] = []

    def __init__(self, params: Any, lr: float = 0.05, fused: bool | None = None) -> None:
        if fused:
            raise RuntimeError("no fused kernel here")
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        FusedOnly.seen.append(torch.get_num_threads())
        for group in self.param_groups:
            for q in group["params"]:
                if q.grad is not None:
                    q.add_(q.grad, alpha=-group["lr"])


TINY = {"epochs": 1, "batch_size": 500}


def test_no_variant_left_names_the_optimizer_and_each_skip() -> None:
    spec = Spec(**TINY, optimizer=FusedOnly)
    assert not p.has_variants(spec)
    with pytest.raises(OptcheckError) as excinfo:
        p.check_parity(spec)
    assert str(excinfo.value) == (
        f"optcheck: optimizer={p._optimizer(spec)} has no other implementation to compare on this device (fused: "
        "skipped, not available on cpu (float32): no fused kernel here); pass variants={name: {spec overrides}} to "
        "compare your own")


def test_has_variants_on_the_default_device() -> None:
    assert p.has_variants(Spec(optimizer="Adam(lr=0.01)"))
    assert p.has_variants(Spec(optimizer="Adam(lr=0.01)"), "cpu")


def test_the_outcome_carries_the_tolerances_the_verdict_and_the_other_variants() -> None:
    spec = Spec(**TINY, optimizer=FusedOnly)
    FusedOnly.seen = []
    passed = p.check_parity(spec, variants={"again": {}}, threads=3)
    assert FusedOnly.seen and set(FusedOnly.seen) == {3}  # both runs on the threads asked for
    assert passed.passed and passed.notes == ()
    assert passed.message.startswith("optcheck: 1 implementation(s) agree with the reference step by step\n"
                                     "  again: within tolerance (largest rel diff 0)")
    assert passed.tolerances is not None and passed.tolerances["params"] == Tolerance(rtol=1e-4, atol=1e-6)
    assert passed.tolerances["state"] == Tolerance(rtol=1e-4, atol=1e-6)
    failed = p.check_parity(spec, variants={"a": {}, "b": {}, "faster": {"optimizer": functools.partial(FusedOnly, lr=0.1)}})
    assert not failed.passed and failed.verdict is not None and not failed.verdict.passed
    assert failed.tolerances == passed.tolerances and failed.notes == ()
    lines = failed.message.split("\n")
    assert lines[0].startswith("optcheck: implementation 'faster' (optimizer=") and (
        f"differs from the reference (optimizer={p._optimizer(spec)}) from step 0" in lines[0])
    assert lines[-1] == ("other implementations: a: within tolerance (largest rel diff 0); "
                         "b: within tolerance (largest rel diff 0)")


def test_a_bad_tolerance_is_named_as_check_paritys() -> None:
    with pytest.raises(OptcheckError, match=r"^optcheck: check_parity\(\) for series 'bogus': "):
        p.check_parity(Spec(**TINY), variants={"again": {}}, bogus=1)
