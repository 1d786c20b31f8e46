"""A run recorded under ``torch.autocast`` says so in its description (issue 19, item 14)."""

from __future__ import annotations

import contextlib

import torch

from pytest_optcheck.run.own_loop import LoopRecorder


def _run(autocast: bool) -> dict:
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.linspace(-1, 1, 8).reshape(4, 2)
    with LoopRecorder(optimizer, model=model) as rec:
        for _ in range(3):
            context = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
            with context:  # the usual recipe: forward under autocast, backward and step outside
                loss = torch.nn.functional.mse_loss(model(x).float(), x.sum(1, keepdim=True))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            rec.log(loss=loss)
    return rec.trajectory.meta["run"]


def test_bf16_autocast_is_part_of_the_description() -> None:
    assert _run(autocast=True)["autocast"] == "bfloat16"


def test_a_plain_run_has_no_autocast_key() -> None:
    assert "autocast" not in _run(autocast=False)  # goldens of plain runs keep their configuration


def test_autocast_around_the_step_is_seen_without_a_model() -> None:
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with LoopRecorder(optimizer) as rec, torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(torch.ones(1, 2)).float().sum()
        loss.backward()
        optimizer.step()
        rec.log(loss=loss)
    assert rec.trajectory.meta["run"]["autocast"] == "bfloat16"


def test_the_forward_hook_watches_the_first_forwards_only() -> None:
    """A module with a forward hook takes torch's slower call path: the watch removes its hook
    after FORWARDS_WATCHED forwards, having seen autocast there if the loop runs under it."""
    from pytest_optcheck.run.autocast import FORWARDS_WATCHED

    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with LoopRecorder(optimizer, model=model) as rec:
        for i in range(FORWARDS_WATCHED + 2):
            assert (rec._autocast._handle is not None) == (i < FORWARDS_WATCHED)  # the hook, removed
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = model(torch.ones(1, 2)).float().sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            rec.log(loss=loss)
    assert rec.trajectory.meta["run"]["autocast"] == "bfloat16"


def test_autocast_is_asked_about_the_parameters_device_type() -> None:
    """The device type is the first parameter's, in whichever group holds one; an optimizer
    without parameters (or param groups) is asked about on the CPU; a model without forward
    hooks is watched at steps and logs only."""
    from pytest_optcheck.run.autocast import AutocastSeen

    groups = type("Groups", (), {})()  # an optimizer-like object: a group without params first
    groups.param_groups = [{}, {"params": [torch.empty(1, device="meta")]}]
    seen = AutocastSeen(groups, model=object())
    assert seen._find_device_type() == "meta" and seen._handle is None
    bare = AutocastSeen(object())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bare.note()
    assert (bare._device_type, bare.value) == ("cpu", "bfloat16")
