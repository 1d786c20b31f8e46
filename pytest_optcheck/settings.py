"""Run-wide settings from the command line and the ini file, with one precedence rule:
a command-line option beats the ini value, which beats the built-in default.

Kept apart from the hooks so it can be read and tested without a pytest session.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import OptcheckError

DEVICE_PATTERN = re.compile(r"^(cpu|cuda(:\d+)?|mps)$")
GOLDEN_KEYS = ("none", "torch-minor")


@dataclasses.dataclass(frozen=True)
class Settings:
    enabled: bool
    devices: tuple[str, ...]
    golden_root: Path
    rootdir: Path
    golden_key: str = "none"
    ini_tolerances: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    cli_tolerances: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    report_dir: Path | None = None
    sensitivity: bool = False
    prune: bool = False
    update: bool = False
    threads: int | None = None


def parse_devices(value: str, *, where: str) -> tuple[str, ...]:
    devices = tuple(d.strip() for d in value.replace(";", ",").split(",") if d.strip())
    if not devices:
        raise OptcheckError(f"optcheck: {where}={value!r} names no device; use e.g. cpu or cpu,cuda.")
    for device in devices:
        if not DEVICE_PATTERN.match(device):
            raise OptcheckError(
                f"optcheck: {where}={value!r}: unknown device {device!r}; "
                f"use cpu, cuda, cuda:N or mps, comma-separated (e.g. cpu,cuda)."
            )
    return tuple(dict.fromkeys(devices))


def parse_bool(value: Any, *, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("", "0", "false", "no", "off"):
        return False
    raise OptcheckError(f"optcheck: {where}={value!r} must be true or false.")


def build_settings(
    *,
    rootdir: Path,
    option: Mapping[str, Any],
    ini: Mapping[str, Any],
) -> Settings:
    """Resolve Settings from option values (None = not given) and ini values."""
    from .compare import parse_tolerance_lines

    enabled = bool(option.get("optcheck")) or parse_bool(ini.get("optcheck", False), where="ini optcheck")
    device_text = option.get("optcheck_device") or ini.get("optcheck_devices") or "cpu"
    where = "--optcheck-device" if option.get("optcheck_device") else "ini optcheck_devices"
    devices = parse_devices(str(device_text), where=where)
    golden_dir = option.get("optcheck_golden_dir") or ini.get("optcheck_golden_dir") or "golden"
    golden_key = str(ini.get("optcheck_golden_key") or "none").strip()
    if golden_key not in GOLDEN_KEYS:
        raise OptcheckError(
            f"optcheck: ini optcheck_golden_key={golden_key!r} must be one of {', '.join(GOLDEN_KEYS)}."
        )
    try:
        ini_tol = parse_tolerance_lines(ini.get("optcheck_tolerance") or [], where="ini optcheck_tolerance")
        cli_tol = parse_tolerance_lines(option.get("optcheck_tolerance") or [], where="--optcheck-tolerance")
    except ValueError as exc:
        raise OptcheckError(str(exc)) from None
    threads_text = option.get("optcheck_threads") or ini.get("optcheck_threads") or ""
    threads = parse_threads(str(threads_text), where="--optcheck-threads" if option.get("optcheck_threads")
                            else "ini optcheck_threads")
    report = option.get("optcheck_report")
    return Settings(
        enabled=enabled,
        devices=devices,
        golden_root=(rootdir / golden_dir).resolve(),
        rootdir=rootdir,
        golden_key=golden_key,
        ini_tolerances=ini_tol,
        cli_tolerances=cli_tol,
        report_dir=Path(report).resolve() if report else None,
        sensitivity=bool(option.get("optcheck_sensitivity")),
        prune=bool(option.get("optcheck_prune")),
        update=bool(option.get("update_snapshots")),
        threads=threads,
    )


def parse_threads(value: str, *, where: str) -> int | None:
    text = value.strip().lower()
    if text in ("", "none", "auto"):
        return None
    if not text.isdigit() or int(text) < 1:
        raise OptcheckError(f"optcheck: {where}={value!r} must be a positive integer (or none).")
    return int(text)


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
