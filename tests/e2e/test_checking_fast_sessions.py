"""plugin/checking.py in short pytest sessions (pytester, in process), most of which train
nothing: hand-made trajectories checked with ``optcheck.check`` and ``trajectory_snapshot``;
the paths that need a trained run (``--optcheck-sensitivity``, ``--optcheck-resume``,
``--optcheck-parity``, a declarative check) train a tiny spec (one epoch, batches of 64).

What a user reads is pinned whole: the test's failure (every failing check, each with the
line that made it), the section added when the body raised after a failing check, the skip
of a missing device, the update command, the refusals; and what is written: the goldens'
headers and paths, the report's records and pictures, the summary's sensitivity lines.

Not here: ``optcheck_threads`` reaching the runs a check trains. Seeing it takes a run with
more than one thread, whose thread pool spins in mutmut's forked workers (every such mutant
read as a timeout, 2026-12-04).

Fast, and run by benchmarks/mutation.py (mutmut's forked workers): numpy, torch (one thread,
and ``torch._dynamo``, which an optimizer's first step imports) and matplotlib.pyplot are
imported here, before the first inner session (none of them loads twice)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
import torch._dynamo  # an optimizer's first step imports it: once, here

matplotlib.use("Agg")
import matplotlib.pyplot  # the report draws pictures

torch.set_num_threads(1)

# The modules the plugin imports when a check runs, imported once here: pytester drops what an
# inner session imported, and importing them again in every session is most of its time.
import pytest_optcheck.checks.differential.parity
import pytest_optcheck.checks.differential.resume
import pytest_optcheck.checks.golden_check
import pytest_optcheck.checks.sensitivity
import pytest_optcheck.handle
import pytest_optcheck.report.index
import pytest_optcheck.report.obtained
import pytest_optcheck.report.picture as picture_module
import pytest_optcheck.run.replicas
import pytest_optcheck.run.train  # noqa: F401
from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.golden.environment import environment, torch_minor_key
from pytest_optcheck.golden.format import Golden, dumps
from pytest_optcheck.run.devices import device_summary

pytest_plugins = ["pytester"]

PLAIN = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:xdist")

HEAD = """
import numpy as np
import pytest
from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.engine.trajectory import Trajectory


def t(*values, **meta):
    trajectory = Trajectory.from_numpy({"loss": np.array(values, dtype=np.float64)})
    trajectory.meta.update(meta)
    return trajectory
"""


def _missing(golden: str, nodeid: str) -> str:
    """The message of a check whose golden is not there yet."""
    return (f"optcheck: no golden for this check yet; expected at {golden}.\n"
            f"Create it with: pytest --optcheck --snapshot-update {nodeid}")


def _write_golden(root: Path, relative: str, nodeid: str, name: str | None, *values: float) -> None:
    """A golden of an unmarked test's hand-made ``loss`` series, as --snapshot-update writes it."""
    trajectory = Trajectory.from_numpy({"loss": np.array(values, dtype=np.float64)})
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(Golden(trajectory, None, environment(), nodeid, name)), encoding="utf-8")


def _line(source: str, text: str) -> int:
    """The line of ``text`` in an inner test file (1-based; pytester drops the leading blank lines)."""
    return next(i for i, line in enumerate(source.strip("\n").splitlines(), start=1) if text in line)


def _reports(result: pytest.RunResult, when: str = "call") -> dict[str, pytest.TestReport]:
    return {r.nodeid.split("::")[-1]: r for r in result.reprec.getreports("pytest_runtest_logreport")
            if r.when == when}


def _crash(report: pytest.TestReport) -> str:
    """The exception a failed test ended with, as pytest prints it ("Type: message"); an
    optcheck error is its message alone (plugin/failures.py)."""
    longrepr = report.longrepr
    return longrepr if isinstance(longrepr, str) else longrepr.reprcrash.message


def _optcheck_sections(report: pytest.TestReport) -> list[tuple[str, str]]:
    return [(title, text) for title, text in report.sections if "optcheck" in title]


# -- a test fails once, at its end, naming every failing check ---------------------------

FAILING = HEAD + """

def test_two(optcheck):
    optcheck.check(t(1.0, 0.5), name="gen")
    optcheck.check(t(1.0, 0.5))


def test_one_of_two(optcheck):
    optcheck.check(t(1.0, 0.5), name="a")
    optcheck.check(t(1.0, 0.5))


def test_named_one_of_three(optcheck):
    optcheck.check(t(1.0, 0.5))
    optcheck.check(t(1.0, 0.5), name="b")
    optcheck.check(t(1.0, 0.5), name="c")


def test_single(trajectory_snapshot):
    assert t(1.0, 0.5) == trajectory_snapshot


def test_passing(optcheck):
    assert optcheck.check(t(1.0, 0.5)).ok


def test_then_raises(optcheck):
    optcheck.check(t(1.0, 0.5))
    raise RuntimeError("the body failed after its check")


def test_passes_then_raises(optcheck):
    optcheck.check(t(1.0, 0.5))
    raise RuntimeError("the body failed after a passing check")


def test_raises_alone():
    raise RuntimeError("no check here")


def test_in_a_fixture(checked_in_fixture):
    pass


def test_in_a_fixture_and_in_the_body(checked_in_fixture, optcheck):
    optcheck.check(t(1.0, 0.5))


@pytest.mark.optcheck(optimizer="Adamm(lr=0.1)")
def test_typo(optcheck):
    pass


def test_duplicate(optcheck):
    optcheck.check(t(1.0), name="x")
    optcheck.check(t(1.0), name="x")
"""

FIXTURE = """
import numpy as np
import pytest
from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.engine.trajectory import Trajectory


@pytest.fixture
def checked_in_fixture(optcheck):
    optcheck.check(Trajectory.from_numpy({"loss": np.array([1.0, 0.5])}), name="fixture")
"""


def test_a_test_fails_once_at_its_end_naming_every_failing_check(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makeconftest(FIXTURE)
    pytester.makepyfile(test_c=FAILING)
    for test, name in (("test_one_of_two", "a"), ("test_named_one_of_three", None), ("test_passing", None),
                       ("test_passes_then_raises", None)):
        relative = f"golden/test_c/{test}{'--' + name if name else ''}.json"
        _write_golden(pytester.path, relative, f"test_c.py::{test}", name, 1.0, 0.5)
    result = pytester.runpytest_inprocess(*PLAIN, "--optcheck")
    result.assert_outcomes(passed=1, failed=10, errors=1)
    typo = _reports(result, "setup")["test_typo[cpu]"]  # at set-up, before anything is made or trained
    assert _crash(typo).startswith("optcheck: unknown optimizer 'Adamm' in optimizer='Adamm(lr=0.1)'. Did you mean")
    calls = _reports(result)

    def missing(test: str, name: str | None = None) -> str:
        return _missing(f"golden/test_c/{test}{'--' + name if name else ''}.json", f"test_c.py::{test}")

    def at(text: str, below: int = 0) -> str:
        return f"test_c.py:{_line(FAILING, text) + below}"

    gen_line, unnamed_line = at('name="gen"'), at('name="gen"', 1)
    b_line, c_line, x_line = at('name="b"'), at('name="c"'), at('name="x"')
    assert _crash(calls["test_two"]) == (
        f"AssertionError: optcheck: 2 of 2 checks failed: gen, (unnamed)\n\n"
        f"--- check gen (checked at {gen_line}) ---\n{missing('test_two', 'gen')}\n\n"
        f"--- check (unnamed) (checked at {unnamed_line}) ---\n{missing('test_two')}")
    one_line = at('name="a"', 1)
    assert _crash(calls["test_one_of_two"]) == (
        f"AssertionError: {missing('test_one_of_two')}\n(checked at {one_line})\n"
        f"(1 of 2 checks of this test failed: (unnamed); the others passed)")
    assert _crash(calls["test_named_one_of_three"]) == (
        f"AssertionError: optcheck: 2 of 3 checks failed: b, c\n\n"
        f"--- check b (checked at {b_line}) ---\n"
        f"{missing('test_named_one_of_three', 'b')}\n\n"
        f"--- check c (checked at {c_line}) ---\n"
        f"{missing('test_named_one_of_three', 'c')}")
    assert _crash(calls["test_single"]) == (
        f"AssertionError: {missing('test_single')}\n(checked at {at('== trajectory_snapshot')})")
    assert calls["test_passing"].passed and not _optcheck_sections(calls["test_passing"])
    raised = calls["test_then_raises"]
    assert _crash(raised) == "RuntimeError: the body failed after its check"
    raises_line = at("def test_then_raises", 1)
    assert _optcheck_sections(raised) == [("Captured optcheck checks that failed before call",
                                           f"{missing('test_then_raises')}\n(checked at {raises_line})")]
    passed_then = calls["test_passes_then_raises"]
    assert _crash(passed_then) == "RuntimeError: the body failed after a passing check"
    assert _optcheck_sections(passed_then) == []
    assert _crash(calls["test_raises_alone"]) == "RuntimeError: no check here"
    assert _optcheck_sections(calls["test_raises_alone"]) == []
    # made in a fixture of conftest.py: no line of the test file to name
    assert _crash(calls["test_in_a_fixture"]) == f"AssertionError: {missing('test_in_a_fixture', 'fixture')}"
    assert _crash(calls["test_in_a_fixture_and_in_the_body"]) == (
        f"AssertionError: optcheck: 2 of 2 checks failed: fixture, (unnamed)\n\n"
        f"--- check fixture ---\n{missing('test_in_a_fixture_and_in_the_body', 'fixture')}\n\n"
        f"--- check (unnamed) (checked at {at('def test_in_a_fixture_and_in_the_body', 1)}) ---\n"
        f"{missing('test_in_a_fixture_and_in_the_body')}")
    duplicate, second_x = calls["test_duplicate"], at('name="x"', 1)
    assert _crash(duplicate) == (
        "optcheck: two checks in this test use the same golden golden/test_c/test_duplicate--x.json; the "
        "second would overwrite the first. Give each check its own name: check(name=...) / "
        f"trajectory_snapshot(name=...).\n(at {second_x})")
    assert _optcheck_sections(duplicate) == [("Captured optcheck checks that failed before call",
                                              f"{missing('test_duplicate', 'x')}\n(checked at {x_line})")]
    summary = result.outlines[result.outlines.index(next(x for x in result.outlines if "optcheck summary" in x)) + 1]
    assert summary == "15 checks: 11 missing, 4 passed"


# -- devices ---------------------------------------------------------------------------------

ON_DEVICES = HEAD + """

@pytest.mark.optcheck(epochs=1)
def test_d(optcheck):
    optcheck.check(t(1.0, 0.5))
"""


def test_a_missing_device_skips_and_a_device_s_update_command_names_it(pytester: pytest.Pytester,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_d=ON_DEVICES)
    skipped = pytester.runpytest_inprocess(*PLAIN, "--optcheck", "--optcheck-device=cuda")
    skipped.assert_outcomes(skipped=1)
    _, _, reason = _reports(skipped, "setup")["test_d[cuda]"].longrepr
    assert reason == (f"Skipped: optcheck: device 'cuda' is not available here ({device_summary()}); skipped, "
                      f"and no golden is written for it")
    assert not (pytester.path / "golden").exists()
    # A machine with the device: nothing here runs on it (the trajectory is made by hand)
    monkeypatch.setattr("pytest_optcheck.plugin.checking.device_available", lambda device: True)
    result = pytester.runpytest_inprocess(*PLAIN, "--optcheck", "--optcheck-device=cpu,cuda")
    result.assert_outcomes(failed=2)
    calls = _reports(result)
    line = _line(ON_DEVICES, "optcheck.check(")
    for device, option in (("cpu", ""), ("cuda", " --optcheck-device=cuda")):
        assert _crash(calls[f"test_d[{device}]"]) == (
            f"AssertionError: optcheck: no golden for this check yet; expected at golden/test_d/test_d[{device}].json.\n"
            f"Create it with: pytest --optcheck --snapshot-update 'test_d.py::test_d[{device}]'{option}\n"
            f"(checked at test_d.py:{line})")


# -- the tolerances' four layers, and calibrate on a recorded trajectory --------------------

LAYERED = HEAD + """
LAST = {last}


def four(last):
    return Trajectory.from_numpy({name: np.array([1.0, last]) for name in "abcd"})


@pytest.mark.optcheck(tolerance={"c": "rtol=0.6"})
def test_layers(optcheck):
    assert optcheck.check(four(LAST), tolerance={"d": "rtol=0.6"}).ok


def test_without_the_marker_and_check_layers(optcheck):
    optcheck.check(four(LAST))


def test_calibrate_asked_of_check(optcheck):
    optcheck.check(t(1.0, LAST), calibrate=3)


@pytest.mark.optcheck(calibrate=2)
def test_calibrate_asked_of_the_marker(optcheck):
    optcheck.check(t(1.0, LAST))
"""

#: A calibration refused, as the test reads it (the number, then where it was asked).
REFUSED = ("optcheck: calibrate={n} (from {source}) needs a run it can repeat from perturbed starts, but this check "
           "was given a trajectory already recorded. Let optcheck train it (optcheck.check() with no trajectory), "
           "pass your loop as optcheck.check(run=fn) where fn(perturb) seeds itself, builds the model, calls "
           "perturb(model) and returns the recorded trajectory, or set calibrate=0.\n(at test_l.py:{line})")


def test_each_tolerance_layer_applies_and_calibrate_needs_a_run_to_repeat(pytester: pytest.Pytester) -> None:
    # the ini's calibrate applies to the checks optcheck can re-run, and these cannot: no replicas
    pytester.makeini("[pytest]\noptcheck_tolerance = a: rtol=0.6\noptcheck_calibrate = 2\n")
    pytester.makepyfile(test_l=LAYERED.replace("{last}", "0.5"))
    tolerance = ("--optcheck-tolerance", "b: rtol=0.6")
    written = pytester.runpytest_inprocess(*PLAIN, "--optcheck", "--snapshot-update", *tolerance)
    written.assert_outcomes(passed=2, failed=2)
    pytester.makepyfile(test_l=LAYERED.replace("{last}", "0.75"))  # 50% off: each series needs its layer's rtol
    result = pytester.runpytest_inprocess(*PLAIN, "--optcheck", *tolerance)
    result.assert_outcomes(passed=1, failed=3)
    calls = _reports(result)
    control = _crash(calls["test_without_the_marker_and_check_layers"])
    assert control.startswith("AssertionError: optcheck: 2 of 4 series differ from the golden (c, d)\n\n")
    source = LAYERED.replace("{last}", "0.5")
    assert _crash(calls["test_calibrate_asked_of_check"]) == REFUSED.format(
        n=3, source="check()", line=_line(source, "calibrate=3)"))
    assert _crash(calls["test_calibrate_asked_of_the_marker[cpu]"]) == REFUSED.format(
        n=2, source="the marker", line=_line(source, "def test_calibrate_asked_of_the_marker") + 1)


# -- the report: a picture per check with trajectories, the run kept to accept ------------------

REPORTED = HEAD + """

def test_r(optcheck):
    optcheck.check(t(1.0, 0.5), name="gen")
    optcheck.check(t(1.0, 0.75), name="worse")
    optcheck.check(t(1.0, 0.5))


@pytest.mark.optcheck(epochs=1, batch_size=64)
def test_resume(optcheck):
    assert optcheck.check_resume(name="x").ok
    optcheck.check(t(1.0, 0.5), name="x")  # the resume check writes no golden: no clash
"""


def test_the_report_keeps_each_check_with_its_picture(pytester: pytest.Pytester,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_r=REPORTED)
    for name in (None, "worse"):
        relative = f"golden/test_r/test_r{'--' + name if name else ''}.json"
        _write_golden(pytester.path, relative, "test_r.py::test_r", name, 1.0, 0.5)
    drawn = []
    draw = picture_module.write_picture

    def write_picture(path: Path, outcome: object, title: str) -> bool:  # the real one, watched
        drawn.append((Path(path).relative_to(pytester.path).as_posix(), title))
        return draw(path, outcome, title)

    monkeypatch.setattr(picture_module, "write_picture", write_picture)
    (pytester.path / "rep/test_r.py--test_r.png").mkdir(parents=True)  # where no picture can be written
    result = pytester.runpytest_inprocess(*PLAIN, "--optcheck", "--optcheck-report", "rep", "-W", "ignore")
    result.assert_outcomes(failed=2)
    assert drawn == [("rep/test_r.py--test_r--gen.png", "test_r.py::test_r [gen]"),
                     ("rep/test_r.py--test_r--worse.png", "test_r.py::test_r [worse]"),
                     ("rep/test_r.py--test_r.png", "test_r.py::test_r"),
                     ("rep/test_r.py--test_resume[cpu]--x.png", "test_r.py::test_resume[cpu] [x]")]
    summary = json.loads((pytester.path / "rep/summary.json").read_text(encoding="utf-8"))
    records = [(r["nodeid"], r["name"], r["status"], r["picture"], r.get("result", {}).get("golden"))
               for r in summary["records"]]
    assert records == [
        ("test_r.py::test_r", "worse", "failed", "test_r.py--test_r--worse.png", "golden/test_r/test_r--worse.json"),
        ("test_r.py::test_r", "gen", "missing", "test_r.py--test_r--gen.png", "golden/test_r/test_r--gen.json"),
        ("test_r.py::test_resume[cpu]", "x", "missing", "test_r.py--test_resume[cpu]--x.png",
         "golden/test_r/test_resume[cpu]--x.json"),
        ("test_r.py::test_r", None, "passed", None, None),  # its picture failed (a warning); nothing to accept
        ("test_r.py::test_resume[cpu]", "x", "passed", None, None)]  # no golden, no trajectory: no picture
    for record in summary["records"]:
        assert record["picture"] is None or (pytester.path / "rep" / record["picture"]).is_file()
        assert "result" not in record or (pytester.path / "rep" / record["result"]["file"]).is_file()
    failed = summary["records"][0]
    assert failed["message"].endswith("\nupdate with: pytest --optcheck --snapshot-update test_r.py::test_r\n"
                                      "picture: rep/test_r.py--test_r--worse.png")


# -- what a golden keeps, and where -------------------------------------------------------

WRITTEN = HEAD + """

def test_libraries(optcheck):
    optcheck.check(t(1.0, 0.5, libraries=["numpy", "matplotlib"]))


def test_autocast(optcheck):
    optcheck.check(t(1.0, 0.5, run={"source": "loop", "optimizer": "SGD(lr=0.1)", "autocast": "bfloat16"}))


@pytest.mark.optcheck(optimizer="SGD(lr=0.1)")
def test_marked(optcheck):
    assert optcheck.check(t(1.0, 0.5), name="m").status.name == "CREATED"


def test_trained(optcheck):
    optcheck.check()


def test_snapshots(trajectory_snapshot):
    assert t(1.0) == trajectory_snapshot
    assert t(2.0) == trajectory_snapshot
    assert t(3.0) == trajectory_snapshot
    assert t(4.0) == trajectory_snapshot(name="n")
"""


def test_goldens_keep_the_run_s_configuration_and_environment(pytester: pytest.Pytester) -> None:
    # the ini's calibrate applies to the checks optcheck trains itself
    pytester.makeini("[pytest]\noptcheck_golden_key = torch-minor\noptcheck_calibrate = 2\n")
    pytester.makepyfile(test_w=WRITTEN)
    result = pytester.runpytest_inprocess(*PLAIN, "--optcheck", "--snapshot-update", "--optcheck-golden-dir=g")
    result.assert_outcomes(passed=5)
    folder = pytester.path / "g" / torch_minor_key() / "test_w"
    assert sorted(p.name for p in folder.iterdir()) == [
        "test_autocast.json", "test_libraries.json", "test_marked[cpu]--m.json", "test_snapshots--1.json",
        "test_snapshots--2.json", "test_snapshots--n.json", "test_snapshots.json", "test_trained.json"]

    def header(name: str) -> dict:
        return json.loads((folder / name).read_text(encoding="utf-8"))

    libraries = header("test_libraries.json")
    assert list(libraries["environment"]["libraries"].items()) == [("matplotlib", matplotlib.__version__),
                                                                   ("numpy", np.__version__)]
    assert libraries["meta"] == {} and libraries["spec"] is None  # moved out of the trajectory
    assert libraries["environment"]["dtype"] == "float32"
    assert (libraries["test"], libraries["name"]) == ("test_w.py::test_libraries", None)
    autocast = header("test_autocast.json")
    assert autocast["environment"]["dtype"] == "float32 (autocast bfloat16)"
    assert autocast["spec"] == {"source": "loop", "optimizer": "SGD(lr=0.1)", "autocast": "bfloat16"}
    assert "libraries" not in autocast["environment"]  # the default spec's run uses torch alone
    marked = header("test_marked[cpu]--m.json")
    assert marked["spec"]["optimizer"] == "SGD(lr=0.1)"  # a marked test keeps its marker's spec
    assert (marked["test"], marked["name"]) == ("test_w.py::test_marked[cpu]", "m")
    assert [header(f"test_snapshots{s}.json")["series"]["loss"] for s in ("", "--1", "--2", "--n")] == [
        [1.0], [2.0], [3.0], [4.0]]
    trained = header("test_trained.json")  # unmarked, but trained from the (default) spec: it keeps it
    assert trained["spec"] == json.loads(json.dumps(Spec().canonical()))
    assert trained["calibration"]["replicas"] == 2 and "calibration" not in marked  # repeatable runs only
    # the same goldens seen without the per-torch-version key: a missing one says where it is
    pytester.makeini("[pytest]\n")
    missing = pytester.runpytest_inprocess(*PLAIN, "--optcheck", "--optcheck-golden-dir=g", "-k", "test_libraries")
    missing.assert_outcomes(failed=1)
    assert _crash(_reports(missing)["test_libraries"]) == (
        f"AssertionError: {_missing('g/test_w/test_libraries.json', 'test_w.py::test_libraries')}\n"
        f"goldens of this test exist for: {torch_minor_key()} (optcheck_golden_key = none looks under the root)\n"
        f"(checked at test_w.py:{_line(WRITTEN, 'libraries=[')})")


# -- trained runs: --optcheck-resume / --optcheck-parity / --optcheck-sensitivity ---------------

TRAINED = HEAD + """
STATUS = "{status}"


@pytest.mark.optcheck(epochs=1, batch_size=64)
def test_m(optcheck):
    assert optcheck.check().status.name == STATUS
    assert optcheck.check(name="loose", tolerance={"loss": "rtol=1"}).status.name == STATUS
    assert optcheck.check(t(1.0, 0.5), name="own").status.name == STATUS  # recorded: not probed, not re-run


@pytest.mark.optcheck(epochs=1, batch_size=64)
def test_new(optcheck):
    optcheck.check(name="new")
"""


def _summary(result: pytest.RunResult) -> list[str]:
    """The lines of the optcheck summary block."""
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if "optcheck summary" in line) + 1
    return lines[start:next(i for i in range(start, len(lines)) if lines[i].startswith(("===", "---")))]


def _names(root: Path) -> set[tuple[str, str | None, str]]:
    """(test, check name, status) of each record of the report."""
    summary = json.loads((root / "summary.json").read_text(encoding="utf-8"))
    records = [(r["nodeid"].split("::")[1], r["name"], r["status"]) for r in summary["records"]]
    assert len(set(records)) == len(records)
    return set(records)


def test_declarative_checks_are_rerun_resumed_and_probed_as_asked(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_t=TRAINED.replace("{status}", "CREATED"))
    written = pytester.runpytest_inprocess(*PLAIN, "--optcheck", "--snapshot-update", "--optcheck-resume",
                                           "--optcheck-report", "rep", "-k", "not test_new")
    written.assert_outcomes(passed=1)
    assert _names(pytester.path / "rep") == {
        ("test_m[cpu]", None, "created"), ("test_m[cpu]", "loose", "created"), ("test_m[cpu]", "own", "created"),
        ("test_m[cpu]", "resume", "passed"), ("test_m[cpu]", "loose:resume", "passed")}
    assert _summary(written)[:1] == ["5 checks: 3 created, 2 passed"]  # no sensitivity line: not asked
    pytester.makepyfile(test_t=TRAINED.replace("{status}", "PASSED"))
    probed = pytester.runpytest_inprocess(*PLAIN, "--optcheck", "--optcheck-sensitivity", "--optcheck-parity",
                                          "--optcheck-report", "rep2")
    probed.assert_outcomes(passed=1, failed=1)
    assert _names(pytester.path / "rep2") == {
        ("test_new[cpu]", "new", "missing"), ("test_m[cpu]", None, "passed"), ("test_m[cpu]", "loose", "passed"),
        ("test_m[cpu]", "own", "passed"), ("test_m[cpu]", "parity", "passed"),
        ("test_m[cpu]", "loose:parity", "passed")}
    summary = _summary(probed)
    assert summary[1:3] == ["goldens missing (1):", "  golden/test_t/test_new[cpu]--new.json"]
    # the failing check of test_new is not probed; the recorded one ("own") neither
    assert summary[3:5] == [
        "sensitivity: 2 checks probed with every step x1.01; 1 did not notice it",
        "checks that would NOT notice a 1% larger step (every update x1.01, as from lr x1.01; vacuous tolerance):"]
    assert re.fullmatch(r"  test_t\.py::test_m\[cpu\] \[loose\]: every step x1\.01 stays within tolerance "
                        r"\(largest relative change [0-9.e-]+ in 'loss'; tolerances loss: rtol=1, atol=1e-07, "
                        r"step by step\)", summary[5])
