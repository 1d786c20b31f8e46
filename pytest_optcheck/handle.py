"""The object behind the ``optcheck`` fixture: one test's spec, device and actions.

It holds no pytest state: the plugin passes a ``checker`` that knows how to reach the
test's golden. So the same handle can be used from a script, with a checker of its own,
and unit-tested without a pytest session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .run.spec import Spec

if TYPE_CHECKING:
    from .engine.outcome import Outcome
    from .engine.trajectory import Trajectory
    from .run.build import Built
    from .run.record import Recorder

#: The frameworks ``callback()`` knows: ``pytest_optcheck.integrations.<name>``.
FRAMEWORKS = ("lightning", "hf")

Checker = Callable[["Trajectory", "str | None", "dict[str, dict[str, Any]]", bool], "Outcome"]


class OptcheckHandle:
    """Build, train, record and check what the test's ``optcheck`` markers declare."""

    def __init__(self, spec: Spec, device: str = "cpu", checker: Checker | None = None,
                 threads: int | None = None) -> None:
        self._spec = spec
        self._device = device
        self._checker = checker
        self._threads = threads

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
        from .run.build import build

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

    def record(self, optimizer: Any, scheduler: Any = None, model: Any = None,
               record: Iterable[str] | None = None) -> Recorder:
        """A context manager that records a user's own loop (``rec.log(loss=loss)``); its
        trajectory describes the optimizer and scheduler it watched, for the golden."""
        from .run.own_loop import LoopRecorder

        return LoopRecorder(optimizer, scheduler, model, record=record or self._spec.record)

    def callback(self, framework: str, record: Iterable[str] | None = None) -> Any:
        """An ``OptcheckCallback`` for ``"lightning"`` or ``"hf"`` (Hugging Face ``Trainer``)
        that records the marker's ``record`` series (or ``record``): pass it to the trainer,
        then ``optcheck.check(callback.trajectory)``."""
        import importlib

        if framework not in FRAMEWORKS:
            raise ValueError(f"optcheck: callback({framework!r}): no integration for {framework!r}; "
                             f"use one of {', '.join(map(repr, FRAMEWORKS))}.")
        module = importlib.import_module(f".integrations.{framework}", __package__)
        return module.OptcheckCallback(record=record or self._spec.record)

    def check(self, trajectory: Trajectory | None = None, name: str | None = None,
              tolerance: Mapping[str, Any] | None = None, **short: Any) -> Outcome:
        """Compare with the golden; train from the spec when no trajectory is given.

        ``tolerance={"loss": {"rtol": 1e-3, "mode": "final"}, "*": "atol=1e-9"}`` sets
        tolerances per series ('*': every series), as the marker key does. The short form
        ``check(loss="rtol=1e-3", rtol=1e-6)`` also works where it is unambiguous (a field
        name that is also a recorded series' name is refused, with the fix). They take
        precedence over the marker, the command line and the ini. Several checks in one
        test are told apart by ``name``.
        """
        __tracebackhide__ = True
        from .engine.tolerance import check_layer

        if self._checker is None:
            raise RuntimeError("optcheck: this handle has no checker; use the `optcheck` fixture.")
        declarative = trajectory is None
        current = self.train() if declarative else trajectory
        layer = check_layer(tolerance, short, current.names, where="check()")
        outcome = self._checker(current, name, layer, declarative)
        if not outcome.ok:
            raise AssertionError(outcome.message)
        return outcome
