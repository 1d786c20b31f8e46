"""A recorded run's golden describes that run (run/describe.py), not the marker's defaults: end to end."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.e2e.goldens import golden_files, read_golden

OWN_LOOP = """
import sys
from pathlib import Path

import pytest
import torch

@pytest.mark.optcheck({marker})
def test_loop(optcheck):
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(0.5), model.bias.zero_()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05, betas={betas})
    x = torch.linspace(-1, 1, 16).reshape(8, 2)
    with optcheck.record(optimizer, model=model) as rec:
        for epoch in range(3):
            rec.epoch = epoch
            loss = torch.nn.functional.mse_loss(model(x), x.sum(1, keepdim=True))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            rec.log(loss=loss)
    optcheck.check(rec.trajectory)
"""


def test_own_loop_golden_describes_the_loop_and_ignores_unused_marker_keys(project: pytest.Pytester) -> None:
    project.makepyfile(test_loop=OWN_LOOP.format(marker="", betas=(0.9, 0.999)))
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=1)
    (path,) = golden_files(project.path)
    golden = read_golden(project.path / path)
    assert golden["spec"] == {"source": "loop", "optimizer": "Adam()", "param_groups": ["2 tensors, 3 values"],
                              "scheduler": None, "epochs": 3, "steps": 3}
    assert "run" not in golden["meta"]
    # marker keys the run never used are no part of its configuration
    project.makepyfile(test_loop=OWN_LOOP.format(marker="epochs=2, batch_size=4", betas=(0.9, 0.999)))
    project.runpytest("--optcheck").assert_outcomes(passed=1)
    # a changed hyperparameter is a configuration change, old -> new
    project.makepyfile(test_loop=OWN_LOOP.format(marker="", betas=(0.8, 0.999)))
    result = project.runpytest("--optcheck")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*configuration changed*", "*optimizer: 'Adam()' -> 'Adam(betas=(0.8, 0.999))'*"])
    # the console script installed beside this interpreter (on PATH only in an activated venv)
    command = Path(sys.executable).with_name("optcheck")
    shown = project.run(command if command.exists() else "optcheck", "show", path)
    shown.stdout.fnmatch_lines(["*run (as recorded):*", "*optimizer*Adam()*", "*source*loop*"])


def test_reference_run_with_overrides_golden_names_the_spec_that_ran(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.optcheck(epochs=1, batch_size=500)
        def test_variant(optcheck):
            optcheck.check(optcheck.train(optimizer="Adam(lr=0.1)"), name="adam")
        """
    )
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=1)
    (path,) = golden_files(project.path)
    golden = read_golden(project.path / path)
    assert (golden["spec"]["optimizer"], golden["spec"]["epochs"]) == ("Adam(lr=0.1)", 1)
    assert set(golden["meta"]) == {"kind", "device"}
