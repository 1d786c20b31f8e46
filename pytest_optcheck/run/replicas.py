"""Stage 3 (run), for ``calibrate=N``: replicas of the reference run from ulp-perturbed starts.

A replica is the reference run with every initial parameter moved by one ulp (up or down,
signs drawn from a generator seeded by :func:`~.build.derive_seed` of ``spec.seed`` and the
replica's index: deterministic, and never the global RNG). How far the replicas drift from
the unperturbed run is the run's own numerical noise floor (Summers & Dinneen, ICML 2021: a
one-bit change of the initialisation gives as much run-to-run variability as every source
of nondeterminism together); :mod:`~pytest_optcheck.engine.envelope` turns it into an
envelope.

Two paths, the same replicas, through public torch only:

* **stacked** — the N models' parameters stacked on a leading axis (the replica's), the loss
  of all of them at once, one optimizer over the stacked parameters. A plain stack of layers
  (the catalog's ``mlp``, an ``nn.Sequential`` of ``Linear`` and element-wise activations)
  runs as batched matmuls (``torch.baddbmm``), any other model through
  ``torch.func.vmap(functional_call)`` (about twice as slow: vmap's overhead per op
  dominates small models); autograd differentiates both. The sum of the per-replica losses
  gives each replica its own gradient, and an element-wise optimizer (SGD, Adam...) then
  updates each replica as if it were alone. The batches and the scheduler follow
  :func:`~.train.run_epochs`, the reference loop's own schedule.
* **sequential** — N ordinary :func:`~.train.train` runs, for what stacking cannot
  express: LBFGS and other optimizers not known to be element-wise, ReduceLROnPlateau (it
  would see one metric for all replicas), gradient clipping (a norm across replicas),
  several param groups, series other than loss/lr/momentum, models with buffers or dropout;
  and users' own loops (:func:`replicas_of`), which the plugin does not own.

Each replica's ``meta["start_eps"]`` says how far one ulp of what was perturbed is (the
largest machine epsilon among the parameters' dtypes): the first-step test of
:func:`~pytest_optcheck.engine.envelope.started_apart` scales with it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from ..declare.build import Built, build, derive_seed, seeded
from ..declare.catalog import resolve_optimizer, resolve_scheduler
from ..declare.spec import Spec
from ..engine.trajectory import Trajectory
from ..errors import OptcheckError
from . import conventions
from .record import Recorder
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
    _perturb_tensors_(list(model.parameters()), seed, replica)


def _perturb_tensors_(tensors: list[torch.Tensor], seed: int, replica: int) -> None:
    """:func:`perturb_` of a model whose ``parameters()`` are ``tensors`` (in that order)."""
    generator = torch.Generator().manual_seed(derive_seed(seed, f"calibrate:{replica}"))
    with torch.no_grad():
        for p in tensors:
            if not p.is_floating_point():
                continue
            up = torch.randint(2, p.shape, generator=generator).to(p.device, torch.bool)
            limit = torch.full_like(p, math.inf).masked_fill_(~up, -math.inf)  # p's dtype: its own ulp
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
    """``n`` replicas of a user's own loop: ``run(perturb)`` must seed itself, build its
    model, pass it through ``perturb`` (which moves it by one ulp, in place, and returns it)
    and return the recorded Trajectory. Always sequential: the plugin cannot stack a loop it
    does not own.

    A loop that never calls ``perturb`` is refused (every replica would be the run itself,
    the envelope zero); one that initialises from the global RNG is caught by the first step
    (:func:`~pytest_optcheck.engine.envelope.started_apart`)."""
    out = []
    with intra_op_threads(threads):
        for r in range(n):
            perturb = _Perturber(seed, r)
            trajectory = as_trajectory(run(perturb), run)
            if not perturb.dtypes:
                raise OptcheckError(
                    f"optcheck: check(run={getattr(run, '__name__', run)!r}) never called perturb(model) with a "
                    f"model that has floating parameters: every replica would be the run itself and measure no "
                    f"noise. Pass the model through it before training: model = perturb(MyNet()).")
            trajectory.meta["start_eps"] = perturb.eps
            out.append(trajectory)
    return out, f"{SEQUENTIAL} (your loop)"


class _Perturber:
    """The ``perturb`` handed to a user's loop for replica ``replica``: :func:`perturb_`, and
    a note of the dtypes it moved (how far one ulp is, for the first-step test)."""

    def __init__(self, seed: int, replica: int) -> None:
        self.seed, self.replica = seed, replica
        self.dtypes: set[torch.dtype] = set()

    def __call__(self, model: nn.Module) -> nn.Module:
        perturb_(model, self.seed, self.replica)
        self.dtypes.update(p.dtype for p in model.parameters() if p.is_floating_point())
        return model

    @property
    def eps(self) -> float:
        return _eps(self.dtypes)


def _eps(dtypes: Iterable[torch.dtype]) -> float:
    """The largest machine epsilon among ``dtypes`` (float32's if none)."""
    return max((torch.finfo(d).eps for d in dtypes), default=torch.finfo(torch.float32).eps)


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
    trajectory = train(spec, built=built)  # built on ``device`` already
    trajectory.meta["start_eps"] = _eps(p.dtype for p in built.model.parameters() if p.is_floating_point())
    return trajectory


def _stacked(spec: Spec, built: Built, n: int) -> list[Trajectory]:
    params = _perturbed_stack(built.model, spec.seed, n)
    layers = _layers(built.model)
    if layers is not None:
        _transposed_storage(params, layers)
        losses = _batched_losses(layers, built.loss_fn, spec.l1)
    else:
        # ``built`` is this call's own (replicas() built it): its model is the template, whose
        # tensors functional_call replaces by the stacked ones
        template = built.model
        template.train()
        losses = torch.func.vmap(_replica_loss(template, built.loss_fn, spec.l1), in_dims=(0, None, None))
    with seeded(spec.seed, built.device):
        optimizer = resolve_optimizer(spec.optimizer)(list(params.values()))
        make_scheduler = resolve_scheduler(spec.scheduler)
        scheduler = make_scheduler(optimizer) if make_scheduler is not None else None
    inputs, targets = built.problem.inputs, built.problem.targets
    # The replicas' losses stay on the device as one (steps, n) tensor, brought to the host
    # once at the end: a per-step .tolist() cost a transfer (and a sync) every step.
    logged: list[torch.Tensor] = []
    # the Recorder records lr and momentum; "loss" it leaves out unless the loop logs it (this one does not)
    with Recorder(optimizer, record=spec.record) as rec:

        def step(index: torch.Tensor, where: str) -> float:
            optimizer.zero_grad()
            values = losses(params, inputs[index], targets[index])
            # the sum's gradient is 1 for every replica: each gets the gradient of its own loss
            values.sum().backward()
            optimizer.step()
            logged.append(values.detach())
            return 0.0  # no plateau scheduler here (why_not_stacked): the value is unused

        def start_epoch(epoch: int) -> None:
            rec.epoch = epoch

        run_epochs(spec, inputs.shape[0], inputs.device, step, scheduler, start_epoch,
                   conventions.detect(optimizer, scheduler))
    shared = rec.trajectory
    eps = _eps(p.dtype for p in params.values() if p.is_floating_point())
    columns = torch.stack(logged, 1).cpu().tolist()  # not empty: rec.trajectory refuses a run without steps
    out = []
    for r in range(n):
        series: dict[str, Any] = {"loss": columns[r]}
        series.update({name: shared[name] for name in shared.names})
        names = [s for s in (*spec.record, "loss") if s in series]
        trajectory = Trajectory({k: series[k] for k in dict.fromkeys(names)}, shared.epoch, shared.batch)
        trajectory.meta.update(kind="train", device=str(built.device), start_eps=eps)
        out.append(trajectory)
    return out


def _perturbed_stack(model: nn.Module, seed: int, n: int) -> dict[str, torch.Tensor]:
    """The parameters of ``n`` replicas of ``model``, each moved by :func:`perturb_`, stacked
    on a leading axis by name: what :func:`torch.func.stack_module_state` gives for ``n``
    perturbed deep copies, without copying the module ``n`` times (the deep copies cost
    about as much as 20 training steps of the seed's net)."""
    named = dict(model.named_parameters())
    columns: list[list[torch.Tensor]] = [[] for _ in named]
    for r in range(n):
        copies = [p.detach().clone() for p in named.values()]
        _perturb_tensors_(copies, seed, r)
        for column, copy_ in zip(columns, copies):
            column.append(copy_)
    return {name: torch.stack(column).requires_grad_(p.requires_grad)
            for (name, p), column in zip(named.items(), columns)}


#: Activation modules that act element by element, whatever the shape (a replica axis included).
_ELEMENTWISE_MODULES = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.ELU, nn.LeakyReLU, nn.Softplus,
                        nn.Identity)
#: Losses whose 'mean' is the mean of an element-wise loss: per replica, a mean over its own rows.
_ELEMENTWISE_LOSSES = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss)


def _layers(model: nn.Module) -> list[tuple[str | None, Callable[[torch.Tensor], torch.Tensor] | None]] | None:
    """A plain stack of layers as ``(linear's name, None)`` and ``(None, activation)`` steps,
    or None when the model is anything else: the catalog's MLP (through its public
    :meth:`~pytest_optcheck.declare.problems.MLP.steps`, whose activation is element-wise by
    contract) or an ``nn.Sequential`` of ``Linear`` and element-wise activation modules."""
    from ..declare.problems import MLP

    if isinstance(model, MLP):
        steps: list[Any] = model.steps()
    elif isinstance(model, nn.Sequential):
        steps = list(model)
    else:
        return None
    names = {id(child): name for name, child in model.named_children()}
    if len(names) != sum(isinstance(step, nn.Module) for step in steps):
        return None  # a module used twice (tied weights): named_children() lists it once
    out: list[tuple[str | None, Any]] = []
    for step in steps:
        if type(step) is nn.Linear:
            out.append((names[id(step)], None))
        elif type(step) in _ELEMENTWISE_MODULES or (isinstance(model, MLP) and not isinstance(step, nn.Module)):
            out.append((None, step))
        else:
            return None
    return out


def _transposed_storage(params: dict[str, torch.Tensor], layers: list[tuple[str | None, Any]]) -> None:
    """Store each stacked weight (replicas, out, in) with the memory layout of its transpose,
    in place of ``params``' entries (new leaves of the same shape and values).

    The forward multiplies by ``weight.transpose(1, 2)``: with this layout that is a
    contiguous (replicas, in, out) operand, which the batched matmul takes ~30% faster than a
    transposed view, and its gradient comes back in the parameter's own layout, so autograd
    accumulates it without a copy (with the default layout, every step copied every weight's
    gradient). The products are bit-identical either way (same kernel order over ``in``), and
    the element-wise optimizer does not care about strides."""
    for name, _ in layers:
        if name is None:
            continue
        weight = params[f"{name}.weight"]
        params[f"{name}.weight"] = weight.detach().transpose(1, 2).contiguous().transpose(1, 2).requires_grad_(
            weight.requires_grad)


#: Activations with an in-place form in torch's public API: applied to a linear layer's
#: fresh output, they skip one buffer a step (the same kernel, so the same bits; autograd
#: differentiates tanh/sigmoid from their output and ReLU from its sign). Measured: the
#: chaotic MLP's replicas ~4% faster (tests/unit/run/test_replicas.py checks the bits).
_IN_PLACE: dict[Any, Callable[[torch.Tensor], torch.Tensor]] = {
    torch.tanh: torch.tanh_, torch.sigmoid: torch.sigmoid_, torch.relu: torch.relu_,
    torch.nn.functional.relu: torch.relu_,
}


def _in_place(act: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """The in-place form of ``act`` (a function or an activation module), or ``act`` itself."""
    function = {nn.Tanh: torch.tanh, nn.Sigmoid: torch.sigmoid}.get(type(act), act)
    if isinstance(act, nn.ReLU) and not act.inplace:
        function = torch.relu
    return _IN_PLACE.get(function, act)


def _batched_losses(layers: list[tuple[str | None, Any]], loss_fn: Callable[..., torch.Tensor],
                    l1: float) -> Callable[[dict[str, torch.Tensor], torch.Tensor, torch.Tensor], torch.Tensor]:
    """Per-replica losses of a plain stack of layers (its :func:`_layers`) as batched matmuls
    (the replica axis first), differentiated by autograd. The same arithmetic as the model's
    own forward up to the summation order inside each matmul: ulps, far below the envelope
    it measures."""
    elementwise = type(loss_fn) in _ELEMENTWISE_LOSSES and loss_fn.reduction == "mean"  # type: ignore[attr-defined]
    if elementwise:
        per_element = copy.copy(loss_fn)
        per_element.reduction = "none"
    else:
        per_replica = torch.func.vmap(loss_fn, in_dims=(0, None))
    # an activation right after a linear layer may overwrite that layer's output
    steps = [(name, _in_place(act) if i and layers[i - 1][0] is not None and act is not None else act)
             for i, (name, act) in enumerate(layers)]

    def losses(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = x.unsqueeze(0)  # one copy of the batch, expanded to the replicas at each linear layer
        for name, act in steps:
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
