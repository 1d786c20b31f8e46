"""A Lightning `Trainer.fit`, recorded with one callback (pytest_optcheck.integrations.lightning).

The LightningModule, its optimizer and scheduler, the data and the Trainer are the user's own;
the test adds the callback and the check. The golden describes the run as it was: AdamW,
warm-up then cosine per step, 2 epochs of 8 batches.
"""

import lightning.pytorch as pl
import pytest
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR
from torch.utils.data import DataLoader, TensorDataset


class Regressor(pl.LightningModule):
    """The seed's Net(1, 10, 1) on its noisy quadratic, as a LightningModule."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(1, 10), torch.nn.ReLU(), torch.nn.Linear(10, 1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=0.02)
        warmup = LinearLR(optimizer, start_factor=0.1, total_iters=4)
        schedule = SequentialLR(optimizer, [warmup, CosineAnnealingLR(optimizer, T_max=12)], milestones=[4])
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


@pytest.mark.optcheck(record=["loss", "lr", "param_norm"])
def test_lightning_fit(optcheck):
    x = torch.linspace(-1, 1, 64).unsqueeze(1)
    y = x.pow(2) + 0.1 * torch.normal(torch.zeros_like(x), generator=torch.Generator().manual_seed(0))
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(1))
    with torch.random.fork_rng():  # seeded weights, and the global RNG left as it was
        torch.manual_seed(0)
        model = Regressor()
    callback = optcheck.callback("lightning")  # the marker's series; OptcheckCallback() records loss and lr
    trainer = pl.Trainer(max_epochs=2, accelerator=optcheck.device, devices=1,  # --optcheck-device
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[callback])
    trainer.fit(model, loader)
    optcheck.check(callback.trajectory)
