"""Unit tests of name resolution: models, problems, losses, optimizers, schedulers."""

from __future__ import annotations

import functools
import inspect
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from pytest_optcheck.declare import catalog
from pytest_optcheck.declare.catalog import (
    loss_names,
    model_names,
    optimizer_names,
    problem_names,
    register_loss,
    register_model,
    register_optimizer,
    register_problem,
    register_scheduler,
    resolve_loss,
    resolve_model,
    resolve_optimizer,
    resolve_problem,
    resolve_scheduler,
    scheduler_names,
)
from pytest_optcheck.declare.problems import Problem
from pytest_optcheck.errors import SpecError

SEED_OPTIMIZERS = ["SGD", "Adagrad", "Adadelta", "RMSprop", "Adam", "Adamax", "AdamW", "LBFGS"]
SEED_SCHEDULERS = ["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "ReduceLROnPlateau", "LambdaLR"]


def _torch_classes(module: Any, *bases: type) -> set[str]:
    """An independent discovery, to check the catalog against."""
    return {
        name
        for name, obj in vars(module).items()
        if inspect.isclass(obj) and issubclass(obj, bases) and not name.startswith("_") and obj not in bases
    }


TORCH_OPTIMIZERS = sorted(_torch_classes(torch.optim, torch.optim.Optimizer))
TORCH_SCHEDULERS = sorted(
    _torch_classes(torch.optim.lr_scheduler, torch.optim.lr_scheduler.LRScheduler,
                   torch.optim.lr_scheduler.ReduceLROnPlateau)
    - {"LRScheduler"}
)

#: Literal arguments that construct a scheduler from its name (those that need a callable
#: or other schedulers are covered by the callable tests).
SCHEDULER_ARGS = {
    "StepLR": "StepLR(step_size=4, gamma=0.5)",
    "MultiStepLR": "MultiStepLR(milestones=[8, 24, 28], gamma=0.5)",
    "ExponentialLR": "ExponentialLR(gamma=0.5)",
    "CosineAnnealingLR": "CosineAnnealingLR(T_max=32, eta_min=1e-4)",
    "CosineAnnealingWarmRestarts": "CosineAnnealingWarmRestarts(T_0=4)",
    "CyclicLR": "CyclicLR(base_lr=0.01, max_lr=0.1)",
    "OneCycleLR": "OneCycleLR(max_lr=0.1, total_steps=10)",
}


def _params() -> list[nn.Parameter]:
    return [nn.Parameter(torch.ones(2, 2))]  # 2-D so Muon accepts it


def _optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD(_params(), lr=0.1, momentum=0.9)


def _message(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    return str(excinfo.value)


# -- discovery ------------------------------------------------------------------------


def test_optimizer_names_are_discovered_from_torch() -> None:
    assert set(TORCH_OPTIMIZERS) <= set(optimizer_names())
    assert set(SEED_OPTIMIZERS) <= set(optimizer_names())
    assert "Optimizer" not in optimizer_names()


def test_scheduler_names_are_discovered_from_torch() -> None:
    assert set(TORCH_SCHEDULERS) <= set(scheduler_names())
    assert set(SEED_SCHEDULERS) <= set(scheduler_names())
    assert "LRScheduler" not in scheduler_names() and "_LRScheduler" not in scheduler_names()


def test_builtin_names() -> None:
    assert {"mlp", "linear", "point"} <= set(model_names())
    assert "Linear" in model_names()
    assert set(problem_names()) >= {"quadratic", "rosenbrock", "sparse_linear", "blobs"}
    expected = {"mse", "l1", "smooth_l1", "huber", "cross_entropy", "nll", "bce_with_logits", "value"}
    assert expected <= set(loss_names())
    assert "MSELoss" in loss_names()


@pytest.mark.parametrize("name", TORCH_OPTIMIZERS)
def test_every_torch_optimizer_resolves_and_builds(name: str) -> None:
    optimizer = resolve_optimizer(name)(_params())
    assert type(optimizer) is getattr(torch.optim, name)


@pytest.mark.parametrize("name", TORCH_SCHEDULERS)
def test_every_torch_scheduler_resolves(name: str) -> None:
    cls = getattr(torch.optim.lr_scheduler, name)
    required = [
        p.name for p in inspect.signature(cls).parameters.values()
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "optimizer"
    ]
    if required:  # the bare name must say what is missing, before building anything
        with pytest.raises(SpecError) as excinfo:
            resolve_scheduler(name)
        message = _message(excinfo)
        assert f"scheduler={name!r}" in message
        assert "missing a required argument" in message and required[0] in message
    else:
        builder = resolve_scheduler(name)
        assert builder is not None and type(builder(_optimizer())) is cls
    if name in SCHEDULER_ARGS:
        builder = resolve_scheduler(SCHEDULER_ARGS[name])
        assert builder is not None and type(builder(_optimizer())) is cls


def test_seed_scheduler_arguments_reach_the_scheduler() -> None:
    builder = resolve_scheduler("StepLR(step_size=4, gamma=0.5)")
    assert builder is not None
    scheduler = builder(_optimizer())
    assert scheduler.step_size == 4 and scheduler.gamma == 0.5


def test_optimizer_call_syntax_arguments_reach_the_optimizer() -> None:
    optimizer = resolve_optimizer("SGD(lr=0.01, momentum=0.9)")(_params())
    assert optimizer.param_groups[0]["lr"] == 0.01
    assert optimizer.param_groups[0]["momentum"] == 0.9
    adam = resolve_optimizer("Adam(lr=0.1, betas=(0.9, 0.99))")(_params())
    assert adam.param_groups[0]["betas"] == (0.9, 0.99)


def test_optimizer_accepts_param_groups() -> None:
    a, b = nn.Parameter(torch.ones(1)), nn.Parameter(torch.ones(1))
    optimizer = resolve_optimizer("SGD(lr=0.1)")([{"params": [a]}, {"params": [b], "lr": 0.5}])
    assert [g["lr"] for g in optimizer.param_groups] == [0.1, 0.5]


# -- callables ---------------------------------------------------------------------------


def _adam_function(params: Any) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=0.123)


@pytest.mark.parametrize(
    ("value", "cls", "lr"),
    [
        (torch.optim.Adam, torch.optim.Adam, 0.001),
        (_adam_function, torch.optim.Adam, 0.123),
        (functools.partial(torch.optim.SGD, lr=0.5, momentum=0.9), torch.optim.SGD, 0.5),
    ],
    ids=["class", "function", "partial"],
)
def test_optimizer_callables(value: Any, cls: type, lr: float) -> None:
    optimizer = resolve_optimizer(value)(_params())
    assert type(optimizer) is cls and optimizer.param_groups[0]["lr"] == lr


def _warmup_then_decay(optimizer: torch.optim.Optimizer) -> Any:
    s = torch.optim.lr_scheduler
    return s.SequentialLR(optimizer, [s.LinearLR(optimizer, 0.5, total_iters=2), s.ExponentialLR(optimizer, 0.9)],
                          milestones=[2])


@pytest.mark.parametrize(
    ("value", "cls"),
    [
        (torch.optim.lr_scheduler.ReduceLROnPlateau, torch.optim.lr_scheduler.ReduceLROnPlateau),
        (_warmup_then_decay, torch.optim.lr_scheduler.SequentialLR),
        (functools.partial(torch.optim.lr_scheduler.LambdaLR, lr_lambda=lambda e: 0.95**e),
         torch.optim.lr_scheduler.LambdaLR),
        (functools.partial(torch.optim.lr_scheduler.MultiplicativeLR, lr_lambda=lambda e: 0.5),
         torch.optim.lr_scheduler.MultiplicativeLR),
    ],
    ids=["class", "function", "partial-lambda", "partial-multiplicative"],
)
def test_scheduler_callables(value: Any, cls: type) -> None:
    builder = resolve_scheduler(value)
    assert builder is not None and type(builder(_optimizer())) is cls


def test_chained_scheduler_gets_the_optimizer_by_keyword() -> None:
    """ChainedScheduler(schedulers, optimizer=None): the optimizer must not land in ``schedulers``."""
    opt = _optimizer()
    inner = [torch.optim.lr_scheduler.ExponentialLR(opt, 0.5)]
    builder = resolve_scheduler(functools.partial(torch.optim.lr_scheduler.ChainedScheduler, inner))
    assert builder is not None
    assert builder(opt).optimizer is opt


def test_no_scheduler() -> None:
    assert resolve_scheduler(None) is None


class _NoArgNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(3, 1)


def _net_function() -> nn.Module:
    return nn.Linear(3, 1)


@pytest.mark.parametrize(
    "value", [_NoArgNet, _net_function, functools.partial(nn.Linear, 3, 1)], ids=["class", "function", "partial"]
)
def test_model_callables(value: Any) -> None:
    model = resolve_model(value)()
    assert isinstance(model, nn.Module)
    assert sum(p.numel() for p in model.parameters()) == 4


def test_model_names_in_call_syntax() -> None:
    assert isinstance(resolve_model("Linear(1, 1)")(), nn.Linear)
    linear = resolve_model("linear(5, 2)")()
    assert isinstance(linear, nn.Linear) and (linear.in_features, linear.out_features) == (5, 2)
    point = resolve_model("point(0.5, -0.25)")()
    assert (point.x.item(), point.y.item()) == (0.5, -0.25)
    assert isinstance(resolve_model("mlp(2, 8, 8, 3, activation='tanh')")(), nn.Module)


def _xy_problem() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.linspace(0, 1, 10).unsqueeze(1)
    return x, 2 * x


def _seeded_problem(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(6, 2, generator=generator)
    return x, x.sum(1, keepdim=True)


class _ScalarDataset(torch.utils.data.Dataset):
    """Items (scalar x, scalar y): stacked into (n, 1) columns."""

    def __len__(self) -> int:
        return 5

    def __getitem__(self, i: int) -> tuple[float, float]:
        return float(i), float(i) ** 2


def _classification_dataset() -> torch.utils.data.Dataset:
    x = torch.randn(9, 4)
    return torch.utils.data.TensorDataset(x, torch.arange(9) % 3)


def _generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def test_problem_callable_returning_pair() -> None:
    problem = resolve_problem(_xy_problem)(_generator(), torch.float64)
    assert isinstance(problem, Problem)
    assert problem.inputs.shape == (10, 1) and problem.inputs.dtype == torch.float64
    assert torch.equal(problem.targets, 2 * problem.inputs)
    assert problem.loss == "mse" and problem.model == "mlp(1, 10, 1)"


def test_problem_callable_receives_the_generator_when_it_asks() -> None:
    first = resolve_problem(_seeded_problem)(_generator(), torch.float32)
    second = resolve_problem(_seeded_problem)(_generator(), torch.float32)
    assert torch.equal(first.inputs, second.inputs)
    assert first.model == "mlp(2, 10, 1)"


def test_problem_dataset_class_is_stacked() -> None:
    problem = resolve_problem(_ScalarDataset)(_generator(), torch.float32)
    assert problem.inputs.shape == (5, 1) and problem.targets.shape == (5, 1)
    assert problem.targets[:, 0].tolist() == [0.0, 1.0, 4.0, 9.0, 16.0]
    assert problem.loss == "mse"


def test_problem_classification_dataset() -> None:
    problem = resolve_problem(_classification_dataset)(_generator(), torch.float32)
    assert problem.targets.dtype == torch.int64 and problem.targets.shape == (9,)
    assert problem.loss == "cross_entropy" and problem.model == "mlp(4, 10, 3)"


def test_problem_partial_and_names() -> None:
    problem = resolve_problem(functools.partial(catalog._builtin.quadratic, 50))(_generator(), torch.float32)
    assert problem.inputs.shape == (50, 1)
    assert resolve_problem("quadratic(n=20)")(_generator(), torch.float32).inputs.shape == (20, 1)


def _l1_function(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target).abs().mean()


def test_losses() -> None:
    pred, target = torch.tensor([[1.0], [3.0]]), torch.tensor([[0.0], [0.0]])
    assert resolve_loss("mse")(pred, target).item() == 5.0
    assert resolve_loss("MSELoss(reduction='sum')")(pred, target).item() == 10.0
    assert resolve_loss("l1")(pred, target).item() == 2.0
    assert resolve_loss("value")(pred, target).item() == 2.0
    assert resolve_loss(_l1_function)(pred, target).item() == 2.0
    assert resolve_loss(nn.L1Loss)(pred, target).item() == 2.0
    assert resolve_loss(functools.partial(nn.MSELoss, reduction="sum"))(pred, target).item() == 10.0
    logits = torch.tensor([[10.0, -10.0]])
    assert resolve_loss("cross_entropy")(logits, torch.tensor([0])).item() < 1e-6
    for name in ("smooth_l1", "huber", "bce_with_logits"):
        assert resolve_loss(name)(pred, target).ndim == 0
    assert resolve_loss("nll")(torch.log_softmax(logits, 1), torch.tensor([0])).item() < 1e-6


def test_loss_none_is_the_problems() -> None:
    problem = Problem("p", torch.zeros(2, 1), torch.zeros(2, 1), loss="MSELoss(reduction='sum')")
    loss = resolve_loss(None, problem)
    assert isinstance(loss, nn.MSELoss) and loss.reduction == "sum"


# -- dotted names and registration ---------------------------------------------------------


def test_dotted_torch_name() -> None:
    assert type(resolve_optimizer("torch.optim.Adam(lr=0.1)")(_params())) is torch.optim.Adam


def test_dotted_third_party_optimizer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "optcheck_fake_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "optim.py").write_text(textwrap.dedent("""
        import torch

        class Lion(torch.optim.SGD):
            def __init__(self, params, lr=1e-4, betas=(0.9, 0.99)):
                super().__init__(params, lr=lr)
                self.betas = betas
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    optimizer = resolve_optimizer("optcheck_fake_pkg.optim.Lion(lr=1e-4, betas=(0.95, 0.98))")(_params())
    assert type(optimizer).__name__ == "Lion" and optimizer.betas == (0.95, 0.98)
    with pytest.raises(SpecError) as excinfo:
        resolve_optimizer("optcheck_fake_pkg.optim.Lion(beta=0.9)")
    assert "betas" in _message(excinfo) and "'beta'" in _message(excinfo)
    with pytest.raises(SpecError) as excinfo:
        resolve_optimizer("optcheck_fake_pkg.optim.Lino")
    assert "Lion" in _message(excinfo)


def test_dotted_name_that_fails_to_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "optcheck_broken_mod.py").write_text("import not_a_real_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(SpecError) as excinfo:
        resolve_optimizer("optcheck_broken_mod.Opt")
    message = _message(excinfo)
    assert "optcheck_broken_mod" in message and "not_a_real_dependency_xyz" in message


def test_registered_names_resolve_and_come_first() -> None:
    @register_optimizer("my_sgd")
    def my_sgd(params: Any, lr: float = 0.3) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, lr=lr)

    @register_scheduler("halve")
    def halve(optimizer: torch.optim.Optimizer, every: int = 1) -> Any:
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=every, gamma=0.5)

    @register_model("tiny")
    def tiny(width: int = 2) -> nn.Module:
        return nn.Linear(1, width)

    @register_loss("sq")
    def sq() -> Any:
        return lambda pred, target: ((pred - target) ** 2).sum()

    @register_problem("line")
    def line(n: int = 4, *, generator: torch.Generator, dtype: torch.dtype) -> Problem:
        x = torch.rand(n, 1, generator=generator, dtype=dtype)
        return Problem("line", x, x, model="tiny(1)")

    assert optimizer_names()[0] == "my_sgd" and scheduler_names()[0] == "halve"
    assert resolve_optimizer("my_sgd(lr=0.2)")(_params()).param_groups[0]["lr"] == 0.2
    builder = resolve_scheduler("halve(every=3)")
    assert builder is not None and builder(_optimizer()).step_size == 3
    assert resolve_model("tiny(4)")().out_features == 4
    assert resolve_loss("sq")(torch.ones(2), torch.zeros(2)).item() == 2.0
    assert resolve_problem("line(n=7)")(_generator(), torch.float64).inputs.shape == (7, 1)
    with pytest.raises(SpecError) as excinfo:
        resolve_optimizer("my_sgd(momentum=0.9)")
    assert "momentum" in _message(excinfo) and "Accepted keywords: lr" in _message(excinfo)


def test_registered_name_shadows_torch() -> None:
    register_optimizer("Adam")(functools.partial(torch.optim.SGD, lr=0.7))
    assert type(resolve_optimizer("Adam")(_params())) is torch.optim.SGD


def test_register_rejects_a_name_unusable_in_call_syntax() -> None:
    with pytest.raises(ValueError, match="identifier"):
        register_optimizer("my-opt")


def test_resolution_builds_nothing() -> None:
    built: list[int] = []

    class Counting(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            built.append(1)

    builder = resolve_model(Counting)
    assert built == []
    builder()
    assert built == [1]


# -- errors -------------------------------------------------------------------------------


def test_unknown_optimizer_suggests() -> None:
    with pytest.raises(SpecError) as excinfo:
        resolve_optimizer("Adamm(lr=0.1)")
    message = _message(excinfo)
    assert message.startswith("optcheck: unknown optimizer 'Adamm' in optimizer='Adamm(lr=0.1)'.")
    assert "Did you mean: Adam" in message and "Adamax" in message


def test_unknown_optimizer_is_case_tolerant_in_suggestions() -> None:
    with pytest.raises(SpecError, match="Did you mean: .*SGD"):
        resolve_optimizer("sgd")


def test_rejected_keyword_is_found_before_construction() -> None:
    with pytest.raises(SpecError) as excinfo:
        resolve_optimizer("Adam(lr=0.1, beta=0.9)")
    message = _message(excinfo)
    assert "optimizer='Adam(lr=0.1, beta=0.9)'" in message and "'beta'" in message
    assert "Did you mean: betas?" in message
    assert "Accepted keywords: lr, betas" in message


def test_too_many_positional_arguments() -> None:
    with pytest.raises(SpecError) as excinfo:
        resolve_optimizer("SGD(0.1, 0.9, 0, 0, False, 1, 2, 3, 4, 5, 6)")
    assert "optimizer=" in _message(excinfo) and "too many positional arguments" in _message(excinfo)


def test_construction_error_quotes_torch() -> None:
    builder = resolve_optimizer("Adam(lr=-1)")
    with pytest.raises(SpecError) as excinfo:
        builder(_params())
    message = _message(excinfo)
    assert "optimizer='Adam(lr=-1)'" in message and "Invalid learning rate: -1" in message
    assert isinstance(excinfo.value.__cause__, ValueError)


def test_wrong_type_classes() -> None:
    with pytest.raises(SpecError, match=r"optimizer=.*Linear.*not a torch.optim.Optimizer"):
        resolve_optimizer(nn.Linear)
    with pytest.raises(SpecError, match=r"optimizer='torch.nn.Linear'.*not a torch.optim.Optimizer"):
        resolve_optimizer("torch.nn.Linear")
    with pytest.raises(SpecError, match=r"scheduler=.*SGD.*not an LR scheduler"):
        resolve_scheduler(torch.optim.SGD)
    with pytest.raises(SpecError, match=r"model=.*SGD.*not a torch.nn.Module"):
        resolve_model(torch.optim.SGD)


def test_wrong_type_results() -> None:
    with pytest.raises(SpecError, match=r"optimizer=.*returned int, not a torch.optim.Optimizer"):
        resolve_optimizer(lambda params: 3)(_params())
    with pytest.raises(SpecError, match=r"model=.*returned str, not a torch.nn.Module"):
        resolve_model(lambda: "net")()
    with pytest.raises(SpecError, match=r"scheduler=.*returned NoneType"):
        resolve_scheduler(lambda opt: None)(_optimizer())  # type: ignore[misc]
    with pytest.raises(SpecError, match=r"problem=.*returned list"):
        resolve_problem(lambda: [1, 2])(_generator(), torch.float32)


def test_callable_with_wrong_arity() -> None:
    with pytest.raises(SpecError) as excinfo:
        resolve_optimizer(lambda: None)
    assert "optimizer=" in _message(excinfo) and "too many positional arguments" in _message(excinfo)
    with pytest.raises(SpecError) as excinfo:
        resolve_model(nn.Linear)  # a class is called with no arguments
    assert "model='torch.nn.modules.linear.Linear'" in _message(excinfo)
    assert "in_features" in _message(excinfo)


def test_scheduler_missing_argument() -> None:
    with pytest.raises(SpecError) as excinfo:
        resolve_scheduler("StepLR(gamma=0.5)")
    message = _message(excinfo)
    assert "scheduler='StepLR(gamma=0.5)'" in message
    assert "missing a required argument: 'step_size'" in message
    assert "StepLR(step_size, gamma=0.1" in message


@pytest.mark.parametrize(
    ("resolve", "value", "expected"),
    [
        (resolve_scheduler, "StepLRR(step_size=3)", ["unknown scheduler 'StepLRR'", "scheduler='StepLRR(step_size=3)'",
                                                     "Did you mean: StepLR"]),
        (resolve_model, "mpl(1, 10, 1)", ["unknown model 'mpl'", "model='mpl(1, 10, 1)'", "Did you mean: mlp"]),
        (resolve_problem, "quadratc", ["unknown problem 'quadratc'", "problem='quadratc'", "Did you mean: quadratic"]),
        (resolve_loss, "crossentropy", ["unknown loss 'crossentropy'", "loss='crossentropy'",
                                        "Did you mean: cross_entropy"]),
        (resolve_optimizer, "nopkg_xyz.optim.Lion", ["optimizer='nopkg_xyz.optim.Lion'", "nopkg_xyz"]),
    ],
)
def test_unknown_names(resolve: Any, value: str, expected: list[str]) -> None:
    with pytest.raises(SpecError) as excinfo:
        resolve(value)
    for part in expected:
        assert part in _message(excinfo)


def test_problem_argument_errors() -> None:
    with pytest.raises(SpecError) as excinfo:
        resolve_problem("quadratic(noize=3)")
    message = _message(excinfo)
    assert "problem='quadratic(noize=3)'" in message and "Did you mean: noise?" in message
    assert "Accepted keywords: n, noise." in message  # generator/dtype are the builder's
    with pytest.raises(SpecError, match=r"could not build problem='sparse_linear\(n_relevant=999\)'.*exceed"):
        resolve_problem("sparse_linear(n_relevant=999)")(_generator(), torch.float32)


def test_model_construction_error_names_key() -> None:
    with pytest.raises(SpecError) as excinfo:
        resolve_model("mlp(1, 10, 1, activation='rel')")()
    message = _message(excinfo)
    assert "model=\"mlp(1, 10, 1, activation='rel')\"" in message and "Did you mean: relu" in message


def test_non_literal_and_bad_type_values() -> None:
    with pytest.raises(SpecError, match="not a literal"):
        resolve_optimizer("SGD(lr=LR)")
    with pytest.raises(SpecError, match="must be a name in call syntax"):
        resolve_optimizer(3)  # type: ignore[arg-type]
