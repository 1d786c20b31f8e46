"""plugin/__init__.py in real pytest sessions (pytester, in process) that train nothing: the
marker's help, a bad setting refused as a usage error, one plugin object per feature, the
summary block and the report's lines, the fixtures, and optcheck's explanation of a failed
syrupy comparison.

Fast, and run by benchmarks/mutation.py too: numpy, torch (one thread) and matplotlib are
imported once here, before any inner session (see tests/e2e/test_snapshot_sessions.py)."""

from __future__ import annotations

import re

import matplotlib
import numpy  # noqa: F401
import pytest
import torch

from pytest_optcheck.plugin import MARKER_HELP

matplotlib.use("Agg")
import matplotlib.pyplot  # the report draws pictures: pyplot imported before any inner session

torch.set_num_threads(1)

pytest_plugins = ["pytester"]

PLAIN = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:xdist")

#: Hand-made trajectories checked against goldens: nothing is trained.
CHECKS = """
import numpy as np
from pytest_optcheck.engine.trajectory import Trajectory


def trajectory(*values):
    return Trajectory.from_numpy({{"loss": np.array(values, dtype=np.float64)}})


def test_one(optcheck):
    optcheck.check(trajectory(1.0, {loss}))


def test_two(optcheck):
    optcheck.check(trajectory(2.0, {loss}), name="a")
    optcheck.check(trajectory(3.0, {loss}), name="b")
"""


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess(*PLAIN, *args)


def _summary(result: pytest.RunResult) -> list[str]:
    """The lines of the optcheck summary block (up to the next separator)."""
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if "optcheck summary" in line)
    block = []
    for line in lines[start + 1:]:
        if line.startswith(("===", "---")):
            break
        block.append(line)
    return block


def test_the_marker_is_registered_with_its_help(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    result = _run(pytester, "--markers")
    assert f"@pytest.mark.{MARKER_HELP}" in result.stdout.str()
    assert MARKER_HELP.startswith("optcheck(**spec): declare a training run checked against a golden")


def test_a_bad_setting_is_a_usage_error_with_optchecks_message(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\noptcheck_threads = many\n")
    pytester.makepyfile("def test_a():\n    pass\n")
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.startswith("ERROR: optcheck:")]
    assert len(errors) == 1 and "optcheck_threads" in errors[0] and "'many'" in errors[0]
    assert "Traceback" not in "\n".join(result.errlines)


def test_one_plugin_object_per_feature_is_registered(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makeconftest("""
import pytest

@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    names = sorted(n for n, _ in config.pluginmanager.list_name_plugin() if n and n.startswith("optcheck-"))
    print("PLUGINS", names)
""")
    pytester.makepyfile("def test_a():\n    pass\n")
    plain = _run(pytester, "-s")
    assert ("PLUGINS ['optcheck-fail-at-end', 'optcheck-failures', 'optcheck-gating', 'optcheck-pruning', "
            "'optcheck-summary']") in plain.outlines
    with_xdist = pytester.runpytest_inprocess("-p", "no:randomly", "-p", "no:cacheprovider", "-s")
    assert ("PLUGINS ['optcheck-fail-at-end', 'optcheck-failures', 'optcheck-gating', 'optcheck-pruning', "
            "'optcheck-summary', 'optcheck-xdist']") in with_xdist.outlines


def test_a_rank_launched_by_torchrun_gets_the_end_of_test_plugin(pytester: pytest.Pytester,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makeconftest("""
import pytest

@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    plugin = config.pluginmanager.get_plugin("optcheck-ranks")
    print("RANKS", type(plugin).__name__)
""")
    pytester.makepyfile("def test_a():\n    pass\n")
    assert "RANKS NoneType" in _run(pytester, "-s").outlines
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    ranked = _run(pytester, "-s")
    assert "RANKS EndOfTest" in ranked.outlines
    ranked.assert_outcomes(passed=1)


def test_the_summary_lists_goldens_written_then_the_failures(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_s=CHECKS.format(loss=0.5))
    missing = _run(pytester, "--optcheck")
    missing.assert_outcomes(failed=2)
    assert _summary(missing) == [
        "3 checks: 3 missing",
        "goldens missing (3):",
        "  golden/test_s/test_one.json",
        "  golden/test_s/test_two--a.json",
        "  golden/test_s/test_two--b.json",
    ]
    created = _run(pytester, "--optcheck", "--snapshot-update")
    created.assert_outcomes(passed=2)
    assert _summary(created) == [
        "3 checks: 3 created",
        "goldens created (3):",
        "  golden/test_s/test_one.json",
        "  golden/test_s/test_two--a.json",
        "  golden/test_s/test_two--b.json",
    ]
    passed = _run(pytester, "--optcheck")
    assert _summary(passed) == ["3 checks: 3 passed"]
    probed = _run(pytester, "--optcheck", "--optcheck-sensitivity")
    assert _summary(probed) == ["3 checks: 3 passed", ("sensitivity: no check was probed (it probes declarative "
                                "checks, optcheck.check() without a trajectory, that passed)")]


def test_the_report_is_written_and_its_kept_runs_are_named(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_s=CHECKS.format(loss=0.5))
    _run(pytester, "--optcheck", "--snapshot-update").assert_outcomes(passed=2)
    pytester.makepyfile(test_s=CHECKS.format(loss=0.75))
    one = _run(pytester, "--optcheck", "--optcheck-report", "rep", "-k", "one")
    one.assert_outcomes(failed=1, deselected=1)
    summary = _summary(one)
    assert summary[-2:] == [
        "report: rep/index.html",
        "current run of 1 failing or missing check(s) kept in rep/results; to make them the goldens: optcheck accept rep",
    ]
    assert (pytester.path / "rep" / "index.html").is_file()
    both = _run(pytester, "--optcheck", "--optcheck-report", "rep2")
    both.assert_outcomes(failed=2)
    assert _summary(both)[-1] == ("current runs of 3 failing or missing check(s) kept in rep2/results; to make them the "
                                  "goldens: optcheck accept rep2")
    pytester.makepyfile(test_s=CHECKS.format(loss=0.5))
    clean = _run(pytester, "--optcheck", "--optcheck-report", "rep3")
    assert _summary(clean) == ["3 checks: 3 passed", "report: rep3/index.html"]


def test_no_report_is_written_for_a_session_without_checks(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile("def test_a():\n    pass\n")
    result = _run(pytester, "--optcheck", "--optcheck-report", "rep")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "rep").exists() and "optcheck summary" not in result.stdout.str()
    asked = _run(pytester, "--optcheck", "--optcheck-sensitivity")  # asked for, and told none was probed
    assert _summary(asked) == [("sensitivity: no check was probed (it probes declarative checks, optcheck.check() "
                                "without a trajectory, that passed)")]


def test_the_fixtures_give_the_device_the_handle_and_the_snapshot(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile("""
import pytest
from pytest_optcheck.handle import OptcheckHandle
from pytest_optcheck.plugin.snapshot import TrajectorySnapshot


def test_unmarked(_optcheck_device, optcheck, trajectory_snapshot):
    assert _optcheck_device == "cpu"
    assert isinstance(optcheck, OptcheckHandle) and optcheck.device == "cpu"
    assert isinstance(trajectory_snapshot, TrajectorySnapshot)


@pytest.mark.optcheck(epochs=3)
def test_marked(optcheck):
    assert optcheck.spec.epochs == 3 and optcheck.device == "cpu"
""")
    _run(pytester, "--optcheck").assert_outcomes(passed=2)


SYRUPY = """
import numpy as np
from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.integrations.syrupy import TrajectoryExtension
from syrupy.extensions.json import JSONSnapshotExtension


def test_trajectory(snapshot):
    loss = np.array([1.0, {loss}], dtype=np.float64)
    assert Trajectory.from_numpy({{"loss": loss}}) == snapshot(extension_class=TrajectoryExtension)


def test_other_extension(snapshot):
    assert {{"x": {loss}}} == snapshot(extension_class=JSONSnapshotExtension)


def test_plain():
    assert [1, 2] == [1, {loss}]
"""


def test_a_failed_syrupy_comparison_is_explained_by_optcheck_first(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_y=SYRUPY.format(loss=0.5))
    _run(pytester, "--snapshot-update").assert_outcomes(passed=2, failed=1)
    pytester.makepyfile(test_y=SYRUPY.format(loss=0.75))
    result = _run(pytester)
    result.assert_outcomes(failed=3)
    sections = result.stdout.str().split("short test summary info")[0].split("______ ")  # the failures, each alone
    trajectory = next(s for s in sections if s.startswith("test_trajectory"))
    other = next(s for s in sections if s.startswith("test_other_extension"))
    plain = next(s for s in sections if s.startswith("test_plain"))
    # optcheck's explanation comes first, right under the comparison (pytest words the first line
    # "AssertionError: assert ..." or, with CI set, "assert ...")
    assert re.search(r"E {7}(AssertionError: )?assert \[\+ received\] == \[- snapshot\]\n"
                     r"E {9}optcheck: 1 of 1 series differ from the golden \(loss\)\n", trajectory)
    assert "optcheck:" not in other and "optcheck:" not in plain
    assert "At index 1 diff: 2 != 0.75" in plain
