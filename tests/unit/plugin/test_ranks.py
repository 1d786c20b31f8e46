"""plugin/ranks.py without a process group: which rank writes, and how ranks above 0 judge."""

from __future__ import annotations

import pytest

from pytest_optcheck.engine.outcome import Outcome, Status
from pytest_optcheck.plugin.ranks import judged, launched_rank, writes


def test_rank_0_or_no_launcher_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert launched_rank() == 0 and writes()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert launched_rank() == 1 and not writes()


def test_a_rank_above_0_without_a_group_judges_read_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    asked = []
    judge = lambda update: asked.append(update) or Outcome(Status.PASSED, "judged")
    assert judged(judge, update=False).message == "judged" and asked == [False]
    outcome = judged(judge, update=True)  # rank 0 writes: this rank neither judges nor writes
    assert asked == [False] and "rank 0 writes the golden" in outcome.message
