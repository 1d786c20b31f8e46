"""The framework callbacks, for real (issue 19, items 1-3 and 14): they keep param-group keys
asked in ``record`` (weight_decay), the run names the framework's package (its version goes to
the golden's environment), both ``lightning`` and the standalone ``pytorch_lightning`` work, and
a run under mixed precision says so."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pytest
import torch

DATA = torch.linspace(-1, 1, 40).reshape(20, 2)
PACKAGES = {"lightning": "lightning.pytorch", "pytorch_lightning": "pytorch_lightning"}


@pytest.fixture(scope="session", params=list(PACKAGES))
def lightning_package(request: pytest.FixtureRequest) -> tuple[str, Any]:
    name = request.param
    return name, importlib.import_module(PACKAGES[name])


def fit(pl: Any, callback: Any, precision: str = "32-true") -> None:
    class Model(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(2, 1)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            return torch.nn.functional.mse_loss(self.net(x).float(), y)

        def configure_optimizers(self) -> Any:  # two groups: decay on the weight, none on the bias
            return torch.optim.AdamW([{"params": [self.net.weight], "weight_decay": 0.1},
                                      {"params": [self.net.bias], "weight_decay": 0.0}], lr=0.05)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(DATA, DATA.sum(1, keepdim=True)), batch_size=5)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, accelerator="cpu", precision=precision,
                   callbacks=[callback]).fit(Model(), data)


def test_lightning_keeps_param_group_keys_and_names_its_package(lightning_package: tuple[str, Any]) -> None:
    name, pl = lightning_package
    module = importlib.import_module(f"pytest_optcheck.integrations.{name}")
    callback = module.OptcheckCallback(record=["loss", "lr", "weight_decay"])
    assert isinstance(callback, pl.Callback)
    fit(pl, callback)
    trajectory = callback.trajectory
    assert trajectory.names == ["loss", "lr", "weight_decay"]
    np.testing.assert_array_equal(trajectory["weight_decay"], [[0.1, 0.0]] * 4)
    assert trajectory.meta["libraries"] == [name]
    assert "autocast" not in trajectory.meta["run"]


def test_lightning_under_bf16_mixed_precision_says_autocast(lightning_package: tuple[str, Any]) -> None:
    name, pl = lightning_package
    module = importlib.import_module(f"pytest_optcheck.integrations.{name}")
    callback = module.OptcheckCallback()
    fit(pl, callback, precision="bf16-mixed")
    assert callback.trajectory.meta["run"]["autocast"] == "bfloat16"


def test_hf_keeps_param_group_keys_and_names_its_packages(tmp_path: Any) -> None:
    transformers = pytest.importorskip("transformers")
    from pytest_optcheck.integrations.hf import OptcheckCallback

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(2, 1)

        def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"loss": torch.nn.functional.mse_loss(self.lin(x).squeeze(-1), labels)}

    callback = OptcheckCallback(record=["loss", "lr", "weight_decay"])
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), report_to=[], num_train_epochs=1, per_device_train_batch_size=5,
        learning_rate=0.05, weight_decay=0.1, use_cpu=True, disable_tqdm=True, save_strategy="no",
        log_level="error", seed=0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        transformers.Trainer(model=Net(), args=args, train_dataset=[{"x": r, "labels": r.sum()} for r in DATA],
                             callbacks=[callback]).train()
    trajectory = callback.trajectory
    np.testing.assert_array_equal(trajectory["weight_decay"], [[0.1, 0.0]] * 4)
    assert trajectory.meta["libraries"] == ["transformers", "accelerate"]


def test_a_key_no_group_holds_is_refused_not_dropped(lightning_package: tuple[str, Any]) -> None:
    from pytest_optcheck.errors import OptcheckError

    name, pl = lightning_package
    module = importlib.import_module(f"pytest_optcheck.integrations.{name}")
    callback = module.OptcheckCallback(record=["loss", "lr", "dampening"])
    fit(pl, callback)
    with pytest.raises(OptcheckError, match="record names 'dampening'"):
        callback.trajectory  # noqa: B018
