"""A scheduler with timm's documented API, shared by the unit and end-to-end tests of real setups:
timm cannot be installed here (its torchvision dependency has no CPU build in the registry)."""

from __future__ import annotations

import math


class TimmStyleCosine:
    """timm.scheduler's API: built on the optimizer, ``step(epoch, metric=None)`` at the end
    of each epoch, ``step_update(num_updates, metric=None)`` after each optimizer step; with
    ``t_in_epochs=False`` the schedule follows the updates (timm's CosineLRScheduler)."""

    def __init__(self, optimizer, t_initial, lr_min=0.0, warmup_t=0, warmup_lr_init=0.0, t_in_epochs=True):
        self.optimizer, self.t_initial, self.lr_min = optimizer, t_initial, lr_min
        self.warmup_t, self.warmup_lr_init, self.t_in_epochs = warmup_t, warmup_lr_init, t_in_epochs
        self.base_values = [group["lr"] for group in optimizer.param_groups]
        self._update(0)

    def lr_at(self, t):
        if t < self.warmup_t:
            return [self.warmup_lr_init + t * (v - self.warmup_lr_init) / self.warmup_t for v in self.base_values]
        t = min(t - self.warmup_t, self.t_initial)
        return [self.lr_min + 0.5 * (v - self.lr_min) * (1 + math.cos(math.pi * t / self.t_initial))
                for v in self.base_values]

    def _update(self, t):
        for group, lr in zip(self.optimizer.param_groups, self.lr_at(t)):
            group["lr"] = lr

    def step(self, epoch, metric=None):
        if self.t_in_epochs:
            self._update(epoch)

    def step_update(self, num_updates, metric=None):
        if not self.t_in_epochs:
            self._update(num_updates)
