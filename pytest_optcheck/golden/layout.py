"""Where goldens live: the one place that maps a test to its golden path — and back.

``root/[key/]<test file path without .py>/<TestClass.test_name[params]>[--name].json``:
a reader finds the golden of a test without searching. Going back — which test owns a file,
which device a file was recorded on — is answered here too, by the same rules, so pruning
never disagrees with writing. The report's picture names are made here as well.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from pathlib import Path

SUFFIX = ".json"
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

    def golden_path(self, test_file: str | os.PathLike[str], nodeid: str, name: str | None = None) -> Path:
        """The golden of check ``name`` of the test ``nodeid`` defined in ``test_file``."""
        return self.path_for(test_file, test_id(nodeid), name)

    def owner(self, test_file: str | os.PathLike[str], nodeid: str) -> tuple[str, str]:
        """(folder relative to :attr:`root`, file stem): what every golden of one test shares,
        whatever the check's name. Computed without the key, so collection needs no torch."""
        folder = GoldenLayout(self.root, self.rootdir).folder_for(test_file)
        return folder.relative_to(self.root).as_posix(), safe_filename(test_id(nodeid))

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


def test_id(nodeid: str) -> str:
    """The id a golden is named after: ``TestClass.test_name[params]`` (syrupy's too)."""
    parts = nodeid.split("::")
    classname = ".".join(parts[1:-1])
    return f"{classname}.{parts[-1]}" if classname else parts[-1]


def owns(filename: str, stem: str) -> bool:
    """Whether the golden file ``filename`` belongs to the test whose stem is ``stem``."""
    return filename == stem + SUFFIX or filename.startswith(stem + "--")


#: A device parameter id inside a golden's file name: ``[cpu]``, ``[a-cuda]``, ``[cuda_1]``
#: (``cuda:1`` after :func:`safe_filename`).
_DEVICE_ID = re.compile(r"(?<=[\[-])(cpu|cuda(?:_\d+)?|mps)(?=[\]-])")


def device_of(filename: str) -> str | None:
    """The device a golden was recorded on, read from its file name (None: no device id)."""
    bracket = filename.rfind("]")
    found = _DEVICE_ID.findall(filename[: bracket + 1]) if bracket >= 0 else []
    return found[-1].replace("_", ":") if found else None


def picture_name(nodeid: str, name: str | None) -> str:
    """The report's PNG for a check: flat, unique per test and check name."""
    stem = nodeid.replace("/", "__").replace("::", "--") + (f"--{name}" if name else "")
    return safe_filename(stem) + ".png"
