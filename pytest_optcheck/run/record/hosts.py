"""Host transfers: numbers computed on a device brought to the host with as few
synchronisations as possible — one transfer per device for many values.

:class:`HostFloat` is the reference loop's loss handed to a scheduler: it is read only if
the scheduler asks (``ReduceLROnPlateau``), so other schedulers never synchronise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


class HostFloat:
    """A number that stays where it was computed until something asks for it as a float.

    The reference loop hands the step's loss (and the epoch's mean loss) to the scheduler
    as one of these: ``ReduceLROnPlateau`` calls ``float()`` on its metric, so that
    scheduler synchronises once per call, and every other scheduler, which ignores the
    metric, never does. ``HostFloat.mean(values)`` is ``math.fsum(values) / len(values)``
    of the values as float64, whatever their device, with one transfer.
    """

    __slots__ = ("_mean", "_value", "_values")

    def __init__(self, value: Any, *, _mean: bool = False) -> None:
        self._values = value
        self._value: float | None = None
        self._mean = _mean

    @classmethod
    def mean(cls, values: Sequence[Any]) -> HostFloat:
        return cls(list(values), _mean=True)

    def __float__(self) -> float:
        if self._value is None:
            if self._mean:
                numbers_ = host_values(self._values)
                self._value = math.fsum(numbers_) / len(numbers_) if len(numbers_) else math.nan
            else:
                self._value = float(host_values([self._values])[0])
        return self._value

    def __format__(self, spec: str) -> str:
        return format(float(self), spec)

    def __repr__(self) -> str:
        return f"HostFloat({float(self)!r})"


def host_values(values: Sequence[Any]) -> np.ndarray:
    """Numbers and 0-d / one-element tensors as one float64 array, with one transfer per
    device (tensors of one device are stacked there first)."""
    out = np.empty(len(values), dtype=np.float64)
    by_device: dict[torch.device, tuple[list[int], list[torch.Tensor]]] = {}
    for i, value in enumerate(values):
        if isinstance(value, HostFloat) and value._value is None and not value._mean:
            value = value._values  # still on its device: joins the one transfer
        if isinstance(value, torch.Tensor):
            slots, tensors = by_device.setdefault(value.device, ([], []))
            slots.append(i)
            tensors.append(value.reshape(()))
        else:
            out[i] = float(value)
    for slots, tensors in by_device.values():
        stacked = torch.stack(tensors) if len(tensors) > 1 else tensors[0].reshape(1)
        out[slots] = to_numpy(stacked)
    return out


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """The one host transfer of a device tensor, as float64 numbers."""
    tensor = tensor.detach()
    if tensor.dtype in (torch.bfloat16, torch.float16) or tensor.dtype == torch.bool:
        tensor = tensor.float()
    return tensor.cpu().numpy().astype(np.float64, copy=False).reshape(-1)


def stack_scalars(tensors: list[torch.Tensor]) -> Any:
    """One-element tensors as one 1-d tensor on their device (no synchronisation), or as a
    list of 1-element tensors where they sit on several devices; None for none."""
    if not tensors:
        return None
    try:
        return torch.stack(tensors).reshape(-1)
    except RuntimeError:
        pass
    try:  # shapes () and (1,) mixed
        return torch.stack([t.reshape(()) for t in tensors])
    except RuntimeError:  # several devices: kept apart
        return [t.reshape(1) for t in tensors]


def scalars_to_host(stacked: list[Any]) -> np.ndarray:
    """What :func:`stack_scalars` made, in order, as float64: one transfer where the
    tensors share a device, one per tensor where they do not."""
    flat: list[torch.Tensor] = []
    for item in stacked:
        flat.extend(item) if isinstance(item, list) else flat.append(item)
    try:
        flat = [torch.cat(flat)] if len(flat) > 1 else flat
    except RuntimeError:  # several devices
        pass
    return np.concatenate([to_numpy(t) for t in flat])
