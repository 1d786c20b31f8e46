"""How the catalog builds what a spec names, past the names themselves: the optimizer passed
by keyword to a scheduler that does not take it first (``ChainedScheduler``), nested
builders in lists, tuples and dicts, the run's sizes kept through every copy of a builder,
a user's own factories and problems from a dotted path, the classes discovered in torch,
and the libraries recorded for a spec. Each test names what would break."""

from __future__ import annotations

import functools
import math
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import ChainedScheduler, ExponentialLR, LambdaLR, StepLR

from pytest_optcheck.declare import catalog
from pytest_optcheck.declare.catalog import (
    as_problem,
    library_modules,
    resolve_model,
    resolve_optimizer,
    resolve_problem,
    resolve_scheduler,
)
from pytest_optcheck.declare.problems import Problem
from pytest_optcheck.errors import SpecError

SIZES = {"total_steps": 7, "steps_per_epoch": 7, "epochs": 1}

#: A user's own library, imported by dotted path: a package with a submodule.
LIBRARY = {
    "__init__.py": "",
    "factories.py": '''
import torch
from torch.optim.lr_scheduler import LambdaLR, StepLR

_secret_gain = 0.5
visible_rate = 0.1


def warmup(optimizer, /, steps=2):
    """A scheduler factory whose optimizer is positional-only: it must get it by position."""
    return LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / steps))


def late(gamma, optimizer):
    """A scheduler factory that names the optimizer second: it must get it by keyword."""
    return StepLR(optimizer, step_size=1, gamma=gamma)


def chained(optimizer, parts):
    """A scheduler factory taking its nested schedulers in a dict."""
    return torch.optim.lr_scheduler.ChainedScheduler(list(parts.values()), optimizer=optimizer)


def named_sgd(params, optimizer="sgd", lr=0.1):
    """An optimizer factory with a parameter called `optimizer`: params still come first."""
    assert optimizer == "sgd"
    return torch.optim.SGD(params, lr=lr)


def pairs(n=4):
    """A problem callable that returns an (inputs, targets) pair, in float32."""
    x = torch.arange(2.0 * n).reshape(n, 2)
    return x, x.sum(dim=1, keepdim=True)


def number():
    """A problem callable that returns the wrong thing."""
    return 3


def no_model():
    """A model factory that returns the wrong thing."""
    return "not a module"
''',
    "broken.py": "raise RuntimeError('broken at import')\n",
}


@pytest.fixture
def lib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The package ``optcheck_catlib`` on sys.path, forgotten again after the test."""
    package = tmp_path / "optcheck_catlib"
    package.mkdir()
    for name, text in LIBRARY.items():
        (package / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "optcheck_catlib"
    for name in [m for m in sys.modules if m.split(".")[0] == "optcheck_catlib"]:
        del sys.modules[name]


def _optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)


def _message(call: Any) -> str:
    with pytest.raises(SpecError) as info:
        call()
    return str(info.value)


# -- the optimizer passed to a scheduler -----------------------------------------------------


def test_a_scheduler_that_takes_the_optimizer_later_gets_it_by_keyword() -> None:
    builder = resolve_scheduler("ChainedScheduler([StepLR(step_size=2), ExponentialLR(gamma=0.9)])")
    assert builder is not None and builder.lead_keyword == "optimizer"
    optimizer = _optimizer()
    scheduler = builder(optimizer)
    assert isinstance(scheduler, ChainedScheduler) and scheduler.optimizer is optimizer
    assert [type(s) for s in scheduler._schedulers] == [StepLR, ExponentialLR]
    assert all(s.optimizer is optimizer for s in scheduler._schedulers)


def test_nested_schedulers_in_a_tuple_are_built_on_the_optimizer_too() -> None:
    builder = resolve_scheduler("ChainedScheduler((StepLR(step_size=2), ExponentialLR(gamma=0.9)))")
    assert builder is not None
    optimizer = _optimizer()
    scheduler = builder(optimizer)
    assert [type(s) for s in scheduler._schedulers] == [StepLR, ExponentialLR]
    assert all(s.optimizer is optimizer for s in scheduler._schedulers)


def test_the_lead_keyword_is_chosen_from_the_signature(lib: str) -> None:
    lead = catalog._scheduler_lead_keyword
    assert lead(ChainedScheduler) == "optimizer"
    assert lead(StepLR) is None  # optimizer first: by position
    assert lead(len) is None  # no optimizer parameter at all
    factories = __import__(f"{lib}.factories", fromlist=["late"])
    assert lead(factories.late) == "optimizer"
    assert lead(factories.warmup) is None


def test_a_positional_only_optimizer_is_passed_by_position(lib: str) -> None:
    builder = resolve_scheduler(f"{lib}.factories.warmup(steps=4)")
    assert builder is not None and builder.lead_keyword is None
    optimizer = _optimizer()
    scheduler = builder(optimizer)
    assert isinstance(scheduler, LambdaLR) and scheduler.optimizer is optimizer
    assert scheduler.get_last_lr() == [0.25]


def test_an_optimizer_named_second_is_passed_by_keyword(lib: str) -> None:
    builder = resolve_scheduler(f"{lib}.factories.late(0.5)")
    assert builder is not None and builder.lead_keyword == "optimizer"
    optimizer = _optimizer()
    scheduler = builder(optimizer)
    assert isinstance(scheduler, StepLR) and scheduler.optimizer is optimizer and scheduler.gamma == 0.5


def test_an_optimizer_factory_gets_its_parameters_first_whatever_its_parameters_are_called(lib: str) -> None:
    builder = resolve_optimizer(f"{lib}.factories.named_sgd(lr=0.3)")
    assert builder.lead_keyword is None
    params = [nn.Parameter(torch.zeros(2))]
    optimizer = builder(params)
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.param_groups[0]["params"] == params
    assert optimizer.param_groups[0]["lr"] == 0.3


def test_nested_builders_in_a_dict_are_listed(lib: str) -> None:
    builder = resolve_scheduler(f"{lib}.factories.chained(parts={{'a': StepLR(step_size=2), 'b': [ExponentialLR(gamma=0.5)]}})")
    assert builder is not None
    texts = [b.text for b in builder.nested()]
    assert texts[0] == f"{lib}.factories.chained(parts={{'a': StepLR(step_size=2), 'b': [ExponentialLR(gamma=0.5)]}})"
    assert sorted(texts[1:]) == ["ExponentialLR(gamma=0.5)", "StepLR(step_size=2)"]


# -- the run's sizes -------------------------------------------------------------------------


def test_the_run_sizes_reach_the_builders_and_every_copy_keeps_the_rest() -> None:
    assert resolve_optimizer("SGD(lr=0.1)").sizes is None
    assert resolve_optimizer("SGD(lr=0.1)", sizes=SIZES).sizes == SIZES
    builder = resolve_scheduler("ChainedScheduler([StepLR(step_size=2), OneCycleLR(max_lr=1.0, total_steps=total_steps)])",
                                sizes=SIZES)
    assert builder is not None
    assert (builder.kind, builder.lead_keyword, builder.sizes) == ("scheduler", "optimizer", SIZES)
    assert builder.text == "ChainedScheduler([StepLR(step_size=2), OneCycleLR(max_lr=1.0, total_steps=total_steps)])"
    optimizer = _optimizer()
    scheduler = builder(optimizer)
    assert scheduler.optimizer is optimizer and scheduler._schedulers[1].total_steps == 7


def test_a_copy_with_sizes_still_names_its_key_and_value_when_it_fails() -> None:
    builder = resolve_optimizer("SGD(lr=-1.0)", sizes=SIZES)
    assert _message(lambda: builder([nn.Parameter(torch.zeros(1))])) == (
        "optcheck: could not build optimizer='SGD(lr=-1.0)': ValueError: Invalid learning rate: -1.0")


# -- refusals that name the key and the value ------------------------------------------------


def test_a_malformed_call_names_its_key() -> None:
    assert _message(lambda: resolve_optimizer("SGD(lr=")) == (
        "optcheck: optimizer='SGD(lr=' is not valid call syntax ('(' was never closed). "
        "Write it like optimizer=\"Name(arg=1, other=0.5)\".")


def test_a_nested_call_is_refused_outside_schedulers_with_its_key_and_value() -> None:
    assert _message(lambda: resolve_optimizer("SGD(lr=StepLR(step_size=1))")) == (
        "optcheck: optimizer='SGD(lr=StepLR(step_size=1))': the nested call StepLR(step_size=1) is not allowed "
        "here; only scheduler calls nest (SequentialLR(schedulers=[LinearLR(...), CosineAnnealingLR(...)])).")
    for value, call in (("blobs([LinearLR()])", "LinearLR()"), ("blobs(n=[LinearLR()])", "LinearLR()"),
                        ("blobs(n={'a': StepLR()})", "StepLR()")):
        assert _message(lambda value=value: resolve_problem(value)) == (
            f"optcheck: problem={value!r}: the nested call {call} is not allowed here; only scheduler calls nest "
            f"(SequentialLR(schedulers=[LinearLR(...), CosineAnnealingLR(...)])).")


def test_a_run_size_name_is_refused_in_a_problem_wherever_it_sits() -> None:
    for value in ("blobs(total_steps)", "blobs(n=total_steps)", "blobs(n=(epochs,))"):
        name = "epochs" if "epochs" in value else "total_steps"
        assert _message(lambda value=value: resolve_problem(value)) == (
            f"optcheck: problem={value!r}: the run-size name {name!r} is only for optimizer and scheduler arguments.")


def test_an_attribute_missing_from_a_module_suggests_public_names_only(lib: str) -> None:
    assert _message(lambda: resolve_optimizer(f"{lib}.factories.secret_gain")) == (
        f"optcheck: cannot find 'secret_gain' in '{lib}.factories' for optimizer='{lib}.factories.secret_gain'.")
    assert _message(lambda: resolve_optimizer(f"{lib}.factories.visible_rat")) == (
        f"optcheck: cannot find 'visible_rat' in '{lib}.factories' for optimizer='{lib}.factories.visible_rat'. "
        f"Did you mean: visible_rate?")


def test_a_submodule_that_fails_to_import_is_named_whole(lib: str) -> None:
    assert _message(lambda: resolve_optimizer(f"{lib}.broken.Opt(lr=0.1)")) == (
        f"optcheck: cannot import '{lib}.broken.Opt' for optimizer='{lib}.broken.Opt(lr=0.1)': importing "
        f"'{lib}.broken' raised RuntimeError: broken at import")


def test_a_factory_that_returns_the_wrong_thing_is_named_by_its_value(lib: str) -> None:
    builder = resolve_model(f"{lib}.factories.no_model")
    with pytest.raises(SpecError, match=rf"model='{lib}\.factories\.no_model'"):
        builder()


# -- problems from a user's callable ---------------------------------------------------------


def test_a_dotted_problem_is_named_after_its_callable_and_cast_to_the_dtype(lib: str) -> None:
    problem = resolve_problem(f"{lib}.factories.pairs(n=3)")(torch.Generator().manual_seed(0), torch.float64)
    assert problem.name == f"{lib}.factories.pairs"
    assert problem.inputs.dtype == problem.targets.dtype == torch.float64
    assert problem.targets.flatten().tolist() == [1.0, 5.0, 9.0]


def test_a_dotted_problem_that_returns_the_wrong_thing_names_its_value(lib: str) -> None:
    build = resolve_problem(f"{lib}.factories.number")
    assert _message(lambda: build(torch.Generator(), torch.float32)) == (
        f"optcheck: problem='{lib}.factories.number' returned int; a problem callable returns a Problem, an "
        f"(inputs, targets) pair of tensors, or a torch Dataset.")


def test_a_registered_problem_gets_the_generator_and_dtype_even_through_kwargs() -> None:
    seen: dict[str, Any] = {}

    def mine(**kwargs: Any) -> Problem:
        seen.update(kwargs)
        return Problem("mine", torch.zeros(2, 1, dtype=kwargs["dtype"]), torch.zeros(2, 1, dtype=kwargs["dtype"]))

    catalog.register_problem("mine")(mine)
    generator = torch.Generator()
    problem = resolve_problem("mine")(generator, torch.float64)
    assert seen == {"generator": generator, "dtype": torch.float64}
    assert problem.name == "mine"


def test_targets_are_cast_to_the_problems_dtype_labels_are_not() -> None:
    floats = as_problem((torch.zeros(2, 1), torch.ones(2, 1)), name="p", dtype=torch.float64, text="p")
    assert (floats.inputs.dtype, floats.targets.dtype) == (torch.float64, torch.float64)
    labels = as_problem((torch.zeros(2, 1), torch.tensor([0, 1])), name="p", dtype=torch.float64, text="p")
    assert labels.targets.dtype == torch.int64


# -- discovery and libraries -----------------------------------------------------------------


def test_discovery_keeps_public_subclasses_of_the_base_and_leaves_out_the_excluded() -> None:
    class Base:
        pass

    class Kept(Base):
        pass

    class _Private(Base):
        pass

    class Other:
        pass

    module = types.ModuleType("optcheck_fake_module")
    module.Base, module.Kept, module._Private, module.Other = Base, Kept, _Private, Other
    module.instance, module.function = Kept(), len
    assert catalog._classes(module, (Base,), exclude=(Base,)) == {"Kept": Kept}
    assert catalog._classes(module, (Base, Other)) == {"Base": Base, "Kept": Kept, "Other": Other}
    assert list(catalog._classes(module, (object,))) == ["Base", "Kept", "Other"]  # sorted by name


def test_libraries_are_found_past_a_missing_key_and_inside_partials() -> None:
    def outside() -> nn.Module:
        return nn.Linear(1, 1)

    outside.__module__ = "zzmodels.nets"
    sched = type("Sched", (StepLR,), {"__module__": "aalib.sched"})
    spec = types.SimpleNamespace(
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
        scheduler=None,
        model=outside,
    )
    assert library_modules(spec) == ["zzmodels"]
    spec.scheduler = functools.partial(sched, step_size=1)
    spec.optimizer = functools.partial(torch.optim.SGD, lr=0.1, foreach=None)
    assert library_modules(spec) == ["aalib", "zzmodels"]


def test_the_standard_library_and_nameless_modules_are_not_libraries() -> None:
    def template(activation: Any = None) -> None:
        return None

    # the same function with globals that have no __name__: its __module__ is None
    make = types.FunctionType(template.__code__, {}, "make", template.__defaults__)
    assert make.__module__ is None
    spec = types.SimpleNamespace(
        optimizer="SGD(lr=0.1)",
        scheduler=functools.partial(LambdaLR, lr_lambda=functools.partial(pow, 0.9)),
        model=functools.partial(make, math.cos),
    )
    assert library_modules(spec) == []
