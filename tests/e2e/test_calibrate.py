"""calibrate=N end to end: the golden's calibration block, the widened check, its
message, the ini and check() forms, users' own loops, and bad input."""

from __future__ import annotations

import json

import pytest

from tests.e2e.goldens import read_golden

TEST = """
import pytest

@pytest.mark.optcheck(epochs=1, batch_size=250{marker})
def test_t(optcheck):
    optcheck.check({check})
"""
GOLDEN = "golden/test_cal/test_t[cpu].json"


def record(project: pytest.Pytester, marker: str = "", check: str = "", *args: str) -> dict:
    project.makepyfile(test_cal=TEST.format(marker=marker, check=check))
    project.runpytest("--optcheck", "--snapshot-update", *args).assert_outcomes(passed=1)
    return read_golden(project.path / GOLDEN)


def test_calibrated_golden_holds_the_envelope_and_a_plain_one_does_not(project: pytest.Pytester) -> None:
    plain = record(project)
    assert "calibration" not in plain
    (project.path / GOLDEN).unlink()
    data = record(project, ", calibrate=2")
    block = data["calibration"]
    assert block["replicas"] == 2 and block["path"] == "stacked" and block["factor"] == 4.0
    assert len(block["envelope"]["loss"]) == data["steps"] == 4
    assert all(v >= 0 for v in block["envelope"]["loss"]) and max(block["envelope"]["loss"]) > 0
    assert data["spec"] == plain["spec"] and data["series"] == plain["series"]  # same run, same config
    project.runpytest("--optcheck", "--optcheck-report=report").assert_outcomes(passed=1)  # a re-run checks
    notes = json.loads((project.path / "report/summary.json").read_text())["records"][0]["notes"]
    assert notes == ["calibrated golden: allows 4 x the noise envelope of 2 ulp-perturbed replicas, stacked"]
    (project.path / GOLDEN).unlink()
    assert record(project, ", calibrate=2") == data  # replicas from the seed: bit-identical re-recording


def test_calibrated_failure_names_the_envelope_and_factor(project: pytest.Pytester) -> None:
    record(project, ", calibrate=2")
    path = project.path / GOLDEN
    data = json.loads(path.read_text())
    env = data["calibration"]["envelope"]["loss"]
    data["calibration"]["envelope"]["loss"] = [1.0] * 2 + env[2:]  # huge noise at steps 0-1 only
    data["series"]["loss"] = [v * 1.01 for v in data["series"]["loss"]]  # a 1% change everywhere
    path.write_text(json.dumps(data))
    result = project.runpytest("--optcheck")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*calibrated: a step may also differ by up to 4 x the noise envelope of 2*",
                                 "*outside 4 x noise envelope (*) at step 2*"])


def test_ini_calibrates_and_the_marker_wins(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\noptcheck_calibrate = 2\n")
    assert record(project)["calibration"]["replicas"] == 2
    (project.path / GOLDEN).unlink()
    assert "calibration" not in record(project, ", calibrate=0")


def test_asking_for_another_envelope_rerecords_a_passing_golden(project: pytest.Pytester) -> None:
    record(project)
    data = record(project, ", calibrate=2")  # --snapshot-update: the golden lacked it
    assert data["calibration"]["replicas"] == 2


def test_a_users_loop_is_calibrated_through_run(project: pytest.Pytester) -> None:
    project.makepyfile(test_cal="""
import pytest

@pytest.mark.optcheck(epochs=1, batch_size=250)
def test_t(optcheck):
    def loop(perturb):
        model, optimizer, _ = optcheck.build()
        perturb(model)
        x, y = optcheck_data()
        with optcheck.record(optimizer, model=model) as rec:
            for i in range(4):
                loss = ((model(x) - y) ** 2).mean()
                optimizer.zero_grad(); loss.backward(); optimizer.step()
                rec.log(loss=loss)
        return rec.trajectory

    optcheck.check(run=loop, calibrate=2)


def optcheck_data():
    import torch
    x = torch.linspace(-1, 1, 50).unsqueeze(1)
    return x, x ** 2
""")
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=1)
    block = read_golden(project.path / GOLDEN)["calibration"]
    assert block["replicas"] == 2 and block["path"] == "sequential (your loop)"
    assert max(block["envelope"]["loss"]) > 0
    project.runpytest("--optcheck").assert_outcomes(passed=1)


@pytest.mark.parametrize(("marker", "check", "expected"), [
    (", calibrate=-1", "", "*calibrate=-1 must be a whole number of replicas >= 0*calibrate=8*"),
    (", calibrate=True", "", "*calibrate=True must be a whole number*"),
    (", calibrate=2", "optcheck.train()", "*calibrate=2 (from the marker) needs a run it can repeat*run=fn*"),
    ("", "optcheck.train(), calibrate=3", "*calibrate=3 (from check()) needs a run it can repeat*"),
])
def test_bad_calibrate_says_the_key_value_and_fix(project: pytest.Pytester, marker: str, check: str,
                                                  expected: str) -> None:
    project.makepyfile(test_cal=TEST.format(marker=marker, check=check))
    result = project.runpytest("--optcheck", "--snapshot-update")
    assert result.ret != 0
    result.stdout.fnmatch_lines([expected])
    assert not (project.path / GOLDEN).exists()


def test_bad_ini_calibrate_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\noptcheck_calibrate = eight\n")
    project.makepyfile(test_cal=TEST.format(marker="", check=""))
    result = project.runpytest("--optcheck")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini optcheck_calibrate='eight' must be a whole number*"])

