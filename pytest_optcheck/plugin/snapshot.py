"""``trajectory_snapshot``: ``assert trajectory == trajectory_snapshot``, the snapshot form of
``optcheck.check(trajectory)`` — the same check, the same golden layout, the same message.

It is optcheck's own assertion object rather than syrupy's ``SnapshotAssertion`` (see the
README): syrupy's assertion keeps each result in its own session, compares exact text, and
prints its own summary next to optcheck's. syrupy keeps the part it is good at: its
``--snapshot-update`` flag updates goldens, and its ``snapshot`` fixture stays free for a
project's other snapshots.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..engine.trajectory import Trajectory

if TYPE_CHECKING:
    from .checking import TestChecks


class TrajectorySnapshot:
    """Compares with ``==``; ``trajectory_snapshot(name="short")`` names a second golden."""

    __test__ = False

    def __init__(self, checks: TestChecks, name: str | None = None, named: bool = False) -> None:
        self._checks = checks
        self._name = name
        self._named = named

    def __call__(self, *, name: str | None = None) -> TrajectorySnapshot:
        return TrajectorySnapshot(self._checks, name, named=True)

    def __repr__(self) -> str:
        name = f", name={self._name!r}" if self._named else ""
        return f"trajectory_snapshot({self._checks.item.nodeid!r}{name})"

    def __eq__(self, other: object) -> bool:
        """True: the check is made and kept, and a failure fails the test at its end with the
        other checks' failures, exactly as ``check()``'s does (every check of a test is
        evaluated and reported, docs/checks.md)."""
        __tracebackhide__ = True
        if not isinstance(other, Trajectory):
            raise TypeError(
                f"optcheck: trajectory_snapshot compares Trajectory objects; got {type(other).__name__}. "
                f"Record one with optcheck.train(), optcheck.lr_schedule(n) or optcheck.record(...)."
            )
        name = self._name if self._named else self._checks.next_unnamed()
        self._checks.check(other, name, {}, declarative=False)
        return True

    __hash__ = None  # type: ignore[assignment]
