"""Real training setups at the run layer: the LR series the
reference loop records equals each library's own, closures, Hessian optimizers, Prodigy's d, param
groups, bad input, callables' names, third-party versions. Against the real libraries
(requirements-dev.txt pins them). The same setups end to end: tests/e2e/test_real_setups.py.
"""

from __future__ import annotations

import functools
import importlib.metadata
import sys

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim import lr_scheduler as sched

from pytest_optcheck import SpecError
from pytest_optcheck.declare.build import build
from pytest_optcheck.declare.catalog import library_modules
from pytest_optcheck.declare.spec import Spec, canonical_callable
from pytest_optcheck.run.train import lr_schedule, train
from tests.timm_style import TimmStyleCosine

# Imported before any in-process pytester run: a module first imported inside one is dropped
# from sys.modules afterwards, and re-importing these libraries costs seconds each time.
pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
pytest.importorskip("schedulefree")
pytest.importorskip("prodigyopt")
transformers_optimization = pytest.importorskip("transformers.optimization")



STEP = {"epochs": 2, "interval": "step"}


def by_hand(make, steps: int, lr: float = 0.01, epoch_steps: int = 0) -> np.ndarray:
    """The LR before each of ``steps`` optimizer steps, the library stepped as its docs say."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = make(optimizer)
    out = []
    for i in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if hasattr(scheduler, "step_update"):
            scheduler.step_update(num_updates=i + 1)
            if epoch_steps and (i + 1) % epoch_steps == 0:
                scheduler.step((i + 1) // epoch_steps)
        else:
            scheduler.step()
    return np.asarray(out)


def lrs(**keys) -> np.ndarray:
    return train(Spec(**{**STEP, **keys}))["lr"][:, 0]


def test_composite_and_library_lr_series_equal_the_library_own() -> None:
    total = len(lrs())  # 2 epochs of the quadratic problem in batches of 32
    cases = {
        "SequentialLR(schedulers=[LinearLR(start_factor=0.1, total_iters=5), CosineAnnealingLR(T_max=total_steps)], "
        "milestones=[5])": lambda o: sched.SequentialLR(
            o, [sched.LinearLR(o, start_factor=0.1, total_iters=5), sched.CosineAnnealingLR(o, T_max=total)], [5]),
        "ChainedScheduler(schedulers=[ExponentialLR(gamma=0.99), StepLR(step_size=10, gamma=0.5)])":
            lambda o: sched.ChainedScheduler([sched.ExponentialLR(o, 0.99), sched.StepLR(o, 10, 0.5)]),
        "OneCycleLR(max_lr=0.1, total_steps=total_steps)": lambda o: sched.OneCycleLR(o, 0.1, total_steps=total),
        "OneCycleLR(max_lr=0.1, epochs=epochs, steps_per_epoch=steps_per_epoch)":
            lambda o: sched.OneCycleLR(o, 0.1, epochs=2, steps_per_epoch=total // 2),
        "transformers.get_cosine_schedule_with_warmup(num_warmup_steps=5, num_training_steps=total_steps)":
            lambda o: transformers_optimization.get_cosine_schedule_with_warmup(o, 5, total),
        "pytorch_optimizer.CosineAnnealingWarmupRestarts(first_cycle_steps=total_steps, max_lr=0.1, min_lr=0.001, "
        "warmup_steps=5)": lambda o: pytorch_optimizer.CosineAnnealingWarmupRestarts(
            o, first_cycle_steps=total, max_lr=0.1, min_lr=0.001, warmup_steps=5),
    }
    for text, make in cases.items():
        expected = by_hand(make, total)
        np.testing.assert_allclose(lrs(scheduler=text), expected, rtol=1e-12, atol=0, err_msg=text)
    timm = functools.partial(TimmStyleCosine, t_initial=50, warmup_t=5, t_in_epochs=False)
    np.testing.assert_allclose(lrs(scheduler=timm), by_hand(timm, total, epoch_steps=total // 2), rtol=1e-12, atol=0)
    timm_epochs = functools.partial(TimmStyleCosine, t_initial=3, warmup_t=1, t_in_epochs=True)
    expected = [timm_epochs(torch.optim.SGD([torch.zeros(1)], lr=0.01)).lr_at(e)[0] for e in (0, 1)]
    np.testing.assert_allclose(lrs(scheduler=timm_epochs), np.repeat(expected, total // 2), rtol=1e-12, atol=0)
    # The schedule-only run steps composites and timm-style schedulers the same way.
    first = next(iter(cases))
    np.testing.assert_allclose(lr_schedule(Spec(scheduler=first, **STEP), 40)["lr"][:, 0],
                               by_hand(cases[first], 40), rtol=1e-12, atol=0)
    np.testing.assert_allclose(lr_schedule(Spec(scheduler=timm, **STEP), 40)["lr"][:, 0], by_hand(timm, 40),
                               rtol=1e-12, atol=0)


def test_run_size_names_follow_overrides() -> None:
    spec = Spec(scheduler="OneCycleLR(max_lr=0.1, total_steps=total_steps)", **STEP)
    for batch_size, epochs in ((32, 2), (64, 2), (32, 3)):
        lr = train(spec.replace(batch_size=batch_size, epochs=epochs))["lr"][:, 0]
        assert lr[-1] == lr.min() < 1e-6  # OneCycleLR ends exactly on the run's last step
    assert build(spec.replace(batch_size=64)).scheduler.total_steps == 2 * 16
    # Optimizer arguments too: Ranger21 sizes its built-in warm-up/warm-down to the run.
    ranger = build(Spec(optimizer="pytorch_optimizer.Ranger21(lr=0.01, num_iterations=total_steps)", epochs=3))
    assert ranger.optimizer.start_warm_down == 3 * 32 - ranger.optimizer.num_warm_down_iterations


class Counting(nn.Module):
    """Counts forward passes: how often the loop evaluated the loss."""

    calls = 0

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, 10), nn.ReLU(), nn.Linear(10, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        Counting.calls += 1
        return self.net(x)


def forwards(optimizer, **keys) -> tuple[int, np.ndarray]:
    Counting.calls = 0
    trajectory = train(Spec(model=Counting, optimizer=optimizer, epochs=1, batch_size=500, **keys))
    return Counting.calls, trajectory["loss"]


def test_closure_optimizers_get_ready_gradients_and_others_pay_nothing() -> None:
    sam = functools.partial(pytorch_optimizer.SAM, base_optimizer=torch.optim.SGD, lr=0.05)
    calls, sam_loss = forwards(sam)
    assert calls == 4  # 2 steps: the loss and gradients first, then SAM's closure at the perturbed weights
    calls, sgd_loss = forwards("SGD(lr=0.05)")
    assert calls == 2 and sam_loss[1] != sgd_loss[1]
    calls, _ = forwards("pytorch_optimizer.Lion(lr=0.001)")  # step(closure=None): the closure is not re-run
    assert calls == 2
    assert forwards("pytorch_optimizer.Lion(lr=0.001)")[1].tolist() == forwards("pytorch_optimizer.Lion(lr=0.001)")[1].tolist()


def test_hessian_optimizer_without_create_graph_says_what_to_declare() -> None:
    from pytest_optcheck.errors import RunError

    with pytest.raises(RunError, match=r"while calling optimizer.step\(closure\) at step 0 of epoch 0\n.*"
                                       r"declare create_graph=True in the marker"):
        train(Spec(optimizer="pytorch_optimizer.SophiaH(lr=0.01)", epochs=1))


def test_prodigy_records_its_step_size_d_per_group() -> None:
    d = train(Spec(optimizer="prodigyopt.Prodigy(lr=1.0)", record=["loss", "lr", "d"], epochs=1))["d"]
    assert d.shape[1] == 1 and d[0, 0] == 1e-6 and d[-1, 0] > d[0, 0]  # d0, then grown by Prodigy


def test_param_groups_and_model_aware_factories_make_the_same_groups() -> None:
    own = build(Spec(optimizer="AdamW(lr=0.01, weight_decay=0.1)", param_groups={"bias": {"weight_decay": 0.0}}))
    assert [len(g["params"]) for g in own.optimizer.param_groups] == [2, 2]
    assert [g["weight_decay"] for g in own.optimizer.param_groups] == [0.1, 0.0]
    factory = "pytorch_optimizer.create_optimizer(optimizer_name='adamw', lr=0.01, weight_decay=0.1)"
    theirs = build(Spec(optimizer=factory)).optimizer
    assert sorted(g["weight_decay"] for g in theirs.param_groups) == [0.0, 0.1]


@pytest.mark.parametrize(
    ("keys", "fragment"),
    [
        ({"param_groups": ["bias"]}, "param_groups=['bias'] must be a non-empty dict of regex"),
        ({"param_groups": {"bias(": {}}}, "param_groups regex 'bias(' does not compile"),
        ({"param_groups": {"bias": 0.0}}, "param_groups['bias']=0.0 must be a dict of hyperparameter"),
        ({"param_groups": {"bias": {"params": []}}}, "param_groups['bias'] sets 'params'"),
        ({"create_graph": "yes"}, "create_graph='yes' must be True or False"),
        ({"scheduler": "OneCycleLR(max_lr=0.1, total_steps=n_steps)"},
         "argument `n_steps` is not a literal. Call syntax takes literals (numbers, strings, tuples, lists, dicts, "
         + "True/False/None), nested scheduler calls and the run-size names total_steps, steps_per_epoch, epochs"),
        ({"optimizer": "SGD(lr=ExponentialLR(gamma=0.5))"}, "the nested call ExponentialLR(gamma=0.5) is not allowed"),
        ({"model": "mlp(1, total_steps, 1)"}, "the run-size name 'total_steps' is only for optimizer and scheduler"),
        ({"scheduler": "SequentialLR(schedulers=[LinearLR(nope=1)], milestones=[])"},
         "LinearLR does not accept the keyword 'nope'"),
    ],
)
def test_bad_input_names_the_key_and_the_value(keys, fragment) -> None:
    with pytest.raises(SpecError) as info:
        build(Spec(**keys))
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("keys", "fragment"),
    [
        ({"param_groups": {"bias": {}, "nothing_here": {}}},
         "param_groups regex 'nothing_here' matches no parameter of the model"),
        ({"record": ["loss", "d"]}, "record names 'd', which is neither a recordable series"),
        ({"optimizer": "pytorch_optimizer.create_optimizer(optimizer_name='adamw')",
          "param_groups": {"bias": {}}}, "cannot be combined with optimizer="),
    ],
)
def test_bad_input_found_when_built_names_the_key(keys, fragment) -> None:
    with pytest.raises(SpecError) as info:
        build(Spec(**keys))
    assert fragment in str(info.value)


def warmup(epoch: int) -> int:
    return epoch


def test_a_test_file_callable_is_named_by_file_whatever_the_import_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """prepend imports tests/test_x.py as ``test_x``, importlib as ``tests.test_x``."""
    names = []
    for module_name in ("test_real_setups", "tests.test_real_setups"):
        monkeypatch.setitem(sys.modules, module_name, sys.modules[__name__])
        monkeypatch.setattr(warmup, "__module__", module_name)
        names.append(canonical_callable(warmup))
    assert names == ["test_real_setups.warmup", "test_real_setups.warmup"]
    assert canonical_callable(torch.optim.SGD) == "torch.optim.sgd.SGD"  # library modules keep their name


def test_third_party_versions_are_recorded_and_named_when_a_failure_coincides() -> None:
    from pytest_optcheck.checks.golden_check import judge
    from pytest_optcheck.golden.environment import environment
    from pytest_optcheck.golden.format import Golden, dumps

    sam = functools.partial(pytorch_optimizer.SAM, base_optimizer=torch.optim.SGD, lr=0.05)
    spec = Spec(optimizer=sam, scheduler="transformers.get_constant_schedule()", epochs=1)
    assert library_modules(spec) == ["pytorch_optimizer", "transformers"]
    env = environment(libraries=library_modules(spec))
    version = importlib.metadata.version
    assert env["libraries"] == {"pytorch_optimizer": version("pytorch_optimizer"), "transformers": version("transformers")}
    assert "libraries" not in environment(libraries=library_modules(Spec()))  # torch-only goldens keep their block
    trajectory = train(spec)
    old = Golden(train(spec.replace(optimizer=functools.partial(sam, lr=0.06))), None,
                 {**env, "libraries": {**env["libraries"], "pytorch_optimizer": "3.0.0"}}, "t", None)
    message = judge(Golden(trajectory, None, env, "t", None), dumps(old)).message
    assert f"pytorch_optimizer 3.0.0 -> {version('pytorch_optimizer')}" in message
    assert "check its release notes" in message
