"""Which optimizer step() calls are steps: the outermost call only.

torch wraps the step() of each optimizer class it makes an instance of, and the wrapper fires
the step hooks. A subclass whose step() calls ``super().step()`` is then hooked twice per
step — but only once the parent class has had an instance in this process, so a recording
that counted every hooked call would depend on which optimizers were made before it (on
test order). :class:`OpenSteps` tells the outermost call from an inner one.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import torch


class OpenSteps:
    """The step calls running now, each kept as the frame of torch's wrapper running it,
    outermost first. A call is nested while an earlier one's frame is still on the stack; an
    open call whose frame is not is a step that raised (its post-hook never ran), and is
    dropped. The stack is walked whole only while a call is open: a plain step looks a few
    frames up."""

    def __init__(self) -> None:
        self._frames: list[Any] = []

    def enter(self) -> bool:
        """At a step's pre-hook: whether this call is the outermost one (a step)."""
        wrapper = _step_wrapper_frame()
        if self._frames:
            live = set()
            frame = wrapper.f_back if wrapper is not None else None
            while frame is not None:
                live.add(id(frame))
                frame = frame.f_back
            self._frames = [f for f in self._frames if id(f) in live]
        self._frames.append(wrapper)
        return len(self._frames) == 1

    def leave(self) -> bool:
        """At a step's post-hook: whether the call ending was the outermost one."""
        if self._frames:
            self._frames.pop()
        return not self._frames

    def clear(self) -> None:
        """Forget every open call (a step that raised keeps its frame until now)."""
        self._frames = []


@functools.cache
def _step_wrapper_code() -> Any:
    """The code of the wrapper torch puts around every optimizer class's step() (the one that
    fires the step hooks): one code object, whichever class it wraps."""
    return torch.optim.Optimizer.profile_hook_step(lambda: None).__code__


def _step_wrapper_frame() -> Any:
    """The frame of torch's step wrapper that is calling the hooks now (a few frames up), or
    None if there is none (another torch: every call then counts as a step)."""
    code = _step_wrapper_code()
    frame = inspect.currentframe()
    while frame is not None and frame.f_code is not code:
        frame = frame.f_back
    return frame
