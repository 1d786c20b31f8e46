"""Recording frameworks' trainers for real (pytest_optcheck.integrations): a tiny model on CPU,
a few steps, no downloads: what each callback records. Each framework is imported by a fixture
(tests/conftest.py), only by the worker that runs these tests. The goldens such a test writes,
end to end: tests/e2e/test_integrations.py."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch


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


def test_callbacks_say_what_is_missing(lightning: Any, transformers: Any) -> None:
    from pytest_optcheck.errors import OptcheckError, SpecError
    from pytest_optcheck.integrations import hf
    from pytest_optcheck.integrations import lightning as pl_integration

    for module in (pl_integration, hf):
        with pytest.raises(OptcheckError, match=r"recorded nothing: pass it to the Trainer"):
            module.OptcheckCallback().trajectory  # noqa: B018
        with pytest.raises(SpecError, match=r"OptcheckCallback\(record=...\) names unknown series 'los'. Did you mean: loss\?"):
            module.OptcheckCallback(record=["los"])
