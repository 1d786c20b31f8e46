"""What a recording watches (run/record/watch.py), unit by unit: the optimizer found inside
wrappers, each refusal's whole sentence, how classes are named in them, and the GradScaler's
``update()`` watch that comes and goes with the recording."""

from __future__ import annotations

import pytest
import torch

from pytest_optcheck.errors import OptcheckError
from pytest_optcheck.run.record.watch import (
    RecordArgumentError,
    UpdateWatch,
    check_arguments,
    describe_class,
    is_framework_wrapper,
    watched_optimizer,
)


def adamw() -> torch.optim.AdamW:
    return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=0.1)


class Holder:
    """A hand-written wrapper: the optimizer it holds is at whatever attribute it is given."""

    def __init__(self, **attrs) -> None:
        vars(self).update(attrs)


def refusal(call, *args, **kwargs) -> str:
    with pytest.raises(RecordArgumentError) as caught:
        call(*args, **kwargs)
    assert isinstance(caught.value, OptcheckError) and isinstance(caught.value, TypeError)
    return str(caught.value)


def test_classes_are_named_by_name_for_torch_and_builtins_else_with_their_module() -> None:
    assert describe_class(adamw()) == "AdamW"
    assert describe_class(1.5) == "float"
    assert describe_class(Holder()) == f"{__name__}.Holder"
    assert not is_framework_wrapper(adamw()) and not is_framework_wrapper(Holder())


def test_the_optimizer_is_found_through_wrappers_outermost_first() -> None:
    inner = adamw()
    assert watched_optimizer(inner) == (inner, [])
    middle = Holder(base_optimizer=inner, param_groups=inner.param_groups)
    outer = Holder(optimizer=middle)
    assert watched_optimizer(outer) == (inner, [outer, middle])
    kept = Holder(slow=inner)
    assert watched_optimizer(kept, optimizer_attr="slow") == (inner, [kept])
    # optimizer_attr names the attribute of the outermost wrapper only; inside it, the usual places
    kept = Holder(slow=Holder(optimizer=inner, param_groups=inner.param_groups))
    assert watched_optimizer(kept, optimizer_attr="slow") == (inner, [kept, kept.slow])


def test_a_wrapper_keeping_its_optimizer_at_an_unusual_attribute_must_say_where() -> None:
    hidden = Holder(_optimizer=adamw())
    assert "cannot record a" in refusal(watched_optimizer, hidden)
    assert watched_optimizer(hidden, optimizer_attr="_optimizer") == (hidden._optimizer, [hidden])


def test_lightning_s_optimizer_wrapper_is_watched_through_the_optimizer_it_wraps() -> None:
    from lightning.pytorch.core.optimizer import LightningOptimizer

    inner = adamw()
    wrapper = LightningOptimizer(inner)  # a subclass of AdamW too, whose step() runs no hooks of its own
    assert isinstance(wrapper, torch.optim.Optimizer) and is_framework_wrapper(wrapper)
    assert watched_optimizer(wrapper) == (inner, [wrapper])


def test_a_wrapper_that_holds_itself_or_no_optimizer_is_refused_whole() -> None:
    selfish = Holder()
    selfish.optimizer = selfish
    assert refusal(watched_optimizer, selfish) == (
        f"optcheck: cannot record a {__name__}.Holder: expected a torch.optim.Optimizer, or a wrapper that holds one "
        f"as .optimizer or .base_optimizer. If your wrapper keeps it elsewhere, say where: "
        f"optcheck.record(wrapper, optimizer_attr='<attribute>').")
    deep = Holder(optimizer=Holder(optimizer=torch.zeros(1)))
    assert refusal(watched_optimizer, deep).startswith(
        f"optcheck: cannot record a {__name__}.Holder: expected a torch.optim.Optimizer, or a wrapper that holds one "
        f"as .optimizer or .base_optimizer. ")
    nested = Holder(optimizer=Holder(param_groups=[], optimizer=None))
    assert f"or .base_optimizer (it wraps a {__name__}.Holder, which is not one either). If your" in refusal(
        watched_optimizer, nested)


def test_a_chain_of_wrappers_longer_than_eight_is_refused() -> None:
    wrapped = adamw()
    for _ in range(8):
        wrapped = Holder(optimizer=wrapped, param_groups=[])
    assert "cannot record a" in refusal(watched_optimizer, wrapped)
    assert watched_optimizer(wrapped.optimizer)[1][0] is wrapped.optimizer


def test_optimizer_attr_refusals_say_what_the_attribute_holds() -> None:
    assert refusal(watched_optimizer, adamw(), optimizer_attr=3) == (
        "optcheck: optimizer_attr=3 must be the name of the attribute that holds the wrapped optimizer, "
        "e.g. optimizer_attr='optimizer'.")
    assert refusal(watched_optimizer, Holder(), optimizer_attr="inner") == (
        f"optcheck: record(..., optimizer_attr='inner'): {__name__}.Holder.inner holds nothing, not a "
        f"torch.optim.Optimizer. Name the attribute that holds the optimizer whose step() runs the update.")
    assert "Holder.inner holds a float, not a torch" in refusal(watched_optimizer, Holder(inner=0.5),
                                                                 optimizer_attr="inner")


def test_swapped_or_wrong_arguments_are_refused_with_whole_sentences() -> None:
    model = torch.nn.Linear(1, 1)
    opt = adamw()
    scheduler = torch.optim.lr_scheduler.StepLR(opt, 1)
    assert refusal(watched_optimizer, model) == (
        "optcheck: record()'s first argument is the optimizer; got a model (Linear, a torch.nn.Module). "
        "Pass the optimizer first: optcheck.record(optimizer, scheduler, model).")
    assert refusal(watched_optimizer, scheduler) == (
        "optcheck: record()'s first argument is the optimizer; got a scheduler (StepLR). "
        "Pass the optimizer first: optcheck.record(optimizer, scheduler, model).")
    assert "got a scheduler (" in refusal(watched_optimizer, Holder(base_lrs=[0.1]))
    assert "got a scheduler (" in refusal(watched_optimizer, Holder(get_last_lr=lambda: [0.1]))
    assert refusal(check_arguments, None, opt, None) == (
        "optcheck: record(..., model=...) takes a torch.nn.Module (its parameters are the norms' ones); "
        "got a AdamW (an optimizer: did you swap the arguments?). Write optcheck.record(optimizer, scheduler, model).")
    assert refusal(check_arguments, None, 1.0, None) == (
        "optcheck: record(..., model=...) takes a torch.nn.Module (its parameters are the norms' ones); "
        "got a float. Write optcheck.record(optimizer, scheduler, model).")
    assert refusal(check_arguments, model, None, None) == (
        "optcheck: record()'s second argument is the LR scheduler (an object with step(), or None); got a Linear. "
        "Write optcheck.record(optimizer, scheduler, model) or pass model=... by name.")
    assert "got a float. Write" in refusal(check_arguments, 0.1, None, None)
    assert f"got a {__name__}.Holder. Write" in refusal(check_arguments, Holder(step=0), None, None)
    assert refusal(check_arguments, None, None, Holder(update=lambda: None)) == (
        "optcheck: record(..., scaler=...) takes the torch.amp.GradScaler the loop steps through "
        f"(scaler.step(optimizer); scaler.update()); got a {__name__}.Holder.")
    assert "got a " in refusal(check_arguments, None, None, Holder(step=lambda: None))
    check_arguments(scheduler, model, Holder(update=lambda: None, step=lambda: None))  # all fine: no error


def test_the_update_watch_reports_each_update_and_leaves_no_trace() -> None:
    class Scaler:
        def update(self, new_scale=None):
            return ("updated", new_scale)

    scaler, seen = Scaler(), []
    watch = UpdateWatch(scaler, lambda: seen.append(1))
    assert scaler.update(new_scale=2.0) == ("updated", 2.0) and scaler.update() == ("updated", None)
    assert scaler.update(3.0) == ("updated", 3.0)  # passed on as given, positionally too
    assert seen == [1, 1, 1]
    watch.remove()
    assert "update" not in vars(scaler) and scaler.update() == ("updated", None) and seen == [1, 1, 1]
    watch = UpdateWatch(scaler, lambda: seen.append(2))
    theirs = scaler.update
    scaler.update = lambda: theirs()  # something wrapped update() again after us
    watch.remove()
    scaler.update()
    assert "update" in vars(scaler) and seen == [1, 1, 1]  # theirs stays; ours reports no more
