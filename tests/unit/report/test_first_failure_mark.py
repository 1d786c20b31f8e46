"""The report's picture marks the earliest failing step across all failing series — where a
reviewer starts reading — not the first failure of whichever series fails last
(report/picture.py; issue 22, promise 7)."""

from __future__ import annotations

import numpy as np

from pytest_optcheck.checks.golden_check import judge
from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.golden.format import Golden, dumps

STEPS = 40
SPEC = {"optimizer": "SGD(lr=0.1)"}


def golden(loss_from: int | None = None, grad_norm_from: int | None = None) -> Golden:
    loss, grad_norm = np.linspace(1.0, 0.1, STEPS), np.linspace(2.0, 0.5, STEPS)
    if loss_from is not None:
        loss[loss_from:] *= 1.5
    if grad_norm_from is not None:
        grad_norm[grad_norm_from:] *= 1.5
    trajectory = Trajectory({"loss": loss, "grad_norm": grad_norm}, np.arange(STEPS) // 20, np.arange(STEPS) % 20)
    return Golden(trajectory, spec=SPEC)


def first_failure_texts(loss_from: int, grad_norm_from: int) -> list[str]:
    from pytest_optcheck.report.picture import draw_outcome

    outcome = judge(golden(loss_from, grad_norm_from), dumps(golden()))
    assert {s.name for s in outcome.verdict.failed} == {"loss", "grad_norm"}
    figure = draw_outcome(outcome, "t")
    return [t.get_text() for axis in figure.axes for t in axis.texts if t.get_text().startswith("first failure")]


def test_the_earliest_failure_is_marked_whichever_series_it_is_in() -> None:
    assert first_failure_texts(loss_from=30, grad_norm_from=12) == [
        "first failure: grad_norm, step 12 (epoch 0, batch 12)"]
    assert first_failure_texts(loss_from=12, grad_norm_from=30) == ["first failure: loss, step 12 (epoch 0, batch 12)"]
