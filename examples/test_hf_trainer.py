"""A Hugging Face `Trainer.train`, recorded with one callback (pytest_optcheck.integrations.hf).

A tiny torch model and an in-memory dataset, no download: the Trainer, its AdamW, linear
warm-up and cosine decay and its gradient accumulation are the framework's own. The callback
records the Trainer's own loss per optimizer step (the mean over each accumulation window) and
the LR per param group (the Trainer puts biases in a group without weight decay).
"""

import torch
from transformers import Trainer, TrainingArguments

from pytest_optcheck.integrations.hf import OptcheckCallback


class Regressor(torch.nn.Module):
    """The seed's Net(1, 10, 1), taking the Trainer's keyword inputs and returning its loss."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(1, 10), torch.nn.ReLU(), torch.nn.Linear(10, 1))

    def forward(self, x, labels):
        return {"loss": torch.nn.functional.mse_loss(self.net(x), labels)}


def test_hf_trainer(optcheck, tmp_path):
    x = torch.linspace(-1, 1, 64).unsqueeze(1)
    y = x.pow(2) + 0.1 * torch.normal(torch.zeros_like(x), generator=torch.Generator().manual_seed(0))
    dataset = [{"x": xi, "labels": yi} for xi, yi in zip(x, y)]
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], seed=0,
                             use_cpu=optcheck.device == "cpu",  # --optcheck-device
                             num_train_epochs=2, per_device_train_batch_size=8, gradient_accumulation_steps=2,
                             learning_rate=0.02, weight_decay=0.01, warmup_steps=2, lr_scheduler_type="cosine",
                             save_strategy="no", disable_tqdm=True, log_level="error")
    callback = OptcheckCallback()
    with torch.random.fork_rng():  # seeded weights; the Trainer's set_seed stays inside
        torch.manual_seed(0)
        Trainer(model=Regressor(), args=args, train_dataset=dataset, callbacks=[callback]).train()
    optcheck.check(callback.trajectory)
