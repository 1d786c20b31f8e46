"""A framework's trainer recorded in a real session (pytest_optcheck.integrations): the golden
reruns and fails on planted changes. A tiny model on CPU, a few steps, no downloads. Each framework
is imported by a fixture (tests/conftest.py), in this process, before any pytester run needs it (a
module first imported inside an in-process run is dropped after it), and only by the worker that
runs these tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.goldens import golden_files, read_golden

# -- Lightning --------------------------------------------------------------------------------


LIGHTNING_TEST = """
import torch
import lightning.pytorch as pl
from pytest_optcheck.integrations.lightning import OptcheckCallback

class Model(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr={lr}, momentum={momentum})

def test_fit(optcheck):
    x = torch.linspace(-1, 1, 32).reshape(16, 2)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)), batch_size=4)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Model()
    callback = OptcheckCallback()
    pl.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, accelerator="cpu", callbacks=[callback]).fit(model, data)
    optcheck.check(callback.trajectory)
"""


def test_lightning_fit_golden_reruns_and_planted_changes(project: pytest.Pytester, lightning: Any) -> None:
    project.makepyfile(test_lightning_recorded=LIGHTNING_TEST.format(lr=0.1, momentum=0.9))
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=1)
    (path,) = golden_files(project.path)
    assert read_golden(project.path / path)["spec"]["optimizer"] == "SGD(momentum=0.9)"
    reruns_then_fails_on_planted_changes(
        project, "test_lightning_recorded", LIGHTNING_TEST.format(lr=0.102, momentum=0.9),
        LIGHTNING_TEST.format(lr=0.1, momentum=0.8), "*optimizer: 'SGD(momentum=0.9)' -> 'SGD(momentum=0.8)'*")


def reruns_then_fails_on_planted_changes(project: pytest.Pytester, name: str, lr_changed: str,
                                         config_changed: str, config_line: str) -> None:
    """The recorded golden passes a re-run; a 2% lr change fails step by step, and a changed
    optimizer argument fails as a configuration change, naming old -> new."""
    project.runpytest("--optcheck").assert_outcomes(passed=1)
    project.makepyfile(**{name: lr_changed})
    result = project.runpytest("--optcheck")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*series differ from the golden*", "*lr*", "*first*step*"])
    project.makepyfile(**{name: config_changed})
    result = project.runpytest("--optcheck")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*configuration changed*", config_line])


# -- Hugging Face -------------------------------------------------------------------------------


HF_TEST = """
import pytest
import torch
from transformers import Trainer, TrainingArguments

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 1)

    def forward(self, x, labels):
        return {{"loss": torch.nn.functional.mse_loss(self.lin(x).squeeze(-1), labels)}}

@pytest.mark.optcheck(record=["loss", "lr"], epochs=7)  # epochs: a key this run never uses
def test_train(optcheck, tmp_path):
    x = torch.linspace(-1, 1, 32).reshape(16, 2)
    callback = optcheck.callback("hf")
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], num_train_epochs=2,
                             per_device_train_batch_size=4, learning_rate={lr}, adam_beta2={beta2},
                             use_cpu=True, disable_tqdm=True, save_strategy="no", log_level="error", seed=0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        Trainer(model=Net(), args=args, train_dataset=[{{"x": r, "labels": r.sum()}} for r in x],
                callbacks=[callback]).train()
    optcheck.check(callback.trajectory)
"""


def test_hf_train_golden_reruns_and_planted_changes(project: pytest.Pytester, transformers: Any) -> None:
    project.makepyfile(test_hf_recorded=HF_TEST.format(lr=0.05, beta2=0.999))
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=1)
    (path,) = golden_files(project.path)
    golden = read_golden(project.path / path)
    assert (golden["spec"]["source"], golden["spec"]["optimizer"], golden["steps"]) == (
        "transformers", "AdamW(fused=True, weight_decay=0.0)", 8)
    changed = "*optimizer: 'AdamW(fused=True, weight_decay=0.0)' -> 'AdamW(betas=(0.9, 0.99), fused=True, weight_decay=0.0)'*"
    reruns_then_fails_on_planted_changes(project, "test_hf_recorded", HF_TEST.format(lr=0.051, beta2=0.999),
                                         HF_TEST.format(lr=0.05, beta2=0.99), changed)
