"""Recording frameworks' trainers for real (pytest_optcheck.integrations): a tiny model on CPU,
a few steps, no downloads. Each framework is imported by a fixture, in this process, before any
pytester run needs it (a module first imported inside an in-process run is dropped after it),
and only by the worker that runs these tests."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from conftest import golden_files, read_golden


@pytest.fixture(scope="session")
def lightning() -> Any:
    import lightning.pytorch

    from pytest_optcheck.integrations import lightning as integration  # noqa: F401  (before any inner run)

    return lightning.pytorch


@pytest.fixture(scope="session")
def transformers() -> Any:
    import transformers

    from pytest_optcheck.integrations import hf  # noqa: F401  (before any inner run)

    return transformers


@contextlib.contextmanager
def own_rng(seed: int) -> Iterator[None]:
    """The trainers seed and draw from the global RNGs (the HF Trainer calls set_seed): keep
    that inside the test."""
    states = random.getstate(), np.random.get_state()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        yield
    random.setstate(states[0])
    np.random.set_state(states[1])


DATA = torch.linspace(-1, 1, 40).reshape(20, 2)


# -- Lightning --------------------------------------------------------------------------------


def lightning_fit(pl: Any, callback: Any, accumulate: int = 1) -> list[float]:
    """Fit a linear model for 2 epochs of 5 batches; return the losses training_step computed."""
    seen: list[float] = []

    class Model(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(2, 1)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            seen.append(loss.item())
            return loss

        def configure_optimizers(self) -> Any:
            optimizer = torch.optim.AdamW(self.parameters(), lr=0.05)
            return [optimizer], [{"scheduler": torch.optim.lr_scheduler.StepLR(optimizer, 2, 0.5), "interval": "step"}]

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(DATA, DATA.sum(1, keepdim=True)), batch_size=4)
    with own_rng(0):
        trainer = pl.Trainer(max_epochs=2, accumulate_grad_batches=accumulate, logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                             callbacks=[callback])
        trainer.fit(Model(), data)
    return seen


def test_lightning_records_the_loss_it_backpropagated_per_optimizer_step(lightning: Any) -> None:
    from pytest_optcheck.integrations.lightning import OptcheckCallback

    callback = OptcheckCallback(record=["loss", "lr"])
    seen = lightning_fit(lightning, callback, accumulate=2)
    trajectory = callback.trajectory
    # windows of 2 micro-batches, each loss divided by 2 (the last window of an epoch holds one)
    expected = [(seen[0] + seen[1]) / 2, (seen[2] + seen[3]) / 2, seen[4] / 2,
                (seen[5] + seen[6]) / 2, (seen[7] + seen[8]) / 2, seen[9] / 2]
    np.testing.assert_allclose(trajectory["loss"], expected, rtol=1e-6)
    np.testing.assert_array_equal(trajectory.epoch, [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(trajectory.batch, [1, 3, 4, 1, 3, 4])
    np.testing.assert_array_equal(trajectory["lr"][:, 0], [0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125])
    assert trajectory.meta["run"] == {"source": "lightning", "optimizer": "AdamW()",
                                      "param_groups": ["2 tensors, 3 values"],
                                      "scheduler": "StepLR(gamma=0.5, step_size=2)", "epochs": 2, "steps": 6}


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


class Net(torch.nn.Module):
    """A model as the HF Trainer expects one: keyword inputs, a dict with the loss."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(2, 1)
        self.seen: list[float] = []

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        loss = torch.nn.functional.mse_loss(self.lin(x).squeeze(-1), labels)
        self.seen.append(loss.item())
        return {"loss": loss}


def test_hf_records_the_trainer_s_own_loss_per_optimizer_step(transformers: Any, tmp_path: Any) -> None:
    from pytest_optcheck.integrations.hf import OptcheckCallback

    callback = OptcheckCallback(record=["loss", "lr"])
    data = [{"x": row, "labels": row.sum()} for row in DATA]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), report_to=[], num_train_epochs=2, per_device_train_batch_size=4,
        gradient_accumulation_steps=2, learning_rate=0.05, weight_decay=0.1, lr_scheduler_type="linear",
        use_cpu=True, disable_tqdm=True, save_strategy="no", log_level="error", seed=0)
    with own_rng(0):
        model = Net()
        transformers.Trainer(model=model, args=args, train_dataset=data, callbacks=[callback]).train()
    trajectory = callback.trajectory
    seen = model.seen  # a window's loss: the mean of its micro-batches (the last one of an epoch holds one)
    expected = [(seen[0] + seen[1]) / 2, (seen[2] + seen[3]) / 2, seen[4],
                (seen[5] + seen[6]) / 2, (seen[7] + seen[8]) / 2, seen[9]]
    np.testing.assert_allclose(trajectory["loss"], expected, rtol=1e-6)
    np.testing.assert_array_equal(trajectory.epoch, [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(trajectory.batch, [1, 3, 4, 1, 3, 4])
    np.testing.assert_allclose(trajectory["lr"][:, 0], [0.05 * (6 - i) / 6 for i in range(6)], rtol=1e-12)
    run = trajectory.meta["run"]
    assert (run["source"], run["optimizer"], run["steps"], run["epochs"]) == ("transformers", "AdamW(fused=True)", 6, 2)
    assert run["param_groups"] == ["1 tensor, 2 values: weight_decay=0.1", "1 tensor, 1 values: weight_decay=0.0"]
    assert run["scheduler"].startswith("LambdaLR(lr_lambda=partial(transformers.optimization.")


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


def test_callbacks_say_what_is_missing(lightning: Any, transformers: Any) -> None:
    from pytest_optcheck.errors import OptcheckError, SpecError
    from pytest_optcheck.integrations import hf
    from pytest_optcheck.integrations import lightning as pl_integration

    for module in (pl_integration, hf):
        with pytest.raises(OptcheckError, match=r"recorded nothing: pass it to the Trainer"):
            module.OptcheckCallback().trajectory  # noqa: B018
        with pytest.raises(SpecError, match=r"OptcheckCallback\(record=...\) names unknown series 'los'. Did you mean: loss\?"):
            module.OptcheckCallback(record=["los"])
