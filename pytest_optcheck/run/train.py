"""Stage 3 (run): the reference training loop and the schedule-only run.

The loop is the seed's: shuffle (from a generator seeded by the spec, never the global
RNG), forward, loss (+ ``l1`` times the sum of absolute parameter values), zero_grad,
backward, optional gradient clipping, step; LBFGS through a closure; the scheduler
stepped per ``interval``. It records through the same :class:`~.record.Recorder` users
put around their own loops.

What a step records as ``loss``: the objective evaluated *before* the update (data
loss plus the L1 penalty) — for LBFGS the first closure evaluation of the step, which
is what ``LBFGS.step`` returns, so every optimizer's ``loss[i]`` means the same thing.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from ..engine.trajectory import Trajectory
from .build import Built, build
from .record import Recorder, group_lrs, group_momenta
from .spec import Spec

#: Offset of the shuffle generator's seed from ``spec.seed``, so the batch order is not
#: drawn from the same stream as the data or the initialisation.
SHUFFLE_SEED_OFFSET = 7919


@contextlib.contextmanager
def intra_op_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` intra-op threads (None: leave torch's setting), then restore.

    One thread makes CPU trajectories independent of the machine's core count and stops
    xdist workers from spinning against each other; the previous count always comes back,
    so other tests are not affected."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def is_plateau(scheduler: Any) -> bool:
    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


def _step_scheduler(scheduler: Any, metric: float) -> None:
    if scheduler is None:
        return
    if is_plateau(scheduler):
        scheduler.step(metric)
    else:
        scheduler.step()


def _l1_penalty(model: torch.nn.Module) -> torch.Tensor:
    return sum(p.abs().sum() for p in model.parameters())  # type: ignore[return-value]


def train(spec: Spec, device: str = "cpu", built: Built | None = None, threads: int | None = None) -> Trajectory:
    """Run the reference loop for ``spec`` and return the recorded Trajectory."""
    with intra_op_threads(threads):
        return _train(spec, device, built)


def _train(spec: Spec, device: str, built: Built | None) -> Trajectory:
    built = built or build(spec, device)
    model, optimizer, scheduler = built.model, built.optimizer, built.scheduler
    inputs, targets = built.problem.inputs, built.problem.targets
    n = inputs.shape[0]
    shuffle = torch.Generator().manual_seed(spec.seed + SHUFFLE_SEED_OFFSET)
    lbfgs = isinstance(optimizer, torch.optim.LBFGS)
    model.train()
    with Recorder(optimizer, scheduler, model, record=spec.record) as rec:
        for epoch in range(spec.epochs):
            rec.epoch = epoch
            order = torch.randperm(n, generator=shuffle).to(inputs.device)
            epoch_losses: list[float] = []
            for start in range(0, n, spec.batch_size):
                index = order[start : start + spec.batch_size]
                closure = _closure(built, inputs[index], targets[index], spec)
                if lbfgs:
                    loss = optimizer.step(closure)
                else:
                    loss = closure()
                    optimizer.step()
                value = float(loss.detach().item())
                rec.log(loss=value)
                epoch_losses.append(value)
                if spec.interval == "step":
                    _step_scheduler(scheduler, value)
            if spec.interval == "epoch":
                mean = math.fsum(epoch_losses) / len(epoch_losses)
                _step_scheduler(scheduler, mean)
    trajectory = rec.trajectory
    # the run is described by the spec that built it (the golden's configuration), also when
    # ``optcheck.train(**overrides)`` made it from a spec the marker does not hold
    trajectory.meta.update(kind="train", device=str(built.device), run=spec.canonical())
    return trajectory


def _closure(built: Built, x: torch.Tensor, y: torch.Tensor, spec: Spec) -> Callable[[], torch.Tensor]:
    model, optimizer, loss_fn = built.model, built.optimizer, built.loss_fn

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        if spec.l1:
            loss = loss + spec.l1 * _l1_penalty(model)
        loss.backward()
        if spec.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), spec.clip_grad_norm)
        return loss

    return closure


def lr_schedule(
    spec: Spec,
    steps: int,
    device: str = "cpu",
    metrics: Sequence[float] | Callable[[int], float] | None = None,
    built: Built | None = None,
) -> Trajectory:
    """Step the scheduler ``steps`` times without training.

    ``["lr"][e]`` is the LR in effect during interval ``e``, starting with the initial LR
    at ``e = 0``. ``ReduceLROnPlateau`` needs a metric per interval: ``metrics`` gives
    it (a sequence or ``f(e)``); by default a constant, i.e. a plateau.
    """
    if steps < 1:
        raise ValueError(f"lr_schedule(steps={steps!r}): steps must be >= 1")
    built = built or build(spec, device)
    optimizer, scheduler = built.optimizer, built.scheduler
    lrs, momenta = [], []
    with warnings.catch_warnings():
        # Stepping a scheduler with no optimizer.step() is the point here.
        warnings.filterwarnings("ignore", message=".*lr_scheduler.step\\(\\).*optimizer.step\\(\\).*")
        for e in range(steps):
            lrs.append(group_lrs(optimizer))
            momenta.append(group_momenta(optimizer))
            metric = 0.0 if metrics is None else (metrics(e) if callable(metrics) else metrics[e])
            _step_scheduler(scheduler, float(metric))
    series: dict[str, Any] = {"lr": lrs}
    if "momentum" in spec.record:
        series["momentum"] = momenta
    epochs = list(range(steps)) if spec.interval == "epoch" else [0] * steps
    batches = [0] * steps if spec.interval == "epoch" else list(range(steps))
    return Trajectory(series, epochs, batches, meta={"kind": "lr_schedule", "run": spec.canonical()})
