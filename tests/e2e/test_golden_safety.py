"""Goldens users can trust: nothing lost, nothing stale, robust files, honest summaries.

Every scenario is a real pytest session (pytester). Deletion scenarios count and hash
every file under ``golden/`` before and after, serially and under ``-n 2`` (xdist).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.e2e.goldens import golden_files, read_golden

try:  # pytester's in-process runs re-import (and assert-rewrite) hypothesis each time unless
    import hypothesis  # noqa: F401  - it is already imported: ~1.5 s a run saved
except ImportError:  # pragma: no cover
    pass

MODULE_A = """
import pytest

MODE = {mode!r}

@pytest.mark.optcheck(optimizer="Adam(lr=0.01)", epochs=1, batch_size=250)
def test_one(optcheck):
    optcheck.check()

@pytest.mark.slow
@pytest.mark.optcheck(optimizer="SGD(lr=0.1)", epochs=1, batch_size=250)
def test_two(optcheck):
    if MODE == "crash":
        raise RuntimeError("crashed before its check")
    if MODE == "skip":
        pytest.skip("skipped before its check")
    optcheck.check()
"""

MODULE_B = """
import pytest

@pytest.mark.optcheck(optimizer="RMSprop(lr=0.01)", epochs=1, batch_size=250)
def test_three(optcheck):
    optcheck.check()
"""

ONE = "golden/test_a/test_one[cpu].json"
TWO = "golden/test_a/test_two[cpu].json"
THREE = "golden/test_b/test_three[cpu].json"
ORPHAN = "golden/test_a/test_gone[cpu].json"
GONE_FILE = "golden/test_deleted/test_x[cpu].json"
RECORDED = [ONE, TWO, THREE]


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root/golden`` (not only goldens: leftovers count too)."""
    base = root / "golden"
    if not base.exists():
        return {}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


def write_modules(project: pytest.Pytester, mode: str = "ok") -> None:
    project.makepyfile(test_a=MODULE_A.format(mode=mode), test_b=MODULE_B)


def recorded_project(project: pytest.Pytester, *, orphans: bool = True) -> dict[str, bytes]:
    """Three recorded goldens (+ two orphans: a renamed test, a deleted test file)."""
    project.makeini("[pytest]\nmarkers =\n    slow: a slow test\n")
    write_modules(project)
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=3)
    assert golden_files(project.path) == RECORDED
    if orphans:
        for path in (ORPHAN, GONE_FILE):
            target = project.path / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((project.path / ONE).read_bytes())
    return tree(project.path)


def plant_change(path: Path, factor: float = 1.5) -> None:
    """Scale the recorded loss: a numeric difference well out of tolerance."""
    data = read_golden(path)
    data["series"]["loss"] = [v * factor for v in data["series"]["loss"]]
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def xdist(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    """A run on two xdist workers (subprocesses; pytest-benchmark would only warn there)."""
    return project.runpytest("-n", "2", "-p", "no:benchmark", *args)


def glob_escape(text: str) -> str:
    """``text`` as a literal inside an fnmatch pattern (golden names hold ``[cpu]``)."""
    return "".join(f"[{c}]" if c in "[]*?" else c for c in text)


def summary(result: pytest.RunResult) -> str:
    text = result.stdout.str()
    assert "optcheck summary" in text, text
    return text.split("optcheck summary", 1)[1]


# -- 1. nothing lost ------------------------------------------------------------------

PARTIAL_RUNS = {
    "node id": (["test_a.py::test_one"], {"passed": 1}),
    "-k": (["-k", "one or three"], {"passed": 2}),
    "-m": (["-m", "not slow"], {"passed": 2}),
    "--ignore": (["--ignore=test_b.py"], {"passed": 2}),
    "--deselect": (["--deselect", "test_a.py::test_two[cpu]"], {"passed": 2}),
}


@pytest.mark.parametrize("case", list(PARTIAL_RUNS))
def test_partial_update_run_deletes_nothing(project: pytest.Pytester, case: str) -> None:
    before = recorded_project(project)
    args, outcomes = PARTIAL_RUNS[case]
    result = project.runpytest("--optcheck", "--snapshot-update", "--optcheck-prune", *args)
    result.assert_outcomes(**outcomes)
    assert tree(project.path) == before
    result.stdout.fnmatch_lines(["*--optcheck-prune removed nothing: not a full run*"])


@pytest.mark.parametrize(
    ("mode", "args", "outcomes"),
    [
        ("crash", [], {"passed": 2, "failed": 1}),
        ("crash", ["-x"], {"passed": 1, "failed": 1}),
        ("crash", ["--maxfail=1"], {"passed": 1, "failed": 1}),
        ("skip", [], {"passed": 2, "skipped": 1}),
    ],
    ids=["raised-before-check", "-x", "--maxfail", "skipped"],
)
def test_tests_that_never_reached_their_check_keep_their_goldens(
    project: pytest.Pytester, mode: str, args: list[str], outcomes: dict[str, int]
) -> None:
    before = recorded_project(project)
    write_modules(project, mode)
    result = project.runpytest("--optcheck", "--snapshot-update", "--optcheck-prune", *args)
    result.assert_outcomes(**outcomes)
    if mode == "crash":
        assert tree(project.path) == before
        result.stdout.fnmatch_lines(["*--optcheck-prune removed nothing: the run had failures or stopped early*"])
    else:  # a skip is no failure: the true orphans go, the skipped test's golden stays
        assert tree(project.path) == {p: before[p] for p in RECORDED}


def test_tests_a_conftest_deselects_keep_their_goldens(project: pytest.Pytester) -> None:
    """A sub-folder conftest (a ``--runslow`` pattern) deselects before optcheck's own
    collection hook runs: its tests must still own their goldens."""
    sub = project.mkpydir("sub")
    (sub / "test_s.py").write_text(MODULE_A.format(mode="ok"), encoding="utf-8")
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=2)
    before = tree(project.path)
    assert len(before) == 2
    (sub / "conftest.py").write_text(
        "def pytest_collection_modifyitems(config, items):\n"
        "    dropped = [i for i in items if 'two' in i.name]\n"
        "    items[:] = [i for i in items if i not in dropped]\n"
        "    config.hook.pytest_deselected(items=dropped)\n",
        encoding="utf-8",
    )
    result = project.runpytest("--optcheck", "--snapshot-update", "--optcheck-prune")
    result.assert_outcomes(passed=1, deselected=1)
    assert tree(project.path) == before


def test_goldens_of_test_files_in_odd_folders_are_never_judged_orphans(project: pytest.Pytester) -> None:
    """Folder names with spaces or non-ASCII are sanitised (and hashed) in the golden path."""
    for folder, name in (("my tests", "test_space.py"), ("tësts", "test_uni.py")):
        (project.path / folder).mkdir()
        (project.path / folder / name).write_text(MODULE_B, encoding="utf-8")
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=2)
    before = tree(project.path)
    assert len(before) == 2
    result = project.runpytest("--optcheck", "--snapshot-update", "--optcheck-prune")
    result.assert_outcomes(passed=2)
    assert tree(project.path) == before
    assert "orphaned" not in summary(result)
    renamed = MODULE_B.replace("def test_three", "def test_renamed")
    (project.path / "my tests" / "test_space.py").write_text(renamed, encoding="utf-8")
    listed = project.runpytest("--optcheck", "--snapshot-update")
    text = summary(listed)
    assert "orphaned goldens (no test owns them; remove with --optcheck-prune) (1):" in text
    assert "golden/my_tests~" in text and "/test_space/test_three[cpu].json" in text


def test_runs_without_optcheck_skip_and_delete_nothing(project: pytest.Pytester) -> None:
    before = recorded_project(project)
    result = project.runpytest("--snapshot-update", "--optcheck-prune")
    result.assert_outcomes(skipped=3)
    assert tree(project.path) == before
    result.stdout.fnmatch_lines(["*--optcheck-prune removed nothing: optcheck tests did not run (add --optcheck)*"])


def test_orphans_are_listed_and_pruned_only_on_a_full_green_run(project: pytest.Pytester) -> None:
    before = recorded_project(project)
    listed = project.runpytest("--optcheck")
    listed.assert_outcomes(passed=3)
    text = summary(listed)
    assert "orphaned goldens (no test owns them; remove with --optcheck-prune) (2):" in text
    assert ORPHAN in text and GONE_FILE in text
    assert tree(project.path) == before

    # A folder run: the deleted test file's golden lies outside it and is left alone.
    folder = project.runpytest("--optcheck", "--optcheck-prune", "test_a.py")
    folder.assert_outcomes(passed=2)
    assert ORPHAN not in golden_files(project.path) and GONE_FILE in golden_files(project.path)

    pruned = project.runpytest("--optcheck", "--optcheck-prune")
    pruned.assert_outcomes(passed=3)
    assert "orphaned goldens removed (1):" in summary(pruned) and GONE_FILE in summary(pruned)
    assert golden_files(project.path) == RECORDED
    assert {k: v for k, v in before.items() if k in RECORDED} == tree(project.path)


# -- 1. nothing lost, under xdist --------------------------------------------------------


def test_xdist_merges_owners_and_results_and_prunes_only_when_green(project: pytest.Pytester) -> None:
    """Under xdist the controller judges orphans from the owners every worker collected,
    and counts every worker's failures: the selection scenarios themselves (-k, node ids,
    -m, --ignore, -x) are decided on the controller exactly as in the serial tests above,
    so two sessions cover what xdist adds — a failing full run keeps everything, a green
    full run prunes and reports the one update."""
    before = recorded_project(project)

    write_modules(project, "crash")
    result = xdist(project, "--optcheck", "--snapshot-update", "--optcheck-prune")
    result.assert_outcomes(passed=2, failed=1)
    assert tree(project.path) == before
    text = summary(result)
    assert "orphaned goldens (no test owns them; remove with --optcheck-prune) (2):" in text
    assert ORPHAN in text and GONE_FILE in text

    write_modules(project, "skip")
    recorded = {k: v for k, v in before.items() if k in RECORDED}
    plant_change(project.path / THREE)
    final = xdist(project, "--optcheck", "--snapshot-update", "--optcheck-prune", "--optcheck-report=rep")
    final.assert_outcomes(passed=2, skipped=1)
    text = summary(final)
    assert "goldens updated (were out of tolerance) (1):" in text and THREE in text
    assert "orphaned goldens removed (2):" in text and ORPHAN in text and GONE_FILE in text
    assert tree(project.path) == recorded
    # One report for both workers: every check in summary.json, each with its picture.
    report = json.loads((project.path / "rep" / "summary.json").read_text(encoding="utf-8"))
    assert report["counts"] == {"updated": 1, "passed": 1}
    assert sorted(r["nodeid"] for r in report["records"]) == ["test_a.py::test_one[cpu]", "test_b.py::test_three[cpu]"]
    assert sorted(report["pruned"]) == sorted([ORPHAN, GONE_FILE])
    for record in report["records"]:
        assert (project.path / "rep" / record["picture"]).read_bytes()[:4] == b"\x89PNG"


# -- 2. nothing stale ----------------------------------------------------------------------

CALLABLES = """
import functools
import pytest
import torch
from torch.optim.lr_scheduler import LambdaLR

@pytest.mark.optcheck(optimizer=functools.partial(torch.optim.SGD, lr={lr}), epochs=1, batch_size=250)
def test_partial(optcheck):
    optcheck.check()

@pytest.mark.optcheck(scheduler=functools.partial(LambdaLR, lr_lambda=lambda step: {decay} ** step))
def test_lambda(optcheck):
    optcheck.check(optcheck.lr_schedule(4))
"""


def test_config_change_of_callables_is_reported_before_numbers(project: pytest.Pytester) -> None:
    project.makepyfile(test_c=CALLABLES.format(lr=0.1, decay=0.9))
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=2)
    project.runpytest("--optcheck").assert_outcomes(passed=2)
    project.makepyfile(test_c=CALLABLES.format(lr=0.2, decay=0.8))
    result = project.runpytest("--optcheck")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*configuration changed since the golden was recorded (the numbers were not compared)*",
        "*optimizer: 'partial(torch.optim.sgd.SGD, lr=0.1)' -> 'partial(torch.optim.sgd.SGD, lr=0.2)'*",
    ])
    result.stdout.fnmatch_lines([
        "*configuration changed since the golden was recorded*",
        "*scheduler: *lambda step: 0.9 [*][*] step*' -> *lambda step: 0.8 [*][*] step*",
    ])
    assert "series differ from the golden" not in result.stdout.str()
    assert "goldens recorded with another configuration (2):" in summary(result)


# -- 3. environment ---------------------------------------------------------------------------


def test_environment_difference_passes_quietly_and_is_named_on_failure(project: pytest.Pytester) -> None:
    recorded_project(project, orphans=False)
    path = project.path / ONE
    data = read_golden(path)
    data["environment"]["torch"] = "2.11.0"
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    project.runpytest("--optcheck", "test_a.py::test_one").assert_outcomes(passed=1)

    plant_change(path)
    result = project.runpytest("--optcheck", "test_a.py::test_one")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*recorded with torch 2.11.0 on *; now torch {torch.__version__} on *"])


KEYED = """
import pytest

@pytest.mark.optcheck(optimizer="Adam(lr=0.01)", epochs=1, batch_size=250)
def test_one(optcheck):
    optcheck.check()

@pytest.mark.optcheck(optimizer="SGD(lr=0.1)", scheduler="StepLR(step_size=2)")
def test_snap(optcheck, trajectory_snapshot):
    assert optcheck.lr_schedule(4) == trajectory_snapshot
"""


def test_torch_minor_key_keeps_goldens_per_version_and_hints_at_other_keys(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\noptcheck_golden_key = torch-minor\n")
    project.makepyfile(test_k=KEYED)
    key = "torch-" + ".".join(torch.__version__.split("+")[0].split(".")[:2])
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=2)
    assert golden_files(project.path) == [f"golden/{key}/test_k/test_one[cpu].json",
                                          f"golden/{key}/test_k/test_snap[cpu].json"]
    project.runpytest("--optcheck").assert_outcomes(passed=2)

    other = "torch-2.11" if key != "torch-2.11" else "torch-2.12"  # a release other than this one
    (project.path / "golden" / key).rename(project.path / "golden" / other)
    result = project.runpytest("--optcheck")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert out.count(f"no golden for this check yet; expected at golden/{key}/test_k/") >= 2, out
    assert out.count(f"goldens of this test exist for: {other}") >= 2, out
    assert "goldens missing (2):" in summary(result)


# -- 4. devices ---------------------------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_goldens_survive_every_run_on_a_machine_without_cuda(project: pytest.Pytester) -> None:
    recorded_project(project, orphans=False)
    cuda = project.path / "golden/test_a/test_one[cuda].json"
    gone = project.path / "golden/test_a/test_renamed[cuda].json"
    for path in (cuda, gone):
        path.write_bytes((project.path / ONE).read_bytes().replace(b'"cpu"', b'"cuda"'))
    before = tree(project.path)

    full = project.runpytest("--optcheck", "--snapshot-update", "--optcheck-prune")
    full.assert_outcomes(passed=3)
    assert tree(project.path) == before

    skipped = project.runpytest("--optcheck", "--optcheck-device=cuda", "--snapshot-update", "--optcheck-prune", "-rs")
    skipped.assert_outcomes(skipped=3)
    skipped.stdout.fnmatch_lines(["*device 'cuda' is not available here*no golden is written*"])
    assert tree(project.path) == before

    both = project.runpytest("--optcheck", "--optcheck-device=cpu,cuda", "--snapshot-update", "--optcheck-prune")
    both.assert_outcomes(passed=3, skipped=3)
    assert tree(project.path) == before


# -- 5. robust files ------------------------------------------------------------------------------


def test_corrupt_truncated_or_unknown_schema_golden_fails_alone_and_is_kept(project: pytest.Pytester) -> None:
    recorded_project(project, orphans=False)
    one, two = project.path / ONE, project.path / TWO
    one.write_bytes(one.read_bytes()[:200])
    data = read_golden(two)
    data["optcheck_golden"] = 99
    two.write_text(json.dumps(data), encoding="utf-8")
    before = tree(project.path)

    result = project.runpytest("--optcheck")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        f"*golden file '{glob_escape(ONE)}' is not valid JSON*truncated*Restore it from version control, or re-record it*",
    ])
    result.stdout.fnmatch_lines([f"*golden file '{glob_escape(TWO)}' has schema version 99*Upgrade pytest-optcheck*"])
    assert "goldens that cannot be read (2):" in summary(result)
    assert tree(project.path) == before

    fixed = project.runpytest("--optcheck", "--snapshot-update")
    fixed.assert_outcomes(passed=3)
    assert "goldens rewritten (were damaged: could not be read) (2):" in summary(fixed)  # not "out of tolerance"
    project.runpytest("--optcheck").assert_outcomes(passed=3)


ODD_IDS = """
import pytest

IDS = ["adam/w", "adamw", "a b", "a_b", "../../escape", "..", "ünï", "x" * 300]

@pytest.mark.optcheck(optimizer="SGD(lr=0.1)", scheduler="StepLR(step_size=2)")
@pytest.mark.parametrize("case", IDS, ids=IDS)
def test_ids(optcheck, case):
    optcheck.check(optcheck.lr_schedule(3))
    optcheck.check(optcheck.lr_schedule(2), name="../" + case)
"""


def test_odd_parametrize_ids_stay_inside_the_root_and_never_collide(project: pytest.Pytester) -> None:
    project.makepyfile(test_ids=ODD_IDS)
    outside = {p for p in project.path.parent.rglob("*") if "golden" not in p.parts}
    result = project.runpytest("--optcheck", "--snapshot-update")
    result.assert_outcomes(passed=8)
    assert "Can not relate snapshot" not in result.stdout.str()  # no syrupy warnings about our names
    files = golden_files(project.path)
    assert len(files) == 16 == len(set(files))
    root = (project.path / "golden").resolve()
    for f in files:
        assert (project.path / f).resolve().is_relative_to(root)
    new_outside = {p for p in project.path.parent.rglob("*") if "golden" not in p.parts} - outside
    assert not [p for p in new_outside if p.suffix == ".json"]
    for f in files:
        data = (project.path / f).read_bytes()
        assert b"\r\n" not in data and data.endswith(b"}\n")
    project.runpytest("--optcheck").assert_outcomes(passed=8)


DUPLICATE = """
import pytest

@pytest.mark.optcheck(optimizer="SGD(lr=0.1)", scheduler="StepLR(step_size=2)")
def test_dup(optcheck):
    optcheck.check(optcheck.lr_schedule(3), name="a")
    optcheck.check(optcheck.lr_schedule(5), name="a")
"""


def test_two_checks_with_one_name_fail_instead_of_overwriting_each_other(project: pytest.Pytester) -> None:
    project.makepyfile(test_dup=DUPLICATE)
    result = project.runpytest("--optcheck", "--snapshot-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*two checks in this test use the same golden golden/test_dup/test_dup[[]cpu[]]--a.json*"])
    data = read_golden(project.path / "golden/test_dup/test_dup[cpu]--a.json")
    assert data["steps"] == 3  # the first check's golden, not overwritten by the second


# -- 6. update ergonomics ----------------------------------------------------------------------------


def test_update_rewrites_only_goldens_out_of_tolerance(project: pytest.Pytester) -> None:
    recorded_project(project, orphans=False)
    stat = {p: (project.path / p).stat().st_mtime_ns for p in RECORDED}
    before = tree(project.path)

    again = project.runpytest("--optcheck", "--snapshot-update")
    again.assert_outcomes(passed=3)
    assert tree(project.path) == before
    assert {p: (project.path / p).stat().st_mtime_ns for p in RECORDED} == stat
    assert "updated" not in summary(again).replace("0 updated", "")

    plant_change(project.path / TWO)
    failing = project.runpytest("--optcheck")
    failing.assert_outcomes(passed=2, failed=1)
    assert "goldens out of tolerance (1):" in summary(failing) and TWO in summary(failing)

    updated = project.runpytest("--optcheck", "--snapshot-update")
    updated.assert_outcomes(passed=3)
    text = summary(updated)
    assert "goldens updated (were out of tolerance) (1):" in text and TWO in text
    after = tree(project.path)
    assert [p for p in RECORDED if after[p] != before[p]] == []  # TWO is back to its recorded bytes
    assert {p: (project.path / p).stat().st_mtime_ns for p in (ONE, THREE)} == {p: stat[p] for p in (ONE, THREE)}
    assert (project.path / TWO).stat().st_mtime_ns != stat[TWO]
    assert not [p for p in after if not p.endswith(".json")]  # no temporary files left behind


WITHIN = """
import pytest

@pytest.mark.optcheck(optimizer="Adam(lr=0.01)", epochs=1, batch_size=250)
def test_checked(optcheck):
    optcheck.check()

@pytest.mark.optcheck(optimizer="SGD(lr=0.1)", epochs=1, batch_size=250)
def test_snapped(optcheck, trajectory_snapshot):
    assert optcheck.train() == trajectory_snapshot
"""


def test_update_keeps_the_bytes_of_goldens_within_tolerance_that_differ(project: pytest.Pytester) -> None:
    """A golden within tolerance keeps its bytes under --snapshot-update even when they are
    not the bytes this run would write — hand-edited, another key order, a last digit moved
    on another machine — through ``check()`` and ``trajectory_snapshot`` alike. (Every other
    update test uses byte-identical or far-out goldens, so a comparator that also demanded
    identical bytes would rewrite these and call them "updated (were out of tolerance)".)"""
    project.makepyfile(test_w=WITHIN)
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=2)
    checked = project.path / "golden/test_w/test_checked[cpu].json"
    snapped = project.path / "golden/test_w/test_snapped[cpu].json"
    recorded = {p: p.read_bytes() for p in (checked, snapped)}
    for path, order in ((checked, list), (snapped, reversed)):  # the same data in another key order
        data = read_golden(path)
        data["series"]["loss"] = [v * (1 + 1e-9) for v in data["series"]["loss"]]  # far inside rtol=1e-4
        path.write_text(json.dumps(dict(order(list(data.items()))), indent=1) + "\n", encoding="utf-8")
    before = tree(project.path)
    assert all(before[p.relative_to(project.path).as_posix()] != recorded[p] for p in recorded)

    result = project.runpytest("--optcheck", "--snapshot-update")
    result.assert_outcomes(passed=2)
    assert tree(project.path) == before
    text = summary(result)
    assert "goldens updated" not in text and "test_checked" not in text and "test_snapped" not in text, text
