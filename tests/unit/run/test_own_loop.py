"""run/own_loop.py: the trajectory of a user's own loop describes the run it watched."""

from __future__ import annotations

import torch

from pytest_optcheck.run.own_loop import LoopRecorder


def _run(epochs: int, steps: int, **kwargs: object) -> dict:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2)
    x = torch.linspace(-1, 1, 8).reshape(4, 2)
    with LoopRecorder(optimizer, scheduler, model=model, **kwargs) as rec:
        for epoch in range(epochs):
            rec.epoch = epoch
            for _ in range(steps):
                loss = model(x).pow(2).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                rec.log(loss=loss)
            scheduler.step()
    return rec.trajectory.meta["run"]


def test_the_run_is_described_with_its_epochs_and_steps() -> None:
    assert _run(epochs=2, steps=3) == {
        "source": "loop", "optimizer": "SGD(momentum=0.9)", "param_groups": ["2 tensors, 3 values"],
        "scheduler": "StepLR(step_size=2)", "epochs": 2, "steps": 6}  # no record_every, no autocast key


def test_an_lr_not_recorded_is_described() -> None:
    assert _run(epochs=1, steps=2, record=("loss",))["optimizer"] == "SGD(lr=0.1, momentum=0.9)"


def test_thinned_recording_is_part_of_the_description() -> None:
    run = _run(epochs=1, steps=4, record_every=2)
    assert run["record_every"] == 2 and run["steps"] == 4 and run["epochs"] == 1
