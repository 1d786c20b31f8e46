"""What a check ends in: a :class:`Status` and an :class:`Outcome` that carries the text.

An Outcome is data — made once by the function that decided it, never edited afterwards —
so the summary, the report, ``optcheck diff`` and the AssertionError all read the same
thing. The status values are strings on purpose (``Status.FAILED == "failed"``): they are
written to ``summary.json`` and carried from xdist workers as JSON.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .compare import Verdict
    from .envelope import Calibration
    from .tolerance import Tolerance
    from .trajectory import Trajectory


class Recorded(Protocol):
    """What an Outcome keeps of the golden and of the run checked against it: the
    trajectory, the configuration it was recorded under, and its noise envelope if it was
    calibrated (``golden.format.Golden`` is one). A protocol, so the engine does not import
    the golden layer above it."""

    @property
    def trajectory(self) -> Trajectory: ...

    @property
    def spec(self) -> Mapping[str, Any] | None: ...

    @property
    def calibration(self) -> Calibration | None: ...


class Status(enum.StrEnum):
    """How a check ended, in the order a reviewer wants to read them (failures first)."""

    FAILED = "failed"
    CONFIG_CHANGED = "config-changed"
    CORRUPT = "corrupt"
    MISSING = "missing"
    ERROR = "error"
    UPDATED = "updated"
    #: A golden that could not be read (damaged), rewritten under ``--snapshot-update``.
    REPAIRED = "repaired"
    CREATED = "created"
    PASSED = "passed"

    @property
    def ok(self) -> bool:
        """Whether the test may pass: the golden agreed, or was (re)written on request."""
        return self in (Status.PASSED, Status.CREATED, Status.UPDATED, Status.REPAIRED)


#: Failures first: the order of the summary, the report and ``summary.json``.
STATUS_ORDER: tuple[Status, ...] = tuple(Status)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """The result of one check: its status, the message a user reads, and the evidence."""

    status: Status
    message: str
    path: str | None = None
    verdict: Verdict | None = None
    golden: Recorded | None = None
    current: Recorded | None = None
    tolerances: Mapping[str, Tolerance] | None = None
    #: How the check ran when that is worth saying (``"stacked replicas"``...), for the report.
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.status is Status.PASSED

    @property
    def ok(self) -> bool:
        return self.status.ok

    def with_status(self, status: Status, message: str | None = None) -> Outcome:
        """A copy with another status (a golden written under ``--snapshot-update``)."""
        return dataclasses.replace(self, status=status, message=self.message if message is None else message)

    def worst(self) -> dict[str, Any] | None:
        """The worst series (largest relative error) as a small JSON-ready dict."""
        if self.verdict is None:
            return None
        worst = self.verdict.worst()
        if worst is None:
            return None
        return {"series": worst.name, "max_rel": worst.max_rel, "max_abs": worst.max_abs,
                "first_failure": worst.first_failure}
