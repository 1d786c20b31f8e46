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

import warnings

import pytest
import torch
from torch.overrides import TorchFunctionMode

from pytest_optcheck.declare.spec import Spec
from pytest_optcheck.run.record import HostFloat, Recorder
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
    import math

    assert float(HostFloat.mean(values)) == math.fsum(float(v) for v in values) / 3
    assert f"{HostFloat(values[0]):.3f}" == "0.100"


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
