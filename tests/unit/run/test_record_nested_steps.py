"""A subclass's step() that calls ``super().step()`` is one step, not two.

torch wraps the step() of each optimizer class it makes an instance of, and the wrapper fires
the step hooks; a subclass's step calling its parent's is then hooked twice — but only once
the parent class has had an instance in this process. So without care a recording depends on
which optimizers were made before it (on test order). These tests make the parent's instance
first, so that both wrappers are in place."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from pytest_optcheck.run.record import Recorder

RECORD = ("loss", "lr", "grad_norm", "update_norm")


class Adam(torch.optim.Adam):
    """A user's Adam whose step() is its parent's."""

    def step(self, closure: Any = None) -> Any:
        return super().step(closure)


class Flaky(torch.optim.SGD):
    """An SGD whose second step raises before it updates anything."""

    calls = 0

    def step(self, closure: Any = None) -> Any:
        Flaky.calls += 1
        if Flaky.calls == 2:
            raise RuntimeError("out of memory (pretend)")
        return super().step(closure)


def _run(optimizer_class: type[torch.optim.Optimizer], steps: int = 3, **kwargs: Any) -> Recorder:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = torch.nn.Linear(2, 1)
        x, y = torch.randn(4, 2), torch.randn(4, 1)
    optimizer = optimizer_class(model.parameters(), lr=0.1, **kwargs)
    with Recorder(optimizer, model=model, record=RECORD) as rec:
        for _ in range(steps):
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            try:
                optimizer.step()
            except RuntimeError:
                pass  # a loop that survives a failed step (an out-of-memory retry, say)
            optimizer.zero_grad()
            rec.log(loss=loss)
    return rec


@pytest.fixture(autouse=True)
def _parents_made_first() -> None:
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
    torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)


def test_a_subclass_calling_its_parents_step_is_recorded_once_a_step() -> None:
    mine, plain = _run(Adam).trajectory, _run(torch.optim.Adam).trajectory
    assert len(mine["loss"]) == len(plain["loss"]) == 3
    for name in RECORD:
        np.testing.assert_array_equal(mine[name], plain[name], err_msg=name)
    assert not np.isnan(mine["loss"]).any()


def test_a_step_that_raised_does_not_hide_the_steps_after_it() -> None:
    Flaky.calls = 0
    rec = _run(Flaky, steps=4)
    trajectory = rec.trajectory
    assert rec.steps == len(trajectory["loss"]) == 4  # the failed step counts: it started, and its loss was logged
    assert not np.isnan(trajectory["loss"]).any()
    update = trajectory["update_norm"].ravel()
    assert update[1] != update[1] or update[1] == 0.0  # the failed step updated nothing (NaN or 0)
    assert (update[[0, 2, 3]] > 0).all()


def test_a_recorder_entered_again_after_a_failed_step_records_on() -> None:
    Flaky.calls = 1  # the next step raises
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = torch.nn.Linear(2, 1)
    optimizer = Flaky(model.parameters(), lr=0.1)
    rec = Recorder(optimizer, model=model)
    for attempt in range(2):
        with rec:
            model(torch.ones(1, 2)).sum().backward()
            try:
                optimizer.step()
            except RuntimeError:
                pass
            rec.log(loss=float(attempt))
    assert rec.trajectory["loss"].tolist() == [0.0, 1.0]


def test_without_torchs_step_wrapper_every_hooked_call_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another torch that fires the hooks from elsewhere: no call is taken for an inner one
    (the recording before this fix), and nothing fails."""
    from pytest_optcheck.run.record import steps

    monkeypatch.setattr(steps, "_step_wrapper_code", lambda: None)
    assert len(_run(Adam).trajectory["loss"]) == 6
    assert len(_run(torch.optim.Adam).trajectory["loss"]) == 3
