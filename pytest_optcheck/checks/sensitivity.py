"""The negative control: would this check notice a 1% change of the steps taken?

HF transformers' tests run a deliberately broken variant and assert that it *does*
differ. Made general: with ``--optcheck-sensitivity`` every declarative check (one that
trains from the spec) also trains a twin in which every optimizer step moves the
parameters :data:`STEP_SCALE` times as far as it would (the step's update is scaled in a
post-step hook), and compares the twin with the current run under the very tolerances
the check used. When the twin passes on the behaviour series (loss, norms: everything but
the LR and momentum), the tolerance is vacuous: a regression of that size would pass
unnoticed too.

The update is scaled rather than the learning rate because a scheduler that sets absolute
LRs (pytorch_optimizer's ``CosineAnnealingWarmupRestarts``) would undo a scaled initial LR,
and an adaptive optimizer (Prodigy) ignores it: the check would be called vacuous for
changing nothing. For plain SGD and Adam the two are the same thing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..declare.spec import Spec
from ..engine.compare import compare
from ..engine.messages import describe_tolerance
from ..engine.trajectory import GROUPED_SERIES, Trajectory

if TYPE_CHECKING:
    from ..engine.outcome import Outcome

#: The smallest regression a check must notice: steps (or the LR) 1% larger.
STEP_SCALE = 1.01


def scaled_lr(optimizer_factory: Any, scale: float) -> Any:
    """An optimizer factory whose groups start at ``scale`` times the learning rate (the
    tolerance measurements in benchmarks/ use it; the probe scales the steps instead).

    Scaling happens before the scheduler is built, so schedulers take the scaled LR as
    their base (scaling afterwards would be undone by the first ``scheduler.step()``)."""

    def make(params: Any) -> Any:
        optimizer = optimizer_factory(params)
        for group in optimizer.param_groups:
            group["lr"] = group["lr"] * scale
        return optimizer

    make.__qualname__ = f"scaled_lr({scale})"
    return make


def twin_spec(spec: Spec, scale: float = STEP_SCALE) -> Spec:
    from ..declare.catalog import resolve_optimizer

    return spec.replace(optimizer=scaled_lr(resolve_optimizer(spec.optimizer), scale))


def scale_steps(optimizer: Any, scale: float) -> None:
    """Make every ``optimizer.step()`` move each parameter ``scale`` times as far.

    Hooks registered on the optimizer before the run's Recorder runs first, so the
    recorded norms see the scaled update."""
    import torch

    before: list[tuple[torch.Tensor, torch.Tensor]] = []

    def pre(opt: Any, args: Any, kwargs: Any) -> None:
        before[:] = [(p, p.detach().clone()) for g in opt.param_groups for p in g["params"]]

    def post(opt: Any, args: Any, kwargs: Any) -> None:
        with torch.no_grad():
            for p, old in before:
                p.copy_(old + scale * (p - old))
        before.clear()

    optimizer.register_step_pre_hook(pre)
    optimizer.register_step_post_hook(post)


def probe(spec: Spec, device: str, trajectory: Trajectory, outcome: Outcome, threads: int | None = None) -> str | None:
    """None when the check would catch the step change; else a one-line explanation."""
    from ..declare.build import build
    from ..run.train import train

    # The LR series would always notice a changed LR; the question is whether the
    # *behaviour* series (loss, norms) would notice a change of this size.
    behaviour = [n for n in trajectory.names if n not in GROUPED_SERIES]
    if not behaviour:
        return None
    built = build(spec, device)
    scale_steps(built.optimizer, STEP_SCALE)
    twin = train(spec, device, built=built, threads=threads)
    tolerances = {n: t for n, t in (outcome.tolerances or {}).items() if n in behaviour}
    golden = outcome.golden if outcome.golden is not None else outcome.current
    calibration = golden.calibration if golden is not None else None  # a calibrated check's allowance
    verdict = compare(_only(trajectory, behaviour), _only(twin, behaviour), tolerances, calibration)
    if not verdict.passed:
        return None
    worst = verdict.worst()
    detail = f"largest relative change {worst.max_rel:.3g} in {worst.name!r}" if worst else "no change at all"
    applied = "; ".join(f"{name}: {describe_tolerance(tol)}" for name, tol in tolerances.items())
    return f"every step x{STEP_SCALE} stays within tolerance ({detail}; tolerances {applied})"


def _only(trajectory: Trajectory, names: list[str]) -> Trajectory:
    return trajectory.derive(series={n: trajectory[n] for n in names})
