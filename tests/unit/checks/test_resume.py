"""check_resume: a run checkpointed mid-way (torch.save / torch.load(weights_only=True) into
fresh objects) must continue exactly as the run without a checkpoint."""

from __future__ import annotations

import functools
from typing import Any

import pytest
import torch
from torch.optim import lr_scheduler as s

from pytest_optcheck.checks.differential.resume import check_resume, resume_step
from pytest_optcheck.declare.catalog import torch_optimizers, torch_schedulers
from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.engine.outcome import Status
from pytest_optcheck.errors import OptcheckError

#: 3 epochs of 4 batches; the checkpoint after step 5 falls inside epoch 1, so the batch
#: order of a half-done epoch must come back too.
SMALL = {"epochs": 3, "batch_size": 250}
AT = 5


def indices(generator: torch.Generator, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer inputs for an Embedding: SparseAdam needs sparse gradients."""
    return torch.randint(0, 8, (1000,), generator=generator), torch.randn(1000, 1, generator=generator).to(dtype)


def decay(epoch: int) -> float:
    return 0.9**epoch


def sequential(optimizer: torch.optim.Optimizer) -> Any:
    return s.SequentialLR(optimizer, [s.LinearLR(optimizer, 0.5, total_iters=3), s.ExponentialLR(optimizer, 0.9)],
                          milestones=[3])


def chained(optimizer: torch.optim.Optimizer) -> Any:
    return s.ChainedScheduler([s.ExponentialLR(optimizer, 0.9), s.StepLR(optimizer, 2, 0.5)])


#: What each discovered optimizer needs beyond its defaults (model, problem).
OPTIMIZER_SPECS: dict[str, dict[str, Any]] = {
    "Muon": {"model": "Linear(1, 1, bias=False)"},  # 2-D parameters only
    "SparseAdam": {"optimizer": "SparseAdam(lr=0.01)", "problem": indices, "model": "Embedding(8, 1, sparse=True)"},
    "LBFGS": {"optimizer": "LBFGS(lr=0.1, max_iter=5)"},
}

#: The arguments each discovered scheduler needs (12 scheduler steps: interval="step").
SCHEDULERS: dict[str, Any] = {
    "ChainedScheduler": chained,
    "ConstantLR": "ConstantLR(factor=0.5, total_iters=4)",
    "CosineAnnealingLR": "CosineAnnealingLR(T_max=6)",
    "CosineAnnealingWarmRestarts": "CosineAnnealingWarmRestarts(T_0=4)",
    "CyclicLR": "CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up=3)",
    "ExponentialLR": "ExponentialLR(gamma=0.8)",
    "LambdaLR": functools.partial(s.LambdaLR, lr_lambda=decay),
    "LinearLR": "LinearLR(start_factor=0.2, total_iters=6)",
    "MultiStepLR": "MultiStepLR(milestones=[2, 6], gamma=0.5)",
    "MultiplicativeLR": functools.partial(s.MultiplicativeLR, lr_lambda=decay),
    "OneCycleLR": "OneCycleLR(max_lr=0.1, total_steps=20)",
    "PolynomialLR": "PolynomialLR(total_iters=8, power=2.0)",
    "ReduceLROnPlateau": "ReduceLROnPlateau(patience=0, factor=0.5, threshold=0.5)",
    "SequentialLR": sequential,
    "StepLR": "StepLR(step_size=3, gamma=0.5)",
}


def test_every_discovered_scheduler_has_arguments_here() -> None:
    assert set(SCHEDULERS) == set(torch_schedulers())


@pytest.mark.parametrize("name", sorted(torch_optimizers()))
def test_every_torch_optimizer_resumes_exactly(name: str) -> None:
    keys = {"optimizer": f"{name}(lr=0.01)", **OPTIMIZER_SPECS.get(name, {})}
    outcome = check_resume(Spec(**SMALL, **keys, record=("loss", "lr", "param_norm")), at=AT)
    assert outcome.status is Status.PASSED, outcome.message


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_every_torch_scheduler_resumes_exactly(name: str) -> None:
    spec = Spec(**SMALL, optimizer="SGD(lr=0.05, momentum=0.9)", scheduler=SCHEDULERS[name], interval="step")
    outcome = check_resume(spec, at=AT)
    assert outcome.status is Status.PASSED, outcome.message


def test_epoch_interval_plateau_resumes_at_an_epoch_boundary_and_inside_one() -> None:
    spec = Spec(**SMALL, optimizer="Adam(lr=0.05)", scheduler="ReduceLROnPlateau(patience=0, threshold=0.5)")
    for at in (4, 6, 0.5):
        assert check_resume(spec, at=at).passed


class CountingSGD(torch.optim.Optimizer):
    """SGD with lr / sqrt(t), t kept in an attribute: state_dict() does not carry it.

    (Written out rather than calling ``super().step()``: torch wraps both ``step`` methods
    with its hooks, so a subclass's step would count as two steps.)"""

    def __init__(self, params: Any, lr: float = 0.1) -> None:
        super().__init__(params, {"lr": lr})
        self.step_count = 0

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        self.step_count += 1
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"] / self.step_count**0.5)


def test_step_count_outside_state_fails_naming_the_step_and_the_attribute() -> None:
    outcome = check_resume(Spec(**SMALL, optimizer=CountingSGD), at=AT)
    assert outcome.status is Status.FAILED
    message = outcome.message
    assert "resuming from a checkpoint taken after 5 of 12 steps changes the run from step 5 (epoch 1, batch 1)" \
        in message
    assert "hidden.weight" in message and "after step 5 (epoch 1, batch 1): straight" in message
    assert "optimizer attribute step_count: 5 -> 0 (not in state_dict()" in message


class ForgetfulStepLR(s.StepLR):
    """A scheduler whose state_dict() leaves out where it stands."""

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        del state["last_epoch"]
        return state


def test_scheduler_state_dict_missing_a_field_fails_naming_it() -> None:
    spec = Spec(**SMALL, scheduler=functools.partial(ForgetfulStepLR, step_size=2, gamma=0.5), interval="step")
    message = check_resume(spec, at=AT).message
    assert "changes the run from step 6 (epoch 1, batch 2) on" in message
    assert "lr at step 6 (epoch 1, batch 2): straight" in message
    assert "scheduler attribute last_epoch: 5 -> 0" in message


def test_a_tolerance_can_be_given() -> None:
    outcome = check_resume(Spec(**SMALL, optimizer=CountingSGD), at=AT, rtol=1.0, atol=1.0)
    assert outcome.passed and outcome.tolerances is not None
    assert outcome.tolerances["params"].rtol == 1.0 and outcome.tolerances["loss"].atol == 1.0


@pytest.mark.parametrize(("at", "fix"), [
    (0, "between 1 and 11"), (12, "between 1 and 11"), (1.5, "between 0 and 1"), ("half", "a step (an int)"),
])
def test_at_out_of_range_is_refused(at: Any, fix: str) -> None:
    with pytest.raises(OptcheckError, match="check_resume") as excinfo:
        resume_step(at, 12)
    assert fix in str(excinfo.value)


def test_fraction_rounds_to_a_step_inside_the_run() -> None:
    assert [resume_step(f, 12) for f in (0.5, 0.01, 0.99)] == [6, 1, 11]
    with pytest.raises(OptcheckError, match="at least 2 steps"):
        resume_step(0.5, 1)


class Opaque:
    """Not a tensor, number or container: torch.load(weights_only=True) refuses it."""


class OpaqueStepLR(s.StepLR):
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "extra": Opaque()}


def test_a_checkpoint_weights_only_loading_refuses_fails_with_torchs_reason() -> None:
    spec = Spec(**SMALL, scheduler=functools.partial(OpaqueStepLR, step_size=2))
    outcome = check_resume(spec, at=AT)
    assert outcome.status is Status.FAILED
    assert outcome.message.startswith("optcheck: the checkpoint taken after 5 steps does not round-trip: "
                                      "torch.load(weights_only=True) refused the checkpoint: ")
    assert "Opaque" in outcome.message


def test_the_checks_leave_the_global_rng_alone() -> None:
    before = torch.get_rng_state()
    check_resume(Spec(**SMALL, optimizer="Adam(lr=0.01)"), at=AT)
    assert torch.equal(torch.get_rng_state(), before)


def test_outcomes_carry_the_exact_tolerances_the_verdict_and_the_whole_passed_text() -> None:
    passed = check_resume(Spec(**SMALL, optimizer="SGD(lr=0.1)"))  # at=0.5 by default: half of 12 steps
    assert passed.message == "optcheck: resuming from a checkpoint taken after 6 of 12 steps gives the same run"
    assert passed.verdict is None and passed.tolerances is not None
    assert {(t.rtol, t.atol) for t in passed.tolerances.values()} == {(0.0, 0.0)}  # exact on the CPU
    failed = check_resume(Spec(**SMALL, optimizer=CountingSGD), at=AT)
    assert failed.verdict is not None and not failed.verdict.passed
    assert {(t.rtol, t.atol) for t in failed.tolerances.values()} == {(0.0, 0.0)}


def test_a_bad_tolerance_names_check_resume() -> None:
    with pytest.raises(OptcheckError, match=r"check_resume\(\)"):
        check_resume(Spec(**SMALL), rtol="tight")
