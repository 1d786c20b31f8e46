"""Stage 3 (run), for ``calibrate=N``: replicas of the reference run from ulp-perturbed starts.

A replica is the reference run with every initial parameter moved by one ulp (up or down,
signs drawn from a generator seeded by :func:`~.build.derive_seed` of ``spec.seed`` and the
replica's index: deterministic, and never the global RNG). How far the replicas drift from
the unperturbed run is the run's own numerical noise floor (Summers & Dinneen, ICML 2021: a
one-bit change of the initialisation gives as much run-to-run variability as every source
of nondeterminism together); :mod:`~pytest_optcheck.engine.calibration` turns it into an
envelope.

Two paths, the same replicas:

* **stacked** — the N models' parameters stacked on a leading axis
  (:func:`torch.func.stack_module_state`), the loss of all of them at once, one optimizer
  over the stacked parameters. Fully connected nets (the catalog's ``mlp``, an
  ``nn.Sequential`` of ``Linear`` and element-wise activations) run as batched matmuls,
  any other model through ``vmap(functional_call)`` (about twice as slow: vmap's overhead
  per op dominates small models). The sum of the
  per-replica losses gives each replica its own gradient, and an element-wise optimizer
  (SGD, Adam...) then updates each replica as if it were alone. The batches and the
  scheduler follow :func:`~.train.run_epochs`, the reference loop's own schedule.
* **sequential** — N ordinary :func:`~.train.train` runs, for what stacking cannot
  express: LBFGS and other optimizers that are not element-wise, ReduceLROnPlateau (it
  would see one metric for all replicas), gradient clipping (a norm across replicas),
  several param groups, series other than loss/lr/momentum, models with buffers.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..engine.trajectory import Trajectory
from ..errors import OptcheckError
from . import conventions
from .build import Built, build, derive_seed, seeded
from .catalog import resolve_optimizer, resolve_scheduler
from .record import Recorder
from .spec import Spec
from .train import intra_op_threads, l1_penalty, run_epochs, train

STACKED = "stacked"
SEQUENTIAL = "sequential"

#: Optimizers whose update of an element depends on that element's own history only, so
#: stacking replicas on a leading axis cannot couple them.
ELEMENTWISE_OPTIMIZERS = ("SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Adagrad", "Adadelta")

#: Series a stacked run can give per replica (the rest need each replica's own hooks).
STACKED_SERIES = ("loss", "lr", "momentum")


def perturb_(model: nn.Module, seed: int, replica: int) -> None:
    """Move every floating parameter element of ``model`` by one ulp, in place; the signs
    come from a generator of their own, so replica ``r`` of seed ``s`` is always the same."""
    generator = torch.Generator().manual_seed(derive_seed(seed, f"calibrate:{replica}"))
    with torch.no_grad():
        for p in model.parameters():
            if not p.is_floating_point():
                continue
            up = torch.randint(0, 2, p.shape, generator=generator).to(p.device, torch.bool)
            limit = torch.where(up, torch.tensor(float("inf"), dtype=p.dtype, device=p.device),
                                torch.tensor(float("-inf"), dtype=p.dtype, device=p.device))
            p.copy_(torch.nextafter(p, limit))


def why_not_stacked(spec: Spec, built: Built) -> str | None:
    """Why the stacked path cannot run this spec (a phrase for the notes), or None."""
    optimizer = built.optimizer
    name = type(optimizer).__name__
    if name not in ELEMENTWISE_OPTIMIZERS or type(optimizer).__module__.split(".")[0] != "torch":
        return f"optimizer {name} is not known to be element-wise"
    if len(optimizer.param_groups) != 1:
        return "the optimizer has several param groups"
    if conventions.detect(optimizer, built.scheduler).schedule is not conventions.Schedule.TORCH \
            and built.scheduler is not None:
        return "a ReduceLROnPlateau or timm-style scheduler would see one metric for all replicas"
    if spec.clip_grad_norm is not None:
        return "clip_grad_norm would take one norm across replicas"
    others = [s for s in spec.record if s not in STACKED_SERIES]
    if others:
        return f"series {', '.join(others)} need each replica's own hooks"
    if any(True for _ in built.model.buffers()):
        return "the model has buffers"
    if any("Dropout" in type(m).__name__ for m in built.model.modules()):
        return "the model draws random numbers (dropout)"
    return None


def replicas(spec: Spec, n: int, device: str = "cpu", threads: int | None = None,
             stacked: bool | None = None) -> tuple[list[Trajectory], str]:
    """``n`` perturbed replicas of the reference run of ``spec``, and the path that ran
    (``"stacked"``, or ``"sequential (<why>)"``). ``stacked=False`` forces the sequential
    path (to compare the two); ``None`` stacks whenever it can."""
    with intra_op_threads(threads):
        built = build(spec, device)
        reason = why_not_stacked(spec, built) if stacked is not False else "asked for"
        if reason is None:
            try:
                return _stacked(spec, built, n), STACKED
            except Exception as exc:  # noqa: BLE001 - any model vmap cannot trace runs one replica at a time
                reason = f"torch.func could not stack the model: {type(exc).__name__}"
        return [_one(spec, device, r) for r in range(n)], f"{SEQUENTIAL} ({reason})"


def replicas_of(run: Callable[[Callable[[nn.Module], nn.Module]], Any], seed: int, n: int,
                threads: int | None = None) -> tuple[list[Trajectory], str]:
    """``n`` replicas of a user's own loop: ``run(perturb)`` must build its model, pass it
    through ``perturb`` (which moves it by one ulp, in place, and returns it) and return
    the recorded Trajectory. Always sequential: the plugin cannot stack a loop it does not
    own."""
    out = []
    with intra_op_threads(threads):
        for r in range(n):
            out.append(as_trajectory(run(_perturber(seed, r)), run))
    return out, f"{SEQUENTIAL} (your loop)"


def _perturber(seed: int, replica: int) -> Callable[[nn.Module], nn.Module]:
    def perturb(model: nn.Module) -> nn.Module:
        perturb_(model, seed, replica)
        return model

    return perturb


def unperturbed(model: nn.Module) -> nn.Module:
    """The ``perturb`` of the reference run: the model as it is."""
    return model


def as_trajectory(result: Any, run: Any) -> Trajectory:
    """What a user's ``run`` returned, as a Trajectory (a Recorder is read out)."""
    if isinstance(result, Recorder):
        result = result.trajectory
    if not isinstance(result, Trajectory):
        raise OptcheckError(
            f"optcheck: check(run={getattr(run, '__name__', run)!r}) returned {type(result).__name__}; "
            f"run(perturb) must return the Trajectory it recorded (rec.trajectory)."
        )
    return result


def _one(spec: Spec, device: str, replica: int) -> Trajectory:
    built = build(spec, device)
    perturb_(built.model, spec.seed, replica)
    return train(spec, device, built=built)


def _stacked(spec: Spec, built: Built, n: int) -> list[Trajectory]:
    models = []
    for r in range(n):
        model = copy.deepcopy(built.model)
        perturb_(model, spec.seed, r)
        models.append(model)
    params, _ = torch.func.stack_module_state(models)
    template = copy.deepcopy(built.model).to("meta")
    with seeded(spec.seed, built.device):
        optimizer = resolve_optimizer(spec.optimizer)(list(params.values()))
        make_scheduler = resolve_scheduler(spec.scheduler)
        scheduler = make_scheduler(optimizer) if make_scheduler is not None else None
    losses = _batched_losses(built.model, built.loss_fn, spec.l1) or torch.func.vmap(
        _replica_loss(template, built.loss_fn, spec.l1), in_dims=(0, None, None))
    inputs, targets = built.problem.inputs, built.problem.targets
    logged: list[list[float]] = []
    template.train()
    with Recorder(optimizer, scheduler, None, record=[s for s in spec.record if s != "loss"]) as rec:

        def step(index: torch.Tensor, where: str) -> float:
            optimizer.zero_grad()
            values = losses(params, inputs[index], targets[index])
            values.sum().backward()
            optimizer.step()
            row = values.detach().tolist()
            logged.append(row)
            return sum(row) / len(row)  # no plateau scheduler here: the value is unused

        def start_epoch(epoch: int) -> None:
            rec.epoch = epoch

        run_epochs(spec, inputs.shape[0], inputs.device, step, scheduler, start_epoch,
                   conventions.detect(optimizer, scheduler))
    shared = rec.trajectory
    out = []
    for r in range(n):
        series: dict[str, Any] = {"loss": [row[r] for row in logged]}
        series.update({name: shared[name] for name in shared.names})
        names = [s for s in (*spec.record, "loss") if s in series]
        trajectory = Trajectory({k: series[k] for k in dict.fromkeys(names)}, shared.epoch, shared.batch)
        trajectory.meta.update(kind="train", device=str(built.device))
        out.append(trajectory)
    return out


#: Activations that act element by element, whatever the shape (a replica axis included).
_ELEMENTWISE_MODULES = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.ELU, nn.LeakyReLU, nn.Softplus,
                        nn.Identity)
#: Losses whose 'mean' is the mean of an element-wise loss: per replica, a mean over its own rows.
_ELEMENTWISE_LOSSES = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss)


def _layers(model: nn.Module) -> list[tuple[str | None, Callable[[torch.Tensor], torch.Tensor]]] | None:
    """A fully connected net as ``(linear's name, None)`` and ``(None, activation)`` steps,
    or None when the model is anything else."""
    from .problems import MLP

    if isinstance(model, MLP):
        steps: list[tuple[str | None, Any]] = []
        for name in model._hidden_names:
            steps += [(name, None), (None, model._act)]
        return [*steps, ("predict", None)]
    if isinstance(model, nn.Sequential):
        out: list[tuple[str | None, Any]] = []
        for name, child in model.named_children():
            if isinstance(child, nn.Linear):
                out.append((name, None))
            elif type(child) in _ELEMENTWISE_MODULES:
                out.append((None, child))
            else:
                return None
        return out
    return None


def _batched_losses(model: nn.Module, loss_fn: Callable[..., torch.Tensor], l1: float) -> Callable[..., Any] | None:
    """Per-replica losses of a fully connected net as batched matmuls (the replica axis
    first), or None to use vmap. The same arithmetic as the model's own forward up to the
    summation order inside each matmul: ulps, far below the envelope it measures."""
    layers = _layers(model)
    if layers is None:
        return None
    elementwise = type(loss_fn) in _ELEMENTWISE_LOSSES and getattr(loss_fn, "reduction", None) == "mean"
    if elementwise:
        per_element = copy.copy(loss_fn)
        per_element.reduction = "none"
    else:
        per_replica = torch.func.vmap(loss_fn, in_dims=(0, None))

    def losses(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        weight = params[f"{layers[0][0]}.weight"] if layers[0][0] is not None else None
        h = x.expand(weight.shape[0] if weight is not None else 1, *x.shape)
        for name, act in layers:
            if act is not None:
                h = act(h)
                continue
            weight, bias = params[f"{name}.weight"], params.get(f"{name}.bias")
            h = h.expand(weight.shape[0], *h.shape[1:])
            # baddbmm: bias and product in one kernel (measured ~15% faster a step than matmul + add)
            h = torch.bmm(h, weight.transpose(1, 2)) if bias is None else torch.baddbmm(
                bias.unsqueeze(1), h, weight.transpose(1, 2))
        if elementwise:
            value = per_element(h, y.expand_as(h)).flatten(1).mean(1)
        else:
            value = per_replica(h, y)
        if l1:
            value = value + l1 * sum(p.abs().flatten(1).sum(1) for p in params.values())
        return value

    return losses


def _replica_loss(template: nn.Module, loss_fn: Callable[..., torch.Tensor], l1: float) -> Callable[..., Any]:
    """One replica's objective from its own parameters: the reference closure's loss."""

    def loss(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        value = loss_fn(torch.func.functional_call(template, params, (x,)), y)
        if l1:
            value = value + l1 * l1_penalty(params.values())
        return value

    return loss
