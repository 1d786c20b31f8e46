"""Implementation parity: the spec's run is the reference; each variant — by default the
other implementations the optimizer offers (for-loop, ``foreach``, ``fused``) — runs from
the same seed and must agree step by step on the loss, every parameter and every
optimizer-state tensor, as PyTorch checks its own (``common_optimizers.py``).

A variant is a dict of spec overrides (``{"fast": {"optimizer": my_fast_adam}}``), so a
rewrite of a custom optimizer is checked against its slow original the same way. The
default tolerances are measured (``docs/tolerances.md``): foreach repeats the for-loop's
arithmetic bit for bit on the CPU, a fused kernel reorders it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ...declare.spec import Spec
from ...engine.messages import format_number
from ...engine.outcome import Outcome, Status
from ...engine.stepwise import TENSOR_KINDS, compare_runs
from ...errors import OptcheckError
from .differences import from_step_text, run_difference_lines
from .tolerances import differential_tolerances

if TYPE_CHECKING:
    from ...engine.stepwise import RunComparison
    from ...engine.trajectory import Trajectory

#: Measured (docs/tolerances.md, benchmarks/measure_parity.py; torch 2.13 CPU, 384 steps of
#: the seed problem, every torch optimizer with foreach/fused): most foreach paths repeat
#: the for-loop bit for bit; fused Adam/AdamW/SGD-momentum, NAdam/RAdam/Adafactor foreach
#: need rtol 0 at atol 1e-6 (elements near zero differ by <= 3.6e-7); ASGD's foreach, which
#: reorders its update, needs rtol 3.2e-5. LR x1.01 moves the parameters by >= 5e-3
#: relative. Tensors: rtol 1e-4, atol 1e-6 (3x over ASGD, 50x under the LR signal); the
#: series keep their golden defaults (loss rtol 1e-4: the worst needs 4.4e-6; lr exact).
PARITY_DEFAULTS: Mapping[str, Mapping[str, Any]] = {kind: {"rtol": 1e-4, "atol": 1e-6} for kind in TENSOR_KINDS}


def variant_specs(spec: Spec, variants: Mapping[str, Mapping[str, Any]] | None,
                  device: str) -> tuple[dict[str, Spec], dict[str, str]]:
    """``({name: spec}, {skipped name: reason})``: the given variants, or the optimizer's."""
    if variants is None:
        from .implementations import implementation_variants

        found, skipped = implementation_variants(spec, device)
        return {name: spec.replace(**overrides) for name, overrides in found.items()}, skipped
    if not isinstance(variants, Mapping) or not all(isinstance(v, Mapping) for v in variants.values()):
        raise OptcheckError(f"optcheck: check_parity(variants={variants!r}): give a dict of variant name to spec "
                            f"overrides, e.g. variants={{'fused': {{'optimizer': 'Adam(lr=0.01, fused=True)'}}}}.")
    return {str(name): spec.replace(**dict(overrides)) for name, overrides in variants.items()}, {}


def has_variants(spec: Spec, device: str = "cpu") -> bool:
    """Whether the optimizer offers another implementation on this device (for the option)."""
    from .implementations import implementation_variants

    return bool(implementation_variants(spec, device)[0])


def check_parity(spec: Spec, device: str = "cpu", variants: Mapping[str, Mapping[str, Any]] | None = None,
                 threads: int | None = None, **tolerances: Any) -> Outcome:
    """Each variant against the spec's own run, step by step; the first that differs fails."""
    from .states import record_run

    specs, skipped = variant_specs(spec, variants, device)
    skipped_lines = [parity_skipped_text(n, r) for n, r in skipped.items()]
    if not specs:
        raise OptcheckError(parity_none_text(_optimizer(spec), skipped_lines))
    reference = record_run(spec, device, threads)
    tols = differential_tolerances(reference.trajectory.names, PARITY_DEFAULTS, tolerances, where="check_parity()")
    summaries: list[str] = []
    for name, variant in specs.items():
        run = record_run(variant, device, threads)
        comparison = compare_runs(reference, run, tols)
        summaries.append(parity_variant_text(name, comparison))
        if not comparison.passed:
            message = parity_failed_text(
                name, f"optimizer={_optimizer(variant)}",
                f"optimizer={_optimizer(spec)}", comparison, reference.trajectory,
                run.trajectory, [*summaries[:-1], *skipped_lines])
            return Outcome(Status.FAILED, message, verdict=comparison.series, tolerances=tols,
                           notes=tuple(skipped_lines))
    return Outcome(Status.PASSED, parity_passed_text(summaries, skipped_lines), tolerances=tols,
                   notes=tuple(skipped_lines))


def _optimizer(spec: Spec) -> str:
    """The optimizer as the golden header names it (call syntax normalised, callables by name)."""
    return repr(spec.canonical()["optimizer"])


# -- the sentences of this check ------------------------------------------------------


def parity_failed_text(variant: str, setup: str, reference_setup: str, comparison: RunComparison,
                       reference: Trajectory, other: Trajectory, others: Sequence[str]) -> str:
    lines = [(f"optcheck: implementation {variant!r} ({setup}) differs from the reference ({reference_setup})"
             f"{from_step_text(comparison, reference)}")]
    lines += run_difference_lines(comparison, reference, other, ("reference", variant))
    if others:
        lines.append(f"other implementations: {'; '.join(others)}")
    return "\n".join(lines)


def parity_variant_text(variant: str, comparison: RunComparison) -> str:
    """'foreach: within tolerance (largest rel diff 0)' for the other variants' summary."""
    verdict = "within tolerance" if comparison.passed else "differs"
    return f"{variant}: {verdict} (largest rel diff {format_number(comparison.max_rel)})"


def parity_skipped_text(variant: str, reason: str) -> str:
    return f"{variant}: skipped, {reason}"


def parity_passed_text(checked: Sequence[str], skipped: Sequence[str]) -> str:
    lines = [f"optcheck: {len(checked)} implementation(s) agree with the reference step by step"]
    lines += [f"  {line}" for line in [*checked, *skipped]]
    return "\n".join(lines)


def parity_none_text(optimizer: str, skipped: Sequence[str]) -> str:
    """No variant to compare: the optimizer offers none here (or all were skipped)."""
    reason = "; ".join(skipped) if skipped else "its signature has neither foreach nor fused"
    return (f"optcheck: optimizer={optimizer} has no other implementation to compare on this device ({reason}); "
            f"pass variants={{name: {{spec overrides}}}} to compare your own")
