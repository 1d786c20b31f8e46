"""The object behind the ``optcheck`` fixture: one test's spec, device and actions.

It holds no pytest state: the plugin passes a ``checker`` that knows how to reach the
test's golden. So the same handle can be used from a script, with a checker of its own,
and unit-tested without a pytest session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .declare.spec import Spec

if TYPE_CHECKING:
    from .checks.golden_check import Replicate
    from .declare.build import Built
    from .engine.outcome import Outcome
    from .engine.trajectory import Trajectory
    from .run.record import Recorder

#: The frameworks ``callback()`` knows: ``pytest_optcheck.integrations.<name>``.
FRAMEWORKS = ("lightning", "pytorch_lightning", "hf")


class Checker(Protocol):
    """How a handle's ``check()`` reaches the test's golden (the plugin passes one that
    knows the golden's path, the session's tolerances and whether to update)."""

    def __call__(self, current: Trajectory, name: str | None, layer: dict[str, Any], declarative: bool, *,
                 calibrate: int | None = None, replicate: Replicate | None = None) -> Outcome:
        """Check ``current`` against the golden called ``name``. ``layer`` is check()'s
        tolerances (``{series or '*': fields}``); ``declarative`` says optcheck trained the run
        from the spec; ``calibrate`` is check()'s own (None: the marker's or the ini's decides);
        ``replicate`` re-runs the check's run from perturbed starts (None for a trajectory the
        test recorded itself, which cannot be re-run)."""
        ...


#: Receives the outcome of a check without a golden (resume, parity, distributed) and its name.
Reporter = Callable[["str | None", "Outcome"], None]


class OptcheckHandle:
    """Build, train, record and check what the test's ``optcheck`` markers declare."""

    def __init__(self, spec: Spec, device: str = "cpu", checker: Checker | None = None,
                 threads: int | None = None, reporter: Reporter | None = None, defer: bool = False) -> None:
        self._spec = spec
        #: True under pytest: a failing check does not raise; the plugin fails the test once
        #: at its end, naming every failing check (docs/checks.md).
        self._defer = defer
        self._device = device
        self._checker = checker
        self._threads = threads
        self._reporter = reporter

    @property
    def spec(self) -> Spec:
        """The resolved spec (all marker levels merged); read-only."""
        return self._spec

    @property
    def device(self) -> str:
        return self._device

    def __repr__(self) -> str:
        return f"OptcheckHandle(device={self._device!r}, spec={self._spec.canonical()!r})"

    def with_spec(self, **overrides: Any) -> Spec:
        """The spec with some keys replaced (validated like marker keys)."""
        return self._spec.replace(**overrides) if overrides else self._spec

    def build(self, **overrides: Any) -> tuple[Any, Any, Any]:
        """A fresh ``(model, optimizer, scheduler)``, seeded, on the device.

        Keyword overrides replace spec keys for this call only (``optimizer="Adam"``)."""
        built = self._build(self.with_spec(**overrides))
        return built.model, built.optimizer, built.scheduler

    def _build(self, spec: Spec) -> Built:
        from .declare.build import build

        return build(spec, self._device)

    def train(self, **overrides: Any) -> Trajectory:
        """Run the reference loop (the seed's) and return its Trajectory.

        Keyword overrides replace spec keys for this run only, so one test can compare
        variants (``optcheck.train(optimizer="SGD(lr=0.01, momentum=0.9)")``)."""
        from .run.train import train

        return train(self.with_spec(**overrides), self._device, threads=self._threads)

    def lr_schedule(
        self, steps: int, metrics: Sequence[float] | Callable[[int], float] | None = None, **overrides: Any
    ) -> Trajectory:
        """The LR (and momentum) over ``steps`` scheduler intervals, without training."""
        from .run.train import lr_schedule

        return lr_schedule(self.with_spec(**overrides), steps, self._device, metrics=metrics)

    def _replicate(self, run: Callable[..., Any] | None) -> Callable[[int], Any]:
        """How to replicate the checked run from perturbed starts: the user's ``run``, else
        the spec's reference run (a recorded trajectory cannot be re-run: no replicate)."""
        spec, device, threads = self._spec, self._device, self._threads

        def spec_replicas(n: int) -> Any:
            from .run.replicas import replicas

            return replicas(spec, n, device, threads)

        def loop_replicas(n: int) -> Any:
            from .run.replicas import replicas_of

            return replicas_of(run, spec.seed, n, threads)

        return loop_replicas if run is not None else spec_replicas

    def record(self, optimizer: Any, scheduler: Any = None, model: Any = None,
               record: Iterable[str] | None = None, *, record_every: int | None = None,
               reduce: str | Mapping[str, str] = "mean", scaler: Any = None,
               optimizer_attr: str | None = None) -> Recorder:
        """A context manager that records a user's own loop (``rec.log(loss=loss)``); its
        trajectory describes the optimizer and scheduler it watched, for the golden.

        ``record_every=k`` (default: the marker's) keeps every k-th step and each bucket's
        min, max and mean (docs/long-runs.md). ``scaler``: the ``torch.amp.GradScaler`` the
        loop steps through; a step it skips stays a row, marked in the ``skipped`` series.
        ``optimizer`` may be a wrapper that is not a torch optimizer (found at ``.optimizer``,
        ``.base_optimizer`` or ``optimizer_attr``). Arguments of the wrong kind (a model
        first) are refused here, naming what was given.

        In a process group (pytest under torchrun) it records the global run: each step's
        logged values combined over the ranks by ``reduce`` (the mean; ``"sum"``... or
        ``{series: rule}``), the whole model's norms, gathered once when the trajectory is read."""
        from .run.own_loop import LoopRecorder

        every = self._spec.record_every if record_every is None else record_every
        return LoopRecorder(optimizer, scheduler, model, record=record or self._spec.record, record_every=every,
                            reduce=reduce, scaler=scaler, optimizer_attr=optimizer_attr)

    def callback(self, framework: str, record: Iterable[str] | None = None, *,
                 record_every: int | None = None) -> Any:
        """An ``OptcheckCallback`` for ``"lightning"``, ``"pytorch_lightning"`` (the standalone
        package) or ``"hf"`` (Hugging Face ``Trainer``)
        that records the marker's ``record`` series (or ``record``): pass it to the trainer,
        then ``optcheck.check(callback.trajectory)``."""
        import importlib

        if framework not in FRAMEWORKS:
            raise ValueError(f"optcheck: callback({framework!r}): no integration for {framework!r}; "
                             f"use one of {', '.join(map(repr, FRAMEWORKS))}.")
        module = importlib.import_module(f".integrations.{framework}", __package__)
        every = self._spec.record_every if record_every is None else record_every
        return module.OptcheckCallback(record=record or self._spec.record, record_every=every)

    def check(self, trajectory: Trajectory | None = None, name: str | None = None,
              tolerance: Mapping[str, Any] | None = None, *, calibrate: int | None = None,
              run: Callable[[Callable[[Any], Any]], Trajectory] | None = None, **short: Any) -> Outcome:
        """Compare with the golden; train from the spec when no trajectory is given.

        ``calibrate=N`` (wins over the marker key and the ini) records the golden with the
        noise envelope of N replicas from ulp-perturbed starts. A user's own loop can be
        calibrated too: pass it as ``run=fn`` instead of a trajectory, where ``fn(perturb)``
        seeds itself (``torch.manual_seed`` inside ``fn``: every call must build the same
        weights, or the replicas start apart and are refused), builds the model, passes it
        through ``perturb(model)`` (the identity for the checked run, a one-ulp move for each
        replica) and returns the recorded Trajectory.

        ``tolerance={"loss": {"rtol": 1e-3, "mode": "final"}, "*": "atol=1e-9"}`` sets
        tolerances per series ('*': every series), as the marker key does. The short form
        ``check(loss="rtol=1e-3", rtol=1e-6)`` also works where it is unambiguous (a field
        name that is also a recorded series' name is refused, with the fix). They take
        precedence over the marker, the command line and the ini. Several checks in one
        test are told apart by ``name``.

        Under pytest a failing check does not raise: it returns its Outcome (``.ok`` False),
        the test runs on to its other checks, and fails once at its end naming every failing
        check (docs/checks.md). Outside pytest (a handle with its own checker) it raises.
        """
        __tracebackhide__ = True
        from .engine.tolerance import check_layer

        if self._checker is None:
            raise RuntimeError("optcheck: this handle has no checker; use the `optcheck` fixture.")
        if run is not None and trajectory is not None:
            from .errors import OptcheckError

            raise OptcheckError("optcheck: check() got both a trajectory and run=; pass one: run=fn to let "
                                "optcheck run (and calibrate) your loop, or the trajectory you recorded.")
        if trajectory is not None:
            _require_trajectory(trajectory, "check()")
        declarative = trajectory is None and run is None
        replicate = None if trajectory is not None else self._replicate(run)
        if run is not None:
            from .run.replicas import as_trajectory, unperturbed

            current = as_trajectory(run(unperturbed), run)
        else:
            current = self.train() if declarative else trajectory
        layer = check_layer(tolerance, short, current.names, where="check()")
        outcome = self._checker(current, name, layer, declarative, calibrate=calibrate, replicate=replicate)
        if not outcome.ok and not self._defer:
            raise AssertionError(outcome.message)
        return outcome

    # -- checks without goldens -----------------------------------------------------------

    def check_resume(self, at: float = 0.5, name: str | None = None, **tolerances: Any) -> Outcome:
        """Train straight through and with a checkpoint after step ``at`` (an int, or a
        fraction of the run): saved with ``torch.save``, loaded into objects built afresh with
        ``torch.load(weights_only=True)``, continued. The runs must agree (exactly on CPU)."""
        __tracebackhide__ = True
        from .checks.differential.resume import check_resume

        return self._conclude(name or "resume", check_resume(self._spec, self._device, at=at,
                                                             threads=self._threads, **tolerances))

    def check_parity(self, variants: Mapping[str, Mapping[str, Any]] | None = None, name: str | None = None,
                     **tolerances: Any) -> Outcome:
        """Each variant (``{name: {spec overrides}}``; default: the for-loop / foreach / fused
        implementations the optimizer offers here) against the spec's run, step by step: loss,
        parameters and every optimizer-state tensor."""
        __tracebackhide__ = True
        from .checks.differential.parity import check_parity

        return self._conclude(name or "parity", check_parity(self._spec, self._device, variants=variants,
                                                             threads=self._threads, **tolerances))

    def check_distributed(self, world_size: int = 2, backend: str = "gloo", name: str | None = None,
                          timeout: float = 300.0, *, run: Callable[[Any], Trajectory] | None = None,
                          strategy: str | None = None, **tolerances: Any) -> Outcome:
        """The run in ``world_size`` local processes against the one-process run.

        Without ``run``: the spec's reference loop, data-parallel — DistributedDataParallel
        (``strategy="ddp"``, the default) or FSDP2's ``fully_shard`` per layer
        (``strategy="fsdp"``), each rank on its shard of every global batch; parameters and
        optimizer state compared whole after each step, and the ranks' must agree exactly.

        ``run=fn``: a user's own loop. ``fn(ctx)`` — a module-level function of the test file —
        runs in each rank with the default process group initialised; ``ctx`` has ``rank``,
        ``world_size``, ``device`` and ``record(optimizer, scheduler, model)`` (it records the
        global run); it returns ``rec.trajectory``. It runs in a world of one process and of
        ``world_size``, and the trajectories are compared step by step."""
        __tracebackhide__ = True
        from .checks.differential.distributed import check_distributed, check_distributed_loop

        if run is not None:
            if strategy is not None:
                from .errors import OptcheckError

                raise OptcheckError(f"optcheck: check_distributed(run=..., strategy={strategy!r}): strategy says "
                                    f"how optcheck distributes a spec-declared run; a loop of your own wraps its "
                                    f"model itself (DDP, fully_shard). Leave strategy out.")
            outcome = check_distributed_loop(run, self._device, world_size=world_size, backend=backend,
                                             timeout=timeout, threads=self._threads, record=self._spec.record,
                                             **tolerances)
        else:
            outcome = check_distributed(self._spec, self._device, world_size=world_size, backend=backend,
                                        timeout=timeout, threads=self._threads, strategy=strategy or "ddp",
                                        **tolerances)
        return self._conclude(name or "distributed", outcome)

    def _conclude(self, name: str, outcome: Outcome) -> Outcome:
        """Hand the outcome to the reporter (the summary, the report); fail when it failed."""
        __tracebackhide__ = True
        if self._reporter is not None:
            self._reporter(name, outcome)
        if not outcome.ok and not self._defer:
            raise AssertionError(outcome.message)
        return outcome


def _require_trajectory(value: Any, where: str) -> None:
    """A check compares a Trajectory: anything else is refused at the boundary, naming the
    type expected and what was given, with the ways to make one."""
    from .engine.trajectory import Trajectory

    if isinstance(value, Trajectory):
        return
    from .errors import OptcheckError

    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise OptcheckError(
        f"optcheck: {where} takes a Trajectory; got a {type(value).__name__}: {shown}. Make one with "
        f"optcheck.train(), optcheck.lr_schedule(n), rec.trajectory of optcheck.record(...), "
        f"callback.trajectory, or from your own numbers: Trajectory({{\"loss\": values}}) "
        f"(from pytest_optcheck import Trajectory)."
    )
