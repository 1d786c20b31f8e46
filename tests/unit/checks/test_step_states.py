"""checks/differential/states.py: the tensors after every optimizer step, named as a reader
thinks of them, copied (not views), widened from half precision, hook removed on exit."""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import numpy as np
import torch

from pytest_optcheck.checks.differential.states import StepStates, as_array, parameter_names, record_run, snapshot
from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.run.train import train


def _model() -> torch.nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(2, 1))


def test_parameters_are_named_by_the_model_and_others_by_their_position() -> None:
    model = _model()
    stray = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": list(model.parameters())}, {"params": [stray]}], lr=0.1)
    names = parameter_names(model, optimizer)
    assert list(names.values()) == ["0.weight", "0.bias", "param 2"]
    assert names[id(stray)] == "param 2" and names[id(model[0].weight)] == "0.weight"


def test_as_array_copies_widens_and_refuses_what_is_no_number() -> None:
    tensor = torch.tensor([1.0, 2.0], requires_grad=True)
    array = as_array(tensor)
    assert isinstance(array, np.ndarray) and array.tolist() == [1.0, 2.0] and array.dtype == np.float32
    with torch.no_grad():
        tensor.add_(1.0)
    assert array.tolist() == [1.0, 2.0]  # a copy, not a view of the live parameter
    for half in (torch.bfloat16, torch.float16):
        widened = as_array(torch.tensor([0.5], dtype=half))
        assert widened is not None and widened.dtype == np.float32 and widened.tolist() == [0.5]
    sparse = as_array(torch.tensor([[0.0, 3.0]]).to_sparse())
    assert sparse is not None and sparse.tolist() == [[0.0, 3.0]]
    step = as_array(7)
    assert isinstance(step, np.ndarray) and step.shape == () and step.item() == 7
    assert as_array(0.25).item() == 0.25  # type: ignore[union-attr]
    assert as_array(True) is None and as_array([1.0]) is None and as_array("x") is None and as_array(None) is None


def test_a_snapshot_holds_parameters_then_each_ones_state() -> None:
    model = _model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.ones(3, 2)).sum().backward()
    optimizer.step()
    state = snapshot(model, optimizer)
    assert list(state) == ["0.weight", "0.bias", "step of 0.weight", "exp_avg of 0.weight", "exp_avg_sq of 0.weight",
                           "step of 0.bias", "exp_avg of 0.bias", "exp_avg_sq of 0.bias"]
    np.testing.assert_array_equal(state["0.weight"], model[0].weight.detach().numpy())
    np.testing.assert_array_equal(state["exp_avg of 0.bias"], optimizer.state[model[0].bias]["exp_avg"].numpy())
    assert state["step of 0.weight"].item() == 1.0


def test_state_of_a_parameter_the_optimizer_no_longer_lists_is_owned_by_a_question_mark() -> None:
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    orphan = torch.nn.Parameter(torch.zeros(1))
    optimizer.state[orphan] = {"momentum_buffer": torch.ones(1), "history": [1, 2]}
    state = snapshot(model, optimizer)
    assert state["momentum_buffer of ?"].tolist() == [1.0]
    assert "history of ?" not in state


def test_step_states_records_after_every_step_until_the_block_ends() -> None:
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with StepStates(model, optimizer) as states:
        for _ in range(2):
            optimizer.zero_grad()
            model(torch.ones(1, 2)).sum().backward()
            optimizer.step()
    optimizer.step()  # after the block: not recorded
    assert len(states.steps) == 2
    assert not np.array_equal(states.steps[0]["0.bias"], states.steps[1]["0.bias"])
    np.testing.assert_allclose(states.steps[1]["0.bias"], states.steps[0]["0.bias"] - 0.1, rtol=1e-6)
    assert states._handle is None
    states.__exit__(None, None, None)  # a second exit is harmless


class ThreadsSeen(torch.optim.Optimizer):
    """Plain SGD that notes the intra-op threads each step runs with (written out: a
    subclass calling ``super().step()`` would pass torch's step hooks twice)."""

    seen: ClassVar[list[int]] = []

    def __init__(self, params: Any, lr: float = 0.05) -> None:
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        ThreadsSeen.seen.append(torch.get_num_threads())
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"])


def test_record_run_records_every_step_of_the_reference_loop_on_its_threads() -> None:
    spec = Spec(epochs=1, batch_size=500, optimizer=functools.partial(ThreadsSeen, lr=0.05))
    ThreadsSeen.seen = []
    before = torch.get_num_threads()
    run = record_run(spec, threads=3)  # the default device: the CPU
    assert ThreadsSeen.seen == [3] * len(run.trajectory) and torch.get_num_threads() == before
    assert len(run.tensors) == len(run.trajectory) > 1
    assert list(run.tensors[0]) == ["hidden.weight", "hidden.bias", "predict.weight", "predict.bias"]
    assert run.trajectory["loss"].tolist() == train(spec)["loss"].tolist()
    assert run.trajectory.meta["device"] == "cpu"
    assert record_run(spec, "cpu:0").trajectory.meta["device"] == "cpu:0"  # built on the device asked for


def test_leaving_a_block_never_entered_is_harmless() -> None:
    model = _model()
    StepStates(model, torch.optim.SGD(model.parameters(), lr=0.1)).__exit__(None, None, None)
