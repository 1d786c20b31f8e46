"""How the reference loop calls what it is given: the calling conventions of torch and of
other libraries, detected from the optimizer and scheduler objects (the real training
setups of tests/test_real_setups.py).

* **Optimizer step.** torch's optimizers are called as the seed's loop calls them
  (``loss = closure(); optimizer.step()``; LBFGS: ``loss = optimizer.step(closure)``), so
  the goldens recorded with them keep their numbers. A third-party optimizer whose
  ``step`` takes a ``closure`` gets one, with the gradients already computed, as SAM's
  docs ask; the closure recomputes only once the parameters (or gradients) have changed
  since, so an optimizer that merely *may* evaluate a closure (Lion, Prodigy) costs
  nothing extra and sees the same gradients as without one.
* **Train/eval modes.** An optimizer with ``train()`` and ``eval()`` (schedule-free) is
  put in train mode before training.
* **Scheduler.** torch's schedulers: ``step()`` per ``interval``; ``ReduceLROnPlateau``:
  ``step(metric)``. timm-style schedulers (a ``step_update`` method, not a torch
  ``LRScheduler``) are driven as timm's training script drives them, whatever the
  ``interval``: ``step_update(num_updates=n)`` after every optimizer step (``n`` the steps
  taken so far) and ``step(epoch + 1)`` at the end of epoch ``epoch``.

Every call into user or library code goes through :func:`calling`, so an exception there
is reported with its own frames and the call of the loop that raised it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import inspect
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch

from ..errors import OptcheckError, RunError


def loop_call_text(call: str, where: str, exc: BaseException, hint: str | None = None) -> str:
    """An exception raised by user or library code inside the reference loop."""
    text = f"optcheck: {type(exc).__name__}: {exc}\n  while calling {call} {where}"
    return f"{text}\n  {hint}" if hint else text


#: Said when an optimizer step fails for want of the gradients' graph (SophiaH, AdaHessian).
CREATE_GRAPH_HINT = ("an optimizer that differentiates the gradients (Hessian-based: SophiaH, AdaHessian) "
                     "needs backward(create_graph=True): declare create_graph=True in the marker")


class Closure(enum.Enum):
    NONE = "none"  # step(); the loss and gradients computed before (torch's optimizers)
    ONLY = "only"  # loss = step(closure): the optimizer evaluates it (LBFGS)
    READY = "ready"  # gradients computed first, then step(closure) (SAM and friends)


class Schedule(enum.Enum):
    NONE = "none"
    TORCH = "torch"
    PLATEAU = "plateau"
    TIMM = "timm"


@dataclasses.dataclass(frozen=True)
class Conventions:
    closure: Closure
    modes: bool
    schedule: Schedule


def detect(optimizer: Any, scheduler: Any) -> Conventions:
    return Conventions(_closure_convention(optimizer), _has_modes(optimizer), _schedule_convention(scheduler))


def _closure_convention(optimizer: Any) -> Closure:
    if isinstance(optimizer, torch.optim.LBFGS):
        return Closure.ONLY
    if type(optimizer).__module__.split(".")[0] == "torch":
        return Closure.NONE
    try:
        takes_closure = "closure" in inspect.signature(optimizer.step).parameters
    except (TypeError, ValueError):
        takes_closure = False
    return Closure.READY if takes_closure else Closure.NONE


def _has_modes(optimizer: Any) -> bool:
    return callable(getattr(optimizer, "train", None)) and callable(getattr(optimizer, "eval", None))


def _schedule_convention(scheduler: Any) -> Schedule:
    if scheduler is None:
        return Schedule.NONE
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        return Schedule.PLATEAU
    if callable(getattr(scheduler, "step_update", None)) and not isinstance(
        scheduler, torch.optim.lr_scheduler.LRScheduler
    ):
        return Schedule.TIMM
    return Schedule.TORCH


@contextlib.contextmanager
def calling(call: str, where: str, create_graph: bool = True) -> Iterator[None]:
    """Re-raise an exception from user or library code as a :class:`RunError` saying which
    call of the loop raised it (the original stays the ``__cause__``, for its frames).

    ``create_graph=False`` for an optimizer step: a failure to differentiate the gradients
    then says what to declare, since needing the graph cannot be told from the optimizer."""
    try:
        yield
    except OptcheckError:
        raise
    except Exception as exc:
        hint = CREATE_GRAPH_HINT if not create_graph and "does not require grad" in str(exc) else None
        raise RunError(loop_call_text(call, where, exc, hint)) from exc


def prepare(conventions: Conventions, optimizer: Any) -> None:
    """Before training: schedule-free optimizers into train mode."""
    if conventions.modes:
        with calling("optimizer.train()", "before training"):
            optimizer.train()


def optimizer_step(conventions: Conventions, optimizer: Any, compute: Callable[[], torch.Tensor],
                   params: Iterable[torch.Tensor], where: str, create_graph: bool = False) -> torch.Tensor:
    """One optimizer step; returns the loss before the update (what the step records)."""
    if conventions.closure is Closure.ONLY:
        with calling("optimizer.step(closure)", where, create_graph):
            return optimizer.step(compute)
    with calling("the loss and backward (model forward, loss function, backward)", where):
        loss = compute()
    if conventions.closure is Closure.NONE:
        with calling("optimizer.step()", where, create_graph):
            optimizer.step()
    else:
        with calling("optimizer.step(closure)", where, create_graph):
            optimizer.step(_ready_closure(loss, compute, list(params)))
    return loss


def _ready_closure(loss: torch.Tensor, compute: Callable[[], torch.Tensor],
                   params: list[torch.Tensor]) -> Callable[[], torch.Tensor]:
    """A closure whose first evaluation is the one already made, while the parameters and
    gradients are those it left (tensor version counters tell); after that it recomputes."""
    computed = _versions(params)

    def closure() -> torch.Tensor:
        nonlocal computed
        if computed is not None and _versions(params) == computed:
            computed = None
            return loss
        computed = None
        return compute()

    return closure


def _versions(params: list[torch.Tensor]) -> tuple[Any, ...]:
    # Tensor._version is the one private attribute the package reads: no public API says whether a
    # tensor was written in place, and an optimizer that moves the parameters before its first closure
    # call (SAM) must get a fresh forward, while LBFGS must reuse the one made (recomputing it would
    # change every recorded closure-optimizer run, goldens included). Present in every torch >= 1.x.
    return tuple((p._version, id(p.grad), None if p.grad is None else p.grad._version) for p in params)


def after_step(conventions: Conventions, scheduler: Any, interval: str, num_updates: int, metric: float,
               where: str) -> None:
    """After optimizer step number ``num_updates`` (1-based, counted over the run)."""
    if conventions.schedule is Schedule.TIMM:
        with calling(f"scheduler.step_update(num_updates={num_updates})", f"after {where}"):
            scheduler.step_update(num_updates=num_updates)
    elif interval == "step":
        _step(conventions, scheduler, metric, f"after {where}")


def end_of_epoch(conventions: Conventions, scheduler: Any, interval: str, epoch: int, metric: float) -> None:
    where = f"at the end of epoch {epoch}"
    if conventions.schedule is Schedule.TIMM:
        _timm_epoch(scheduler, epoch + 1, metric, where)
    elif interval == "epoch":
        _step(conventions, scheduler, metric, where)


def schedule_step(conventions: Conventions, scheduler: Any, interval: str, index: int, metric: float) -> None:
    """One interval of a schedule-only run (``lr_schedule``); ``index`` counts from 0."""
    if conventions.schedule is Schedule.TIMM:
        if interval == "epoch":
            _timm_epoch(scheduler, index + 1, metric, f"at the end of epoch {index}")
        else:
            with calling(f"scheduler.step_update(num_updates={index + 1})", f"after step {index}"):
                scheduler.step_update(num_updates=index + 1)
    else:
        _step(conventions, scheduler, metric, f"after interval {index}")


def _timm_epoch(scheduler: Any, epoch: int, metric: float, where: str) -> None:
    try:
        takes_metric = "metric" in inspect.signature(scheduler.step).parameters
    except (TypeError, ValueError):
        takes_metric = False
    with calling(f"scheduler.step({epoch})", where):
        if takes_metric:
            scheduler.step(epoch, metric=metric)
        else:
            scheduler.step(epoch)


def _step(conventions: Conventions, scheduler: Any, metric: float, where: str) -> None:
    if conventions.schedule is Schedule.PLATEAU:
        with calling("scheduler.step(metric)", where):
            scheduler.step(metric)
    elif conventions.schedule is Schedule.TORCH:
        with calling("scheduler.step()", where):
            scheduler.step()
