"""pytest launched by torchrun (or any launcher that sets ``RANK`` / ``WORLD_SIZE``): every
rank runs the tests, only rank 0 touches files, and every rank ends with rank 0's verdict.

* :func:`writes` — whether this process may write: goldens, pictures, the report, the
  summary, pruning. True outside a launcher and on rank 0.
* :func:`judged` — one check's Outcome on every rank. Inside an initialised process group
  rank 0 judges (reads the golden, writes it when updating) and its Outcome — or its error —
  reaches the others in one exchange (:meth:`~pytest_optcheck.run.record.world.World.gather`,
  with a deadline that names a missing rank), so all ranks pass or all fail with the same
  message. A launched rank above 0 with no process group cannot hear rank 0: it judges
  read-only, and leaves an update to rank 0.
* :class:`EndOfTest` — after each test, inside a process group, the ranks meet
  (:meth:`~pytest_optcheck.run.record.world.World.end_test`): a rank that failed a test
  early fails the others' exchange in that test, not in every later one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from ..errors import OptcheckError

if TYPE_CHECKING:
    from ..engine.outcome import Outcome


def launched_rank() -> int:
    """This process's rank as the launcher set it (``RANK`` with ``WORLD_SIZE`` > 1), else 0."""
    try:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            return int(os.environ.get("RANK", "0"))
    except ValueError:
        pass
    return 0


def launched() -> bool:
    """Whether a launcher started this process as one of several ranks (``WORLD_SIZE`` > 1)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def writes() -> bool:
    """Whether this process writes goldens, pictures, the report and the summary: rank 0 only."""
    return launched_rank() == 0


def judged(judge: Callable[[bool], Outcome], update: bool) -> Outcome:
    """``judge(update)`` on rank 0, its Outcome on every rank (see the module's doc)."""
    __tracebackhide__ = True
    from ..run.record.world import current

    world = current()
    if world is None or world.size == 1:
        if writes():
            return judge(update)
        if update:
            from ..engine.outcome import Outcome, Status

            return Outcome(Status.PASSED, f"optcheck: rank {launched_rank()}: no process group to hear rank 0's "
                                          f"verdict; rank 0 writes the golden")
        return judge(False)
    if world.rank == 0:
        try:
            outcome = judge(update)
        except BaseException as exc:
            world.gather("a check's verdict", ("error", f"{type(exc).__name__}: {exc}"))
            raise
        world.gather("a check's verdict", ("outcome", outcome))
        return outcome
    kind, value = world.gather("a check's verdict", None)[0]
    if kind == "error":
        raise OptcheckError(f"optcheck: rank 0 (which judges for every rank) failed the check:\n{value}")
    return value


class EndOfTest:
    """Registered under a launcher (``WORLD_SIZE`` > 1): the ranks meet after each test's
    call, before its fixtures are torn down (the process group is still up)."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        from ..run.record.world import current

        world = current()
        if world is not None:
            world.end_test()
