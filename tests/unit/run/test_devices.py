"""Which devices this machine has: the one rule that skips a test on a missing device.

The CPU answers without torch. CUDA and MPS are asked of torch; on this CPU-only machine
their answers are set with monkeypatch, so each branch of the rule is taken (the real
CUDA answers are checked on a GPU by benchmarks/cuda_checks.sh)."""

from __future__ import annotations

import pytest
import torch

from pytest_optcheck.run.devices import DEVICE_PATTERN, device_available, device_summary


@pytest.fixture
def gpus(monkeypatch: pytest.MonkeyPatch):
    """Make torch report ``n`` CUDA devices (0: none) and MPS present or not."""
    def set_to(n: int, mps: bool = False) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    return set_to


def test_the_cpu_is_always_there() -> None:
    assert device_available("cpu")


def test_cuda_devices_are_there_up_to_the_count(gpus) -> None:
    gpus(2)
    assert [device_available(d) for d in ("cuda", "cuda:0", "cuda:1", "cuda:2", "mps")] == [
        True, True, True, False, False]
    assert device_summary() == "2 CUDA device(s)"


def test_no_cuda_device_without_cuda(gpus) -> None:
    gpus(0, mps=True)
    assert [device_available(d) for d in ("cuda", "cuda:0", "mps", "xla")] == [False, False, True, False]
    assert device_summary() == f"torch.cuda.is_available() is False; torch {torch.__version__}"


def test_the_device_names_optcheck_accepts() -> None:
    assert [bool(DEVICE_PATTERN.match(d)) for d in ("cpu", "cuda", "cuda:12", "mps", "cuda:", "gpu", "cpu ")] == [
        True, True, True, True, False, False, False]
