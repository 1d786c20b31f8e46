"""Real training setups, end to end (PRODUCT.md, "Real training setups"): each is one marker,
``optcheck.check()`` passes on a re-run and fails when every step is taken with a 2% larger
learning rate. Against the real libraries (requirements-dev.txt pins them); timm cannot be
installed here (its torchvision dependency has no CPU build in the registry), so its
convention is tested with a class that follows timm's documented scheduler API.
"""

from __future__ import annotations

import inspect
import re

import pytest

from tests.timm_style import TimmStyleCosine

# Imported before any in-process pytester run: a module first imported inside one is dropped
# from sys.modules afterwards, and re-importing these libraries costs seconds each time.
pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
pytest.importorskip("schedulefree")
pytest.importorskip("prodigyopt")
transformers_optimization = pytest.importorskip("transformers.optimization")


TIMM_STYLE = "import math\n\n\n" + inspect.getsource(TimmStyleCosine)

TWELVE = TIMM_STYLE + '''
import functools

import pytest
import pytorch_optimizer
import torch

pytestmark = pytest.mark.optcheck(epochs=2, interval="step")
WARMUP_COSINE = ("SequentialLR(schedulers=[LinearLR(start_factor=0.1, total_iters=5), "
                 "CosineAnnealingLR(T_max=total_steps)], milestones=[5])")


@pytest.mark.parametrize("label", [
    pytest.param("sequential", marks=pytest.mark.optcheck(scheduler=WARMUP_COSINE)),
    pytest.param("chained", marks=pytest.mark.optcheck(
        scheduler="ChainedScheduler([ExponentialLR(gamma=0.99), StepLR(step_size=10, gamma=0.5)])")),
    pytest.param("onecycle", marks=pytest.mark.optcheck(scheduler="OneCycleLR(max_lr=0.1, total_steps=total_steps)")),
    pytest.param("transformers", marks=pytest.mark.optcheck(
        scheduler="transformers.get_cosine_schedule_with_warmup(num_warmup_steps=5, num_training_steps=total_steps)")),
    pytest.param("timm", marks=pytest.mark.optcheck(
        scheduler=functools.partial(TimmStyleCosine, t_initial=50, warmup_t=5, t_in_epochs=False))),
    pytest.param("lion", marks=pytest.mark.optcheck(optimizer="pytorch_optimizer.Lion(lr=0.001)")),
    pytest.param("sam", marks=pytest.mark.optcheck(
        optimizer=functools.partial(pytorch_optimizer.SAM, base_optimizer=torch.optim.SGD, lr=0.05))),
    pytest.param("schedulefree", marks=pytest.mark.optcheck(optimizer="schedulefree.AdamWScheduleFree(lr=0.01)")),
    pytest.param("sophiah", marks=pytest.mark.optcheck(optimizer="pytorch_optimizer.SophiaH(lr=0.01)",
                                                       create_graph=True)),
    pytest.param("param_groups", marks=pytest.mark.optcheck(optimizer="AdamW(lr=0.01, weight_decay=0.1)",
                                                            param_groups={"bias": {"weight_decay": 0.0}})),
    pytest.param("factory", marks=pytest.mark.optcheck(
        optimizer="pytorch_optimizer.create_optimizer(optimizer_name='adamw', lr=0.01, weight_decay=0.1)")),
    pytest.param("prodigy", marks=pytest.mark.optcheck(optimizer="prodigyopt.Prodigy(lr=1.0)",
                                                       record=["loss", "lr", "d"])),
])
def test_setup(optcheck, label):
    if label in ("param_groups", "factory"):
        assert len(optcheck.build()[1].param_groups) == 2
    optcheck.check()
'''

LR_BUMP = '''
import os

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook


@pytest.fixture(autouse=True)
def lr_bump():
    """With LR_BUMP set, every optimizer step runs with its learning rate scaled (a regression
    that no spec change shows), whatever the scheduler sets between steps."""
    scale = float(os.environ.get("LR_BUMP", "1"))
    saved = []

    def pre(optimizer, args, kwargs):
        saved.append([group["lr"] for group in optimizer.param_groups])
        for group in optimizer.param_groups:
            group["lr"] = group["lr"] * scale

    def post(optimizer, args, kwargs):
        for group, lr in zip(optimizer.param_groups, saved.pop()):
            group["lr"] = lr

    handles = [register_optimizer_step_pre_hook(pre),
               register_optimizer_step_post_hook(post)] if scale != 1 else []
    yield
    for handle in handles:
        handle.remove()
'''

LABELS = ("sequential", "chained", "onecycle", "transformers", "timm", "lion", "sam", "schedulefree", "sophiah",
          "param_groups", "factory", "prodigy")


def test_each_setup_is_one_marker_that_passes_again_and_fails_on_a_2_percent_lr_change(
        project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    project.makepyfile(test_twelve=TWELVE, conftest=LR_BUMP)
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=12)
    project.runpytest("--optcheck").assert_outcomes(passed=12)
    monkeypatch.setenv("LR_BUMP", "1.02")
    result = project.runpytest("--optcheck", "-rf")
    result.assert_outcomes(failed=12)
    out = result.stdout.str()
    for label in LABELS:
        assert f"FAILED test_twelve.py::test_setup[{label}-cpu]" in out
    # Every one fails on the behaviour (the loss), not only on the recorded LR.
    assert len(re.findall(r"E +AssertionError: optcheck: \d of \d series differ from the golden \(loss", out)) == 12


FAILING_SCHEDULER = '''
import pytest


class Scheduler:
    def __init__(self, optimizer):
        self.optimizer = optimizer

    def step(self):
        raise RuntimeError("my scheduler broke")


@pytest.mark.optcheck(scheduler=Scheduler, epochs=2, batch_size=500)
def test_run(optcheck):
    optcheck.train()
'''


def test_an_exception_in_user_code_names_the_loop_call_and_shows_only_user_frames(project: pytest.Pytester) -> None:
    project.makepyfile(test_fail=FAILING_SCHEDULER)
    result = project.runpytest("--optcheck")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines([
        "*optcheck: RuntimeError: my scheduler broke",
        "*while calling scheduler.step() at the end of epoch 0",
    ])
    assert 'test_fail.py", line 9, in step' in out  # the user's frame
    assert "pytest_optcheck" not in out.replace("pytest_optcheck-", "")


SENSITIVITY = '''
import pytest

pytestmark = pytest.mark.optcheck(optimizer="SGD(lr=0.1)", epochs=2, interval="step")


@pytest.mark.optcheck(scheduler="pytorch_optimizer.CosineAnnealingWarmupRestarts("
                                "first_cycle_steps=total_steps, max_lr=0.1, min_lr=0.001, warmup_steps=5)")
def test_absolute_lr_schedule(optcheck):
    optcheck.check()
'''


def test_sensitivity_probe_sees_absolute_lr_schedulers(project: pytest.Pytester) -> None:
    """CosineAnnealingWarmupRestarts sets absolute LRs, undoing a scaled initial LR: a probe
    that scaled the LR would call this check vacuous for changing nothing."""
    project.makepyfile(test_sens=SENSITIVITY)
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=1)
    result = project.runpytest("--optcheck", "--optcheck-sensitivity")
    result.assert_outcomes(passed=1)
    assert "would NOT notice" not in result.stdout.str()


