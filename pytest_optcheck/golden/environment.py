"""The environment a trajectory was recorded in: what it depends on besides the spec.

Compared on every check: a golden from another torch still checks, and a failure says
which versions differ, and the sentences that say so (:func:`environment_text`, :func:`library_change_text`).
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

ENV_KEYS = ("torch", "numpy", "python", "device", "device_name", "dtype", "platform")
#: Kept only for a run recorded in a process group (pytest under torchrun).
WORLD_KEYS = ("world_size", "backend")


def environment(device: str = "cpu", dtype: str = "float32", libraries: Iterable[str] = ()) -> dict[str, Any]:
    """What a trajectory depends on besides the spec (imports torch: call at run time).

    ``libraries``: top-level modules other than torch that the optimizer, scheduler or
    model come from (:func:`~pytest_optcheck.declare.catalog.library_modules`); their versions
    are kept under ``"libraries"``, a key left out when there are none (so goldens of
    torch-only runs keep their environment block)."""
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
        **_world(),
        **({"libraries": versions} if (versions := library_versions(libraries)) else {}),
    }


def _world() -> dict[str, Any]:
    """``world_size`` and ``backend`` of the initialised process group a run recorded in
    (pytest under torchrun); nothing outside one, so one-process goldens keep their block."""
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        return {}
    return {"world_size": dist.get_world_size(), "backend": str(dist.get_backend())}


def library_versions(modules: Iterable[str]) -> dict[str, str]:
    """``{"pytorch_optimizer": "4.1.0"}``: each module's distribution version (its
    ``__version__`` when no installed distribution provides it; modules that are neither,
    such as the project's own test files, are left out)."""
    out: dict[str, str] = {}
    for module in modules:
        version = _distribution_version(module)
        if version is None:
            version = getattr(sys.modules.get(module), "__version__", None)
        if isinstance(version, str):
            out[module] = version
    return out


def _distribution_version(module: str) -> str | None:
    """The version of the distribution that installs ``module``: by the module's own name
    first (cheap, and right for most libraries), else — only for a module installed in
    site-packages — through the one scan of all installed metadata."""
    try:
        return importlib.metadata.version(module)
    except importlib.metadata.PackageNotFoundError:
        pass
    file = getattr(sys.modules.get(module), "__file__", None) or ""
    if "site-packages" not in file and "dist-packages" not in file:
        return None
    for dist in _distributions().get(module, []):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


@functools.cache
def _distributions() -> Mapping[str, list[str]]:
    """Top-level module -> distributions (one scan of the installed metadata per session)."""
    return importlib.metadata.packages_distributions()


def environment_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Keys whose values differ, as ``"torch 2.11.0 -> 2.13.0"`` (then third-party libraries,
    see :func:`library_changes`)."""
    return [f"{k} {old.get(k)} -> {new.get(k)}" for k in ENV_KEYS + WORLD_KEYS if old.get(k) != new.get(k)] + \
        library_changes(old, new)


def library_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Third-party libraries of the run whose versions differ, as ``"pytorch_optimizer 3.9.0 -> 4.1.0"``."""
    before, after = old.get("libraries") or {}, new.get("libraries") or {}
    names = list(dict.fromkeys([*before, *after]))
    return [f"{n} {before.get(n, 'absent')} -> {after.get(n, 'absent')}" for n in names if before.get(n) != after.get(n)]


def torch_minor_key() -> str:
    """``torch-2.13`` for the installed torch (imports torch): the per-version golden folder."""
    import torch

    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    return f"torch-{major}.{minor}"


# -- in words -------------------------------------------------------------------------


def environment_text(old: Mapping[str, Any], new: Mapping[str, Any], changes: Sequence[str]) -> str:
    return (f"environment differs: recorded with {describe_environment(old)}; "
            f"now {describe_environment(new)} ({'; '.join(changes)})")


def describe_environment(env: Mapping[str, Any]) -> str:
    return (f"torch {env.get('torch')} on {env.get('device_name') or env.get('device')} "
            f"({env.get('device')}, {env.get('dtype')})")


def library_change_text(changes: Sequence[str]) -> str:
    """A failure that coincides with a new release of the library the run's optimizer,
    scheduler or model comes from: the likeliest cause, so it is said first."""
    return (f"the run uses third-party code whose version changed since the golden was recorded "
            f"({'; '.join(changes)}): check its release notes before suspecting your own change")
