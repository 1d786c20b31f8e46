"""Stage 3: recording a run into a :class:`~pytest_optcheck.trajectory.Trajectory`.

:class:`Recorder` watches an optimizer through ``register_step_pre_hook`` and
``register_step_post_hook`` — no monkeypatching of the user's objects — so a user's own
loop needs one extra line per step (``rec.log(loss=loss)``). The reference loop in
:mod:`pytest_optcheck.train` records through the same class, so both paths agree on what
``lr[i]`` means: the learning rate the optimizer *used* at step ``i`` (read just before the
step runs, after any scheduler change).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Self

import numpy as np
import torch

from ..engine.trajectory import Trajectory

#: |w| at or below this counts as zero for the ``sparsity`` series. Plain (sub)gradient
#: steps with an L1 penalty leave weights hovering near zero rather than exactly on it,
#: so an exact-zero count would always read 0; 1e-3 separates "pruned" from "small".
SPARSITY_EPS = 1e-3

HOOKED_SERIES = ("lr", "momentum", "grad_norm", "param_norm", "update_norm", "sparsity")


def group_lrs(optimizer: torch.optim.Optimizer) -> list[float]:
    """The learning rate of every param group (a tensor lr is read as a float)."""
    return [float(g["lr"]) for g in optimizer.param_groups]


def group_momenta(optimizer: torch.optim.Optimizer) -> list[float]:
    """Momentum per group: ``momentum`` (SGD, RMSprop), else ``betas[0]`` (Adam family),
    else NaN (Adagrad has none)."""
    out = []
    for group in optimizer.param_groups:
        if "momentum" in group:
            out.append(float(group["momentum"]))
        elif "betas" in group:
            out.append(float(group["betas"][0]))
        else:
            out.append(math.nan)
    return out


def group_values(optimizer: torch.optim.Optimizer, key: str) -> list[float]:
    """A numeric param-group key per group ("d" for Prodigy/D-Adaptation), read like lr."""
    return [float(g[key]) for g in optimizer.param_groups]


def group_keys(optimizer: torch.optim.Optimizer, record: Iterable[str]) -> tuple[str, ...]:
    """The names in ``record`` that are numeric keys of every param group (not a series of its own)."""
    def numeric(value: Any) -> bool:
        return isinstance(value, (int, float, torch.Tensor)) and not isinstance(value, bool)

    return tuple(n for n in record if n not in HOOKED_SERIES and n != "loss"
                 and all(n in g and numeric(g[n]) for g in optimizer.param_groups))


def _norm(tensors: list[torch.Tensor]) -> float:
    if not tensors:
        return 0.0
    norms = torch.stack([t.detach().double().norm() for t in tensors])
    return float(norms.norm())


class Recorder:
    """Context manager recording one value per optimizer step.

    Use it around a loop::

        with Recorder(optimizer, scheduler, model) as rec:
            for epoch in range(3):
                rec.epoch = epoch
                for x, y in data:
                    loss = loss_fn(model(x), y)
                    optimizer.zero_grad(); loss.backward(); optimizer.step()
                    rec.log(loss=loss)
        trajectory = rec.trajectory

    ``log`` attaches values to the latest step that lacks them, or to the next step when
    every step taken so far has them: logging before or after ``step()`` both work.
    The hooks are removed on exit, also when the loop raises.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        scheduler: Any = None,
        model: torch.nn.Module | None = None,
        record: Iterable[str] = ("loss", "lr"),
    ) -> None:
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.model = model
        self.record = tuple(record)
        self._values: dict[str, list[Any]] = {name: [] for name in self.record if name in HOOKED_SERIES}
        # Param-group keys ("d"), recorded per group before each step like lr.
        self._group_keys = group_keys(optimizer, self.record)
        self._values.update({name: [] for name in self._group_keys})
        self._logged: dict[str, list[float]] = {}
        self._pending: dict[str, float] = {}
        self._epochs: list[int] = []
        self._batches: list[int] = []
        self._epoch = 0
        self._batch = 0
        self._before: list[torch.Tensor] | None = None
        self._handles: list[Any] = []
        self._trajectory: Trajectory | None = None

    # -- position -----------------------------------------------------------------
    @property
    def epoch(self) -> int:
        return self._epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        """Set at the start of each epoch; the batch counter restarts at 0."""
        if value != self._epoch:
            self._batch = 0
        self._epoch = int(value)

    @property
    def steps(self) -> int:
        return len(self._epochs)

    # -- context ------------------------------------------------------------------
    def __enter__(self) -> Self:
        self._handles = [
            self.optimizer.register_step_pre_hook(self._pre_step),
            self.optimizer.register_step_post_hook(self._post_step),
        ]
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # -- hooks --------------------------------------------------------------------
    def _params(self) -> list[torch.Tensor]:
        if self.model is not None:
            return [p for p in self.model.parameters()]
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    def _pre_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        values = self._values
        if "lr" in values:
            values["lr"].append(group_lrs(self.optimizer))
        if "momentum" in values:
            values["momentum"].append(group_momenta(self.optimizer))
        for key in self._group_keys:
            values[key].append(group_values(self.optimizer, key))
        if "grad_norm" in values:
            values["grad_norm"].append(_norm([p.grad for p in self._params() if p.grad is not None]))
        if "update_norm" in values:
            self._before = [p.detach().clone() for p in self._params()]

    def _post_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        values = self._values
        params = self._params()
        if "param_norm" in values:
            values["param_norm"].append(_norm(params))
        if "update_norm" in values and self._before is not None:
            values["update_norm"].append(_norm([p.detach() - b for p, b in zip(params, self._before)]))
            self._before = None
        if "sparsity" in values:
            total = sum(p.numel() for p in params)
            small = sum(int((p.detach().abs() <= SPARSITY_EPS).sum()) for p in params)
            values["sparsity"].append(small / total if total else 0.0)
        self._epochs.append(self._epoch)
        self._batches.append(self._batch)
        self._batch += 1
        for name, value in self._pending.items():
            self._logged.setdefault(name, [])
            self._attach(name, value)
        self._pending = {}

    # -- user values --------------------------------------------------------------
    def log(self, **values: Any) -> None:
        """Record user values (``loss=...``) for the current step: tensors, numbers."""
        for name, value in values.items():
            number = float(value.detach().item()) if isinstance(value, torch.Tensor) else float(value)
            series = self._logged.setdefault(name, [])
            if len(series) < self.steps:
                self._attach(name, number)
            else:
                self._pending[name] = number

    def _attach(self, name: str, value: float) -> None:
        series = self._logged[name]
        series.extend([math.nan] * (self.steps - 1 - len(series)))
        series.append(value)

    # -- result -------------------------------------------------------------------
    @property
    def trajectory(self) -> Trajectory:
        """The recorded Trajectory (series in the order of ``record``, then user series)."""
        steps = self.steps
        series: dict[str, Any] = {}
        names = list(self.record) + [n for n in self._logged if n not in self.record]
        for name in names:
            if name in self._values:
                series[name] = np.asarray(self._values[name], dtype=np.float64).reshape(steps, -1) \
                    if name in ("lr", "momentum", *self._group_keys) else np.asarray(self._values[name], dtype=np.float64)
            elif name in self._logged:
                logged = self._logged[name]
                series[name] = np.asarray(logged + [math.nan] * (steps - len(logged)), dtype=np.float64)
        if steps == 0:
            series = {n: np.zeros((0,)) for n in series}
        return Trajectory(series, self._epochs, self._batches)
