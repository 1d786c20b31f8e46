"""engine/outcome.py: an Outcome's copy with another status keeps or replaces the message, and
its worst series is the small dict the report and summary.json show."""

from __future__ import annotations

from pytest_optcheck.engine.compare import compare
from pytest_optcheck.engine.outcome import Outcome, Status
from pytest_optcheck.engine.trajectory import Trajectory


def test_with_status_keeps_everything_but_the_status_and_the_message_given() -> None:
    outcome = Outcome(Status.FAILED, "differs", path="golden/t.json", notes=("stacked replicas",))
    written = outcome.with_status(Status.CREATED)
    assert (written.status, written.message, written.path, written.notes) == \
        (Status.CREATED, "differs", "golden/t.json", ("stacked replicas",))
    assert outcome.with_status(Status.UPDATED, "rewritten").message == "rewritten"
    assert outcome.status is Status.FAILED  # a copy: the original stays


def test_worst_names_the_series_with_the_largest_relative_error() -> None:
    golden = Trajectory({"loss": [1.0, 1.0, 1.0], "lr": [0.1, 0.1, 0.1]})
    current = Trajectory({"loss": [1.0, 1.5, 1.0], "lr": [0.1, 0.1, 0.11]})
    worst = Outcome(Status.FAILED, "", verdict=compare(golden, current)).worst()
    assert worst == {"series": "loss", "max_rel": 0.5, "max_abs": 0.5, "first_failure": 1}


def test_worst_is_none_without_a_verdict_or_a_common_series() -> None:
    assert Outcome(Status.PASSED, "").worst() is None
    apart = compare(Trajectory({"loss": [1.0]}), Trajectory({"acc": [1.0]}))
    assert Outcome(Status.FAILED, "", verdict=apart).worst() is None
