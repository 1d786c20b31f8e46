"""Whether a recorded run ran under ``torch.autocast``, and in which dtype.

Autocast is part of the run: a loop under ``torch.autocast("cpu", dtype=torch.bfloat16)``
computes in bfloat16 whatever its parameters' dtype, so its golden must not describe it as a
plain float32 run. Only public torch is asked — ``torch.is_autocast_enabled(device_type)``
and ``torch.get_autocast_dtype(device_type)`` — at the moments the recorder sees the loop:
each optimizer step, each ``rec.log``, and the first :data:`FORWARDS_WATCHED` forwards of the
recorded model (the usual recipe runs the forward under autocast and steps outside it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

#: Forwards of the model looked at before its hook is removed: autocast wraps a loop from its
#: start, and a module with a forward hook takes torch's slower call path on every forward
#: (A/B in one process, seed net, default recording, 15 interleaved rounds: 223.8 us a step with
#: the hook kept for the whole run, 221.2 with it removed after 16 forwards: 1.2% of the step).
FORWARDS_WATCHED = 16


class AutocastSeen:
    """The autocast dtypes seen on the parameters' device type while a run was recorded."""

    def __init__(self, optimizer: Any, model: Any = None) -> None:
        self._optimizer = optimizer
        self._device_type: str | None = None
        self.dtypes: list[str] = []
        self._handle = None
        self._enabled: Callable[[], bool] | None = None
        self._forwards = 0
        if model is not None and callable(getattr(model, "register_forward_pre_hook", None)):
            self._handle = model.register_forward_pre_hook(self._on_forward)

    def _on_forward(self, module: Any, args: Any) -> None:
        self.note()
        self._forwards += 1
        if self._forwards >= FORWARDS_WATCHED:
            self.close()

    def note(self) -> None:
        """Look now: is autocast on for the parameters' device type, and in which dtype?
        (Runs at every step, log and forward: one call into torch when autocast is off.)"""
        device_type = self._device_type or self._find_device_type()
        if self._enabled is None:
            self._enabled = _enabled_check(device_type)
        if not self._enabled():
            return
        import torch

        name = str(torch.get_autocast_dtype(device_type)).removeprefix("torch.")
        if name not in self.dtypes:
            self.dtypes.append(name)

    def _find_device_type(self) -> str:
        for group in getattr(self._optimizer, "param_groups", ()):
            for param in group.get("params", ()):
                self._device_type = param.device.type
                return self._device_type
        self._device_type = "cpu"
        return self._device_type

    @property
    def value(self) -> str | None:
        """``"bfloat16"`` (several, comma-separated, in the order seen), or None: no autocast."""
        return ", ".join(self.dtypes) if self.dtypes else None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


def _enabled_check(device_type: str) -> Callable[[], bool]:
    """``torch.is_autocast_enabled(device_type)`` bound once (the device-type form, like
    ``get_autocast_dtype(device_type)``, exists in every torch the package supports: >= 2.11)."""
    import torch

    return functools.partial(torch.is_autocast_enabled, device_type)
