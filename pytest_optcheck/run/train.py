"""Stage 3 (run): the reference training loop and the schedule-only run.

The loop is the seed's: shuffle (from a generator seeded by the spec, never the global
RNG), forward, loss (+ ``l1`` times the sum of absolute parameter values), zero_grad,
backward, optional gradient clipping, step; LBFGS through a closure; the scheduler
stepped per ``interval``. Other libraries' calling conventions (closures, train/eval
modes, timm-style schedulers) are detected and followed by :mod:`.conventions`, through
which every call into user or library code goes. It records through the same
:class:`~.record.Recorder` users put around their own loops.

What a step records as ``loss``: the objective evaluated *before* the update (data
loss plus the L1 penalty) — for LBFGS the first closure evaluation of the step, which
is what ``LBFGS.step`` returns, so every optimizer's ``loss[i]`` means the same thing.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch

from ..engine.trajectory import Trajectory
from . import conventions
from .build import Built, build
from .record import HostFloat, Recorder, group_lrs, group_momenta
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


def _l1_penalty(model: torch.nn.Module) -> torch.Tensor:
    return l1_penalty(model.parameters())


def l1_penalty(params: Iterable[torch.Tensor]) -> torch.Tensor:
    """The sum of absolute parameter values (the ``l1`` key's penalty, before its factor)."""
    return sum(p.abs().sum() for p in params)  # type: ignore[return-value]


def train(spec: Spec, device: str = "cpu", built: Built | None = None, threads: int | None = None) -> Trajectory:
    """Run the reference loop for ``spec`` and return the recorded Trajectory."""
    with intra_op_threads(threads):
        return _train(spec, device, built)


def _train(spec: Spec, device: str, built: Built | None) -> Trajectory:
    built = built or build(spec, device)
    model, optimizer, scheduler = built.model, built.optimizer, built.scheduler
    inputs, targets = built.problem.inputs, built.problem.targets
    conv = conventions.detect(optimizer, scheduler)
    model.train()
    conventions.prepare(conv, optimizer)
    with Recorder(optimizer, scheduler, model, record=spec.record) as rec:

        def step(index: torch.Tensor, where: str) -> HostFloat:
            closure = _closure(built, inputs[index], targets[index], spec)
            loss = conventions.optimizer_step(conv, optimizer, closure, model.parameters(), f"at {where}",
                                              spec.create_graph)
            # The loss stays a tensor: only a scheduler that reads it (ReduceLROnPlateau,
            # through float()) brings it to the host, so the loop does not synchronise.
            loss = loss.detach()
            rec.log(loss=loss)
            return HostFloat(loss)

        def start_epoch(epoch: int) -> None:
            rec.epoch = epoch

        run_epochs(spec, inputs.shape[0], inputs.device, step, scheduler, start_epoch, conv)
    trajectory = rec.trajectory
    trajectory.meta.update(kind="train", device=str(built.device))
    return trajectory


def run_epochs(
    spec: Spec,
    n: int,
    device: torch.device,
    step: Callable[[torch.Tensor, str], float | HostFloat],
    scheduler: Any,
    start_epoch: Callable[[int], None],
    conv: conventions.Conventions,
) -> None:
    """The reference loop's schedule, shared with the stacked replicas of calibration: the
    batch order (from a generator seeded by the spec), ``step(index, where)`` per batch
    (returning the loss a plateau scheduler would see: a float, or a :class:`~.record.HostFloat`
    that stays on the device until a scheduler reads it), and the scheduler driven by its
    calling convention (:mod:`.conventions`) after every step and at every epoch's end."""
    shuffle = torch.Generator().manual_seed(spec.seed + SHUFFLE_SEED_OFFSET)
    num_updates = 0
    for epoch in range(spec.epochs):
        start_epoch(epoch)
        order = torch.randperm(n, generator=shuffle).to(device)
        epoch_losses: list[float | HostFloat] = []
        for batch, start in enumerate(range(0, n, spec.batch_size)):
            where = f"step {batch} of epoch {epoch}"
            value = step(order[start : start + spec.batch_size], where)
            epoch_losses.append(value)
            num_updates += 1
            conventions.after_step(conv, scheduler, spec.interval, num_updates, value, where)
        mean = HostFloat.mean(epoch_losses)  # math.fsum(losses) / len(losses), one transfer
        conventions.end_of_epoch(conv, scheduler, spec.interval, epoch, mean)


def _closure(built: Built, x: torch.Tensor, y: torch.Tensor, spec: Spec) -> Callable[[], torch.Tensor]:
    model, optimizer, loss_fn = built.model, built.optimizer, built.loss_fn

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        if spec.l1:
            loss = loss + spec.l1 * _l1_penalty(model)
        if spec.create_graph:
            with warnings.catch_warnings():
                # Declared by the user for Hessian-based optimizers; the cycle it warns of is
                # broken by zero_grad(set_to_none=True) on the next step.
                warnings.filterwarnings("ignore", message=".*create_graph=True.*reference cycle.*")
                loss.backward(create_graph=True)
        else:
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
    conv = conventions.detect(optimizer, scheduler)
    lrs, momenta = [], []
    with warnings.catch_warnings():
        # Stepping a scheduler with no optimizer.step() is the point here.
        warnings.filterwarnings("ignore", message=".*lr_scheduler.step\\(\\).*optimizer.step\\(\\).*")
        for e in range(steps):
            lrs.append(group_lrs(optimizer))
            momenta.append(group_momenta(optimizer))
            metric = 0.0 if metrics is None else (metrics(e) if callable(metrics) else metrics[e])
            conventions.schedule_step(conv, scheduler, spec.interval, e, float(metric))
    series: dict[str, Any] = {"lr": lrs}
    if "momentum" in spec.record:
        series["momentum"] = momenta
    epochs = list(range(steps)) if spec.interval == "epoch" else [0] * steps
    batches = [0] * steps if spec.interval == "epoch" else list(range(steps))
    return Trajectory(series, epochs, batches, meta={"kind": "lr_schedule"})
