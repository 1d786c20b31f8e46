"""syrupy's own ``snapshot`` fixture, comparing trajectories the way optcheck does.

    from pytest_optcheck.integrations.syrupy import TrajectoryExtension

    def test_training(snapshot):
        trajectory = ...                     # optcheck.train(), rec.trajectory, callback.trajectory...
        assert trajectory == snapshot(extension_class=TrajectoryExtension)

For projects that already keep syrupy snapshots. The extension is stateless — syrupy makes a
new one per assertion, and everything it decides comes from the two texts it is handed:

* ``serialize`` writes the trajectory in the golden format (:mod:`~pytest_optcheck.golden.format`),
  so ``optcheck show`` / ``diff`` / ``plot`` read the snapshot like any golden;
* ``matches`` is the tolerance-aware comparison (:func:`~pytest_optcheck.checks.golden_check.judge`),
  not text equality: a change of floating-point order within tolerance matches, and so
  ``--snapshot-update`` rewrites only the snapshots out of tolerance;
* ``diff_lines`` is optcheck's failure message (which series, which step first, by how much,
  a table around it) instead of a line diff of numbers.

Storage (``__snapshots__/<test file>/<test name>.trajectory``, one file per snapshot),
``--snapshot-update``, ``-k`` and the unused-snapshot report are syrupy's own. Tolerances are the
per-series defaults; ``TrajectoryExtension.with_tolerance({"loss": "rtol=1e-3"})`` makes an
extension class with others. ``syrupy`` is imported when this module is, never by the plugin.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from ..checks.golden_check import judge
from ..engine.outcome import Status
from ..engine.trajectory import Trajectory
from ..errors import GoldenFileError
from ..golden.format import Golden, dumps, loads

if TYPE_CHECKING:
    from syrupy.types import PropertyFilter, PropertyMatcher, SerializableData, SerializedData

#: What the failure message says to run (syrupy names the snapshot itself).
UPDATE_COMMAND = "pytest --snapshot-update"


class TrajectoryExtension(SingleFileSnapshotExtension):
    """A syrupy extension for :class:`~pytest_optcheck.engine.trajectory.Trajectory` values."""

    _write_mode = WriteMode.TEXT
    #: Not ``json``: syrupy's JSONSnapshotExtension claims ``*.json`` in the same folder, and would
    #: report (and with --snapshot-update delete) these as its own unused snapshots.
    file_extension = "trajectory"
    #: Per-series tolerances, the marker's ``tolerance`` form (``{"loss": "rtol=1e-3", "*": {...}}``).
    tolerance: ClassVar[Mapping[str, Any]] = {}

    @classmethod
    def with_tolerance(cls, tolerance: Mapping[str, Any]) -> type[TrajectoryExtension]:
        """An extension class comparing with these tolerances (syrupy takes a class, not an instance)."""
        from ..engine.tolerance import parse_tolerance

        checked = {str(k): parse_tolerance(v, where=f"TrajectoryExtension tolerance for {k!r}")
                   for k, v in dict(tolerance).items()}
        return type(cls.__name__, (cls,), {"tolerance": checked, "__module__": cls.__module__})

    def serialize(self, data: SerializableData, *, exclude: PropertyFilter | None = None,
                  include: PropertyFilter | None = None, matcher: PropertyMatcher | None = None) -> SerializedData:
        """The trajectory as a golden's text: a recorded run's description is its configuration."""
        if not isinstance(data, Trajectory):
            raise TypeError(
                f"optcheck: TrajectoryExtension snapshots a Trajectory; got a {type(data).__name__}. Make one with "
                f"optcheck.train(), optcheck.record(...), a callback's .trajectory, or Trajectory({{'loss': values}}).")
        meta = dict(data.meta)
        configuration = meta.pop("run", None)
        libraries = meta.pop("libraries", ())
        return dumps(Golden(data.derive(meta=meta), configuration, _environment(configuration, libraries)))

    def matches(self, *, serialized_data: SerializableData, snapshot_data: SerializableData) -> bool:
        return self._judge(serialized_data, snapshot_data).status is Status.PASSED

    def diff_lines(self, serialized_data: SerializedData, snapshot_data: SerializedData) -> Iterator[str]:
        """optcheck's failure message (nothing for a snapshot that does not exist yet: syrupy says so)."""
        if not snapshot_data:
            return
        yield from self._judge(serialized_data, snapshot_data).message.splitlines()

    def _judge(self, serialized_data: Any, snapshot_data: Any) -> Any:
        try:
            current = loads(str(serialized_data))
        except GoldenFileError as exc:  # cannot happen for what serialize wrote; said plainly if it does
            from ..engine.outcome import Outcome

            return Outcome(Status.ERROR, str(exc))
        return judge(current, str(snapshot_data), tolerance_layers=(self.tolerance,), update_command=UPDATE_COMMAND)


def _environment(configuration: Mapping[str, Any] | None, libraries: Any) -> dict[str, Any]:
    """The golden's environment block (torch, numpy, python, platform, the run's libraries)."""
    try:
        from ..golden.environment import environment

        dtype = "float32" + (f" (autocast {configuration['autocast']})"
                             if configuration and configuration.get("autocast") else "")
        return environment("cpu", dtype, sorted(libraries))
    except ImportError:  # no torch here: the snapshot still compares, it only names less
        return {}


def explain_failure(assertion: Any, op: str) -> list[str] | None:
    """optcheck's failure message for a failed ``trajectory == snapshot(extension_class=TrajectoryExtension)``.

    syrupy restores the assertion's default extension right after the comparison, before pytest
    asks for the explanation, so its own report would diff the texts line by line with the default
    extension. The plugin's ``pytest_assertrepr_compare`` calls this first, once it has seen that
    the last execution (syrupy's public ``executions``) compared one of our snapshots
    (``.trajectory``), which :class:`TrajectoryExtension` explains — with the default tolerances,
    which a ``with_tolerance`` class may have tightened: when those find no failure, syrupy explains."""
    result = assertion.executions[max(assertion.executions)]
    if result.success or result.exception is not None:  # an `!=` that failed; an error syrupy reports
        return None
    if result.recalled_data is None or result.asserted_data is None:
        return None  # no snapshot yet: syrupy's "does not exist" says it best
    outcome = TrajectoryExtension()._judge(result.asserted_data, result.recalled_data)
    if outcome.status is Status.PASSED:
        return None
    return [f"[+ received] {op} [- {assertion.name}]", *outcome.message.splitlines()]
