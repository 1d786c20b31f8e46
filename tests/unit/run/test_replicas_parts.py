"""The parts of calibrate=N's replicas (run/replicas.py) a user or a golden relies on: which
start each replica gets (pinned signs), why a spec runs sequentially (the note's words), what
a replica's meta says, the refusals of a user's loop, and the settings a run honours
(threads, device, training mode). Small nets, one epoch: fast enough for mutation runs."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Iterator
from copy import deepcopy
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


@contextlib.contextmanager
def two_threads() -> Iterator[None]:
    """Two intra-op threads set (so that asking for one changes something), none used
    here: a second thread deadlocks in mutmut's forked workers."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("stacked", [None, False], ids=["stacked", "sequential"])
def test_replicas_run_with_the_threads_asked_for(stacked: bool | None) -> None:
    Moody.threads.clear()
    with two_threads():
        replicas(SMALL.replace(model=Moody), 1, threads=1, stacked=stacked)
        assert torch.get_num_threads() == 2  # given back
    assert Moody.threads and set(Moody.threads) == {1}


# -- a user's own loop ---------------------------------------------------------------------


def test_a_users_loop_runs_with_the_threads_asked_for_and_records_the_ulp() -> None:
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

    with two_threads():
        runs, path = replicas_of(loop, 0, 2, threads=1)
        assert torch.get_num_threads() == 2  # given back
    assert path == "sequential (your loop)" and seen == [1, 1]
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


# -- the stacked path's pieces ------------------------------------------------------------


def test_the_stack_holds_each_replicas_perturbed_start() -> None:
    """What torch.func.stack_module_state gives for n perturbed copies, without the copies."""
    from pytest_optcheck.run.replicas import _perturbed_stack

    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))
    model[2].requires_grad_(False)
    copies = []
    for r in range(3):
        copy = deepcopy(model)
        perturb_(copy, 7, r)
        copies.append(copy)
    expected, _ = torch.func.stack_module_state(copies)
    stacked = _perturbed_stack(model, 7, 3)
    assert list(stacked) == list(expected) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    for name, tensor in stacked.items():
        assert torch.equal(tensor, expected[name]), name
        assert tensor.requires_grad == name.startswith("0."), name


def test_stacked_weights_are_stored_transposed_with_the_same_values() -> None:
    from pytest_optcheck.run.replicas import _layers, _transposed_storage

    net = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 4))
    net[3].requires_grad_(False)
    params, _ = torch.func.stack_module_state([net, net])
    before = {k: v.detach().clone() for k, v in params.items()}
    bias = params["1.bias"]
    _transposed_storage(params, _layers(net))
    for name in ("1.weight", "3.weight"):
        assert torch.equal(params[name], before[name]) and params[name].is_leaf
        assert params[name].transpose(1, 2).is_contiguous() and not params[name].is_contiguous(), name
    assert params["1.weight"].requires_grad and not params["3.weight"].requires_grad
    assert params["1.bias"] is bias  # biases stay as they are


def test_the_in_place_form_of_each_activation() -> None:
    from pytest_optcheck.run.replicas import _in_place

    assert _in_place(torch.nn.Tanh()) is torch.tanh_ and _in_place(torch.tanh) is torch.tanh_
    assert _in_place(torch.nn.Sigmoid()) is torch.sigmoid_ and _in_place(torch.sigmoid) is torch.sigmoid_
    assert _in_place(torch.nn.ReLU()) is torch.relu_ and _in_place(torch.relu) is torch.relu_
    assert _in_place(torch.nn.functional.relu) is torch.relu_
    for act in (torch.nn.ReLU(inplace=True), torch.nn.GELU(), torch.nn.Identity(), torch.nn.functional.gelu):
        assert _in_place(act) is act


def _quartic(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((out - y) ** 4).mean()


@pytest.mark.parametrize("loss_fn", [
    torch.nn.MSELoss(), torch.nn.L1Loss(), torch.nn.SmoothL1Loss(beta=0.3), torch.nn.HuberLoss(delta=0.3),
    torch.nn.MSELoss(reduction="sum"), torch.nn.L1Loss(reduction="sum"), _quartic,
], ids=["mse", "l1", "smooth-l1", "huber", "mse-sum", "l1-sum", "function"])
@pytest.mark.parametrize("l1", [0.0, 0.01])
def test_each_replicas_loss_is_that_of_its_own_net(loss_fn, l1: float) -> None:
    """Element-wise losses with 'mean' are averaged per replica; any other loss goes through
    vmap: either way each replica's value is its own net's loss (plus its own L1 penalty)."""
    from pytest_optcheck.run.replicas import _batched_losses, _layers

    generator = torch.Generator().manual_seed(11)
    with torch.random.fork_rng():
        torch.manual_seed(4)
        nets = [torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3)) for _ in range(3)]
    params, _ = torch.func.stack_module_state(nets)
    x, y = torch.randn(9, 2, generator=generator), torch.randn(9, 3, generator=generator)
    values = _batched_losses(_layers(nets[0]), loss_fn, l1)(params, x, y)
    assert values.shape == (3,)
    for r, net in enumerate(nets):
        expected = loss_fn(net(x), y) + l1 * sum(p.abs().sum() for p in net.parameters())
        torch.testing.assert_close(values[r], expected.detach(), rtol=1e-6, atol=0)


def test_half_precision_parameters_move_by_their_own_ulp() -> None:
    for dtype in (torch.float16, torch.bfloat16):
        weights = torch.tensor([1.0, 2.0, -3.0, 0.5], dtype=dtype)
        before = weights.clone()
        _perturb_tensors_([weights], 0, 0)
        assert weights.dtype == dtype and torch.all(weights != before), dtype
        ulp = torch.where(weights > before, torch.nextafter(before, torch.tensor(np.inf, dtype=dtype)),
                          torch.nextafter(before, torch.tensor(-np.inf, dtype=dtype)))
        assert torch.equal(weights, ulp), dtype


def test_the_stacked_replicas_start_from_the_specs_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replica r of the stacked path is perturbed as the sequential replica r is (the
    losses alone cannot tell: one ulp apart, the two paths agree to rtol 2e-6)."""
    from pytest_optcheck.run import replicas as module

    calls: list[tuple[int, int]] = []
    real = module._perturb_tensors_

    def spy(tensors: list[torch.Tensor], seed: int, replica: int) -> None:
        calls.append((seed, replica))
        real(tensors, seed, replica)

    monkeypatch.setattr(module, "_perturb_tensors_", spy)
    assert replicas(SMALL.replace(seed=3), 3)[1] == STACKED
    assert calls == [(3, 0), (3, 1), (3, 2)]


def test_a_plain_stack_with_an_element_wise_loss_needs_no_vmap(monkeypatch: pytest.MonkeyPatch) -> None:
    """The catalog's MLP and MSE run as batched matmuls and a per-element loss: vmap's
    overhead per op would make the replicas about twice as slow."""
    def no_vmap(*args: object, **kwargs: object) -> None:
        raise AssertionError("vmap called")

    monkeypatch.setattr(torch.func, "vmap", no_vmap)
    runs, path = replicas(SMALL, 2)
    assert path == STACKED and len(runs) == 2
    from pytest_optcheck.run.replicas import _batched_losses, _layers

    layers = _layers(torch.nn.Sequential(torch.nn.Linear(1, 2)))
    for loss_fn in (torch.nn.MSELoss(), torch.nn.L1Loss(), torch.nn.SmoothL1Loss(), torch.nn.HuberLoss()):
        _batched_losses(layers, loss_fn, 0.0)
    for loss_fn in (torch.nn.MSELoss(reduction="sum"), _quartic):
        with pytest.raises(AssertionError, match="vmap called"):
            _batched_losses(layers, loss_fn, 0.0)


class Calls(torch.overrides.TorchFunctionMode):
    """Notes each torch function called, with its arguments."""

    def __init__(self) -> None:
        super().__init__()
        self.called: list[tuple[object, tuple]] = []

    @property
    def seen(self) -> list[object]:
        return [func for func, _ in self.called]

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.called.append((func, args))
        return func(*args, **(kwargs or {}))


def test_parameters_off_the_host_are_moved_on_their_device() -> None:
    """The signs are drawn on the host (one generator for every device) and moved to the
    parameter's device before they pick each limit ('meta' stands in for a GPU here)."""
    weights = torch.empty(3, device="meta")
    with Calls() as calls:
        _perturb_tensors_([weights], 0, 0)
    assert weights.device.type == "meta"
    masks = [args[1] for func, args in calls.called if func is torch.Tensor.masked_fill_]
    assert len(masks) == 1 and masks[0].device.type == "meta" and masks[0].dtype == torch.bool


def test_activations_right_after_a_linear_layer_run_in_place() -> None:
    """The in-place form where a linear layer's fresh output is the input (one buffer less
    a step, the same bits), never on the batch itself nor on another activation's output."""
    from pytest_optcheck.run.replicas import _batched_losses, _layers

    net = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Sigmoid(),
                              torch.nn.Linear(3, 2), torch.nn.ReLU())
    layers = _layers(net)
    params, _ = torch.func.stack_module_state([net, net])
    x, y = torch.ones(4, 2), torch.zeros(4, 2)
    losses = _batched_losses(layers, torch.nn.MSELoss(), 0.0)
    with Calls() as calls:
        losses(params, x, y)
    in_place = [f for f in calls.seen if f in (torch.tanh_, torch.sigmoid_, torch.relu_)]
    assert in_place == [torch.tanh_, torch.relu_]
    assert torch.sigmoid in calls.seen


def test_an_mlp_step_that_is_a_module_must_be_element_wise() -> None:
    from pytest_optcheck.declare.problems import MLP
    from pytest_optcheck.run.replicas import _layers

    model = MLP(1, 4, 1, activation="tanh")
    model._act = torch.nn.Softmax(dim=-1)  # not element-wise: the stack cannot run it
    assert _layers(model) is None
    model._act = torch.nn.Tanh()
    assert [name for name, _ in _layers(model)] == ["hidden", None, "predict"]


@pytest.mark.parametrize("record", [("lr",), ("momentum", "loss"), ("loss", "lr", "momentum")])
def test_stacked_replicas_record_the_series_asked_for(record: tuple[str, ...]) -> None:
    spec = SMALL.replace(record=record)
    (stacked,), path = replicas(spec, 1)
    (sequential,), _ = replicas(spec, 1, stacked=False)
    assert path == STACKED and stacked.names == sequential.names == train(spec).names
    for name in stacked.names:
        np.testing.assert_allclose(stacked[name], sequential[name], rtol=2e-6, err_msg=name)
