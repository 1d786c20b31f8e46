"""Which devices this machine has — asked at set-up and when judging orphans, so a test on
a missing device is skipped (never failed, never given a golden) by one rule.

torch is imported only for a device other than the CPU: a CPU-only session's gating costs
nothing.
"""

from __future__ import annotations

import re

DEVICE_PATTERN = re.compile(r"^(cpu|cuda(:\d+)?|mps)$")


def device_available(device: str) -> bool:
    """Whether this machine has ``device`` (imports torch unless the device is the CPU)."""
    if device == "cpu":
        return True
    import torch

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            return False
        return ":" not in device or int(device.split(":")[1]) < torch.cuda.device_count()
    return device == "mps" and torch.backends.mps.is_available()


def device_summary() -> str:
    """What this machine has, for a skip reason."""
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()} CUDA device(s)"
    return f"torch.cuda.is_available() is False; torch {torch.__version__}"
