"""The Lightning callback on fp16 steps its GradScaler skips (issue 23): it finds the trainer's
scaler (``trainer.precision_plugin.scaler``) and keeps every iteration a row with the loss
Lightning computed for it, the ``skipped`` series marking the skipped ones. A real fp16
``16-mixed`` run on the CPU; inf gradients forced at batches 3 and 7."""

from __future__ import annotations

import random
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


class _HFNet(torch.nn.Module):
    """A model as the HF Trainer expects one, its gradient forced to inf on backward passes 3 and 7."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(2, 1)
        self.seen: list[float] = []
        self.backwards = 0
        self.lin.weight.register_hook(self._force_inf)

    def _force_inf(self, grad: torch.Tensor) -> torch.Tensor:
        self.backwards += 1
        return torch.full_like(grad, float("inf")) if self.backwards - 1 in (3, 7) else grad

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        loss = torch.nn.functional.mse_loss(self.lin(x).squeeze(-1).float(), labels.float())
        self.seen.append(loss.item())
        return {"loss": loss}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: accelerate makes no fp16 GradScaler on CPU")
def test_hf_trainer_fp16_on_cuda_keeps_skipped_steps_in_place(tmp_path: Any) -> None:
    """A real HF Trainer with fp16=True on a GPU: accelerate's GradScaler (found on its
    AcceleratedOptimizer) skips the steps whose gradients are inf; each stays a row with the
    loss of its own batch, marked ``skipped``."""
    import transformers

    from pytest_optcheck.integrations.hf import OptcheckCallback

    callback = OptcheckCallback(record=["loss", "lr", "grad_norm"])
    data = [{"x": row, "labels": row.sum()} for row in DATA]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), report_to=[], num_train_epochs=2, per_device_train_batch_size=4,
        learning_rate=0.05, fp16=True, disable_tqdm=True, save_strategy="no", log_level="error", seed=0)
    states = random.getstate(), np.random.get_state()  # the Trainer's set_seed reseeds every RNG
    with torch.random.fork_rng(device_type="cuda"):
        torch.manual_seed(0)
        model = _HFNet()
        transformers.Trainer(model=model, args=args, train_dataset=data, callbacks=[callback]).train()
    random.setstate(states[0])
    np.random.set_state(states[1])
    trajectory = callback.trajectory
    skipped = np.flatnonzero(trajectory["skipped"]).tolist()
    assert len(trajectory) == 10
    np.testing.assert_allclose(trajectory["loss"], model.seen, rtol=1e-6)
    assert 3 in skipped and 7 in skipped
    assert np.isnan(trajectory["grad_norm"][skipped]).all()
