"""The resume check lists, among the state that did not survive the checkpoint, an attribute
that exists only after loading — not only those the run had before saving
(checks/differential/checkpoint.py ``differences``; issue 22, promise 5)."""

from __future__ import annotations

from typing import Any

import torch

from pytest_optcheck.checks.differential.checkpoint import Lost, differences
from pytest_optcheck.checks.differential.resume import check_resume
from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.engine.outcome import Status


class DampedAfterLoading(torch.optim.Optimizer):
    """Plain SGD that, once loaded from a checkpoint, halves its steps: the flag that does it
    exists only after loading. (Written out rather than calling ``super().step()``: torch
    wraps both ``step`` methods with its hooks, so a subclass's step would count twice.)"""

    def __init__(self, params: Any, lr: float = 0.1) -> None:
        super().__init__(params, {"lr": lr})

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.resumed = True

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        scale = 0.5 if getattr(self, "resumed", False) else 1.0
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"] * scale)


def test_an_attribute_only_the_loaded_side_has_is_lost_state() -> None:
    before = {"model": {}, "optimizer attribute": {"step_count": 5}}
    after = {"model": {}, "optimizer attribute": {"step_count": 5, "resumed": True}}
    assert differences(before, after) == [Lost("optimizer attribute resumed", "(absent)", "True", False)]


def test_the_resume_check_names_an_attribute_that_appeared_on_loading() -> None:
    outcome = check_resume(Spec(epochs=2, batch_size=250, optimizer=DampedAfterLoading), at=3)
    assert outcome.status is Status.FAILED
    assert "optimizer attribute resumed: (absent) -> True (not in state_dict()" in outcome.message
