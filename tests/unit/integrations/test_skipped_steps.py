"""The Lightning callback on fp16 steps its GradScaler skips (issue 23): it finds the trainer's
scaler (``trainer.precision_plugin.scaler``) and keeps every iteration a row with the loss
Lightning computed for it, the ``skipped`` series marking the skipped ones. A real fp16
``16-mixed`` run on the CPU; inf gradients forced at batches 3 and 7."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

DATA = torch.linspace(-1, 1, 40).reshape(20, 2)


@pytest.fixture(scope="module")
def pl() -> Any:
    import lightning.pytorch

    return lightning.pytorch


def test_lightning_16_mixed_keeps_skipped_steps_in_place(pl: Any) -> None:
    from lightning.pytorch.plugins import MixedPrecision

    from pytest_optcheck.integrations.lightning import OptcheckCallback

    seen: list[float] = []

    class Model(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(2, 1)
            self.batches = 0

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            seen.append(loss.item())
            return loss

        def on_after_backward(self) -> None:
            if self.batches in (3, 7):
                self.net.weight.grad[0, 0] = float("inf")
            self.batches += 1

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.05)

    callback = OptcheckCallback(record=["loss", "lr", "grad_norm"])
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(DATA, DATA.sum(1, keepdim=True)), batch_size=4)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 4)  # small enough that fp16 overflows only when forced
    with torch.random.fork_rng():
        torch.manual_seed(0)
        trainer = pl.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, accelerator="cpu", callbacks=[callback],
                             plugins=[MixedPrecision("16-mixed", "cpu", scaler=scaler)])
        trainer.fit(Model(), data)
    trajectory = callback.trajectory
    assert len(trajectory) == 10
    np.testing.assert_array_equal(trajectory["loss"], seen)
    assert np.flatnonzero(trajectory["skipped"]).tolist() == [3, 7]
    assert np.isnan(trajectory["grad_norm"][[3, 7]]).all()
    assert trajectory.names == ["loss", "lr", "grad_norm", "skipped"]
