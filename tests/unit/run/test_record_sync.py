"""Recording adds no host-device synchronisation per step.

On the CPU the proof is a count: every conversion of a tensor to a Python number or to
host memory goes through ``__torch_function__``, so a mode counts them while a loop runs.
Recording must add none per step — the bare loop and the recorded loop convert exactly as
often — and the values reach the host once, when the trajectory is read. Where CUDA
exists, the same loops run under ``torch.cuda.set_sync_debug_mode("error")``.

A tensor logged on the CPU is read at once (its value is in host memory, so that
synchronises with nothing); these tests switch that off (``Recorder._read_cpu``, a test
hook), so the counts prove the path an accelerator's tensors take, run on the CPU.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.run.record import HostFloat, Recorder
from pytest_optcheck.run.record.hosts import host_values, scalars_to_host, stack_scalars, to_numpy
from pytest_optcheck.run.train import train

ALL = ("loss", "lr", "momentum", "grad_norm", "param_norm", "update_norm", "sparsity")
#: The calls that bring a value to the host. ``.numpy()`` is not among them: it fails on an
#: accelerator's tensor, so code that runs there calls ``.cpu()`` (counted) first.
HOST = {"item", "tolist", "cpu", "__float__", "__int__", "__bool__", "__index__", "__complex__",
        "__array__", "__format__"}


class HostConversions(TorchFunctionMode):
    """Counts the calls that bring a tensor's value to the host."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in HOST:
            self.count += 1
        return func(*args, **(kwargs or {}))


@pytest.fixture(autouse=True)
def accelerator_path(monkeypatch) -> None:
    monkeypatch.setattr(Recorder, "_read_cpu", False)


def loop(device, optimizer, steps, record=None, closure=False):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)).to(device)
    opt = optimizer(model.parameters())
    x = torch.randn(steps, 16, 4, device=device)
    y = torch.randn(steps, 16, 1, device=device)
    rec = Recorder(opt, model=model, record=record) if record else None

    def run(counter):
        if rec is not None:
            rec.__enter__()
        with counter:
            for i in range(steps):
                def step_closure(i=i):
                    opt.zero_grad()
                    loss = torch.nn.functional.mse_loss(model(x[i]), y[i])
                    loss.backward()
                    return loss

                if closure:
                    loss = opt.step(step_closure)
                else:
                    loss = step_closure()
                    opt.step()
                if rec is not None:
                    rec.log(loss=loss)
        if rec is not None:
            rec.close()
        return rec

    return run


OPTIMIZERS = {
    "SGD": lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9),
    "Adam": lambda ps: torch.optim.Adam(ps, lr=0.01),
}


@pytest.mark.parametrize("record", [("loss", "lr"), ALL], ids=["default", "all"])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_recording_converts_nothing_per_step_on_cpu(name, record) -> None:
    counts = {}
    for recorded in (None, record):
        for steps in (4, 12):
            counter = HostConversions()
            rec = loop("cpu", OPTIMIZERS[name], steps, recorded)(counter)
            counts[recorded is not None, steps] = counter.count
            if rec is not None:
                assert len(rec.trajectory) == steps
    # Adam reads its step counter with .item() on the CPU: the bare loop's own conversions.
    assert counts[True, 4] == counts[False, 4] and counts[True, 12] == counts[False, 12]


def test_on_the_cpu_a_logged_tensor_is_read_once_when_logged(monkeypatch) -> None:
    """The CPU's own path: one read per logged tensor, none for the recorder's series, and
    none when the trajectory is read."""
    monkeypatch.setattr(Recorder, "_read_cpu", True)
    counts = {}
    for recorded in (None, ALL):
        counter = HostConversions()
        rec = loop("cpu", OPTIMIZERS["SGD"], 12, recorded)(counter)
        counts[recorded] = counter.count
    assert counts[ALL] - counts[None] == 12  # rec.log(loss=loss), once a step
    counter = HostConversions()
    with counter:
        _ = rec.trajectory
    assert counter.count <= 4  # the four norms; loss, lr and momentum are numbers already


def test_reading_the_trajectory_converts_once_per_series() -> None:
    rec = loop("cpu", OPTIMIZERS["SGD"], 20, ALL)(HostConversions())
    counter = HostConversions()
    with counter:
        _ = rec.trajectory
    tensor_series = 5  # loss and the four norms; lr and momentum are Python numbers
    assert 0 < counter.count <= tensor_series


def test_lbfgs_through_a_closure_adds_nothing_either() -> None:
    lbfgs = lambda ps: torch.optim.LBFGS(ps, lr=0.1, max_iter=3)
    counts = []
    for recorded in (None, ALL):
        counter = HostConversions()
        loop("cpu", lbfgs, 6, recorded, closure=True)(counter)
        counts.append(counter.count)
    assert counts[0] == counts[1]  # LBFGS converts its own loss; recording adds none


def spec(**kw) -> Spec:
    return Spec.from_kwargs({"epochs": 3, "batch_size": 100, "record": list(ALL), **kw})


@pytest.mark.parametrize("scheduler, interval, per_epoch, per_step", [
    (None, "epoch", 0, 0),
    ("StepLR(step_size=1)", "epoch", 0, 0),
    ("ReduceLROnPlateau(patience=1)", "epoch", 1, 0),
    ("ReduceLROnPlateau(patience=1)", "step", 0, 1),
])
def test_reference_loop_converts_only_for_a_plateau_scheduler(scheduler, interval, per_epoch, per_step) -> None:
    """The reference loop keeps its loss on the device; ReduceLROnPlateau's metric (the
    epoch's mean loss, or the step's) is the only thing brought to the host, one per call."""
    counts = {}
    for epochs in (2, 4):
        counter = HostConversions()
        with counter:
            train(spec(scheduler=scheduler, interval=interval, epochs=epochs), threads=1)
        counts[epochs] = counter.count
    steps_per_epoch = 10  # 1000 samples, batches of 100
    assert counts[4] - counts[2] == 2 * (per_epoch + per_step * steps_per_epoch)


def test_host_float_is_the_exact_epoch_mean() -> None:
    values = [torch.tensor(v, dtype=torch.float32) for v in (0.1, 0.2, 0.7)]
    assert float(HostFloat.mean(values)) == math.fsum(float(v) for v in values) / 3
    assert f"{HostFloat(values[0]):.3f}" == "0.100"


# -- hosts.py: the transfers themselves ----------------------------------------------------


def test_host_values_keeps_every_value_in_its_place_as_float64() -> None:
    values = [0.5, torch.tensor(0.1, dtype=torch.float64), 3, torch.tensor([2.0]), HostFloat(torch.tensor(-1.0))]
    counter = HostConversions()
    with counter:
        out = host_values(values)
    assert out.dtype == np.float64
    assert out.tolist() == [0.5, 0.1, 3.0, 2.0, -1.0]  # 0.1 exactly: a float64 tensor is not narrowed
    assert counter.count == 1  # the three tensors of the CPU: one transfer
    assert host_values([torch.tensor(1.0), torch.tensor([2.0])]).tolist() == [1.0, 2.0]


def test_to_numpy_reads_half_precision_and_booleans_as_flat_float64() -> None:
    assert to_numpy(torch.tensor([1.5, -2.0], dtype=torch.bfloat16)).tolist() == [1.5, -2.0]
    assert to_numpy(torch.tensor([0.25], dtype=torch.float16)).tolist() == [0.25]
    assert to_numpy(torch.tensor([True, False])).tolist() == [1.0, 0.0]
    got = to_numpy(torch.tensor(0.5))
    assert got.shape == (1,) and got.dtype == np.float64


def test_stack_scalars_mixes_shapes_and_keeps_devices_apart() -> None:
    assert stack_scalars([]) is None
    mixed = stack_scalars([torch.tensor(1.0), torch.tensor([2.0]), torch.tensor([[3.0]])])
    assert mixed.shape == (3,) and mixed.tolist() == [1.0, 2.0, 3.0]
    apart = stack_scalars([torch.tensor(1.0), torch.empty((), device="meta")])
    assert isinstance(apart, list) and [t.shape for t in apart] == [(1,), (1,)]
    assert [t.device.type for t in apart] == ["cpu", "meta"] and apart[0].tolist() == [1.0]


def test_scalars_to_host_reads_blocks_in_order_with_one_transfer() -> None:
    blocks = [stack_scalars([torch.tensor(1.0), torch.tensor(2.0)]), [torch.tensor([3.0]), torch.tensor([4.0])],
              stack_scalars([torch.tensor([5.0])])]
    counter = HostConversions()
    with counter:
        out = scalars_to_host(blocks)
    assert out.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert counter.count == 1
    counter = HostConversions()
    with counter:
        out = scalars_to_host([torch.tensor([1.0, 2.0]), torch.tensor([3.0])])
    assert out.tolist() == [1.0, 2.0, 3.0] and counter.count == 1


def test_host_float_of_no_values_and_its_repr() -> None:
    assert math.isnan(float(HostFloat.mean([])))
    assert repr(HostFloat(torch.tensor(0.5))) == "HostFloat(0.5)"
    assert repr(HostFloat.mean([1, torch.tensor(2.0)])) == "HostFloat(1.5)"


# -- CUDA: the real thing -------------------------------------------------------------------

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@cuda
@pytest.mark.parametrize("record", [("loss", "lr"), ALL], ids=["default", "all"])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_recording_never_synchronises_on_cuda(name, record) -> None:
    run = loop("cuda", OPTIMIZERS[name], 8, record)
    run(HostConversions())  # warm-up outside the check: cuBLAS, allocator, lazy init
    run = loop("cuda", OPTIMIZERS[name], 8, record)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        rec = run(HostConversions())
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(rec.trajectory) == 8


@cuda
def test_reference_loop_on_cuda_synchronises_per_epoch_at_most() -> None:
    """Only the once-an-epoch shuffle copy and the end-of-run transfers synchronise."""
    train(spec(epochs=1), device="cuda")  # warm-up
    caught = {}
    for epochs in (2, 4):
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                train(spec(epochs=epochs, scheduler="StepLR(step_size=1)"), device="cuda")
        finally:
            torch.cuda.set_sync_debug_mode("default")
        caught[epochs] = sum("synchroniz" in str(w.message) for w in seen)
    assert caught[4] - caught[2] <= 2  # one per epoch at most; 10 steps an epoch would be 20


@cuda
def test_values_of_two_devices_are_read_per_device_in_their_places() -> None:
    cuda_, cpu = (lambda v: torch.tensor(v, device="cuda")), torch.tensor
    assert host_values([cuda_(1.0), cpu(2.0), 3.0, cuda_(4.0), cpu(5.0)]).tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    apart = stack_scalars([cuda_(1.0), cpu(2.0)])
    assert isinstance(apart, list)
    assert scalars_to_host([apart, stack_scalars([cuda_(3.0), cuda_(4.0)])]).tolist() == [1.0, 2.0, 3.0, 4.0]
