"""The syrupy extension that stores trajectories as golden files.

Split the syrupy way — serializer (:meth:`serialize`), storage (``get_location``, reads,
atomic writes), comparator (:meth:`matches`, with tolerances) and reporter
(:meth:`diff_lines`) — but with one deliberate difference: :meth:`discover_snapshots`
reports nothing. syrupy deletes "unused" snapshots under ``--snapshot-update``, and in
7.0.x it has been seen to delete snapshots of tests that crashed, were deselected or were
never reached (``-x``). Goldens are too valuable for that, so syrupy never learns of a
golden it did not write in this session; pytest-optcheck finds orphans itself and removes
them only when asked (``--optcheck-prune``, see :mod:`pytest_optcheck.orphans`).

syrupy builds extensions with no arguments, so the check context (layout, spec,
tolerances, environment) is set on the instance after binding; the class lives at
module level so xdist can re-import it by its dotted path.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syrupy.data import Snapshot, SnapshotCollection, SnapshotCollections
from syrupy.extensions.base import AbstractSyrupyExtension

from . import golden as goldens
from .errors import OptcheckError
from .trajectory import Trajectory
from .verdict import Outcome, evaluate

if TYPE_CHECKING:
    from syrupy.location import PyTestLocation
    from syrupy.types import SnapshotIndex

    from .context import CheckContext


class TrajectoryExtension(AbstractSyrupyExtension):
    """Golden files for :class:`~pytest_optcheck.trajectory.Trajectory` objects."""

    file_extension = "json"
    write_immediately = True

    def __init__(self) -> None:
        super().__init__()
        #: Set by the plugin right after binding (see :mod:`pytest_optcheck.context`).
        self.context: CheckContext | None = None
        #: The outcome of the latest ``matches`` call, for ``diff_lines`` and ``check()``.
        self.outcome: Outcome | None = None
        self._current_location: str | None = None
        #: Outcome of every golden compared so far, by golden path (gathered after the test).
        self.outcomes: dict[str, Outcome] = {}
        #: Golden paths already asserted in this test (the extension lives for one test).
        self._claimed: set[str] = set()
        self._duplicate: str | None = None

    # -- serializer -----------------------------------------------------------------
    def serialize(self, data: Any, **_: Any) -> str:
        if not isinstance(data, Trajectory):
            raise TypeError(
                f"optcheck: trajectory_snapshot compares Trajectory objects; got "
                f"{type(data).__name__}. Record one with optcheck.train(), "
                f"optcheck.lr_schedule(n) or optcheck.record(...)."
            )
        context = self._require_context()
        location = self._current_location
        if location is not None:  # syrupy serializes once per assertion, after get_location
            if location in self._claimed:
                self._duplicate = (
                    f"optcheck: two checks in this test use the same golden "
                    f"{goldens.relative_to_cwd(location)}; the second would overwrite the first. "
                    f"Give each check its own name: check(name=...) / trajectory_snapshot(name=...)."
                )
                self.outcomes[location] = Outcome("error", self._duplicate, location)
                raise OptcheckError(self._duplicate)
            self._claimed.add(location)
            self._duplicate = None
        return goldens.dumps(context.golden_for(data))

    # -- storage --------------------------------------------------------------------
    def get_location(self, *, test_location: PyTestLocation, index: SnapshotIndex) -> str:  # type: ignore[override]
        context = self._require_context()
        name = None if index == 0 else str(index)
        context.name = name
        path = context.layout.path_for(test_location.filepath, test_location.snapshot_name, name)
        self._current_location = str(path)
        return str(path)

    @classmethod
    def matches_test_location(cls, *, test_location: PyTestLocation, snapshot_location: str) -> bool:
        """Always: :class:`~pytest_optcheck.golden.GoldenLayout` decides where goldens
        live (a sanitised id is not syrupy's name, and syrupy would warn about it)."""
        return True

    def discover_snapshots(self, **_: Any) -> SnapshotCollections:
        """Nothing: syrupy must never consider a golden unused (see module docstring)."""
        return SnapshotCollections()

    def read_snapshot_collection(self, *, snapshot_location: str) -> SnapshotCollection:
        collection = SnapshotCollection(location=snapshot_location)
        collection.add(Snapshot(name=Path(snapshot_location).stem))
        return collection

    def read_snapshot_data_from_location(
        self, *, snapshot_location: str, snapshot_name: str, session_id: str
    ) -> str | None:
        try:
            return Path(snapshot_location).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except UnicodeDecodeError:
            return "\0not utf-8"  # parsed as a corrupt golden, reported by path

    @classmethod
    def write_snapshot_collection(
        cls, *, snapshot_collection: SnapshotCollection, name_order: dict[str, int] | None = None
    ) -> None:
        snapshot = next(iter(snapshot_collection))
        goldens.write_atomic(snapshot_collection.location, str(snapshot.data))

    def delete_snapshots(self, *, snapshot_location: str, snapshot_names: set[str]) -> None:
        """Never called (nothing is discovered); goldens are pruned by optcheck itself."""

    # -- comparator -----------------------------------------------------------------
    def matches(self, *, serialized_data: Any, snapshot_data: Any) -> bool:
        context = self._require_context()
        current = goldens.loads(str(serialized_data))
        self.outcome = evaluate(
            current,
            None if snapshot_data is None else str(snapshot_data),
            path=self._current_location,
            tolerance_layers=context.tolerance_layers,
            update_command=context.update_command,
            picture=context.picture,
            layout=context.layout,
        )
        if self._current_location is not None:
            self.outcomes[self._current_location] = self.outcome
        return self.outcome.passed

    # -- reporter -------------------------------------------------------------------
    def diff_lines(self, serialized_data: Any, snapshot_data: Any) -> Iterator[str]:
        if self._duplicate is not None:
            yield self._duplicate
            return
        if self.outcome is None or snapshot_data in (None, ""):
            self.matches(serialized_data=serialized_data, snapshot_data=snapshot_data or None)
        assert self.outcome is not None
        yield from self.outcome.message.splitlines()

    # -- helpers --------------------------------------------------------------------
    def _require_context(self) -> CheckContext:
        if self.context is None:
            raise RuntimeError(
                "optcheck: TrajectoryExtension used without a check context; use the "
                "`trajectory_snapshot` fixture (or optcheck.check()), not "
                "snapshot.use_extension(TrajectoryExtension) directly."
            )
        return self.context
