"""``OptcheckCallback(record_every=k)``: a trainer's run, thinned like a recorded loop."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from pytest_optcheck.errors import SpecError


def test_lightning_callback_thins_by_record_every() -> None:
    pl = pytest.importorskip("lightning.pytorch")
    from pytest_optcheck.integrations.lightning import OptcheckCallback

    class Model(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(2, 1)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            return torch.nn.functional.mse_loss(self.net(x), y)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.05)

    x = torch.linspace(-1, 1, 40).reshape(20, 2)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)), batch_size=4)
    callback = OptcheckCallback(record_every=3)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        pl.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, accelerator="cpu", callbacks=[callback]).fit(Model(), data)
    trajectory = callback.trajectory
    assert (trajectory.every, trajectory.total_steps, trajectory.steps.tolist()) == (3, 10, [0, 3, 6, 9])
    assert trajectory.epoch.tolist() == [0, 0, 1, 1] and trajectory.meta["run"]["record_every"] == 3
    loss = trajectory.buckets.stats["loss"]
    assert np.all(loss["min"] <= trajectory["loss"]) and np.all(trajectory["loss"] <= loss["max"])

    with pytest.raises(SpecError, match=r"record_every=0 must be a whole number of steps >= 1"):
        OptcheckCallback(record_every=0)
