"""A golden recorded by a framework callback names the framework's version in its environment,
as a marker run names its third-party libraries (issue 19, item 2) — here through the
standalone ``pytorch_lightning`` package (item 3)."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import golden_files, read_golden

TEST = """
import torch
import pytorch_lightning as pl
import pytest

class Model(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD([{{"params": [self.net.weight], "weight_decay": 0.01}},
                                {{"params": [self.net.bias], "weight_decay": 0.0}}], lr={lr})

@pytest.mark.optcheck(record=["loss", "lr", "weight_decay"])
def test_fit(optcheck):
    x = torch.linspace(-1, 1, 32).reshape(16, 2)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)), batch_size=4)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Model()
    callback = optcheck.callback("pytorch_lightning")
    pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, accelerator="cpu", callbacks=[callback]).fit(model, data)
    optcheck.check(callback.trajectory)
"""


@pytest.fixture(scope="session")
def pytorch_lightning() -> Any:
    import pytorch_lightning

    from pytest_optcheck.integrations import pytorch_lightning as integration  # noqa: F401  (before inner runs)

    return pytorch_lightning


def test_pytorch_lightning_golden_names_its_version(project: pytest.Pytester, pytorch_lightning: Any) -> None:
    project.makepyfile(test_pl=TEST.format(lr=0.1))
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=1)
    (path,) = golden_files(project.path)
    golden = read_golden(project.path / path)
    assert golden["environment"]["libraries"] == {"pytorch_lightning": pytorch_lightning.__version__}
    assert list(golden["series"]) == ["loss", "lr", "weight_decay"]
    assert "libraries" not in golden["meta"]
    project.runpytest("--optcheck").assert_outcomes(passed=1)
    project.makepyfile(test_pl=TEST.format(lr=0.102))
    result = project.runpytest("--optcheck")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*series differ from the golden (*lr*"])
