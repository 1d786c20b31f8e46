"""check_distributed(run=fn) from a pytest session: the test file, imported by pytest under a
rootdir-relative name (``--import-mode=importlib``: a name ``sys.path`` cannot find), is
imported the same way in the spawned ranks; the outcome goes to the summary."""

from __future__ import annotations

import pytest

LOOP = '''
import pytest
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel


def ddp_loop(ctx):
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    ddp = DistributedDataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.linspace(-1, 1, 24).reshape(8, 3)
    with ctx.record(optimizer, model=model) as rec:
        for _ in range(3):
            loss = ddp(x.tensor_split(ctx.world_size)[ctx.rank]).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            rec.log(loss=loss)
    return rec.trajectory


@pytest.mark.optcheck(record=("loss", "lr"))
def test_ddp_loop(optcheck):
    optcheck.check_distributed(run=ddp_loop, world_size=2)
'''


def test_a_loop_in_a_test_file_imported_by_rootdir_relative_name_runs_in_the_ranks(project: pytest.Pytester) -> None:
    project.mkdir("checks").joinpath("test_loop_imports.py").write_text(LOOP)
    result = project.runpytest("--optcheck", "--import-mode=importlib", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 check*1 passed*"])
