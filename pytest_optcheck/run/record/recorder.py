"""The Recorder — recording a run into a :class:`~pytest_optcheck.engine.trajectory.Trajectory`.

:class:`Recorder` watches an optimizer through ``register_step_pre_hook`` and
``register_step_post_hook`` — no monkeypatching of the user's objects — so a user's own
loop needs one extra line per step (``rec.log(loss=loss)``). The reference loop in
:mod:`pytest_optcheck.run.train` records through the same class, so both paths agree on what
``lr[i]`` means: the learning rate the optimizer *used* at step ``i`` (read just before the
step runs, after any scheduler change).

Recording stays out of the training loop's way, on the CPU and on an accelerator:

* Nothing on an accelerator is converted to a Python number while the loop runs. A
  logged tensor is kept (detached) where it is, norms are computed by kernels on the
  parameters' device and kept as tensors, and every tensor series goes to the host once,
  when :attr:`Recorder.trajectory` is read (long runs stack their values into one device
  tensor per :data:`~.series.CHUNK` steps, still without a synchronisation). So recording adds no
  host-device synchronisation per step. Python numbers (``lr``, a logged ``float``) are
  kept as they are, and so is a tensor logged on the CPU, read when it is logged: its
  value is in host memory already.
* Norms go through as few kernels as the device allows. Parameters small enough
  (:data:`~.norms.FLAT_NUMEL`) on one device are copied, three calls a step, into a row of a
  history buffer, and a few kernels reduce :data:`~.norms.HISTORY_ROWS` steps at a time; larger
  models are reduced per tensor each step (see :mod:`.norms`). ``update_norm`` keeps the
  step's starting point in buffers allocated once, never a fresh ``clone()`` per step.

What the series mean:

* ``lr``, ``momentum`` and any other numeric key of the param groups (``weight_decay``,
  Prodigy's ``d``): one column per group, the value in effect when step ``i`` ran (read
  just before it). A group without the key reads NaN.
* ``grad_norm``: the L2 norm over all parameters of the gradients the step used — those
  present when ``step()`` is called, or, for a step that runs a closure
  (``step(closure)``: LBFGS, Lightning's automatic optimization), those right after the
  closure's first evaluation, i.e. at the step's starting point.
* ``param_norm``, ``update_norm``: the norm of the parameters after the step, and of what
  the step changed. ``sparsity``: the fraction of parameters with ``|w| <= SPARSITY_EPS`` (:mod:`.norms`).
* Values passed to :meth:`Recorder.log` (``loss``, anything else): see there for which
  step a value belongs to and how several values of one step are combined. Values passed
  to :meth:`Recorder.log_epoch` form per-epoch series (``trajectory.epoch_series``).
* ``skipped`` (with ``scaler=``): 1 for a step the ``torch.amp.GradScaler`` skipped
  (inf/NaN gradients: the optimizer's ``step()`` never ran, or, for a fused optimizer that
  takes the scaler's ``found_inf`` into its own kernel, ran and left the weights alone), else
  0. That iteration is still a row — its logged values, the LR in effect — so no value moves
  to a neighbour; its norms read NaN.

What is watched: a ``torch.optim.Optimizer`` itself, else the optimizer a wrapper holds
(:func:`.watch.watched_optimizer`).
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Self

import numpy as np
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from ...declare.spec import record_every as check_every
from ...engine.thinning import thin
from ...engine.trajectory import Trajectory
from ...errors import OptcheckError, suggest
from ..autocast import AutocastSeen
from .norms import Norms
from .series import DEFAULT_REDUCE, REDUCTIONS, Column, GroupRows, as_float
from .steps import OpenSteps
from .watch import WRAPPED_AT, UpdateWatch, check_arguments, describe_class, watched_optimizer
from .world import Ranks

#: Series the recorder computes itself through the optimizer's hooks.
HOOKED_SERIES = ("lr", "momentum", "grad_norm", "param_norm", "update_norm", "sparsity")
#: Hooked series that are norms of (or counts over) the parameters, one tensor per step.
TENSOR_SERIES = ("grad_norm", "param_norm", "update_norm", "sparsity")


def group_lrs(optimizer: torch.optim.Optimizer) -> list[float]:
    """The learning rate of every param group (a tensor lr is read as a float)."""
    return [float(g["lr"]) for g in optimizer.param_groups]


def group_momenta(optimizer: torch.optim.Optimizer) -> list[float]:
    """Momentum per group: ``momentum`` (SGD, RMSprop), else ``betas[0]`` (Adam family),
    else NaN (Adagrad has none)."""
    return [float(m) for m in _momenta(optimizer)]


def _momenta(optimizer: torch.optim.Optimizer) -> list[Any]:
    out: list[Any] = []
    for group in optimizer.param_groups:
        if "momentum" in group:
            out.append(group["momentum"])
        elif "betas" in group:
            out.append(group["betas"][0])
        else:
            out.append(math.nan)
    return out


def _is_number(value: Any) -> bool:
    """A real number or a one-element real tensor (a tensor lr), not a bool or None."""
    if isinstance(value, torch.Tensor):
        return value.numel() == 1 and not value.is_complex() and value.dtype != torch.bool
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _inner_optimizers(optimizer: Any) -> list[tuple[str, Any]]:
    """Optimizers an optimizer holds (SAM's ``base_optimizer``): the ones whose ``step()``
    runs when the wrapper's does not."""
    found = []
    for attr in WRAPPED_AT:
        inner = getattr(optimizer, attr, None)
        if isinstance(inner, torch.optim.Optimizer) and inner is not optimizer:
            found.append((attr, inner))
    return found


_describe = describe_class


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

    ``record`` names the series: the ones the recorder computes (:data:`HOOKED_SERIES`),
    any numeric key of the optimizer's param groups (``"weight_decay"``, ``"d"``), and the
    values the loop logs (``"loss"``). The hooks are removed on exit, also when the loop
    raises. ``model`` chooses the parameters the norms are over (default: the optimizer's).
    ``record_every=k`` thins the trajectory: every k-th step is kept as a row, and each
    bucket of k steps keeps every series' min, max and mean (docs/long-runs.md).

    Inside an initialised process group (torchrun) the trajectory is the *global* one, made
    in one exchange when it is read (:mod:`.world`): each step's logged values combined over
    the ranks by ``reduce`` (``"mean"``; ``"sum"``, ``"min"``... or ``{series: rule}``), the
    norms of the whole model (DTensor shards summed over their mesh).

    ``scaler``: the ``torch.amp.GradScaler`` the loop steps through (see ``skipped`` above);
    ``optimizer_attr``: where a wrapper that is no torch optimizer keeps the one it wraps.
    """

    #: A tensor logged on the CPU is read at once (see :meth:`log`). A test hook, and only
    #: that: tests set it False (on the class or one recorder) to run an accelerator's path
    #: — keep the tensor, read it with the trajectory — on the CPU.
    _read_cpu = True

    def __init__(
        self,
        optimizer: Any,
        scheduler: Any = None,
        model: torch.nn.Module | None = None,
        record: Iterable[str] = ("loss", "lr"),
        record_every: int = 1,
        reduce: str | Mapping[str, str] = "mean",
        *,
        scaler: Any = None,
        optimizer_attr: str | None = None,
    ) -> None:
        if isinstance(record, str):
            record = (record,)
        self.record_every = check_every(record_every)
        check_arguments(scheduler, model, scaler)
        #: what the caller passed (a wrapper, perhaps); ``optimizer`` is the one hooked
        self.given = optimizer
        self.optimizer_attr = optimizer_attr
        self.optimizer, self.wrappers = watched_optimizer(optimizer, optimizer_attr)
        optimizer = self.optimizer
        self.scheduler = scheduler
        self.model = model
        self.scaler = scaler
        self.record = tuple(record)
        hooked = set(self.record) & set(HOOKED_SERIES)
        self._group_keys = tuple(n for n in self.record
                                 if n not in HOOKED_SERIES and n != "loss" and _group_key(optimizer, n))
        self._rows: dict[str, GroupRows] = {
            n: GroupRows() for n in self.record if n in ("lr", "momentum") or n in self._group_keys}
        self._norms = frozenset(n for n in TENSOR_SERIES if n in hooked)
        self._want_grad = "grad_norm" in hooked
        self._logged: dict[str, Column] = {}
        self._per_epoch: dict[str, dict[int, float]] = {}  # rec.log_epoch(): name -> {epoch: value}
        self._epochs: list[int] = []  # each step's epoch
        self._batch_starts: list[int] = []  # steps at which the batch count restarts
        self._skipped: list[int] = []  # steps the scaler skipped (rows without an optimizer step)
        self._steps_at_update = 0  # steps counted at the scaler's latest update()
        # (step, found_inf tensor) for each step of a fused optimizer under the scaler: the
        # scaler hands it optimizer.found_inf and its step() runs even when it skips. Kept on
        # the device, read at assembly: reading it per step would synchronise with the GPU.
        self._found_inf: list[tuple[int, torch.Tensor]] = []
        self._open_steps = OpenSteps()  # a subclass's step() calling its parent's is one step
        self._epoch = 0
        self._reducer: Norms | None = None
        self._grad_seen = False  # this step's gradients are taken (by a closure)
        self._no_grad = torch.no_grad()  # one object, entered once a step
        self._handles: list[Any] = []
        self._entered = False
        #: in a process group: how logged values combine over the ranks, norms of sharded models
        self._ranks = Ranks(reduce)
        self._autocast: AutocastSeen | None = None
        self._stepped_elsewhere: set[str] = set()  # other optimizers seen stepping (for the no-step message)

    # -- position -----------------------------------------------------------------
    @property
    def epoch(self) -> int:
        return self._epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        """Set at the start of each epoch; the batch counter restarts at 0."""
        if value != self._epoch:
            self._batch_starts.append(len(self._epochs))  # the next step is batch 0
        self._epoch = int(value)

    @property
    def steps(self) -> int:
        return len(self._epochs)

    # -- context ------------------------------------------------------------------
    def __enter__(self) -> Self:
        self._entered = True
        self._handles = [self.optimizer.register_step_pre_hook(self._pre_step)]
        self._autocast = AutocastSeen(self.optimizer, self.model)
        self._handles.append(self.optimizer.register_step_post_hook(self._post_step))
        if self.scaler is not None:
            self._handles.append(UpdateWatch(self.scaler, self._scaler_updated))
        # every optimizer's steps (public, global, removed on exit): a loop that steps another
        # optimizer than the watched one is told which one
        self._handles.append(register_optimizer_step_pre_hook(self._any_step))
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._open_steps.clear()
        if self._autocast is not None:
            self._autocast.close()

    @property
    def autocast(self) -> str | None:
        """The autocast dtype the run used (``"bfloat16"``), or None when it ran without."""
        return self._autocast.value if self._autocast is not None else None

    # -- hooks --------------------------------------------------------------------
    def _reduce(self) -> Norms:
        """The norm series' reducer, made at the first step (lazy modules have their
        parameters by then): over ``model``'s parameters, else the optimizer's."""
        if self._reducer is None:
            if self.model is not None:
                params = list(self.model.parameters())
            else:
                params = [p for g in self.optimizer.param_groups for p in g["params"]]
            self._reducer = self._ranks.norms(params, self._norms)
        return self._reducer

    def _any_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if optimizer is not self.optimizer:
            self._stepped_elsewhere.add(_describe(optimizer))

    def _new_row(self) -> None:
        """Count a step (or a step the scaler skipped) at the current epoch, with the
        param-group series as they are now: the values that step uses."""
        self._epochs.append(self._epoch)
        if self._rows:
            groups = self.optimizer.param_groups
            for name, series in self._rows.items():
                series.add(self._group_row(name, groups))

    def _group_row(self, name: str, groups: list[dict[str, Any]]) -> list[Any]:
        """One step's per-group values of ``name``; tensors (a tensor lr) copied as they are now."""
        if name == "momentum":
            row = _momenta(self.optimizer)
        else:
            row = [g.get(name, math.nan) for g in groups]
        for value in row:
            if type(value) is not float and type(value) is not int:  # bool is neither
                return [_snapshot_number(v, name) for v in row]
        return row

    def _pre_step(self, optimizer: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not self._open_steps.enter():  # an inner call of a step (see .steps)
            return None
        # A step is counted as it starts: values logged from inside its closure are its own.
        if self._autocast is not None:
            self._autocast.note()
        self._new_row()
        found_inf = getattr(optimizer, "found_inf", None) if self.scaler is not None else None
        if isinstance(found_inf, torch.Tensor):  # GradScaler.step's contract with a fused optimizer
            self._found_inf.append((self.steps - 1, found_inf.detach()))
        if not self._norms:
            return None
        closure = None
        if self._want_grad:
            closure = kwargs.get("closure") if "closure" in kwargs else (args[1] if len(args) > 1 else None)
            self._grad_seen = not callable(closure)  # no closure: the gradients are taken now
        with self._no_grad:
            self._reduce().before_step(grads=self._want_grad and self._grad_seen)
        if closure is not None and not self._grad_seen:
            wrapped = self._closure_taking_grads(closure)
            if "closure" in kwargs:
                return args, {**kwargs, "closure": wrapped}
            return (args[0], wrapped, *args[2:]), kwargs
        return None

    def _take_grads(self) -> None:
        with self._no_grad:
            self._reduce().take_grads()
        self._grad_seen = True

    def _closure_taking_grads(self, closure: Callable[[], Any]) -> Callable[[], Any]:
        """The closure, taking the gradients after its first evaluation: the gradients at
        the step's starting point, which the step uses."""

        def closure_then_take_grads() -> Any:
            loss = closure()
            if not self._grad_seen:
                self._take_grads()
            return loss

        return closure_then_take_grads

    def _post_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if not self._open_steps.leave() or not self._norms:  # an inner call of a step (see .steps)
            return
        if self._want_grad and not self._grad_seen:
            self._take_grads()  # a closure the step never called: the gradients now
        with self._no_grad:
            self._reduce().after_step(self.steps - 1)

    def _scaler_updated(self) -> None:
        """After each ``scaler.update()``: an update with no optimizer step since the previous
        one ends an iteration whose step the scaler skipped (inf/NaN gradients). It stays a
        row: the values logged for it and the LR in effect; the norms read NaN."""
        if self.steps == self._steps_at_update:
            self._skipped.append(self.steps)
            self._new_row()
        self._steps_at_update = self.steps

    # -- user values --------------------------------------------------------------
    def log(self, reduce: str | None = None, **values: Any) -> None:
        """Record values for the current step: ``rec.log(loss=loss)``.

        Each value is a number or a one-element tensor. A tensor on an accelerator is kept
        (detached) on its device, not converted, so logging never synchronises with it; do
        copied (one kernel, no synchronisation), so changing it in place afterwards
        (``loss /= n``) does not change what was logged. A tensor on the CPU is read at once:
        its value is in host memory already, and reading it costs less than keeping it.

        Which step a value belongs to: values logged since the previous optimizer step
        belong to the next one, so logging before or after ``step()`` both work; a value
        logged right after a step that has none for that name is that step's (so the value
        logged after the last ``step()`` is the last step's). With gradient accumulation,
        log every micro-batch's loss before the step that applies them: the values of one
        step are combined by ``reduce`` — ``"mean"`` unless told otherwise (``"sum"``,
        ``"first"``, ``"last"``, ``"min"``, ``"max"``), set by the first ``log`` of that
        name. A value that would belong to a step that never came — logged after the last
        step already had its value of that name (a loop that logs before ``step()``, then
        once more after the loop) — is left out of the trajectory with a warning.
        """
        if reduce is not None and reduce not in REDUCTIONS:
            raise OptcheckError(
                f"optcheck: rec.log(reduce={reduce!r}): unknown reduction.{suggest(str(reduce), REDUCTIONS)} "
                f"Known: {', '.join(REDUCTIONS)}."
            )
        steps = len(self._epochs)
        logged = self._logged
        if self._autocast is not None:
            self._autocast.note()
        for name, value in values.items():
            column = logged.get(name)
            if column is None or reduce is not None:
                column = self._column(name, reduce)
            column.add(steps, value)

    def _column(self, name: str, reduce: str | None) -> Column:
        """The column of a logged name (made on its first value), its reduction set once."""
        column = self._logged.get(name)
        if column is None:
            column = self._logged[name] = self._new_logged(name)
            column.read_cpu = self._read_cpu
        if reduce is None:
            column.reduce = column.reduce or DEFAULT_REDUCE
        elif column.reduce not in (None, reduce):
            raise OptcheckError(
                f"optcheck: rec.log({name}=..., reduce={reduce!r}): the values of {name!r} are "
                f"already combined by reduce={column.reduce!r}. One rule per series."
            )
        else:
            column.reduce = reduce
        return column

    def _new_logged(self, name: str) -> Column:
        if name in HOOKED_SERIES and name in self.record or name in self._group_keys:
            source = "the optimizer's param groups" if name in self._group_keys else "the optimizer's hooks"
            raise OptcheckError(
                f"optcheck: rec.log({name}=...): {name!r} is recorded from {source}; "
                f"log your own value under another name."
            )
        if name == "skipped" and self.scaler is not None:
            raise OptcheckError("optcheck: rec.log(skipped=...): with scaler=, 'skipped' is recorded from the "
                                "GradScaler's updates; log your own value under another name.")
        if name in self._per_epoch:
            raise OptcheckError(f"optcheck: rec.log({name}=...): {name!r} is a per-epoch series "
                                f"(rec.log_epoch); log the per-step value under another name.")
        return Column(name)

    def log_epoch(self, **values: Any) -> None:
        """Record values that exist once an epoch (a validation loss, an EMA model's
        evaluation) for the current :attr:`epoch`: ``rec.log_epoch(val_loss=v)``.

        They form per-epoch series (``trajectory.epoch_series``), compared epoch by epoch;
        one value per name and epoch. A tensor is read here (once an epoch)."""
        for name, value in values.items():
            if name in self._logged or name in HOOKED_SERIES or name in self._group_keys:
                raise OptcheckError(f"optcheck: rec.log_epoch({name}=...): {name!r} is already a per-step "
                                    f"series; log the per-epoch value under another name (e.g. 'val_{name}').")
            per_epoch = self._per_epoch.get(name, {})  # kept once the value is taken, not before a refusal
            if self._epoch in per_epoch:
                raise OptcheckError(
                    f"optcheck: rec.log_epoch({name}=...) twice in epoch {self._epoch} ({per_epoch[self._epoch]!r}, "
                    f"then {value!r}): one value an epoch. Log the epoch's value once (e.g. the mean over the "
                    f"validation batches), and set rec.epoch = e at the start of each epoch.")
            if isinstance(value, torch.Tensor):
                if value.numel() != 1:
                    raise OptcheckError(f"optcheck: rec.log_epoch({name}=...) needs one number; got a tensor of "
                                        f"shape {tuple(value.shape)}. Reduce it first (e.g. {name}=x.mean()).")
                value = value.detach().float().item()
            per_epoch[self._epoch] = as_float(name, value, "rec.log_epoch")
            self._per_epoch[name] = per_epoch

    # -- result -------------------------------------------------------------------
    @property
    def trajectory(self) -> Trajectory:
        """The recorded Trajectory: one row per step (a step the scaler skipped included),
        the per-epoch series beside them.

        Tensor values go to the host here, one transfer per series."""
        steps = self.steps
        if steps == 0:
            raise OptcheckError(self._no_step_message())
        self._check_names()
        series = self._step_series(steps)
        series = self._ranks.globalise(series, self._logged, self._reducer, steps)  # the one exchange
        if not series:
            raise OptcheckError(
                f"optcheck: the recording has {steps} step(s) but no series: record names "
                f"{', '.join(map(repr, self.record)) or 'nothing'} and nothing was logged. "
                f"Log the loss each step (rec.log(loss=loss)) or record a series the recorder computes "
                f"({', '.join(HOOKED_SERIES)})."
            )
        self._warn_unstepped(steps)
        full = Trajectory(series, np.array(self._epochs, dtype=np.int64), self._batch_numbers(steps),
                          epoch_series=self._epoch_series())
        return thin(full, self.record_every)

    def _step_series(self, steps: int) -> dict[str, np.ndarray]:
        """The per-step series of the first ``steps`` steps: those of ``record`` in its order,
        then ``skipped`` (with a scaler), then the other logged ones."""
        norms = self._reducer.series(steps) if self._reducer is not None else {}
        series: dict[str, np.ndarray] = {}
        for name in self.record:
            if name in self._rows:
                series[name] = self._rows[name].array(steps)
            elif name in norms:
                series[name] = norms[name]
            elif name in self._logged:
                series[name] = self._logged[name].series(steps)
        if self.scaler is not None:
            # every skip is of a step counted already (_scaler_updated, _pre_step add its row first)
            fused = self._fused_skips()
            skipped = np.zeros(steps)
            skipped[self._skipped + fused] = 1.0
            series["skipped"] = skipped
            for name in norms if fused else ():  # a fused optimizer's skipped steps were hooked like any other
                series[name] = series[name].copy()  # every norm is a name of record, so in series
                series[name][fused] = math.nan
        for name, column in self._logged.items():
            if name not in series:
                series[name] = column.series(steps)
        return series

    def _fused_skips(self) -> list[int]:
        """The steps of a fused optimizer whose ``found_inf`` was set: one transfer for all."""
        if not self._found_inf:
            return []
        found = torch.stack([t.reshape(()).float() for _, t in self._found_inf]).cpu().tolist()
        return [step for (step, _), inf in zip(self._found_inf, found, strict=True) if inf]

    def _epoch_series(self) -> dict[str, np.ndarray]:
        """Each ``log_epoch`` series, one value per epoch 0..the last logged (NaN where none)."""
        out = {}
        for name, values in self._per_epoch.items():
            column = np.full(max(values) + 1, math.nan)
            column[list(values)] = list(values.values())
            out[name] = column
        return out

    def _batch_numbers(self, steps: int) -> np.ndarray:
        """Each step's batch: steps since the latest restart (an ``epoch`` change)."""
        index = np.arange(steps)
        restart = np.zeros(steps, dtype=bool)
        restart[[s for s in self._batch_starts if s < steps]] = True
        return index - np.maximum.accumulate(np.where(restart, index, 0))

    def _check_names(self) -> None:
        for name in self.record:
            if name in HOOKED_SERIES or name in self._group_keys or name in self._logged or name == "loss" \
                    or name in self._per_epoch:
                continue
            keys = sorted({k for g in self.optimizer.param_groups for k in g if k != "params"})
            raise OptcheckError(
                f"optcheck: record names {name!r}, but it is none of the series the recorder computes "
                f"({', '.join(HOOKED_SERIES)}), not a key of {_describe(self.optimizer)}'s param groups "
                f"({', '.join(keys)}), and no value was logged under it (rec.log({name}=...))."
                f"{suggest(name, [*HOOKED_SERIES, *keys, *self._logged])}"
            )

    def _warn_unstepped(self, steps: int) -> None:
        for column in self._logged.values():
            if column.last < steps:  # entries' steps never decrease: none is late
                continue
            late = sum(1 for s in column.steps if s >= steps)
            if late:
                warnings.warn(
                    f"optcheck: {late} value(s) of {column.name!r} logged after the last optimizer step "
                    f"were left out of the trajectory: no step followed them.",
                    UserWarning,
                    stacklevel=3,
                )

    def _no_step_message(self) -> str:
        watched = _describe(self.optimizer)
        lines = [(f"optcheck: the recording saw no optimizer step: it watched {watched} "
                 f"(id {id(self.optimizer):#x}), whose step() never ran while recording.")]
        if not self._entered:
            lines.append("The recorder was never entered: use it as `with Recorder(optimizer, ...) as rec:` "
                         "(or optcheck.record(...)) around the loop.")
        logged = sum(len(column.steps) for column in self._logged.values())
        if self._stepped_elsewhere:
            others = ", ".join(sorted(self._stepped_elsewhere))
            ran = f"rec.log() took {logged} value(s), so the loop ran, but it " if logged else "The loop "
            lines.append(f"{ran}stepped another optimizer: {others}.")
        elif logged:
            lines.append(f"rec.log() took {logged} value(s), so the loop ran, but no optimizer's step() ran "
                         f"while recording: call optimizer.step() after loss.backward() each iteration (with a "
                         f"GradScaler: scaler.step(optimizer); scaler.update(), and pass scaler= to record).")
        inner = _inner_optimizers(self.optimizer)
        if inner:
            attr, opt = inner[0]
            lines.append(f"{watched} wraps {_describe(opt)} in `.{attr}`: watch that one, whose step() runs "
                         f"the update: Recorder(optimizer.{attr}, ...) / optcheck.record(optimizer.{attr}, ...).")
        elif self._stepped_elsewhere or not logged:
            lines.append("Watch the optimizer whose step() runs the update: the one the training loop or the "
                         "trainer steps (for a wrapper such as SAM, its `base_optimizer`; for Lightning's or "
                         "Accelerate's wrapped optimizers, their `.optimizer`), created before the recorder.")
        return "\n".join(lines)



def _group_key(optimizer: torch.optim.Optimizer, name: str) -> bool:
    """Whether ``name`` is recorded from the param groups: a numeric key of at least one
    group. A key whose value is not a number is refused here, with what it holds."""
    groups = [g for g in optimizer.param_groups if name in g]
    if not groups:
        return False
    for g in groups:
        if not _is_number(g[name]):
            value = g[name]
            shown = f"a tensor of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) \
                else f"{value!r} ({type(value).__name__})"
            hint = " ('momentum' records betas[0])" if name == "betas" else ""
            raise OptcheckError(
                f"optcheck: record names {name!r}, a key of {_describe(optimizer)}'s param groups, but its value "
                f"is {shown}, not a number: only numeric keys can be recorded per group{hint}."
            )
    return True


def _snapshot_number(value: Any, name: str) -> Any:
    """A param-group value as recorded at this step: a tensor (a tensor lr, which a
    scheduler updates in place) is copied on its device; a number stays a number."""
    if isinstance(value, torch.Tensor):
        return value.detach().reshape(()).clone()
    if not _is_number(value):  # a float, NaN included, is a number
        raise OptcheckError(f"optcheck: the param groups' {name!r} became {value!r}, not a number")
    return value
