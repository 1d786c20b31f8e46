"""Optimizers inside wrappers (issue 23) and the arguments of ``optcheck.record`` checked where
they enter (issue 19, items 5 and 7): a wrapper that is not a ``torch.optim.Optimizer`` is
recorded through the optimizer it holds and described with its settings; what cannot be
recorded is refused with what was expected."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from pytest_optcheck.errors import OptcheckError
from pytest_optcheck.run.own_loop import LoopRecorder


class PlainLookahead:
    """A hand-written Lookahead: no torch optimizer, it holds one as ``.optimizer``."""

    def __init__(self, optimizer: torch.optim.Optimizer, k: int = 5, alpha: float = 0.5) -> None:
        self.optimizer, self.k, self.alpha = optimizer, k, alpha
        self.slow = [[p.detach().clone() for p in g["params"]] for g in optimizer.param_groups]
        self.count = 0

    def zero_grad(self) -> None:
        self.optimizer.zero_grad()

    def step(self) -> None:
        self.optimizer.step()
        self.count += 1
        if self.count % self.k == 0:
            with torch.no_grad():
                for group, slow in zip(self.optimizer.param_groups, self.slow):
                    for p, s in zip(group["params"], slow):
                        s.add_(p - s, alpha=self.alpha)
                        p.copy_(s)


def run(wrapper, model, steps: int = 6, **record_kwargs):
    x = torch.linspace(-1, 1, 16).reshape(8, 2)
    with LoopRecorder(wrapper, model=model, record=("loss", "lr"), **record_kwargs) as rec:
        for _ in range(steps):
            wrapper.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), x.sum(1, keepdim=True))
            loss.backward()
            wrapper.step()
            rec.log(loss=loss)
    return rec.trajectory


def model_and_adamw(lr: float = 0.01):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = torch.nn.Linear(2, 1)
    return model, torch.optim.AdamW(model.parameters(), lr=lr)


def test_a_plain_wrapper_records_through_its_optimizer_and_names_its_settings() -> None:
    model, adamw = model_and_adamw()
    trajectory = run(PlainLookahead(adamw, k=3, alpha=0.4), model)
    assert len(trajectory) == 6 and trajectory["lr"][:, 0].tolist() == [0.01] * 6
    run_ = trajectory.meta["run"]
    assert run_["optimizer"] == "AdamW()" and run_["wrapper"] == "PlainLookahead(alpha=0.4, k=3)"
    model, adamw = model_and_adamw()
    assert run(PlainLookahead(adamw, k=3, alpha=0.4), model) == trajectory  # re-run


def test_pytorch_optimizer_lookahead_is_described_with_k_and_alpha() -> None:
    from pytorch_optimizer import Lookahead

    model, adamw = model_and_adamw()
    trajectory = run(Lookahead(adamw, k=2, alpha=0.6), model)
    assert len(trajectory) == 6
    assert trajectory.meta["run"]["wrapper"] == "Lookahead(alpha=0.6, k=2, pullback_momentum='none')"
    assert trajectory.meta["run"]["optimizer"] == "AdamW()"


def test_accelerate_s_wrapper_records_through_its_optimizer_with_its_scaler() -> None:
    from accelerate import Accelerator
    from accelerate.optimizer import AcceleratedOptimizer

    from pytest_optcheck.integrations.base import trainer_scaler

    model, adamw = model_and_adamw()
    scaler = torch.amp.GradScaler("cpu")
    Accelerator(cpu=True)  # accelerate's wrappers need its state
    wrapped = AcceleratedOptimizer(adamw, device_placement=False, scaler=scaler)
    assert trainer_scaler(wrapped) is scaler
    x = torch.linspace(-1, 1, 16).reshape(8, 2)
    with LoopRecorder(wrapped, model=model, scaler=scaler) as rec:
        for i in range(4):
            wrapped.zero_grad()
            scaler.scale(torch.nn.functional.mse_loss(model(x), x.sum(1, keepdim=True))).backward()
            if i == 2:
                with torch.no_grad():
                    model.bias.grad.fill_(float("inf"))
            wrapped.step()  # accelerate calls scaler.step(optimizer) and scaler.update() itself
            rec.log(loss=float(i))
    trajectory = rec.trajectory
    assert trajectory["loss"].tolist() == [0.0, 1.0, 2.0, 3.0] and trajectory["skipped"].tolist() == [0, 0, 1, 0]
    assert "wrapper" not in trajectory.meta["run"]  # a framework's plumbing, not the run's configuration


def test_optimizer_attr_names_where_the_wrapper_keeps_it() -> None:
    model, adamw = model_and_adamw()

    class Keeper:
        def __init__(self, inner):
            self.inner, self.momentum_of_slow = inner, 0.25

        def zero_grad(self):
            self.inner.zero_grad()

        def step(self):
            self.inner.step()

    with pytest.raises(TypeError, match="cannot record a .*Keeper: expected a torch.optim.Optimizer.*optimizer_attr"):
        LoopRecorder(Keeper(adamw))
    trajectory = run(Keeper(adamw), model, optimizer_attr="inner")
    assert trajectory.meta["run"]["wrapper"] == "Keeper(momentum_of_slow=0.25)"
    with pytest.raises(TypeError, match="optimizer_attr='momentum_of_slow'.*holds a float, not a torch.optim"):
        LoopRecorder(Keeper(adamw), optimizer_attr="momentum_of_slow")


def test_swapped_arguments_are_refused_naming_what_was_given() -> None:
    model, adamw = model_and_adamw()
    with pytest.raises(OptcheckError, match=r"first argument is the optimizer; got a model \(Linear.*"
                                            r"optcheck.record\(optimizer, scheduler, model\)"):
        LoopRecorder(model, adamw)
    with pytest.raises(TypeError, match="second argument is the LR scheduler.*got a Linear"):
        LoopRecorder(adamw, model)
    with pytest.raises(TypeError, match="model=.*got a AdamW \\(an optimizer: did you swap"):
        LoopRecorder(adamw, model=adamw)
    sched = torch.optim.lr_scheduler.StepLR(adamw, 1)
    with pytest.raises(TypeError, match="got a scheduler \\(StepLR\\)"):
        LoopRecorder(sched, adamw)


def test_a_loop_that_never_steps_is_told_the_step_never_ran() -> None:
    model, adamw = model_and_adamw()
    with LoopRecorder(adamw, model=model) as rec:
        for _ in range(3):
            model(torch.ones(1, 2)).sum().backward()
            rec.log(loss=1.0)
    with pytest.raises(OptcheckError) as info:
        _ = rec.trajectory
    text = str(info.value)
    assert "another optimizer" not in text
    assert "rec.log() took 3 value(s), so the loop ran, but no optimizer's step() ran" in text


def test_a_loop_that_steps_another_optimizer_is_told_which() -> None:
    model, adamw = model_and_adamw()
    other = torch.optim.SGD(model.parameters(), lr=0.1)
    with LoopRecorder(adamw, model=model) as rec:
        model(torch.ones(1, 2)).sum().backward()
        other.step()
        rec.log(loss=1.0)
    with pytest.raises(OptcheckError, match="it stepped another optimizer: SGD"):
        _ = rec.trajectory


def test_the_value_logged_after_the_last_step_is_that_step_s() -> None:
    """The documented rule (issue 19, item 8): a value logged right after a step is that
    step's, the last one's too, silently; only a value no step can take is left out, warned."""
    model, adamw = model_and_adamw()
    x = torch.ones(1, 2)
    with LoopRecorder(adamw, model=model) as rec:
        for i in range(3):
            model(x).sum().backward()
            adamw.step()
            rec.log(loss=float(i))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rec.trajectory["loss"].tolist() == [0.0, 1.0, 2.0]


def test_log_epoch_keeps_one_value_per_epoch() -> None:
    model, adamw = model_and_adamw()
    with LoopRecorder(adamw, model=model) as rec:
        for epoch in range(3):
            rec.epoch = epoch
            for _ in range(2):
                model(torch.ones(1, 2)).sum().backward()
                adamw.step()
                rec.log(loss=1.0)
            if epoch != 1:
                rec.log_epoch(val_loss=torch.tensor(float(epoch)))
        with pytest.raises(OptcheckError, match="twice in epoch 2.*one value an epoch"):
            rec.log_epoch(val_loss=5.0)
        with pytest.raises(OptcheckError, match="'loss' is already a per-step series"):
            rec.log_epoch(loss=1.0)
        with pytest.raises(OptcheckError, match="'val_loss' is a per-epoch series"):
            rec.log(val_loss=1.0)
    t = rec.trajectory
    assert t.names == ["loss", "lr"] and t.epoch_series["val_loss"].tolist()[::2] == [0.0, 2.0]
    assert np.isnan(t.epoch_series["val_loss"][1])
