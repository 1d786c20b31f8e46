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

The loop can stop after a given step and start again from a :class:`LoopState` (where
it stood, and the batch order's generator): the resume check saves that with the model,
optimizer and scheduler, and continues in fresh objects — the same loop, not a copy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch

from ..declare.build import Built, build
from ..declare.spec import Spec
from ..engine.thinning import thin
from ..engine.trajectory import Trajectory
from . import conventions
from .record import HostFloat, Recorder, group_lrs, group_momenta

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


def l1_penalty(params: Iterable[torch.Tensor]) -> torch.Tensor:
    """The sum of absolute parameter values (the ``l1`` key's penalty, before its factor)."""
    return sum(p.abs().sum() for p in params)  # type: ignore[return-value]


@dataclasses.dataclass(frozen=True)
class LoopState:
    """Where the reference loop stands between two steps: what a checkpoint must hold
    besides the model, optimizer and scheduler.

    ``shuffle`` is the batch-order generator's state at the start of ``epoch``, so a resumed
    loop draws the same order and skips the ``batch`` batches already taken; ``updates``
    counts the optimizer steps so far (a timm scheduler is stepped with it);
    ``epoch_losses`` are this epoch's losses so far (the end of the epoch steps on their
    mean). ``state_dict()`` holds tensors, numbers and lists only (``weights_only`` loads it).
    """

    epoch: int
    batch: int
    shuffle: torch.Tensor
    updates: int
    epoch_losses: tuple[float, ...] = ()

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "batch": self.batch, "shuffle": self.shuffle, "updates": self.updates,
                "epoch_losses": list(self.epoch_losses)}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> LoopState:
        return cls(int(state["epoch"]), int(state["batch"]), state["shuffle"], int(state["updates"]),
                   tuple(state["epoch_losses"]))


def train(spec: Spec, device: str = "cpu", built: Built | None = None, threads: int | None = None,
          *, start: LoopState | None = None) -> Trajectory:
    """Run the reference loop for ``spec`` and return the recorded Trajectory.

    With ``start`` (and ``built`` holding the loaded objects) the loop continues from there;
    the trajectory then holds the remaining steps only."""
    with intra_op_threads(threads):
        return _train(spec, device, built, start, None)[0]


def train_until(spec: Spec, stop: int, device: str = "cpu", built: Built | None = None,
                threads: int | None = None) -> tuple[Trajectory, LoopState]:
    """Run the reference loop for its first ``stop`` steps; also return where it stopped."""
    with intra_op_threads(threads):
        trajectory, state = _train(spec, device, built, None, stop)
    if state is None:
        raise ValueError(f"train_until(stop={stop!r}): the run has only {len(trajectory)} steps")
    return trajectory, state


def _train(spec: Spec, device: str, built: Built | None, start: LoopState | None,
           stop: int | None) -> tuple[Trajectory, LoopState | None]:
    built = built or build(spec, device)
    model, optimizer, scheduler = built.model, built.optimizer, built.scheduler
    inputs, targets = built.problem.inputs, built.problem.targets
    conv = conventions.detect(optimizer, scheduler)
    model.train()
    conventions.prepare(conv, optimizer)
    # a whole run is thinned by record_every; the parts of a cut and resumed run stay whole (joined step by step)
    every = spec.record_every if start is None and stop is None else 1
    # No scheduler for the Recorder: it reads the LRs from the optimizer's param groups and would
    # only type-check the scheduler, which build() has checked already.
    with Recorder(optimizer, model=model, record=spec.record, record_every=every) as rec:

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

        stopped = run_epochs(spec, inputs.shape[0], inputs.device, step, scheduler, start_epoch, conv,
                             start=start, stop=stop)
    trajectory = rec.trajectory
    # the run is described by the spec that built it (the golden's configuration), also when
    # ``optcheck.train(**overrides)`` made it from a spec the marker does not hold
    trajectory.meta.update(kind="train", device=str(built.device), run=spec.canonical())
    return trajectory, stopped


def run_epochs(
    spec: Spec,
    n: int,
    device: torch.device,
    step: Callable[[torch.Tensor, str], float | HostFloat],
    scheduler: Any,
    start_epoch: Callable[[int], None],
    conv: conventions.Conventions,
    *,
    start: LoopState | None = None,
    stop: int | None = None,
) -> LoopState | None:
    """The reference loop's schedule, shared with the stacked replicas of calibration: the
    batch order (from a generator seeded by the spec), ``step(index, where)`` per batch
    (returning the loss a plateau scheduler would see: a float, or a :class:`~.record.HostFloat`
    that stays on the device until a scheduler reads it), and the scheduler driven by its
    calling convention (:mod:`.conventions`) after every step and at every epoch's end.

    With ``stop`` it returns after that many steps, with where it stood; with ``start`` it
    continues from there (the resume check). Otherwise it runs the spec's epochs, returns None."""
    shuffle = torch.Generator().manual_seed(spec.seed + SHUFFLE_SEED_OFFSET)
    if start is not None:
        shuffle.set_state(start.shuffle)
    num_updates = start.updates if start else 0
    for epoch in range(start.epoch if start else 0, spec.epochs):
        start_epoch(epoch)
        resuming = start is not None and epoch == start.epoch
        epoch_start = shuffle.get_state()
        order = torch.randperm(n, generator=shuffle).to(device)
        epoch_losses: list[float | HostFloat] = list(start.epoch_losses) if resuming and start else []
        first = start.batch if resuming and start else 0
        for batch, begin in enumerate(range(first * spec.batch_size, n, spec.batch_size), start=first):
            where = f"step {batch} of epoch {epoch}"
            value = step(order[begin : begin + spec.batch_size], where)
            epoch_losses.append(value)
            num_updates += 1
            conventions.after_step(conv, scheduler, spec.interval, num_updates, value, where)
            if num_updates == stop and begin + spec.batch_size < n:
                return LoopState(epoch, batch + 1, epoch_start, num_updates, tuple(float(v) for v in epoch_losses))
        mean = HostFloat.mean(epoch_losses)  # math.fsum(losses) / len(losses), one transfer
        conventions.end_of_epoch(conv, scheduler, spec.interval, epoch, mean)
        if num_updates == stop:
            return LoopState(epoch + 1, 0, shuffle.get_state(), num_updates)
    return None


def _closure(built: Built, x: torch.Tensor, y: torch.Tensor, spec: Spec) -> Callable[[], torch.Tensor]:
    model, optimizer, loss_fn = built.model, built.optimizer, built.loss_fn

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        if spec.l1:
            loss = loss + spec.l1 * l1_penalty(model.parameters())
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
    full = Trajectory(series, epochs, batches, meta={"kind": "lr_schedule", "run": spec.canonical()})
    return thin(full, spec.record_every)
