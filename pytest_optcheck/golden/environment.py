"""The environment a trajectory was recorded in: what it depends on besides the spec.

Compared on every check: a golden from another torch still checks, and a failure says
which versions differ (worded by :func:`pytest_optcheck.engine.messages.environment_text`).
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from typing import Any

ENV_KEYS = ("torch", "numpy", "python", "device", "device_name", "dtype", "platform")


def environment(device: str = "cpu", dtype: str = "float32") -> dict[str, Any]:
    """What a trajectory depends on besides the spec (imports torch: call at run time)."""
    import numpy
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        device_name = torch.cuda.get_device_name(torch.device(device))
    else:
        device_name = platform.processor() or platform.machine() or "cpu"
    return {
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "device": device,
        "device_name": device_name,
        "dtype": dtype,
        "platform": f"{platform.system()}-{platform.machine()}",
    }


def environment_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Keys whose values differ, as ``"torch 2.11.0 -> 2.13.0"``."""
    return [f"{k} {old.get(k)} -> {new.get(k)}" for k in ENV_KEYS if old.get(k) != new.get(k)]


def torch_minor_key() -> str:
    """``torch-2.13`` for the installed torch (imports torch): the per-version golden folder."""
    import torch

    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    return f"torch-{major}.{minor}"
