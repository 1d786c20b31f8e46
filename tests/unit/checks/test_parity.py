"""check_parity: the implementations of an optimizer (for-loop, foreach, fused) — or any
variants — against the spec's run, step by step: loss, parameters, optimizer state."""

from __future__ import annotations

import functools
import inspect
from typing import Any

import pytest
import torch

from pytest_optcheck.checks.differential.implementations import implementation_variants, with_flags
from pytest_optcheck.checks.differential.parity import check_parity, has_variants
from pytest_optcheck.declare.catalog import torch_optimizers
from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.engine.outcome import Status
from pytest_optcheck.errors import OptcheckError

SMALL = {"epochs": 2, "batch_size": 250}


def _with_implementations() -> list[str]:
    return sorted(name for name, cls in torch_optimizers().items()
                  if {"foreach", "fused"} & set(inspect.signature(cls).parameters))


@pytest.mark.parametrize("name", _with_implementations())
def test_every_torch_optimizer_with_another_implementation_passes(name: str) -> None:
    decay = ", weight_decay=0.01" if "weight_decay" in inspect.signature(torch_optimizers()[name]).parameters else ""
    outcome = check_parity(Spec(**SMALL, optimizer=f"{name}(lr=0.01{decay})"))
    assert outcome.status is Status.PASSED, outcome.message
    assert "foreach: within tolerance" in outcome.message


def test_variants_come_from_the_signature_and_keep_call_syntax() -> None:
    variants, skipped = implementation_variants(Spec(optimizer="Adam(lr=0.01)"))
    assert variants == {"for-loop": {"optimizer": "Adam(foreach=False, lr=0.01)"},
                        "foreach": {"optimizer": "Adam(foreach=True, lr=0.01)"},
                        "fused": {"optimizer": "Adam(fused=True, lr=0.01)"}}
    assert skipped == {}
    named, _ = implementation_variants(Spec(optimizer="Adam(lr=0.01, foreach=True)"))
    assert set(named) == {"for-loop", "fused"}  # the spec's own implementation is the reference
    assert set(implementation_variants(Spec(optimizer="Adamax(lr=0.01)"))[0]) == {"for-loop", "foreach"}


def test_a_callable_optimizer_gets_its_flags_by_partial() -> None:
    value = with_flags(functools.partial(torch.optim.Adam, lr=0.01, foreach=True), {"fused": True, "foreach": None},
                       {"fused", "foreach"})
    optimizer = value([torch.nn.Parameter(torch.ones(2))])
    assert optimizer.defaults["fused"] is True and optimizer.defaults["foreach"] is None


class ForgetfulSGD(torch.optim.Optimizer):
    """SGD whose foreach path forgets weight decay: the bug a fast rewrite ships."""

    def __init__(self, params: Any, lr: float = 0.05, weight_decay: float = 0.0, foreach: bool = False) -> None:
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay, "foreach": foreach})

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            grads = [p.grad for p in params]
            if group["foreach"]:
                torch._foreach_add_(params, grads, alpha=-group["lr"])
            else:
                for p, g in zip(params, grads):
                    p.add_(g + group["weight_decay"] * p, alpha=-group["lr"])


def test_a_foreach_rewrite_that_forgets_weight_decay_fails_naming_the_tensor() -> None:
    spec = Spec(**SMALL, optimizer=functools.partial(ForgetfulSGD, weight_decay=0.1))
    outcome = check_parity(spec)
    assert outcome.status is Status.FAILED
    message = outcome.message
    assert message.startswith("optcheck: implementation 'foreach' (optimizer='partial(")
    assert "differs from the reference" in message and "from step 0 (epoch 0, batch 0) on" in message
    assert "first tensor outside tolerance: hidden.weight[" in message
    assert "after step 0 (epoch 0, batch 0): reference" in message
    assert "loss at step 1 (epoch 0, batch 1)" in message


def test_a_state_tensor_is_named_when_it_differs_first() -> None:
    variants = {"no-bias-correction": {"optimizer": "Adam(lr=0.01, betas=(0.8, 0.999))"}}
    message = check_parity(Spec(**SMALL, optimizer="Adam(lr=0.01)"), variants=variants).message
    assert "implementation 'no-bias-correction'" in message
    # Adam's first update does not depend on beta1 (bias correction), its state does.
    assert "first tensor outside tolerance: exp_avg of hidden.weight[" in message
    assert "after step 0 (epoch 0, batch 0)" in message


def test_given_variants_and_tolerances() -> None:
    spec = Spec(**SMALL, optimizer="SGD(lr=0.01)")
    outcome = check_parity(spec, variants={"lr": {"optimizer": "SGD(lr=0.0101)"}})
    assert outcome.status is Status.FAILED and "implementation 'lr'" in outcome.message
    assert check_parity(spec, variants={"lr": {"optimizer": "SGD(lr=0.0101)"}}, rtol=0.5, atol=0.1).passed


def test_lbfgs_has_nothing_to_compare() -> None:
    spec = Spec(**SMALL, optimizer="LBFGS(lr=0.1)")
    assert not has_variants(spec)
    with pytest.raises(OptcheckError, match="has no other implementation to compare") as excinfo:
        check_parity(spec)
    assert "pass variants=" in str(excinfo.value)


def test_bad_variants_are_refused_with_the_form() -> None:
    with pytest.raises(OptcheckError, match=r"check_parity\(variants=\['fused'\]\): give a dict"):
        check_parity(Spec(**SMALL), variants=["fused"])  # type: ignore[arg-type]
