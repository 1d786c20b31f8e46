"""What a user reads when a check fails: the contract's list, end to end."""

from __future__ import annotations

import json
import re

import pytest

TEST = """
import pytest

@pytest.mark.optcheck(optimizer="SGD(lr=0.1, momentum=0.9)", epochs=3, record=["loss", "lr", "grad_norm"])
def test_train(optcheck):
    optcheck.check()
"""


def record_then_plant(project: pytest.Pytester, plant) -> pytest.RunResult:
    project.makepyfile(test_msg=TEST)
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=1)
    golden = project.path / "golden/test_msg/test_train[cpu].json"
    data = json.loads(golden.read_text())
    plant(data)
    golden.write_text(json.dumps(data, indent=1))
    return project.runpytest("--optcheck")


def test_numeric_failure_names_series_tolerance_steps_and_commands(project: pytest.Pytester) -> None:
    def plant(data):
        loss = data["series"]["loss"]
        for i in range(40, len(loss)):
            loss[i] *= 1.001

    result = record_then_plant(project, plant)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "loss" in out
    assert re.search(r"\d+ of 96 steps \(\d+(\.\d+)?%\) outside tolerance", out), out
    assert "|current - golden| > atol + rtol*|golden|" in out
    assert "first step outside tolerance: 40 (epoch 1, batch 8)" in out
    assert "golden: golden/test_msg/test_train[cpu].json" in out
    assert "update with: pytest --optcheck --snapshot-update 'test_msg.py::test_train[cpu]'" in out
    # The series that did not move are not blamed.
    assert "1 of 3 series differ" in out


def test_nan_first_appearance_is_reported(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_nan="""
        import pytest

        @pytest.mark.optcheck(optimizer="SGD(lr={lr})", epochs=2)
        def test_blowup(optcheck):
            optcheck.check()
        """.replace("{lr}", "0.01")
    )
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=1)
    golden = project.path / "golden/test_nan/test_blowup[cpu].json"
    data = json.loads(golden.read_text())
    data["spec"]["optimizer"] = "SGD(lr=100.0)"
    golden.write_text(json.dumps(data))
    project.makepyfile(
        test_nan="""
        import pytest

        @pytest.mark.optcheck(optimizer="SGD(lr=100.0)", epochs=2)
        def test_blowup(optcheck):
            optcheck.check()
        """
    )
    result = project.runpytest("--optcheck")
    result.assert_outcomes(failed=1)
    result.stdout.re_match_lines([r".*(NaN|inf).*first appeared at step \d+ \(epoch \d+, batch \d+\).*"])


def test_environment_difference_is_named_on_failure(project: pytest.Pytester) -> None:
    def plant(data):
        data["environment"]["torch"] = "2.11.0+cu130"
        data["environment"]["device_name"] = "NVIDIA H100"
        data["series"]["loss"][-1] *= 2

    result = record_then_plant(project, plant)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*recorded with torch 2.11.0+cu130 on NVIDIA H100*now torch 2.*"])


def test_shorter_trajectory_is_explained(project: pytest.Pytester) -> None:
    def plant(data):
        from pytest_optcheck.golden.format import loads

        plain = loads(json.dumps(data)).trajectory.to_dict()  # runs and ramps as plain lists
        data.update(series=plain["series"], epoch=plain["epoch"], batch=plain["batch"])
        for name in data["series"]:
            data["series"][name] = data["series"][name] + data["series"][name][:10]
        data["epoch"] += data["epoch"][:10]
        data["batch"] += data["batch"][:10]
        data["steps"] += 10

    result = record_then_plant(project, plant)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*96 steps*106*"])
