"""Golden files: format, layout on disk, environment, and safe writes.

A golden is JSON, stable and readable in a code-review diff: a header (schema version,
the test, the canonical spec, the environment) and then one value per line for every
series, so a review shows exactly which steps moved. Floats are written with Python's
shortest round-trip repr, so reading a golden gives back the very same float64 values;
non-finite values are written as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.
Loading never executes code (plain ``json``, no pickle).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import GoldenFileError
from .trajectory import Trajectory, encode_floats

SCHEMA_KEY = "optcheck_golden"
SCHEMA_VERSION = 1
SUFFIX = ".json"


@dataclasses.dataclass
class Golden:
    """A trajectory with the context it was recorded in."""

    trajectory: Trajectory
    spec: dict[str, Any] | None = None
    environment: dict[str, Any] = dataclasses.field(default_factory=dict)
    test: str | None = None
    name: str | None = None

    @property
    def label(self) -> str:
        """A short human label: the optimizer (and scheduler) of the spec, else the test."""
        if self.spec:
            parts = [str(self.spec.get("optimizer"))]
            if self.spec.get("scheduler"):
                parts.append(str(self.spec["scheduler"]))
            return " + ".join(parts)
        return self.test or "trajectory"


# -- text format -------------------------------------------------------------------


def dumps(golden: Golden) -> str:
    """Serialise with a fixed key order and LF line endings."""
    traj = golden.trajectory
    head = {
        SCHEMA_KEY: SCHEMA_VERSION,
        "test": golden.test,
        "name": golden.name,
        "spec": golden.spec,
        "environment": golden.environment,
        "meta": traj.meta,
    }
    lines = ["{"]
    for key, value in head.items():
        block = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
        lines.append(f'  "{key}": ' + block.replace("\n", "\n  ") + ",")
    lines.append(f'  "steps": {len(traj)},')
    lines.append(f'  "epoch": {json.dumps(traj.epoch.tolist())},')
    lines.append(f'  "batch": {json.dumps(traj.batch.tolist())},')
    lines.append('  "series": {')
    names = traj.names
    for i, name in enumerate(names):
        values = encode_floats(traj[name])
        rows = [json.dumps(v) for v in values]
        body = ",\n      ".join(rows)
        key = json.dumps(name, ensure_ascii=False)
        lines.append(f"    {key}: [" + (f"\n      {body}\n    ]" if rows else "]"))
        if i < len(names) - 1:
            lines[-1] += ","
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def loads(text: str, path: str | os.PathLike[str] | None = None) -> Golden:
    """Parse a golden; any problem is a GoldenFileError naming the file and the fix."""
    where = f"golden file {str(path)!r}" if path else "golden data"
    fix = (
        "Restore it from version control, or re-record it with "
        "`pytest --optcheck --snapshot-update` on the test that owns it."
    )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GoldenFileError(
            f"optcheck: {where} is not valid JSON ({exc.msg} at line {exc.lineno}, column "
            f"{exc.colno}); it may be truncated or hold a merge conflict. {fix}"
        ) from None
    if not isinstance(data, dict) or SCHEMA_KEY not in data:
        raise GoldenFileError(f"optcheck: {where} is not an optcheck golden (no {SCHEMA_KEY!r} key). {fix}")
    version = data[SCHEMA_KEY]
    if version != SCHEMA_VERSION:
        raise GoldenFileError(
            f"optcheck: {where} has schema version {version!r}, but this pytest-optcheck reads "
            f"version {SCHEMA_VERSION}. Upgrade pytest-optcheck if the golden is newer, or "
            f"re-record it with `pytest --optcheck --snapshot-update`."
        )
    try:
        for key, kinds in (("series", dict), ("spec", (dict, type(None))), ("environment", (dict, type(None))),
                           ("meta", (dict, type(None)))):
            if key in data and not isinstance(data[key], kinds):
                raise ValueError(f"{key!r} is a {type(data[key]).__name__}, not an object")
        for key in ("series", "epoch", "batch"):
            if key not in data:
                raise ValueError(f"the {key!r} key is missing")
        traj = Trajectory.from_dict(
            {"series": data["series"], "epoch": data["epoch"], "batch": data["batch"], "meta": data.get("meta")}
        )
        if "steps" in data and data["steps"] != len(traj):
            raise ValueError(f"header says {data['steps']} steps but the series have {len(traj)}")
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        # any malformed content: a clean message naming the file, never a traceback
        raise GoldenFileError(f"optcheck: {where} is damaged: {exc}. {fix}") from None
    return Golden(
        trajectory=traj,
        spec=data.get("spec"),
        environment=data.get("environment") or {},
        test=data.get("test"),
        name=data.get("name"),
    )


def read(path: str | os.PathLike[str]) -> Golden:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GoldenFileError(f"optcheck: no golden file at {str(path)!r}.") from None
    except UnicodeDecodeError:
        raise GoldenFileError(f"optcheck: golden file {str(path)!r} is not UTF-8 text.") from None
    return loads(text, path)


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write through a temporary file in the same folder and rename: a crash or a
    concurrent reader never sees a half-written golden."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Hidden, and short enough for the 255-byte limit even next to a long golden name.
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:200]}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- environment -------------------------------------------------------------------


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


ENV_KEYS = ("torch", "numpy", "python", "device", "device_name", "dtype", "platform")


def environment_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Keys whose values differ, as ``"torch 2.11.0 -> 2.13.0"``."""
    return [f"{k} {old.get(k)} -> {new.get(k)}" for k in ENV_KEYS if old.get(k) != new.get(k)]


def describe_environment(env: Mapping[str, Any]) -> str:
    return f"torch {env.get('torch')} on {env.get('device_name') or env.get('device')} ({env.get('device')}, {env.get('dtype')})"


#: Stands for a spec key one side does not have (a key added in a newer version).
ABSENT = "(absent)"


def spec_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[tuple[str, Any, Any]]:
    """Keys whose canonical values differ, as ``(key, old, new)``."""
    if old is None or new is None:
        return []
    keys = list(dict.fromkeys([*old, *new]))
    return [(k, old.get(k, ABSENT), new.get(k, ABSENT)) for k in keys if old.get(k, ABSENT) != new.get(k, ABSENT)]


# -- layout ------------------------------------------------------------------------

_SAFE = re.compile(r"[^A-Za-z0-9_.,=+@\[\]-]")
MAX_STEM = 180
#: File names stay within the 255 bytes every common file system allows.
MAX_FILENAME = 250


def safe_filename(name: str, limit: int = MAX_STEM) -> str:
    """A file name that stays inside its folder and cannot collide with another id.

    Characters outside a portable (ASCII) set become ``_``; when anything was replaced
    (or the name was cut to ``limit`` characters) a short hash of the original is
    appended, so ``adam/w`` and ``adamw`` (or ``a b`` and ``a_b``) get different files.
    The result is at most ``limit + 9`` characters.
    """
    safe = _SAFE.sub("_", name)
    if safe.startswith("."):
        safe = "_" + safe[1:]
    if safe != name or len(safe) > limit:
        digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
        safe = f"{safe[:limit]}~{digest}"
    return safe


@dataclasses.dataclass(frozen=True)
class GoldenLayout:
    """Where goldens live: ``root/[key/]<test file path without .py>/<test id>[--name].json``.

    ``key`` is an optional subfolder (e.g. ``torch-2.13``) for projects that keep one set
    of goldens per torch version.
    """

    root: Path
    rootdir: Path
    key: str | None = None

    @property
    def base(self) -> Path:
        return self.root / self.key if self.key else self.root

    def folder_for(self, test_file: str | os.PathLike[str]) -> Path:
        path = Path(test_file)
        try:
            relative = path.resolve().relative_to(self.rootdir.resolve())
        except ValueError:
            relative = Path(safe_filename(str(path.resolve().parent))) / path.name
        parts = [safe_filename(p) for p in relative.with_suffix("").parts]
        return self.base.joinpath(*parts)

    def path_for(self, test_file: str | os.PathLike[str], test_id: str, name: str | None = None) -> Path:
        stem = safe_filename(test_id)
        if name:  # the name is cut (and hashed) so the whole file name stays short enough
            room = MAX_FILENAME - len(stem) - len("--") - len(SUFFIX) - len("~12345678")
            stem += "--" + safe_filename(name, limit=min(MAX_STEM, room))
        return self.folder_for(test_file) / f"{stem}{SUFFIX}"

    def stem_prefixes(self, test_file: str | os.PathLike[str], test_id: str) -> tuple[Path, str]:
        """Folder and filename prefix shared by every golden of one test (any name)."""
        return self.folder_for(test_file), safe_filename(test_id)

    def other_keys(self, path: str | os.PathLike[str]) -> list[str]:
        """The other keys under which the golden at ``path`` was recorded: ``torch-2.11``
        for ``root/torch-2.11/<same relative path>``, and ``no key`` for a golden kept
        directly under the root while this layout has a key."""
        try:
            relative = Path(path).relative_to(self.base)
        except ValueError:
            return []
        found = []
        if self.key and (self.root / relative).is_file():
            found.append("no key")
        if self.root.is_dir():
            folders = [f for f in self.root.iterdir() if f.name != self.key and KEY_FOLDER.match(f.name)]
            for folder in sorted(folders, key=_version_order):
                if (folder / relative).is_file():
                    found.append(folder.name)
        return found


#: Folders that hold one set of goldens per torch version (``optcheck_golden_key``).
KEY_FOLDER = re.compile(r"^torch-(\d+)\.(\d+)$")


def _version_order(folder: Path) -> tuple[int, ...]:
    match = KEY_FOLDER.match(folder.name)
    return tuple(int(g) for g in match.groups()) if match else ()


def missing_hint(layout: GoldenLayout, path: str | os.PathLike[str]) -> str:
    """A line for the "no golden" message when goldens of the same check exist under
    other keys (another torch version), else ``""``."""
    keys = layout.other_keys(path)
    if not keys:
        return ""
    return (f"goldens of this test exist for: {', '.join(keys)} (optcheck_golden_key = "
            f"{'torch-minor' if layout.key else 'none'} looks under {layout.key or 'the root'})")


def relative_to_cwd(path: str | os.PathLike[str]) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def torch_minor_key() -> str:
    """``torch-2.13`` for the installed torch (imports torch)."""
    import torch

    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    return f"torch-{major}.{minor}"


__all__ = [
    "Golden",
    "GoldenLayout",
    "dumps",
    "environment",
    "environment_changes",
    "loads",
    "missing_hint",
    "read",
    "safe_filename",
    "spec_changes",
    "write_atomic",
]
