"""Stage 3 (run), for ``calibrate=N``: replicas of the reference run from ulp-perturbed starts.

A replica is the reference run with every initial parameter moved by one ulp (up or down,
signs drawn from a generator seeded by :func:`~.build.derive_seed` of ``spec.seed`` and the
replica's index: deterministic, and never the global RNG). How far the replicas drift from
the unperturbed run is the run's own numerical noise floor (Summers & Dinneen, ICML 2021: a
one-bit change of the initialisation gives as much run-to-run variability as every source
of nondeterminism together); :mod:`~pytest_optcheck.engine.envelope` turns it into an
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
  For the common fully connected case (tanh/sigmoid/ReLU, mean-squared error, no L1) the
  step runs without autograd (:func:`_by_hand`: autograd's own backward ops, called
  directly, so the same bits) over one flat parameter tensor (:func:`_flat`): per-step
  overhead, not arithmetic, dominated the replicas at calibration's sizes.
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
    params = _perturbed_stack(built.model, spec.seed, n)
    layers = _layers(built.model)
    plan = _plan(layers, built.loss_fn, spec.l1) if layers is not None else None
    kinds = {(p.dtype, p.device, p.requires_grad) for p in params.values()}
    if len(kinds) != 1 or not next(iter(kinds))[2]:
        plan = None  # one flat tensor holds one dtype, and trains every part: no frozen layers
    by_hand = None
    if plan is not None:
        flat, views, grads = _flat(params, layers)
        leaves = [flat]  # element-wise optimizers: one tensor updates as its parts would
        by_hand = _by_hand(plan, views, grads)
    else:
        if layers is not None:
            _transposed_storage(params, layers)
        leaves = list(params.values())
    with seeded(spec.seed, built.device):
        optimizer = resolve_optimizer(spec.optimizer)(leaves)
        make_scheduler = resolve_scheduler(spec.scheduler)
        scheduler = make_scheduler(optimizer) if make_scheduler is not None else None
    losses = _batched_losses(layers, built.loss_fn, spec.l1) if layers is not None else None
    if losses is None:
        template = copy.deepcopy(built.model).to("meta")
        template.train()
        losses = torch.func.vmap(_replica_loss(template, built.loss_fn, spec.l1), in_dims=(0, None, None))
    inputs, targets = built.problem.inputs, built.problem.targets
    # The replicas' losses stay on the device as one (steps, n) tensor, brought to the host
    # once at the end: a per-step .tolist() cost a transfer (and a sync) every step.
    logged: list[torch.Tensor] = []
    with Recorder(optimizer, scheduler, None, record=[s for s in spec.record if s != "loss"]) as rec:

        def step(index: torch.Tensor, where: str) -> float:
            if by_hand is not None:
                values = by_hand(inputs[index], targets[index])  # writes every gradient
            else:
                optimizer.zero_grad()
                values = losses(params, inputs[index], targets[index])
                values.sum().backward()
            optimizer.step()
            logged.append(values.detach())
            return 0.0  # no plateau scheduler here (why_not_stacked): the value is unused

        def start_epoch(epoch: int) -> None:
            rec.epoch = epoch

        run_epochs(spec, inputs.shape[0], inputs.device, step, scheduler, start_epoch,
                   conventions.detect(optimizer, scheduler))
    shared = rec.trajectory
    columns = torch.stack(logged, 1).cpu().tolist() if logged else [[] for _ in range(n)]
    out = []
    for r in range(n):
        series: dict[str, Any] = {"loss": columns[r]}
        series.update({name: shared[name] for name in shared.names})
        names = [s for s in (*spec.record, "loss") if s in series]
        trajectory = Trajectory({k: series[k] for k in dict.fromkeys(names)}, shared.epoch, shared.batch)
        trajectory.meta.update(kind="train", device=str(built.device))
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


#: Activations that act element by element, whatever the shape (a replica axis included).
_ELEMENTWISE_MODULES = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.ELU, nn.LeakyReLU, nn.Softplus,
                        nn.Identity)
#: Losses whose 'mean' is the mean of an element-wise loss: per replica, a mean over its own rows.
_ELEMENTWISE_LOSSES = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss)


def _layers(model: nn.Module) -> list[tuple[str | None, Callable[[torch.Tensor], torch.Tensor]]] | None:
    """A fully connected net as ``(linear's name, None)`` and ``(None, activation)`` steps,
    or None when the model is anything else."""
    from ..declare.problems import MLP

    if isinstance(model, MLP):
        steps: list[tuple[str | None, Any]] = []
        for name in model._hidden_names:
            steps += [(name, None), (None, model._act)]
        return [*steps, ("predict", None)]
    if isinstance(model, nn.Sequential):
        out: list[tuple[str | None, Any]] = []
        children = list(model._modules.items())
        if len({id(child) for _, child in children}) != len(children):
            return None  # a module used twice (tied weights): named_children() would list it once
        for name, child in children:
            if isinstance(child, nn.Linear):
                out.append((name, None))
            elif type(child) in _ELEMENTWISE_MODULES:
                out.append((None, child))
            else:
                return None
        return out
    return None


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


def _batched_losses(layers: list[tuple[str | None, Any]], loss_fn: Callable[..., torch.Tensor],
                    l1: float) -> Callable[..., Any] | None:
    """Per-replica losses of a fully connected net (its :func:`_layers`) as batched matmuls
    (the replica axis first), or None to use vmap. The same arithmetic as the model's own
    forward up to the summation order inside each matmul: ulps, far below the envelope it
    measures."""
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


#: Activations whose backward is one aten op of (incoming gradient, activation's output):
#: the op autograd itself calls (tools/autograd/derivatives.yaml), so a backward by hand
#: computes the same bits.
_BACKWARD_FROM_OUTPUT: dict[Any, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    torch.tanh: torch.ops.aten.tanh_backward.default,  # the overload itself: less Python per call
    torch.sigmoid: torch.ops.aten.sigmoid_backward.default,
    torch.relu: lambda grad, out: torch.ops.aten.threshold_backward.default(grad, out, 0),
    torch.nn.functional.relu: lambda grad, out: torch.ops.aten.threshold_backward.default(grad, out, 0),
}
#: The same activations and backward ops writing into their input (the same kernels, so the
#: same bits): for a layer's fresh output and a fresh gradient, one buffer fewer a step each.
_IN_PLACE: dict[Any, tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]] = {
    torch.tanh: (torch.tanh_, lambda grad, out: torch.ops.aten.tanh_backward.grad_input(grad, out, grad_input=grad)),
    torch.sigmoid: (torch.sigmoid_,
                    lambda grad, out: torch.ops.aten.sigmoid_backward.grad_input(grad, out, grad_input=grad)),
    torch.relu: (torch.relu_,
                 lambda grad, out: torch.ops.aten.threshold_backward.grad_input(grad, out, 0, grad_input=grad)),
}
_IN_PLACE[torch.nn.functional.relu] = _IN_PLACE[torch.relu]
_MODULE_FUNCTIONS: dict[type, Any] = {nn.Tanh: torch.tanh, nn.Sigmoid: torch.sigmoid, nn.ReLU: torch.relu}


def _plan(layers: list[tuple[str | None, Any]], loss_fn: Callable[..., torch.Tensor],
          l1: float) -> list[tuple[str, None] | tuple[None, Any]] | None:
    """The steps of :func:`_by_hand` — ``(linear's name, None)`` or ``(None, (activation,
    its backward))`` — when it can run the net: tanh/sigmoid/ReLU (or no) activations,
    mean-squared error, no L1 penalty; None otherwise (autograd then runs
    :func:`_batched_losses`)."""
    if l1 or type(loss_fn) is not nn.MSELoss or getattr(loss_fn, "reduction", None) != "mean":
        return None
    plan: list[tuple[str, None] | tuple[None, Any]] = []
    for name, act in layers:
        if name is not None:
            plan.append((name, None))
            continue
        if isinstance(act, nn.Identity):
            continue
        if isinstance(act, nn.ReLU) and act.inplace:
            return None
        function = _MODULE_FUNCTIONS.get(type(act)) if isinstance(act, nn.Module) else act
        backward = _BACKWARD_FROM_OUTPUT.get(function) if function is not None else None
        if backward is None:
            return None
        if plan and plan[-1][0] is not None:  # after a linear: its output is ours to overwrite
            function, backward = _IN_PLACE.get(function, (function, backward))
        plan.append((None, (function, backward)))
    return plan if any(name is not None for name, _ in plan) else None


#: Alignment of each parameter inside :func:`_flat`'s tensor, in bytes: at least that of
#: torch's own allocations (64 on CPU, 512 by CUDA's caching allocator), so every part lies in
#: memory as a tensor of its own would (a matmul library may pick its kernel by alignment).
_ALIGN = 512


def _flat(params: dict[str, torch.Tensor], layers: list[tuple[str | None, Any]]
          ) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """All stacked parameters as parts of one leaf tensor (and their gradients as parts of its
    ``.grad``): the leaf, and views of each parameter and of its gradient by name.

    Why: the optimizer then runs its few element-wise ops once a step instead of once per
    parameter — at calibration's sizes the per-tensor overhead of ``optimizer.step`` was a
    third of the replicas' time. An element-wise optimizer updates each element from that
    element's own history, so the values are those of separate tensors (measured: bit for
    bit). Weights are stored in their transpose's layout, as :func:`_transposed_storage`
    explains, and each part starts :data:`_ALIGN`-aligned; the padding between parts has
    gradient 0 and stays 0."""
    weights = {f"{name}.weight" for name, _ in layers if name is not None}
    step = max(1, _ALIGN // next(iter(params.values())).element_size())
    parts, offsets, total = [], {}, 0
    for name, p in params.items():
        memory = p.detach().transpose(1, 2) if name in weights else p.detach()
        offsets[name] = (total, memory.shape)
        parts.append(memory.reshape(-1))
        padding = -memory.numel() % step
        total += memory.numel() + padding
        if padding:
            parts.append(memory.new_zeros(padding))
    flat = torch.cat(parts).requires_grad_()
    flat.grad = torch.zeros_like(flat)

    def views(base: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for name, (start, shape) in offsets.items():
            part = base[start : start + shape.numel()].view(shape)
            out[name] = part.transpose(1, 2) if name in weights else part
        return out

    return flat, views(flat.detach()), views(flat.grad)


def _by_hand(plan: list[tuple[str, None] | tuple[None, Any]], params: dict[str, torch.Tensor],
             grads: dict[str, torch.Tensor]) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The stacked step's forward and backward without autograd, for the nets :func:`_plan`
    accepts: ``step(x, y) -> per-replica losses``, which writes each parameter's gradient
    into ``grads`` (``params``' and ``grads``' tensors are bound once here: the optimizer
    updates them in place).

    Why: at the sizes calibration runs (8 replicas of a 64-wide net, batches of 32) the
    autograd engine's bookkeeping per step (graph nodes, gradient buffers, the layout copies
    of AccumulateGrad) cost as much as the matmuls themselves. The function calls the very
    ops autograd's formulas call for ``losses(...).sum().backward()`` — ``mse_loss_backward``,
    ``bmm`` with the same operands, ``sum`` over the batch for a bias, the activation's own
    backward op — so each gradient is bit-identical to autograd's (each parameter is used
    once, so no gradients are summed; tests/unit/run/test_replicas.py checks it)."""
    ops: list[_Linear | _Activation] = [
        _Linear(params[f"{name}.weight"], params.get(f"{name}.bias"), grads[f"{name}.weight"],
                grads.get(f"{name}.bias")) if name is not None else _Activation(*act)
        for name, act in plan]
    first = next(i for i, op in enumerate(ops) if isinstance(op, _Linear))
    replicas = ops[first].weight.shape[0]
    backwards = ops[first:][::-1]  # the backward stops at the first linear: the data needs no gradient
    mean_grads: dict[torch.Size, torch.Tensor] = {}

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            h = x.expand(replicas, *x.shape)
            saved = []  # each linear's input, each activation's output
            for op in ops:
                if isinstance(op, _Linear):
                    saved.append(h)
                    h = op.forward(h)
                else:
                    h = op.forward(h)
                    saved.append(h)
            target = y.expand_as(h)
            values = torch._C._nn.mse_loss(h, target, 0).flatten(1).mean(1)
            # backward of values.sum(): SumBackward expands 1, MeanBackward divides it by the
            # count (the same tensor each step of a batch size: made once)
            grad = mean_grads.get(h.shape)
            if grad is None:
                rows = h[0].numel()
                grad = torch.ones((), dtype=values.dtype, device=values.device).expand(replicas, rows) / rows
                grad = mean_grads.setdefault(h.shape, grad.view(h.shape))
            grad = torch.ops.aten.mse_loss_backward.default(grad, h, target, 0)
            for op in backwards:
                grad = op.backward(grad, saved.pop(), op is not ops[first])
        return values

    return step


class _Linear:
    """A stacked linear layer of :func:`_by_hand`: ``h @ weight^T + bias`` per replica."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, weight_grad: torch.Tensor,
                 bias_grad: torch.Tensor | None) -> None:
        self.weight, self.bias = weight, bias
        self.transposed = weight.transpose(1, 2)  # views, made once: they follow in-place updates
        self.column = bias.unsqueeze(1) if bias is not None else None
        # autograd's mat2 gradient is (in, out) per replica, transposed to the weight's shape:
        # written straight into the weight's part of the gradient (contiguous that way round)
        self.weight_grad_t = weight_grad.transpose(1, 2)
        self.bias_grad = bias_grad

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h``: (replicas, rows, in), the data expanded to every replica for the first layer."""
        if self.column is None:
            return torch.bmm(h, self.transposed)
        # baddbmm: bias and product in one kernel (measured ~15% faster a step than matmul + add)
        return torch.baddbmm(self.column, h, self.transposed)

    def backward(self, grad: torch.Tensor, inputs: torch.Tensor, upstream: bool) -> torch.Tensor:
        """Write the parameters' gradients; return the gradient of the inputs if ``upstream``."""
        if self.bias_grad is not None:
            torch.sum(grad, 1, out=self.bias_grad)  # sum_to the broadcast bias
        torch.bmm(inputs.transpose(1, 2), grad, out=self.weight_grad_t)
        return grad.bmm(self.weight) if upstream else grad


class _Activation:
    """An element-wise activation of :func:`_by_hand`, differentiated from its output."""

    def __init__(self, function: Callable[[torch.Tensor], torch.Tensor],
                 backward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
        self.forward, self._backward = function, backward

    def backward(self, grad: torch.Tensor, output: torch.Tensor, upstream: bool) -> torch.Tensor:
        return self._backward(grad, output)


def _replica_loss(template: nn.Module, loss_fn: Callable[..., torch.Tensor], l1: float) -> Callable[..., Any]:
    """One replica's objective from its own parameters: the reference closure's loss."""

    def loss(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        value = loss_fn(torch.func.functional_call(template, params, (x,)), y)
        if l1:
            value = value + l1 * l1_penalty(params.values())
        return value

    return loss
