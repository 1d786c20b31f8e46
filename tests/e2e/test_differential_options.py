"""--optcheck-resume / --optcheck-parity over a session's declarative checks, and the
handle's check_resume() / check_parity() in a test: end to end, through pytest."""

from __future__ import annotations

import pytest

TESTS = '''
import pytest
import torch

pytestmark = pytest.mark.optcheck(epochs=2, batch_size=250)


class CountingSGD(torch.optim.Optimizer):
    def __init__(self, params, lr=0.1):
        super().__init__(params, {"lr": lr})
        self.step_count = 0

    @torch.no_grad()
    def step(self, closure=None):
        self.step_count += 1
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(p.grad, alpha=-group["lr"] / self.step_count ** 0.5)


@pytest.mark.optcheck(optimizer="Adam(lr=0.01)")
def test_adam(optcheck):
    optcheck.check()


@pytest.mark.optcheck(optimizer=CountingSGD)
def test_counting(optcheck):
    optcheck.check()


@pytest.mark.optcheck(optimizer="LBFGS(lr=0.1, max_iter=3)")
def test_lbfgs(optcheck):
    optcheck.check()
'''


def test_resume_option_fails_the_test_whose_run_does_not_resume(project: pytest.Pytester) -> None:
    project.makepyfile(test_opts=TESTS)
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=3)
    result = project.runpytest("--optcheck", "--optcheck-resume")
    result.assert_outcomes(passed=2, failed=1)
    out = result.stdout.str()
    assert "FAILED test_opts.py::test_counting[cpu] - AssertionError: optcheck: resuming" in out
    assert "resuming from a checkpoint taken after 4 of 8 steps changes the run from step 4" in out
    assert "optimizer attribute step_count: 4 -> 0" in out
    assert "6 checks: 1 failed, 5 passed" in out  # each test: its golden, then its resume
    assert "checks without a golden that failed (resume, parity, distributed) (1):\n" \
           "  test_opts.py::test_counting[cpu] [resume]" in out


def test_parity_option_runs_where_the_optimizer_has_implementations(project: pytest.Pytester) -> None:
    project.makepyfile(test_opts=TESTS)
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=3)
    result = project.runpytest("--optcheck", "--optcheck-parity")
    result.assert_outcomes(passed=3)
    assert "4 checks: 4 passed" in result.stdout.str()  # parity for Adam only


def test_without_the_options_nothing_more_runs(project: pytest.Pytester) -> None:
    project.makepyfile(test_opts=TESTS)
    result = project.runpytest("--optcheck", "--snapshot-update")
    assert "3 checks: 3 created" in result.stdout.str()


def test_handle_methods_fail_the_test_with_their_message(project: pytest.Pytester) -> None:
    project.makepyfile(test_handle='''
import pytest

pytestmark = pytest.mark.optcheck(epochs=2, batch_size=250, optimizer="SGD(lr=0.05)")

def test_resume(optcheck):
    outcome = optcheck.check_resume(at=3)
    assert outcome.passed and "taken after 3 of 8 steps" in outcome.message

def test_parity_against_a_variant(optcheck):
    optcheck.check_parity(variants={"faster": {"optimizer": "SGD(lr=0.06)"}})
''')
    result = project.runpytest("--optcheck")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "AssertionError: optcheck: implementation 'faster' (optimizer='SGD(lr=0.06)') differs" in out
    assert "2 checks: 1 failed, 1 passed" in out
