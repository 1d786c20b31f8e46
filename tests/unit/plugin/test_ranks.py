"""plugin/ranks.py: which rank writes, how ranks above 0 judge without a process group, and
how rank 0 judges for every rank inside one (a gloo group of two processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_optcheck.engine.outcome import Outcome, Status
from pytest_optcheck.plugin.ranks import EndOfTest, judged, launched, launched_rank, writes


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


def test_the_launcher_s_variables_are_read_as_torchrun_sets_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "1")  # a world of one process: rank 0, whatever RANK says
    assert (launched_rank(), launched(), writes()) == (0, False, True)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK")
    assert (launched_rank(), launched(), writes()) == (0, True, True)
    monkeypatch.setenv("RANK", "3")
    assert (launched_rank(), launched(), writes()) == (3, True, False)
    monkeypatch.setenv("WORLD_SIZE", "two")  # not a launcher's value: one process
    assert (launched_rank(), launched(), writes()) == (0, False, True)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "first")
    assert (launched_rank(), launched(), writes()) == (0, True, True)
    monkeypatch.delenv("WORLD_SIZE")
    assert (launched_rank(), launched(), writes()) == (0, False, True)


def test_outside_a_launcher_the_check_judges_and_updates_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    asked = []
    verdict = Outcome(Status.FAILED, "optcheck: the verdict")
    assert judged(lambda update: asked.append(update) or verdict, update=True) is verdict
    assert judged(lambda update: asked.append(update) or verdict, update=False) is verdict
    assert asked == [True, False]
    EndOfTest().pytest_runtest_teardown(None)  # no process group: nothing to meet for


def test_a_rank_above_0_leaves_the_update_to_rank_0(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    outcome = judged(lambda update: pytest.fail("rank 2 must not judge when updating"), update=True)
    assert outcome.status is Status.PASSED
    assert outcome.message == ("optcheck: rank 2: no process group to hear rank 0's verdict; rank 0 writes "
                               "the golden")


#: Rank 1 of a gloo group of two, in its own process: every check's verdict comes from rank 0.
RANK_1 = """
import json, sys
import torch.distributed as dist
from pytest_optcheck.engine.outcome import Outcome, Status
from pytest_optcheck.errors import OptcheckError
from pytest_optcheck.plugin.ranks import EndOfTest, judged

dist.init_process_group("gloo", init_method=sys.argv[1], rank=1, world_size=2)
asked = []
judge = lambda update: asked.append(update) or Outcome(Status.PASSED, "rank 1's own verdict")
seen = []
outcome = judged(judge, update=True)
seen.append([outcome.status.name, outcome.message, outcome.path])
try:
    judged(judge, update=False)
    seen.append("no error")
except OptcheckError as exc:
    seen.append(str(exc))
EndOfTest().pytest_runtest_teardown(None)
seen.append(asked)
dist.destroy_process_group()
print(json.dumps(seen))
"""


def test_rank_0_judges_for_every_rank_of_a_process_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes: this one is rank 0, a child rank 1 (it imports the package as this one
    does, so a changed ranks.py is the same in both)."""
    import torch.distributed as dist

    monkeypatch.setenv("OPTCHECK_DISTRIBUTED_TIMEOUT", "60")  # a rank that never comes fails, not hangs
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in sys.path if p))
    init = f"file://{tmp_path / 'rendezvous'}"
    rank_1 = subprocess.Popen([sys.executable, "-c", RANK_1, init], env={**os.environ, "RANK": "1"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    monkeypatch.setenv("RANK", "0")
    asked = []
    verdict = Outcome(Status.FAILED, "optcheck: rank 0's verdict", "golden/test_a.json")
    try:
        dist.init_process_group("gloo", init_method=init, rank=0, world_size=2)
        try:
            assert judged(lambda update: asked.append(update) or verdict, update=True) == verdict
            with pytest.raises(ValueError, match="^the golden is unreadable$"):
                judged(lambda update: asked.append(update) or _raise(ValueError("the golden is unreadable")),
                       update=False)
            EndOfTest().pytest_runtest_teardown(None)  # the ranks meet at the end of the test
        finally:
            dist.destroy_process_group()
        out, err = rank_1.communicate(timeout=120)
    finally:
        rank_1.kill()
    assert rank_1.returncode == 0, err
    assert asked == [True, False]
    assert json.loads(out) == [
        ["FAILED", "optcheck: rank 0's verdict", "golden/test_a.json"],
        "optcheck: rank 0 (which judges for every rank) failed the check:\nValueError: the golden is unreadable",
        []]  # rank 1 never judged


def _raise(error: Exception) -> Outcome:
    raise error


def test_a_judge_s_error_is_reported_without_the_ranks_plumbing(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest shows the user's check and the judge that failed, not judged() between them."""
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(ValueError, match="^the golden is unreadable$") as info:
        judged(lambda update: _raise(ValueError("the golden is unreadable")), update=False)
    shown = [entry.name for entry in info.traceback.filter(info)]
    assert not [name for name in shown if "judged" in name] and shown[-1] == "_raise"
