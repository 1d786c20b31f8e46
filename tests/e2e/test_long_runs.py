"""``record_every`` end to end (issue 21): a real recorded run, thinned, in a pytest session.

The golden keeps every k-th step and each bucket's min, max and mean; re-runs pass, a 2%
learning-rate change fails, and a loss spike logged on one step between the kept ones fails
with a message that names the bucket's real steps."""

from __future__ import annotations

import json

import pytest

TESTS = """
import pytest
import torch

LR = {lr}
SPIKE = {spike}

@pytest.mark.optcheck(epochs=2, record_every=10)
def test_declared(optcheck):
    optcheck.check()

@pytest.mark.optcheck(epochs=1)
def test_loop(optcheck):
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    x = torch.linspace(-1, 1, 32).unsqueeze(1)
    y = 2 * x + 1
    with optcheck.record(optimizer, model=model, record_every=10) as rec:
        for step in range(95):
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
            rec.log(loss=loss * 3 if step == SPIKE else loss)
    optcheck.check(rec.trajectory)
"""


def test_thinned_goldens_pass_on_rerun_and_fail_on_an_lr_change_or_a_one_step_spike(
        project: pytest.Pytester) -> None:
    project.makepyfile(test_long=TESTS.format(lr=0.05, spike=-1))
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=2)
    declared = json.loads((project.path / "golden/test_long/test_declared[cpu].json").read_text())
    assert (declared["record_every"], declared["spec"]["record_every"], declared["steps"]) == (10, 10, 64)
    assert len(declared["series"]["loss"]) == 7 and set(declared["buckets"]["loss"]) == {"min", "max", "mean"}
    loop = json.loads((project.path / "golden/test_long/test_loop[cpu].json").read_text())
    assert (loop["record_every"], loop["spec"]["record_every"], loop["steps"]) == (10, 10, 95)
    assert loop["step"] == {"ramps": [[0, 10, 10]]}

    project.runpytest("--optcheck").assert_outcomes(passed=2)

    project.makepyfile(test_long=TESTS.format(lr=0.051, spike=-1))  # +2%
    result = project.runpytest("--optcheck", "-k", "test_loop")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(["*lr: 10 of 10 kept steps (one in 10, 100.0%) outside tolerance*"])

    project.makepyfile(test_long=TESTS.format(lr=0.05, spike=37))  # one step, between kept steps 30 and 40
    result = project.runpytest("--optcheck", "-k", "test_loop")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines([
        "*loss: 1 of 10 buckets of 10 steps (10.0%) outside tolerance*",
        "*first bucket outside tolerance: steps 30-39, max: golden*",
        "*loss over steps 30-39 (bucket 3 of 10 steps):*",
    ])


def test_record_every_is_validated_with_its_fix(project: pytest.Pytester) -> None:
    project.makepyfile(test_bad="""
import pytest

@pytest.mark.optcheck(record_every=0)
def test_it(optcheck):
    optcheck.check()
""")
    result = project.runpytest("--optcheck")
    result.stdout.fnmatch_lines(["*record_every=0 must be a whole number of steps >= 1*record_every=100*"])
