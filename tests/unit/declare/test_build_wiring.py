"""What ``build`` hands the optimizer (parameters, declared param groups, the model for a
model-aware factory), the record names it checks against the param groups, the device and dtype
refusals, and the seed stream's exact value. Tiny problems (8 samples): each build is a few ms."""

from __future__ import annotations

import functools
from typing import Any

import pytest
import torch
from torch import nn

from pytest_optcheck.declare.build import (
    build,
    data_seed,
    derive_seed,
    param_groups,
    resolve_device,
    torch_dtype,
)
from pytest_optcheck.declare.problems import Problem
from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.errors import OptcheckError, SpecError

SMALL = "quadratic(n=8)"


def _names(model: nn.Module, group: dict[str, Any]) -> list[str]:
    ids = {id(p): n for n, p in model.named_parameters()}
    return [ids[id(p)] for p in group["params"]]


def test_the_data_seed_is_a_fixed_hash_of_the_seed() -> None:
    # Golden files were recorded with these streams: a change would move every golden's data.
    assert data_seed(0) == derive_seed(0, "data") == 4226415156969488331
    assert derive_seed(0, "shuffle") != data_seed(0)


def test_declared_param_groups_follow_the_rest_group() -> None:
    built = build(Spec(problem=SMALL, optimizer="SGD(lr=0.1)", param_groups={"hidden": {"lr": 0.5}}))
    groups = built.optimizer.param_groups
    assert [_names(built.model, g) for g in groups] == [["predict.weight", "predict.bias"],
                                                        ["hidden.weight", "hidden.bias"]]
    assert [g["lr"] for g in groups] == [0.1, 0.5]


def test_a_parameter_joins_the_first_regex_that_matches_and_no_rest_group_when_all_match() -> None:
    model = nn.Sequential(nn.Linear(1, 1), nn.Linear(1, 1))
    groups = param_groups(model, {"weight": {"lr": 1.0}, r"\.": {"lr": 2.0}})
    assert [_names(model, g) for g in groups] == [["0.weight", "1.weight"], ["0.bias", "1.bias"]]
    assert [g["lr"] for g in groups] == [1.0, 2.0]
    assert groups[0].keys() == {"params", "lr"}


def test_a_regex_that_matches_nothing_names_the_parameters() -> None:
    model = nn.Sequential(nn.Linear(1, 1))
    with pytest.raises(SpecError) as info:
        param_groups(model, {"0": {"lr": 1.0}, "weight": {}})
    assert str(info.value) == (
        "optcheck: param_groups regex 'weight' matches no parameter of the model (an earlier regex may have "
        "taken them). Parameter names: 0.weight, 0.bias.")


def test_without_param_groups_the_optimizer_gets_every_parameter_in_one_group() -> None:
    built = build(Spec(problem=SMALL, optimizer="SGD(lr=0.1)"))
    assert len(built.optimizer.param_groups) == 1
    assert _names(built.model, built.optimizer.param_groups[0]) == [
        "hidden.weight", "hidden.bias", "predict.weight", "predict.bias"]


def _model_aware(model: nn.Module, lr: float = 0.1) -> torch.optim.Optimizer:
    return torch.optim.SGD([{"params": [model.hidden.weight]}, {"params": [model.hidden.bias]}], lr=lr)


def test_a_model_aware_factory_receives_the_model() -> None:
    built = build(Spec(problem=SMALL, optimizer=_model_aware))
    assert [_names(built.model, g) for g in built.optimizer.param_groups] == [["hidden.weight"], ["hidden.bias"]]


def test_a_model_aware_factory_refuses_param_groups() -> None:
    with pytest.raises(SpecError) as info:
        build(Spec(problem=SMALL, optimizer=_model_aware, param_groups={"hidden": {"lr": 0.5}}))
    message = str(info.value)
    assert message.startswith("optcheck: param_groups={'hidden': {'lr': 0.5}} cannot be combined with optimizer=")
    assert message.endswith(": that factory receives the model and makes its own parameter groups. "
                            "Drop one of the two.")


def test_prepare_runs_on_the_model_before_the_optimizer_is_made() -> None:
    seen: list[nn.Module] = []

    def prepare(model: nn.Module) -> None:
        seen.append(model)
        model.predict.weight.requires_grad_(False)

    built = build(Spec(problem=SMALL, optimizer="SGD(lr=0.1)"), prepare=prepare)
    assert seen == [built.model]


@pytest.mark.parametrize("record", [("loss", "dampening"), ("weight_decay",), ("lr", "momentum")])
def test_record_accepts_series_and_numeric_param_group_keys(record: tuple[str, ...]) -> None:
    build(Spec(problem=SMALL, optimizer="SGD(lr=0.1)", record=record))


@pytest.mark.parametrize("name", ["nesterov", "zz"])  # a bool key, a missing key
def test_record_refuses_a_name_that_is_no_numeric_param_group_key(name: str) -> None:
    with pytest.raises(SpecError) as info:
        build(Spec(problem=SMALL, optimizer="SGD(lr=0.1)", record=("loss", name)))
    assert str(info.value) == (
        f"optcheck: record names {name!r}, which is neither a recordable series (loss, lr, momentum, grad_norm, "
        "param_norm, update_norm, sparsity) nor a numeric key of the param groups of SGD "
        "(dampening, lr, momentum, weight_decay).")


def test_record_refuses_a_key_that_only_some_param_groups_have() -> None:
    def partial(model: nn.Module) -> torch.optim.Optimizer:
        opt = torch.optim.SGD([{"params": [model.hidden.weight], "extra": 1.0},
                               {"params": [model.hidden.bias]}], lr=0.1)
        return opt

    with pytest.raises(SpecError, match=r"record names 'extra', which is neither.*\(dampening, extra, lr"):
        build(Spec(problem=SMALL, optimizer=partial, record=("extra",)))


def test_a_record_typo_of_a_key_is_suggested() -> None:
    with pytest.raises(SpecError, match=r"\(dampening, lr, momentum, weight_decay\)\. Did you mean: weight_decay\?$"):
        build(Spec(problem=SMALL, optimizer="SGD(lr=0.1)", record=("weight_decy",)))


def test_dtype_refusal_lists_the_dtypes() -> None:
    with pytest.raises(SpecError) as info:
        torch_dtype(None)  # type: ignore[arg-type]
    assert str(info.value) == "optcheck: dtype=None is not one of float32, float64, float16, bfloat16."
    assert torch_dtype("float32") is torch.float32 and torch_dtype("float16") is torch.float16


def test_a_built_run_carries_its_device_and_dtype() -> None:
    built = build(Spec(problem=SMALL, dtype="float64"), torch.device("cpu"))
    assert built.device == torch.device("cpu") and built.dtype is torch.float64
    assert resolve_device("cpu") == torch.device("cpu")


def test_a_bad_device_names_it_and_torch_s_reason() -> None:
    with pytest.raises(OptcheckError) as info:
        resolve_device("gpu0")
    assert str(info.value).startswith("optcheck: device 'gpu0' is not a torch device (")
    with pytest.raises(OptcheckError, match=r"^optcheck: device 3.5 is not a torch device \("):
        resolve_device(3.5)  # type: ignore[arg-type]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_unavailable_says_what_to_do() -> None:
    with pytest.raises(OptcheckError) as info:
        resolve_device("cuda:1")
    assert str(info.value) == (
        f"optcheck: device 'cuda:1' was requested but CUDA is not available here (torch {torch.__version__}, "
        f"CUDA build: {torch.version.cuda or 'none'}). Run with --optcheck-device=cpu, or on a machine with a GPU.")


def test_model_data_and_loss_go_to_the_device() -> None:
    # torch's "meta" device stands for any other device: tensors there have shapes, no data.
    loss = functools.partial(nn.CrossEntropyLoss, weight=torch.ones(3))
    built = build(Spec(problem="blobs(n_samples=6)", loss=loss), "meta")
    assert built.device == torch.device("meta")
    assert built.problem.inputs.is_meta and built.problem.targets.is_meta
    assert all(p.is_meta for p in built.model.parameters()) and built.loss_fn.weight.is_meta


def test_the_problem_gets_the_data_generator_and_the_dtype_and_its_data_is_cast() -> None:
    seen: list[tuple[torch.Generator, torch.dtype]] = []

    def own(generator: torch.Generator, dtype: torch.dtype) -> Problem:
        seen.append((generator, dtype))
        x = torch.rand(4, 1, generator=generator)  # float32, whatever dtype says
        return Problem("own", x, 2 * x)

    built = build(Spec(problem=own, seed=3, dtype="float64"))
    (generator, dtype), = seen
    assert isinstance(generator, torch.Generator) and generator.initial_seed() == data_seed(3)
    assert dtype is torch.float64
    assert built.problem.inputs.dtype == built.problem.targets.dtype == torch.float64


def test_run_size_names_take_the_run_s_sizes() -> None:
    # 8 samples in batches of 3: 3 steps an epoch, 2 epochs.
    built = build(Spec(problem=SMALL, batch_size=3, epochs=2, optimizer="LBFGS(lr=0.1, max_iter=steps_per_epoch)",
                       scheduler="MultiStepLR(milestones=[total_steps], gamma=0.5)"))
    assert built.optimizer.param_groups[0]["max_iter"] == 3
    assert list(built.scheduler.milestones) == [6]


def test_a_bad_scheduler_fails_before_any_data_is_made() -> None:
    made: list[int] = []

    def own() -> tuple[torch.Tensor, torch.Tensor]:
        made.append(1)
        return torch.zeros(2, 1), torch.zeros(2, 1)

    with pytest.raises(SpecError, match="unknown scheduler 'StepLRR'"):
        build(Spec(problem=own, scheduler="StepLRR(step_size=1)"))
    assert made == []


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """CUDA's answers on a 2-GPU machine whose current device is 1 (resolve_device only asks)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)


@pytest.mark.usefixtures("two_gpus")
def test_cuda_without_an_index_is_the_current_device() -> None:
    assert resolve_device("cuda") == torch.device("cuda", 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    assert resolve_device(torch.device("cuda", 1)) == torch.device("cuda", 1)


@pytest.mark.usefixtures("two_gpus")
def test_a_cuda_index_past_the_visible_devices_is_refused() -> None:
    with pytest.raises(OptcheckError) as info:
        resolve_device("cuda:2")
    assert str(info.value) == "optcheck: device 'cuda:2' does not exist: 2 CUDA device(s) visible."
