"""calibrate=N on a user's own loop (``optcheck.check(run=loop, calibrate=N)``), end to end.

The docs' pattern once built the model from the global RNG: each replica then started from
other weights, the envelope was as wide as a real change, and the change passed. Such a loop
is refused with the cause and the fix; the same loop seeded inside the function calibrates."""

from __future__ import annotations

import pytest

from tests.e2e.goldens import read_golden

GOLDEN = "golden/test_loop/test_t[cpu].json"
LOOP = """
import pytest
import torch
from torch import nn


class MyNet(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, 1))  # initialised from the global RNG


def batches():
    generator = torch.Generator().manual_seed(0)  # the data is seeded: only the weights are not
    x = torch.rand(64, 1, generator=generator) * 2 - 1
    return [(x[i:i + 16], torch.sin(3 * x[i:i + 16])) for i in range(0, 64, 16)]


@pytest.mark.optcheck
def test_t(optcheck):
    def loop(perturb):
        {seed}
        model = perturb(MyNet())
        optimizer = torch.optim.SGD(model.parameters(), lr={lr}, momentum=0.9)
        with optcheck.record(optimizer, model=model) as rec:
            for x, y in batches() * 3:
                loss = nn.functional.mse_loss(model(x), y)
                optimizer.zero_grad(); loss.backward(); optimizer.step()
                rec.log(loss=loss)
        return rec.trajectory

    optcheck.check(run=loop, calibrate=4)
"""


def write(project: pytest.Pytester, seed: str = "", lr: float = 0.1) -> None:
    project.makepyfile(test_loop=LOOP.format(seed=seed, lr=lr))


def test_a_loop_initialised_from_the_global_rng_is_refused_with_the_cause(project: pytest.Pytester) -> None:
    write(project)
    result = project.runpytest("--optcheck", "--snapshot-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([(
        "E * calibrate=4: the replicas already differ at step 0, before any update*"
        "The replicas started from different weights: the function initialises from the global RNG*"
        "Seed inside the function: call torch.manual_seed(0) at its top*No golden was written*")])
    assert "smaller learning rate" not in result.stdout.str()
    assert not (project.path / GOLDEN).exists()


def test_the_same_loop_seeded_inside_calibrates_and_still_catches_a_change(project: pytest.Pytester) -> None:
    write(project, seed="torch.manual_seed(0)  # seeded inside: every call builds the same weights")
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=1)
    block = read_golden(project.path / GOLDEN)["calibration"]
    assert block["replicas"] == 4 and block["path"] == "sequential (your loop)"
    assert 0 < max(block["envelope"]["loss"]) < 1e-4  # rounding noise, not a spread of inits
    project.runpytest("--optcheck").assert_outcomes(passed=1)
    write(project, seed="torch.manual_seed(0)", lr=0.102)  # a 2% learning-rate change
    project.runpytest("--optcheck").assert_outcomes(failed=1)


def test_a_loop_that_never_calls_perturb_is_told_to(project: pytest.Pytester) -> None:
    project.makepyfile(test_loop=LOOP.format(seed="torch.manual_seed(0)", lr=0.1).replace(
        "model = perturb(MyNet())", "model = MyNet()"))
    result = project.runpytest("--optcheck", "--snapshot-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*check(run='loop') never called perturb(model)*model = perturb(MyNet())*"])
    assert not (project.path / GOLDEN).exists()
