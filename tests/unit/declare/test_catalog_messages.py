"""The catalog's refusals word for word (registration, unknown names with the names it knows,
dotted paths, nested calls and run-size names where they do not belong, problem callables that
return the wrong thing), and the small facts a user reads: a builder's repr, its nested builders,
the default model fitted to a user's data, the third-party libraries a spec uses."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

from pytest_optcheck.declare import catalog
from pytest_optcheck.declare.catalog import (
    Builder,
    as_problem,
    library_modules,
    register_model,
    register_optimizer,
    resolve_loss,
    resolve_model,
    resolve_optimizer,
    resolve_problem,
    resolve_scheduler,
    validate_names,
)
from pytest_optcheck.declare.problems import Problem
from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.errors import SpecError


def _params() -> list[nn.Parameter]:
    return [nn.Parameter(torch.ones(1))]


def _message(call: Any, error: type[Exception] = SpecError) -> str:
    with pytest.raises(error) as info:
        call()
    return str(info.value)


def test_registration_refusals() -> None:
    assert _message(lambda: register_model(3), ValueError) == (
        "register_model(3): the name must be an identifier usable in call syntax")
    assert _message(lambda: register_optimizer("a.b-c"), ValueError) == (
        "register_optimizer('a.b-c'): the name must be an identifier usable in call syntax")
    assert _message(lambda: register_optimizer("a.b")(3), TypeError) == (
        "register_optimizer('a.b') decorates a callable, got 3")
    assert "a.b" not in catalog._REGISTRIES["optimizer"]


def test_a_dotted_registered_name_resolves() -> None:
    register_model("my.net")(lambda: nn.Identity())
    assert isinstance(resolve_model("my.net")(), nn.Identity)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: resolve_model("nosuch"),
     ("optcheck: unknown model 'nosuch' in model='nosuch'. Known models: mlp, linear, point, or any torch.nn module "
     "by name; or give a dotted path ('package.module.Name') or a callable.")),
    (lambda: resolve_loss("nosuch"),
     ("optcheck: unknown loss 'nosuch' in loss='nosuch'. Known losses: mse, l1, smooth_l1, huber, cross_entropy, nll, "
     "bce_with_logits, value, or any torch.nn loss class by name; or give a dotted path ('package.module.Name') or a "
     "callable.")),
    (lambda: resolve_problem("nosuch"),
     ("optcheck: unknown problem 'nosuch' in problem='nosuch'. Known problems: quadratic, rosenbrock, sparse_linear, "
     "blobs, sine; or give a dotted path ('package.module.Name') or a callable.")),
    (lambda: resolve_optimizer("torch.optim.Nope"),
     "optcheck: cannot find 'Nope' in 'torch.optim' for optimizer='torch.optim.Nope'."),
    (lambda: resolve_optimizer("torch.optim.lr_scheduler.Nope.x"),
     "optcheck: cannot find 'Nope' in 'torch.optim.lr_scheduler' for optimizer='torch.optim.lr_scheduler.Nope.x'."),
    (lambda: resolve_optimizer("torch.optim.SDG"),
     "optcheck: cannot find 'SDG' in 'torch.optim' for optimizer='torch.optim.SDG'. Did you mean: SGD?"),
    (lambda: resolve_optimizer("nopkg_xyz.optim.Lion"),
     ("optcheck: unknown optimizer 'nopkg_xyz.optim.Lion' in optimizer='nopkg_xyz.optim.Lion': no module 'nopkg_xyz' "
     "can be imported.")),
    (lambda: resolve_model("mlp(1, 2, StepLR(3))"),
     ("optcheck: model='mlp(1, 2, StepLR(3))': the nested call StepLR(3) is not allowed here; only scheduler calls "
     "nest (SequentialLR(schedulers=[LinearLR(...), CosineAnnealingLR(...)])).")),
    (lambda: resolve_model("mlp(1, total_steps)"),
     ("optcheck: model='mlp(1, total_steps)': the run-size name 'total_steps' is only for optimizer and scheduler "
     "arguments.")),
    (lambda: resolve_optimizer("SGD(lr=0.1, momentum=total_steps)")(_params()),
     ("optcheck: optimizer='SGD(lr=0.1, momentum=total_steps)' uses the run-size name 'total_steps', which only a run "
     "(train, lr_schedule, build) can give a value.")),
    (lambda: resolve_optimizer(3),
     "optcheck: optimizer=3 must be a name in call syntax (a string) or a callable; got int."),
])
def test_refusals_name_the_key_the_value_and_the_way_out(call: Any, message: str) -> None:
    assert _message(call) == message


def test_the_scheduler_list_names_every_discovered_scheduler() -> None:
    message = _message(lambda: resolve_scheduler("nosuch"))
    assert message.startswith("optcheck: unknown scheduler 'nosuch' in scheduler='nosuch'. Known schedulers: ")
    known = message.split("Known schedulers: ")[1].split(";")[0].split(", ")
    assert known == sorted(catalog.torch_schedulers()) and "StepLR" in known and "LRScheduler" not in known


def test_an_import_error_inside_a_module_is_quoted() -> None:
    message = _message(lambda: resolve_optimizer("torch.optim.nopkg_inner.Opt"))
    assert message.startswith("optcheck: cannot find 'nopkg_inner' in 'torch.optim' for optimizer=")


def test_run_size_names_fill_nested_values() -> None:
    builder = resolve_scheduler("MultiStepLR(milestones=[total_steps, 9], gamma=0.5)", {"total_steps": 7})
    assert builder is not None
    sched = builder(torch.optim.SGD(_params(), lr=0.1))
    assert sorted(sched.milestones) == [7, 9]
    opt = resolve_optimizer("Adam(lr=0.1, betas=(0.5, 0.9))", {"total_steps": 3})(_params())
    assert opt.param_groups[0]["betas"] == (0.5, 0.9)


def test_nested_schedulers_are_built_on_the_optimizer_and_listed() -> None:
    text = "SequentialLR(schedulers=[LinearLR(), StepLR(step_size=2)], milestones=[2])"
    builder = resolve_scheduler(text)
    assert builder is not None
    assert [repr(b) for b in builder.nested()] == [
        f"Builder(scheduler={text!r})", "Builder(scheduler='StepLR(step_size=2)')", "Builder(scheduler='LinearLR()')"]
    opt = torch.optim.SGD(_params(), lr=0.1)
    sched = builder(opt)
    assert [type(s).__name__ for s in sched._schedulers] == ["LinearLR", "StepLR"]
    assert all(s.optimizer is opt for s in sched._schedulers)
    sized = resolve_scheduler("SequentialLR(schedulers=[LinearLR(total_iters=total_steps), StepLR(step_size=2)], "
                              "milestones=[2])", {"total_steps": 5})
    assert sized is not None and sized(torch.optim.SGD(_params(), lr=0.1))._schedulers[0].total_iters == 5


def test_a_builder_knows_whether_it_wants_the_model() -> None:
    def aware(model: nn.Module, lr: float = 0.1) -> torch.optim.Optimizer:
        return torch.optim.SGD(model.parameters(), lr=lr)

    def timm_like(model_or_params: Any) -> torch.optim.Optimizer:
        return torch.optim.SGD(model_or_params.parameters(), lr=0.1)

    assert resolve_optimizer(aware).wants_model and resolve_optimizer(timm_like).wants_model
    assert not resolve_optimizer("SGD(lr=0.1)").wants_model
    assert not Builder(aware, "scheduler", "aware").wants_model  # only optimizers get the model
    assert not Builder(max, "optimizer", "max").wants_model  # no signature: parameters


def test_a_construction_failure_with_a_hint_names_the_target() -> None:
    def opt(params: Any, betas: tuple[float, float] = (0.9, 0.99)) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, betas=betas)

    message = _message(lambda: Builder(opt, "optimizer", "o", (), {"betas": 0.5})(_params()))
    assert message.startswith("optcheck: could not build optimizer='o': argument 'betas' of opt takes a tuple")
    assert message.endswith("(opt raised TypeError: 'float' object is not subscriptable)")


def test_a_problem_that_returns_mismatched_data_is_refused() -> None:
    def short() -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(3, 1), torch.zeros(2, 1)

    def listed() -> list[int]:
        return [1]

    make = resolve_problem(short)
    assert _message(lambda: make(torch.Generator(), torch.float32)).endswith("gave 3 inputs but 2 targets.")
    assert _message(lambda: resolve_problem(listed)(torch.Generator(), torch.float32)).endswith(
        "returned list; a problem callable returns a Problem, an (inputs, targets) pair of tensors, or a torch Dataset.")
    assert _message(lambda: as_problem((torch.zeros(2), 3), name="p", dtype=torch.float32, text="p")) == (
        "optcheck: problem='p' returned tuple; a problem callable returns a Problem, an (inputs, targets) pair of "
        "tensors, or a torch Dataset.")


def test_a_dataset_that_cannot_be_stacked_says_why() -> None:
    class Ragged(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 2

        def __getitem__(self, i: int) -> tuple[torch.Tensor, float]:
            return torch.zeros(i + 1), 0.0

    message = _message(lambda: as_problem(Ragged(), name="r", dtype=torch.float32, text="r"))
    assert message.startswith("optcheck: problem='r': cannot stack the Dataset's (input, target) items: RuntimeError: ")


def test_an_iterable_dataset_is_stacked_in_order() -> None:
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self) -> Iterator[tuple[list[float], int]]:
            return iter([([0.0, 1.0], 1), ([2.0, 3.0], 0)])

    problem = as_problem(Stream(), name="s", dtype=torch.float64, text="s")
    assert problem.inputs.tolist() == [[0.0, 1.0], [2.0, 3.0]] and problem.inputs.dtype == torch.float64
    assert problem.targets.tolist() == [1, 0] and problem.targets.dtype == torch.int64
    assert (problem.name, problem.loss, problem.model) == ("s", "cross_entropy", "mlp(2, 10, 2)")


def test_a_problem_is_passed_through_and_data_is_moved_to_the_cpu() -> None:
    given = Problem("g", torch.zeros(2, 1), torch.zeros(2, 1))
    assert as_problem(given, name="x", dtype=torch.float64, text="x") is given
    pair = as_problem((torch.zeros(2, 3, dtype=torch.float64), torch.ones(2, 2, dtype=torch.float64)),
                      name="pair", dtype=torch.float32, text="pair")
    assert pair.inputs.dtype == torch.float32 and pair.model == "mlp(3, 10, 2)" and pair.loss == "mse"


@pytest.mark.parametrize(("inputs", "targets", "model"), [
    (torch.zeros(3), torch.zeros(3), "mlp(1, 10, 1)"),  # not 2-D inputs: the seed's net
    (torch.zeros(3, 2), torch.zeros(3), "mlp(2, 10, 1)"),
    (torch.zeros(3, 2), torch.zeros(3, 4), "mlp(2, 10, 4)"),
    (torch.zeros(3, 2), torch.tensor([0, 4, 1]), "mlp(2, 10, 5)"),
    (torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), "mlp(2, 10, 1)"),
])
def test_the_default_model_fits_the_data(inputs: torch.Tensor, targets: torch.Tensor, model: str) -> None:
    assert catalog._default_model_for(inputs, targets) == model


def test_library_modules_names_third_party_sources_only() -> None:
    assert library_modules(Spec()) == []
    fake = type("Opt", (torch.optim.SGD,), {"__module__": "zzlib.optim"})
    other = type("Opt2", (torch.optim.SGD,), {"__module__": "aalib"})
    spec = Spec(optimizer=functools.partial(fake, lr=0.1, foo=functools.partial(other)), scheduler=None)
    assert library_modules(spec) == ["aalib", "zzlib"]
    twice = Spec(optimizer=functools.partial(fake, lr=0.1, foo=fake), scheduler="StepLR(step_size=1)")
    assert library_modules(twice) == ["zzlib"]


def test_validate_names_checks_every_key() -> None:
    validate_names(Spec())
    validate_names(Spec(loss="l1"))
    for key, bad in (("model", "mpl"), ("problem", "quad"), ("optimizer", "SDG"), ("scheduler", "StepLRR"),
                     ("loss", "mse2")):
        with pytest.raises(SpecError, match=f"unknown {key} "):
            validate_names(Spec(**{key: bad}))


def test_resolve_loss_without_a_problem_is_a_programming_error() -> None:
    assert _message(lambda: resolve_loss(None), TypeError) == (
        "resolve_loss(None) needs the problem whose default loss to use")


def test_a_module_that_fails_to_import_is_named_with_its_error(tmp_path, monkeypatch) -> None:
    (tmp_path / "optcheck_broken_mod.py").write_text("raise RuntimeError('boom at import')\n")
    (tmp_path / "optcheck_needs_dep.py").write_text("import optcheck_absent_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(SpecError) as broken:
        resolve_optimizer("optcheck_broken_mod.Opt(lr=0.1)")
    assert str(broken.value) == ("optcheck: cannot import 'optcheck_broken_mod.Opt' for "
                                 "optimizer='optcheck_broken_mod.Opt(lr=0.1)': importing 'optcheck_broken_mod' "
                                 "raised RuntimeError: boom at import")
    with pytest.raises(SpecError) as missing:
        resolve_optimizer("optcheck_needs_dep.Opt")
    assert str(missing.value) == ("optcheck: cannot import 'optcheck_needs_dep.Opt' for optimizer='optcheck_needs_dep.Opt': "
                                  "importing 'optcheck_needs_dep' raised ModuleNotFoundError: No module named "
                                  "'optcheck_absent_dependency'")
    with pytest.raises(SpecError, match=r"cannot find 'Adamm' in 'torch.optim' for optimizer='torch.optim.Adamm'\. "
                                        r"Did you mean: Adam"):
        resolve_optimizer("torch.optim.Adamm")
