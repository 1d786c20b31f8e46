"""Distributed against one process: DistributedDataParallel over ``world_size`` local
processes with the same global batches must train like the one-process run.

Compared step by step: the loss of each global batch (the ranks' losses combined, see
``checks/differential/processes.py``) and every parameter and optimizer-state tensor of rank 0 against
the one-process run, within measured tolerances (the ranks' gradients are averaged in
another order than one process sums them); and every rank's tensors against rank 0's,
exactly: DDP exists to keep them identical. A summed loss, a gradient scaled by the
world size or an unsynchronised buffer shows as a difference from the first steps on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ...declare.spec import Spec
from ...engine.messages import format_number
from ...engine.outcome import Outcome, Status
from ...engine.stepwise import TENSOR_KINDS, Run, compare_runs, compare_tensors
from ...engine.tolerance import Tolerance
from .differences import from_step_text, run_difference_lines, series_difference_text, tensor_difference_text
from .tolerances import differential_tolerances

if TYPE_CHECKING:
    from ...engine.stepwise import RunComparison
    from ...engine.trajectory import Trajectory

#: Measured (docs/tolerances.md, benchmarks/measure_parity.py --distributed; torch 2.13 CPU,
#: gloo, the seed's optimizers over 384 steps, 2 and 4 ranks): the loss differs by <= 6e-8
#: abs (rtol 0 needed at atol 1e-7), parameters and state need rtol <= 1e-7 at atol 1e-6
#: (7.8e-5 at atol 1e-7: momentum buffers near zero). The same defaults as parity: tensors
#: rtol 1e-4, atol 1e-6; series their golden defaults. The ranks agree exactly.
DISTRIBUTED_DEFAULTS: Mapping[str, Mapping[str, Any]] = {kind: {"rtol": 1e-4, "atol": 1e-6} for kind in TENSOR_KINDS}

#: FSDP2 (``fully_shard`` per layer) against one process: measured like the DDP ones
#: (docs/distributed.md, benchmarks/measure_parity.py --fsdp); the same defaults hold.
FSDP_DEFAULTS: Mapping[str, Mapping[str, Any]] = DISTRIBUTED_DEFAULTS

#: How a spec-declared run is distributed, as the messages name it.
STRATEGY_NAMES = {"ddp": "DistributedDataParallel", "fsdp": "FSDP2 (fully_shard per layer)"}

EXACT_TOLERANCE = Tolerance(rtol=0.0, atol=0.0)


def check_distributed(spec: Spec, device: str = "cpu", world_size: int = 2, backend: str = "gloo",
                      timeout: float = 300.0, threads: int | None = None, strategy: str = "ddp",
                      **tolerances: Any) -> Outcome:
    """DDP (or FSDP2, ``strategy="fsdp"``) over ``world_size`` processes against the
    one-process run of ``spec``."""
    from ...declare.build import build
    from .processes import check_shards, check_world, distributed_runs
    from .states import record_run

    check_world(spec, world_size, backend, device, strategy)
    built = build(spec, device)
    check_shards(len(built.problem), spec.batch_size, world_size)
    single = record_run(spec, device, threads, built=built)
    defaults = FSDP_DEFAULTS if strategy == "fsdp" else DISTRIBUTED_DEFAULTS
    tols = differential_tolerances(single.trajectory.names, defaults, tolerances, where="check_distributed()")
    ranks = distributed_runs(spec, world_size, backend, device, timeout, threads, strategy)
    comparison = compare_runs(single, ranks[0], tols)
    exact = {"params": EXACT_TOLERANCE, "state": EXACT_TOLERANCE}
    disagreeing = []
    for rank, run in enumerate(ranks[1:], start=1):
        verdict = compare_tensors(ranks[0].tensors, run.tensors, exact)
        if verdict.first is not None:
            labels = ("rank 0", f"rank {rank}")
            disagreeing.append(tensor_difference_text(verdict.first, single.trajectory, labels))
    what = STRATEGY_NAMES[strategy]
    if comparison.passed and not disagreeing:
        return Outcome(Status.PASSED, distributed_passed_text(world_size, backend, comparison, what),
                       tolerances=tols)
    message = distributed_failed_text(world_size, backend, comparison, single.trajectory,
                                      ranks[0].trajectory, disagreeing, what)
    return Outcome(Status.FAILED, message, verdict=comparison.series, tolerances=tols)


def check_distributed_loop(run: Callable[[Any], Any], device: str = "cpu", world_size: int = 2,
                           backend: str = "gloo", timeout: float = 300.0, threads: int | None = None,
                           record: tuple[str, ...] = ("loss", "lr"), **tolerances: Any) -> Outcome:
    """A user's own loop, ``run(ctx)``, in a world of one process and of ``world_size``: the
    global trajectories compared step by step, and every rank's with rank 0's, exactly."""
    from ...engine.compare import compare
    from .processes import check_world, function_reference, loop_runs

    check_world(None, world_size, backend, device)
    function_reference(run)  # refused by name before any process starts
    worlds = loop_runs(run, [1, world_size], backend, device, timeout, threads, record)
    single, ranks = worlds[1][0], worlds[world_size]
    tols = differential_tolerances(single.names, DISTRIBUTED_DEFAULTS, tolerances, where="check_distributed()")
    comparison = compare_runs(Run(single), Run(ranks[0]), tols)
    disagreeing = []
    for rank, trajectory in enumerate(ranks[1:], start=1):
        verdict = compare(ranks[0], trajectory, {n: EXACT_TOLERANCE for n in ranks[0].names})
        # a series one rank records and another does not is a disagreement too (it has no failed step)
        disagreeing += [f"rank {rank}: " + series_difference_text(sv, ranks[0], trajectory, ("rank 0", f"rank {rank}"))
                        for sv in verdict.failed]
        disagreeing += [f"rank {rank}: {name}: recorded by rank 0 only" for name in verdict.missing_series]
        disagreeing += [f"rank {rank}: {name}: recorded by rank {rank} only" for name in verdict.extra_series]
    what = f"{run.__qualname__}()"  # function_reference found it by that name
    if comparison.passed and not disagreeing:
        return Outcome(Status.PASSED, loop_passed_text(what, world_size, backend, comparison), tolerances=tols)
    message = loop_failed_text(what, world_size, backend, comparison, single, ranks[0], disagreeing)
    return Outcome(Status.FAILED, message, verdict=comparison.series, tolerances=tols)


# -- the sentences of this check ------------------------------------------------------


def distributed_failed_text(world_size: int, backend: str, comparison: RunComparison, single: Trajectory,
                            distributed: Trajectory, ranks: Sequence[str], what: str) -> str:
    lines = [f"optcheck: {what} over {world_size} processes ({backend}) differs from the "
             f"one-process run{from_step_text(comparison, single)}"
             if not comparison.passed else
             f"optcheck: the {world_size} processes ({backend}) hold different parameters"]
    lines += run_difference_lines(comparison, single, distributed, ("one-process", "distributed"))
    if ranks:
        lines.append("ranks disagree (every rank must hold the same parameters after each step):")
        lines += [f"  {line}" for line in ranks]
    lines.append("(loss: each rank's loss weighted by its shard's size, summed: the one-process loss when "
                 "the loss is a mean over the batch; a summed loss or a wrongly scaled gradient shows here)")
    return "\n".join(lines)


def distributed_passed_text(world_size: int, backend: str, comparison: RunComparison, what: str) -> str:
    return (f"optcheck: {what} over {world_size} processes ({backend}) trains like one process "
            f"(largest rel diff {format_number(comparison.max_rel)}); ranks agree exactly")


def loop_failed_text(what: str, world_size: int, backend: str, comparison: RunComparison,
                     single: Trajectory, distributed: Trajectory, ranks: Sequence[str]) -> str:
    """A user's loop in ``world_size`` processes records another global run than in one."""
    lines = [f"optcheck: {what} in {world_size} processes ({backend}) differs from its run in one process"
             f"{from_step_text(comparison, single)}"
             if not comparison.passed else
             f"optcheck: {what}: the {world_size} processes ({backend}) recorded different trajectories"]
    lines += run_difference_lines(comparison, single, distributed, ("one-process", f"{world_size}-process"))
    if ranks:
        lines.append("ranks disagree (each rank's recording is the global one, the same on every rank):")
        lines += [f"  {line}" for line in ranks]
    lines.append("(the loss recorded in a process group is each step's logged value averaged over the ranks: "
                 "the one-process loss when each rank's loss is a mean over equal shards of the batch; a loss "
                 "summed instead of averaged, or a gradient scaled by the world size, shows here)")
    return "\n".join(lines)


def loop_passed_text(what: str, world_size: int, backend: str, comparison: RunComparison) -> str:
    return (f"optcheck: {what} in {world_size} processes ({backend}) records the run it records in one "
            f"(largest rel diff {format_number(comparison.max_rel)}); ranks agree exactly")
