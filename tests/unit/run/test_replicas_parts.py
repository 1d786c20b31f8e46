"""The parts of calibrate=N's replicas (run/replicas.py) a user or a golden relies on: which
start each replica gets (pinned signs), why a spec runs sequentially (the note's words), what
a replica's meta says, the refusals of a user's loop, and the settings a run honours
(threads, device, training mode). Small nets, one epoch: fast enough for mutation runs."""

from __future__ import annotations

import dataclasses
import functools
from typing import ClassVar

import numpy as np
import pytest
import torch

from pytest_optcheck.declare.build import build
from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.errors import OptcheckError
from pytest_optcheck.run.record import Recorder
from pytest_optcheck.run.replicas import (
    ELEMENTWISE_OPTIMIZERS,
    SEQUENTIAL,
    STACKED,
    STACKED_SERIES,
    _eps,
    _perturb_tensors_,
    as_trajectory,
    perturb_,
    replicas,
    replicas_of,
    why_not_stacked,
)
from pytest_optcheck.run.train import train

SMALL = Spec(epochs=1, batch_size=100, optimizer="SGD(lr=0.05, momentum=0.9)", record=("loss", "lr"))
F32, F64 = torch.finfo(torch.float32).eps, torch.finfo(torch.float64).eps


def directions(before: list[torch.Tensor], after: list[torch.Tensor]) -> list[list[int]]:
    return [torch.sign(a - b).int().flatten().tolist() for a, b in zip(after, before)]


def small_linear() -> torch.nn.Linear:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return torch.nn.Linear(2, 2)


def test_constants() -> None:
    assert (STACKED, SEQUENTIAL) == ("stacked", "sequential")
    assert STACKED_SERIES == ("loss", "lr", "momentum")
    assert ELEMENTWISE_OPTIMIZERS == ("SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Adagrad",
                                      "Adadelta")


@pytest.mark.parametrize(("seed", "replica", "signs"), [
    (5, 0, [[1, -1, 1, 1], [-1, -1]]),
    (0, 1, [[-1, -1, 1, 1], [1, -1]]),
])
def test_each_replica_of_a_seed_has_its_own_fixed_start(seed: int, replica: int, signs: list[list[int]]) -> None:
    """The signs come from derive_seed(seed, 'calibrate:<replica>'): a calibrated golden's
    envelope is measured again from the very same starts."""
    model = small_linear()
    before = [p.detach().clone() for p in model.parameters()]
    perturb_(model, seed, replica)
    assert directions(before, list(model.parameters())) == signs
    for p, b in zip(model.parameters(), before):  # one ulp each
        assert torch.equal(p, torch.where(p > b, torch.nextafter(b, torch.tensor(np.inf)),
                                          torch.nextafter(b, torch.tensor(-np.inf))))


def test_integer_tensors_are_left_alone_and_the_rest_still_moved() -> None:
    counts, weights = torch.tensor([3, 4]), torch.ones(3, dtype=torch.float64)
    _perturb_tensors_([counts, weights], 0, 0)
    assert torch.equal(counts, torch.tensor([3, 4]))
    assert torch.all(weights != 1) and torch.all((weights - 1).abs() <= F64)


def test_eps_is_the_widest_ulp_of_what_was_moved() -> None:
    assert _eps([]) == F32
    assert _eps([torch.float64]) == F64
    assert _eps([torch.float64, torch.float16, torch.float32]) == torch.finfo(torch.float16).eps


# -- why a spec runs one replica at a time ---------------------------------------------


class SGD(torch.optim.SGD):
    """Named like torch's, but a user's: its update is not known to be element-wise."""


def _not_stacked(spec: Spec, **changes: object) -> str | None:
    built = build(spec)
    if "optimizer" in changes:
        changes["optimizer"] = changes["optimizer"](built)  # type: ignore[operator]
    return why_not_stacked(spec, dataclasses.replace(built, **changes))


def test_why_not_stacked_in_words() -> None:
    assert _not_stacked(SMALL) is None
    assert _not_stacked(SMALL.replace(scheduler="StepLR(step_size=1)")) is None
    assert _not_stacked(SMALL.replace(optimizer="LBFGS(lr=0.1)")) == "optimizer LBFGS is not known to be element-wise"
    assert _not_stacked(SMALL, optimizer=lambda b: SGD(b.model.parameters(), lr=0.1)) == (
        "optimizer SGD is not known to be element-wise")
    assert _not_stacked(SMALL, optimizer=lambda b: torch.optim.SGD(
        [{"params": [p]} for p in b.model.parameters()], lr=0.1)) == "the optimizer has several param groups"
    assert _not_stacked(SMALL.replace(scheduler="ReduceLROnPlateau(patience=1)")) == (
        "a ReduceLROnPlateau or timm-style scheduler would see one metric for all replicas")
    assert _not_stacked(SMALL.replace(clip_grad_norm=1.0)) == "clip_grad_norm would take one norm across replicas"
    assert _not_stacked(SMALL.replace(record=("loss", "grad_norm", "lr", "param_norm"))) == (
        "series grad_norm, param_norm need each replica's own hooks")
    assert _not_stacked(SMALL.replace(model=lambda: torch.nn.Sequential(
        torch.nn.Linear(1, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1)))) == "the model has buffers"
    assert _not_stacked(SMALL.replace(model=lambda: torch.nn.Sequential(
        torch.nn.Linear(1, 4), torch.nn.Dropout(0.1), torch.nn.Linear(4, 1)))) == (
        "the model draws random numbers (dropout)")


def test_the_path_names_why_it_is_sequential() -> None:
    assert replicas(SMALL.replace(clip_grad_norm=1.0), 1)[1] == (
        "sequential (clip_grad_norm would take one norm across replicas)")
    assert replicas(SMALL, 1, stacked=False)[1] == "sequential (asked for)"
    assert replicas(SMALL, 1, stacked=True)[1] == "stacked"


class Branchy(torch.nn.Module):
    """Data-dependent control flow, which torch.func.vmap cannot trace."""

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Linear(1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        return y if bool(y.sum() > -1e9) else -y


def test_a_model_vmap_cannot_trace_runs_sequentially() -> None:
    spec = SMALL.replace(model=Branchy)
    runs, path = replicas(spec, 2)
    assert path == "sequential (torch.func could not stack the model: RuntimeError)"
    np.testing.assert_array_equal(runs[1]["loss"], replicas(spec, 2, stacked=False)[0][1]["loss"])


# -- what each replica records -------------------------------------------------------------


@pytest.mark.parametrize("stacked", [None, False], ids=["stacked", "sequential"])
def test_a_replicas_meta_says_how_far_one_ulp_is_and_where_it_ran(stacked: bool | None) -> None:
    runs, _ = replicas(SMALL, 2, device="cpu:0", stacked=stacked)
    for run in runs:
        assert run.meta["kind"] == "train" and run.meta["device"] == "cpu:0" and run.meta["start_eps"] == F32
    runs, _ = replicas(SMALL.replace(dtype="float64"), 1, stacked=stacked)
    assert runs[0].meta["start_eps"] == F64


def test_stacked_replicas_match_sequential_ones_under_a_scheduler() -> None:
    spec = SMALL.replace(epochs=3, batch_size=50, scheduler="StepLR(step_size=1, gamma=0.5)")
    stacked, path = replicas(spec, 2)
    sequential, _ = replicas(spec, 2, stacked=False)
    assert path == STACKED
    for s, q in zip(stacked, sequential):
        assert s.names == q.names == ["loss", "lr"]
        np.testing.assert_array_equal(s.epoch, q.epoch)
        np.testing.assert_array_equal(s["lr"], q["lr"])
        np.testing.assert_allclose(s["loss"], q["loss"], rtol=2e-6)
    assert list(np.unique(stacked[0]["lr"])) == [0.0125, 0.025, 0.05]


class Moody(torch.nn.Module):
    """Computes differently in training and in eval mode, and notes its intra-op threads."""

    threads: ClassVar[list[int]] = []

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Linear(1, 3)
        self.b = torch.nn.Linear(3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        Moody.threads.append(torch.get_num_threads())
        h = torch.tanh(self.a(x))
        return self.b(h * 2 if self.training else h)


def test_replicas_train_in_training_mode_like_the_reference() -> None:
    """A factory may hand over its model in eval mode; the reference loop trains it in
    training mode, and so must every replica (the stacked one through vmap too)."""
    spec = SMALL.replace(model=lambda: Moody().eval(), optimizer="Adam(lr=0.01)")
    stacked, path = replicas(spec, 2)
    sequential, _ = replicas(spec, 2, stacked=False)
    assert path == STACKED
    for s, q in zip(stacked, sequential):
        np.testing.assert_allclose(s["loss"], q["loss"], rtol=2e-6)


@pytest.mark.parametrize("stacked", [None, False], ids=["stacked", "sequential"])
def test_replicas_run_with_the_threads_asked_for(stacked: bool | None) -> None:
    before = torch.get_num_threads()
    wanted = 2 if before == 1 else 1
    Moody.threads.clear()
    replicas(SMALL.replace(model=Moody), 1, threads=wanted, stacked=stacked)
    assert Moody.threads and set(Moody.threads) == {wanted}
    assert torch.get_num_threads() == before


# -- a user's own loop ---------------------------------------------------------------------


def test_a_users_loop_runs_with_the_threads_asked_for_and_records_the_ulp() -> None:
    before = torch.get_num_threads()
    wanted = 2 if before == 1 else 1
    seen = []

    def loop(perturb):
        seen.append(torch.get_num_threads())
        built = build(SMALL.replace(dtype="float64"))
        perturb(built.model)
        rec = Recorder(built.optimizer)
        with rec:
            for _ in range(2):
                built.optimizer.zero_grad()
                loss = built.loss_fn(built.model(built.problem.inputs), built.problem.targets)
                loss.backward()
                built.optimizer.step()
                rec.log(loss=loss)
        return rec  # a Recorder is read out

    runs, path = replicas_of(loop, 0, 2, threads=wanted)
    assert path == "sequential (your loop)" and seen == [wanted, wanted]
    assert torch.get_num_threads() == before
    assert [r.meta["start_eps"] for r in runs] == [F64, F64]
    assert len(runs[0]) == 2 and not np.array_equal(runs[0]["loss"], runs[1]["loss"])


def never_perturbs(perturb):
    return train(SMALL)


class NoParameters(torch.nn.Module):
    pass


def test_a_loop_that_never_perturbs_is_refused() -> None:
    message = ("optcheck: check(run='never_perturbs') never called perturb(model) with a model that has floating "
               "parameters: every replica would be the run itself and measure no noise. Pass the model through "
               "it before training: model = perturb(MyNet()).")
    with pytest.raises(OptcheckError) as info:
        replicas_of(never_perturbs, 0, 1)
    assert str(info.value) == message

    def perturbs_nothing(perturb):
        perturb(NoParameters())
        return train(SMALL)

    with pytest.raises(OptcheckError, match="^optcheck: check\\(run='perturbs_nothing'\\) never called perturb"):
        replicas_of(perturbs_nothing, 0, 1)
    unnamed = functools.partial(never_perturbs)
    with pytest.raises(OptcheckError) as info:
        replicas_of(unnamed, 0, 1)
    assert str(info.value) == message.replace("'never_perturbs'", repr(unnamed))


def test_a_loop_must_return_its_trajectory() -> None:
    def returns_a_dict(perturb):
        return {"loss": [1.0]}

    with pytest.raises(OptcheckError) as info:
        replicas_of(returns_a_dict, 0, 1)
    assert str(info.value) == ("optcheck: check(run='returns_a_dict') returned dict; run(perturb) must return the "
                               "Trajectory it recorded (rec.trajectory).")
    unnamed = functools.partial(returns_a_dict)
    with pytest.raises(OptcheckError) as info:
        as_trajectory(None, unnamed)
    assert str(info.value) == (f"optcheck: check(run={unnamed!r}) returned NoneType; run(perturb) must "
                               "return the Trajectory it recorded (rec.trajectory).")
