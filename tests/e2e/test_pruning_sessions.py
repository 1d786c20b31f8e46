"""plugin/pruning.py in real, torch-free pytest sessions (pytester, in process): who owns
goldens, when a run is full and green, and what is listed, removed or noted. The goldens
are hand-made files (the header marks them optcheck's); no test here trains.

Fast, and run by benchmarks/mutation.py too (numpy is imported once, before any inner
session: it cannot load twice)."""

from __future__ import annotations

from pathlib import Path

import numpy  # noqa: F401
import pytest

from pytest_optcheck.plugin.options import Settings
from pytest_optcheck.plugin.pruning import Pruning, is_full_run, run_paths
from pytest_optcheck.report.results import Results

pytest_plugins = ["pytester"]

PLAIN = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:xdist")
GOLDEN = '{"optcheck_golden": 1}\n'
KEPT = ["golden/test_a/test_marked.json", "golden/test_a/test_fixture.json", "golden/test_a/test_snap.json",
        "golden/test_a/test_cuda_only[cuda].json", "golden/test_a/notes.json", "golden/elsewhere/test_x.json"]
ORPHANS = ["golden/test_a/test_plain.json", "golden/test_a/test_slow.json", "golden/test_a/test_old[cpu].json",
           "golden/test_gone/test_x.json"]

TESTS = """
import pytest

@pytest.mark.optcheck
def test_marked():
    pass

@pytest.mark.skip(reason="owns its goldens all the same")
def test_fixture(optcheck):
    pass

@pytest.mark.skip(reason="owns its goldens all the same")
def test_snap(trajectory_snapshot):
    pass

def test_plain():
    pass

@pytest.mark.slow  # another marker: no golden of its own
def test_slow():
    pass
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_a=TESTS)
    for name in KEPT + ORPHANS:
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(GOLDEN if not name.endswith("notes.json") else "{}\n", encoding="utf-8")
    (pytester.path / "elsewhere").mkdir()  # its goldens' test file lies outside the run's paths
    return pytester


def _run(project: pytest.Pytester, *args: str) -> str:
    result = project.runpytest_inprocess(*PLAIN, *args)
    return result.stdout.str().split("optcheck summary", 1)[-1]


def _left(project: pytest.Pytester) -> list[str]:
    return sorted(p.relative_to(project.path).as_posix() for p in (project.path / "golden").rglob("*.json"))


def test_a_full_run_lists_the_orphans_and_removes_none(project: pytest.Pytester) -> None:
    summary = _run(project, "--optcheck")
    assert "orphaned goldens (no test owns them; remove with --optcheck-prune) (4):" in summary
    for orphan in ORPHANS:
        assert orphan in summary
    assert "removed" not in summary and _left(project) == sorted(KEPT + ORPHANS)
    # Run on test_a.py alone, the goldens of a deleted test file elsewhere are not judged.
    only_a = _run(project, "--optcheck", "test_a.py")
    assert ("remove with --optcheck-prune) (3):\n  golden/test_a/test_old[cpu].json\n  golden/test_a/test_plain.json\n"
            "  golden/test_a/test_slow.json\n") in only_a


def test_a_full_green_run_with_prune_removes_them(project: pytest.Pytester) -> None:
    summary = _run(project, "--optcheck", "--optcheck-prune")
    assert "orphaned goldens removed (4):" in summary and "no test owns them" not in summary
    assert _left(project) == sorted(KEPT)


def test_prune_without_optcheck_removes_nothing_and_says_why(project: pytest.Pytester) -> None:
    summary = _run(project, "--optcheck-prune")
    assert "orphaned goldens (no test owns them; remove with --optcheck-prune) (4):" in summary
    assert "--optcheck-prune removed nothing: optcheck tests did not run (add --optcheck)" in summary
    assert _left(project) == sorted(KEPT + ORPHANS)


def test_prune_after_a_failure_removes_nothing(project: pytest.Pytester) -> None:
    project.makepyfile(test_b="def test_fails():\n    assert False\n")
    summary = _run(project, "--optcheck", "--optcheck-prune")
    assert "--optcheck-prune removed nothing: the run had failures or stopped early" in summary
    assert _left(project) == sorted(KEPT + ORPHANS)


def test_prune_on_a_run_stopped_early_removes_nothing(project: pytest.Pytester) -> None:
    project.makeconftest("""
STARTED = []

def pytest_runtest_protocol(item, nextitem):
    if STARTED:
        item.session.shouldstop = "stopped by a plugin"
    STARTED.append(item)
""")
    summary = _run(project, "--optcheck", "--optcheck-prune")
    assert "--optcheck-prune removed nothing: the run had failures or stopped early" in summary
    assert _left(project) == sorted(KEPT + ORPHANS)


def test_items_that_are_not_python_functions_own_nothing(project: pytest.Pytester) -> None:
    project.makeconftest("""
import pytest

class Check(pytest.Item):
    def runtest(self):
        pass

class Checks(pytest.File):
    def collect(self):
        yield Check.from_parent(self, name="check")

def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".chk":
        return Checks.from_parent(parent, path=file_path)
""")
    (project.path / "test_c.chk").write_text("", encoding="utf-8")
    summary = _run(project, "--optcheck", "--optcheck-prune")
    assert "orphaned goldens removed (4):" in summary and _left(project) == sorted(KEPT)


def test_a_partial_run_neither_lists_nor_removes(project: pytest.Pytester) -> None:
    summary = _run(project, "--optcheck", "--optcheck-prune", "-k", "marked")
    assert "--optcheck-prune removed nothing: not a full run (-k was given)" in summary
    assert "orphaned" not in summary and _left(project) == sorted(KEPT + ORPHANS)
    assert "orphaned" not in _run(project, "--optcheck", "-k", "marked")


def test_a_run_without_optcheck_tests_judges_nothing(project: pytest.Pytester) -> None:
    (project.path / "test_a.py").unlink()
    project.makepyfile(test_c="def test_plain():\n    pass\n")
    assert "orphaned" not in _run(project, "--optcheck")
    summary = _run(project, "--optcheck", "--optcheck-prune")  # asked to prune: judged all the same
    assert "orphaned goldens removed (7):" in summary  # test_a.py is gone: its goldens too
    assert "golden/test_a/test_marked.json" in summary and "golden/test_gone/test_x.json" in summary


@pytest.mark.parametrize(("args", "why"), [
    (["test_a.py::test_marked"], "node ids were given"),
    (["-k", "x"], "-k was given"),
    (["-m", "x"], "-m was given"),
    (["--deselect", "test_a.py::test_plain"], "--deselect was given"),
    (["--ignore", "x"], "--ignore was given"),
    (["--ignore-glob", "x*"], "--ignore was given"),
    (["--lf"], "--lf/--ff/--sw selection was given"),
    (["--ff"], "--lf/--ff/--sw selection was given"),
    (["--sw"], "--lf/--ff/--sw selection was given"),
    (["--co"], "--collect-only was given"),
])
def test_what_makes_a_run_partial(pytester: pytest.Pytester, args: list[str], why: str) -> None:
    config = pytester.parseconfig(*args)
    assert is_full_run(config) == (False, why)


def test_a_full_run_and_its_paths(pytester: pytest.Pytester) -> None:
    config = pytester.parseconfig("a", "b/test_x.py::test_y", "-p", "no:cacheprovider")
    assert run_paths(config) == [(pytester.path / "a").resolve(), (pytester.path / "b/test_x.py").resolve()]
    assert is_full_run(pytester.parseconfig("a", "-p", "no:cacheprovider")) == (True, "")


def test_owners_travel_between_processes_as_sorted_lists(tmp_path: Path) -> None:
    pruning = Pruning(Settings(golden_root=tmp_path), Results(), checking=None)  # type: ignore[arg-type]
    pruning.merge({"owners": [["b", "t2"], ["a", "t1"]], "collected_files": ["/x/test_b.py", "/x/test_a.py"]})
    pruning.merge({})
    assert pruning.owners == {("a", "t1"), ("b", "t2")}
    assert pruning.payload() == {"owners": [("a", "t1"), ("b", "t2")],
                                 "collected_files": ["/x/test_a.py", "/x/test_b.py"]}
