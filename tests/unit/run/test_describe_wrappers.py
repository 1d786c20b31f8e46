"""describe_run (run/describe.py), the rest of what a recorded run's golden says: a wrapper that is
part of the run and its settings, framework plumbing unwrapped silently, per-group values,
schedulers that keep a callable or sit inside accelerate's wrapper, and the source's error."""

from __future__ import annotations

import pytest
import torch
from torch.optim import lr_scheduler

from pytest_optcheck.run.describe import describe_run, describe_scheduler, describe_wrapper, unwrap


class Lookahead:
    """A hand-written wrapper: its settings are constructor arguments kept as ``arg`` or ``_arg``."""

    def __init__(self, optimizer, k=5, alpha=0.5, name="la", flag=True, params=None, model=None, *args, **kwargs):
        self.optimizer, self.k, self._alpha, self.name, self.flag = optimizer, k, alpha, name, flag
        self.params, self.model, self.extra = [1], "m", [1, 2]  # plumbing and a non-setting: not described
        self.param_groups = optimizer.param_groups


class Sam:
    """A wrapper whose constructor says nothing (``*args, **kwargs``): its public plain attributes."""

    def __init__(self, *args, **kwargs):
        self.base_optimizer, self.rho, self._hidden, self.adaptive = args[0], 0.05, 3, False
        self.param_groups = args[0].param_groups


class Nested:
    def __init__(self, inner):
        self.inner = inner
        self.param_groups = inner.param_groups


def _sgd(**kwargs) -> torch.optim.SGD:
    return torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), **{"lr": 0.1, **kwargs})


def test_wrappers_that_are_part_of_the_run_are_described_outermost_first() -> None:
    assert describe_run(Lookahead(Sam(_sgd())), record=("loss",)) == {
        "source": "loop", "optimizer": "SGD(lr=0.1)", "param_groups": ["2 tensors, 3 values"], "scheduler": None,
        "epochs": 0, "steps": 0,
        "wrapper": "Lookahead(alpha=0.5, flag=True, k=5, name='la') > Sam(adaptive=False, rho=0.05)"}
    assert describe_wrapper(Sam(_sgd())) == "Sam(adaptive=False, rho=0.05)"


def test_a_framework_wrapper_is_plumbing_and_unwrapped_silently() -> None:
    plumbing = type("LightningOptimizer", (), {"__module__": "lightning.pytorch.core.optimizer"})()
    optimizer = _sgd(momentum=0.9)
    plumbing._optimizer = optimizer
    described = describe_run(plumbing, record=("loss", "lr"))
    assert described["optimizer"] == "SGD(momentum=0.9)" and "wrapper" not in described


def test_optimizer_attr_names_where_the_outermost_wrapper_keeps_its_optimizer() -> None:
    optimizer = _sgd()
    outer = Nested(Lookahead(optimizer))
    assert unwrap(outer) == ([], outer)  # "inner" is no attribute a wrapper is known by
    chain, inner = unwrap(outer, "inner")
    assert inner is optimizer and [type(w).__name__ for w in chain] == ["Nested", "Lookahead"]
    assert describe_run(outer, optimizer_attr="inner")["wrapper"] == (
        "Nested() > Lookahead(alpha=0.5, flag=True, k=5, name='la')")


def test_unwrapping_stops_after_eight_wrappers() -> None:
    optimizer = _sgd()
    wrapped = optimizer
    for _ in range(9):
        wrapped = Sam(wrapped)
    chain, inner = unwrap(wrapped)
    assert len(chain) == 8 and inner is not optimizer and inner.base_optimizer is optimizer


def test_values_that_differ_between_groups_are_per_group_and_tensors_are_numbers() -> None:
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD([{"params": [model.weight], "lr": torch.tensor(0.5)},
                                 {"params": [model.bias], "lr": 0.1}], lr=0.1, momentum=0.0)
    assert describe_run(optimizer, steps=3.0, epochs=1.0) == {
        "source": "loop", "optimizer": "SGD()", "param_groups": ["1 tensor, 2 values: lr=0.5", "1 tensor, 1 values: lr=0.1"],
        "scheduler": None, "epochs": 1, "steps": 3}


def _half(step: int) -> float:
    return 0.5


def test_schedulers_keeping_callables_lists_or_sitting_in_a_wrapper() -> None:
    optimizer = _sgd()
    here = f"{__name__.rpartition('.')[2]}._half"
    assert describe_scheduler(lr_scheduler.LambdaLR(optimizer, _half)) == f"LambdaLR(lr_lambda={here})"
    assert describe_scheduler(lr_scheduler.StepLR(optimizer, 3, gamma=0.1)) == "StepLR(step_size=3)"  # a default
    assert describe_scheduler(lr_scheduler.ChainedScheduler([lr_scheduler.StepLR(optimizer, 3)])) == (
        "ChainedScheduler(schedulers=[StepLR(step_size=3)])")

    class Accelerated:  # accelerate's AcceleratedScheduler keeps the scheduler at .scheduler
        def __init__(self, scheduler):
            self.scheduler = scheduler

        def step(self) -> None:
            pass

    wrapped = Accelerated(Accelerated(lr_scheduler.StepLR(optimizer, 3)))
    assert describe_run(optimizer, wrapped)["scheduler"] == "StepLR(step_size=3)"
    assert describe_scheduler(wrapped) == "StepLR(step_size=3)"


def test_an_unknown_source_is_refused_by_name() -> None:
    with pytest.raises(ValueError) as caught:
        describe_run(_sgd(), source="keras")
    assert str(caught.value) == "optcheck: source='keras' is not one of loop, lightning, transformers."
