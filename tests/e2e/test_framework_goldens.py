"""A golden recorded by a framework callback names the framework's version in its environment,
as a marker run names its third-party libraries (issue 19, item 2) — here through the
standalone ``pytorch_lightning`` package (item 3)."""

from __future__ import annotations

import importlib.metadata

import pytest

from tests.e2e.goldens import golden_files, read_golden

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


def test_pytorch_lightning_golden_names_its_version(project: pytest.Pytester) -> None:
    """The golden of a pytorch_lightning fit names that distribution's version. (It ran in a
    subprocess while a picture with notes left its top margin in a reused figure, which made
    tests/unit/report/test_picture_speed.py fail after any session that drew one; fixed in
    report/picture.py.) The check of such a golden, passing and failing, is tested with `lightning`
    (tests/e2e/test_integrations.py); the series the callback records, in tests/unit/integrations."""
    pytest.importorskip("pytorch_lightning")
    version = importlib.metadata.version("pytorch-lightning")
    project.makepyfile(test_pl=TEST.format(lr=0.1))
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=1)
    (path,) = golden_files(project.path)
    golden = read_golden(project.path / path)
    assert golden["environment"]["libraries"] == {"pytorch_lightning": version}
    assert list(golden["series"]) == ["loss", "lr", "weight_decay"]
    assert "libraries" not in golden["meta"]
    assert len(golden["series"]["loss"]) == golden["steps"] == 4  # one row per optimizer step
