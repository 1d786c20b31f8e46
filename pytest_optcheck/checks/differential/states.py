"""Every parameter and optimizer-state tensor after each optimizer step, for the checks
that compare two runs of the same spec tensor by tensor (resume, parity, distributed).

PyTorch's own optimizer tests compare each state tensor after every step, not only the
loss: an implementation can agree on the loss for many steps while ``exp_avg_sq`` already
drifts. :class:`StepStates` records them through a step post-hook — the user's objects
are not patched — as numpy copies named like a reader thinks of them: ``hidden.weight``
for a parameter, ``exp_avg_sq of hidden.weight`` for a piece of its state.

Memory is one copy of the parameters and the state per step: meant for the small models
these checks run (the seed's net: 31 parameters).
"""

from __future__ import annotations

import numbers
from typing import Any, Self

import numpy as np
import torch

from ...declare.build import Built, build
from ...declare.spec import Spec
from ...engine.stepwise import Run
from ...run.record.world import is_dtensor

#: One step's tensors: name -> array (a number of the state is a 0-d array).
StepTensors = dict[str, np.ndarray]


def parameter_names(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[int, str]:
    """``id(parameter)`` -> its name in the model (``"param 3"`` for one the model lacks)."""
    names = {id(p): name for name, p in model.named_parameters()}
    params = [p for group in optimizer.param_groups for p in group["params"]]
    return {id(p): names.get(id(p), f"param {i}") for i, p in enumerate(params)}


def as_array(value: Any) -> np.ndarray | None:
    """A tensor or a number as a numpy copy (bfloat16 and float16 widened to float32; a
    DTensor gathered whole);
    None for anything else (LBFGS's lists of past directions...)."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach()
        if is_dtensor(tensor):  # an FSDP2 shard: the whole tensor (a collective every rank makes)
            tensor = tensor.full_tensor()
        if tensor.is_sparse:
            tensor = tensor.to_dense()
        if tensor.dtype in (torch.bfloat16, torch.float16):
            tensor = tensor.float()
        return tensor.cpu().numpy().copy()
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        return np.asarray(value)
    return None


def snapshot(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> StepTensors:
    """Parameters (in the model's order), then each parameter's optimizer state."""
    names = parameter_names(model, optimizer)
    out: StepTensors = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            out[names[id(p)]] = as_array(p)  # type: ignore[assignment]
    for p, state in optimizer.state.items():
        owner = names.get(id(p), "?")
        for key, value in state.items():
            array = as_array(value)
            if array is not None:
                out[f"{key} of {owner}"] = array
    return out


class StepStates:
    """Context manager: :func:`snapshot` after every ``optimizer.step()``.

    ``model`` gives the names; pass the bare model even when the optimizer is driven
    through a wrapper (DistributedDataParallel), so names do not carry ``module.``.
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.model = model
        self.optimizer = optimizer
        self.steps: list[StepTensors] = []
        self._handle: Any = None

    def __enter__(self) -> Self:
        self._handle = self.optimizer.register_step_post_hook(self._after_step)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _after_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self.steps.append(snapshot(self.model, self.optimizer))


def record_run(spec: Spec, device: str = "cpu", threads: int | None = None, built: Built | None = None) -> Run:
    """The reference loop's run of ``spec`` with its tensors after every step."""
    from ...run.train import train

    built = built or build(spec, device)
    with StepStates(built.model, built.optimizer) as states:
        trajectory = train(spec, device, built=built, threads=threads)
    return Run(trajectory, states.steps)
