"""The one way optcheck writes a file (goldens, pictures, the report), and how it shows paths.

Every write goes through a temporary file in the same folder and a rename, so a crash or a
concurrent reader (an xdist worker, an editor) never sees half a golden or half a PNG. The
file gets the permissions any new file there would get (``0o666`` less the umask) — not the
private ``0o600`` that :func:`tempfile.mkstemp` gives — because goldens are shared, committed
data.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomic(path: str | os.PathLike[str], content: str | Callable[[str], None]) -> None:
    """Write ``content`` (text, or a function that writes to the temporary path it is
    given, like ``figure.savefig``) to ``path`` atomically, with the umask's permissions."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Hidden, and short enough for the 255-byte limit even next to a long golden name.
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:200]}.", suffix=".tmp", dir=target.parent)
    try:
        if callable(content):
            os.close(fd)
            content(tmp)
        else:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def new_file_mode() -> int:
    """``0o666`` less the process umask: the mode ``open(path, "w")`` would give."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def read_text(path: str | os.PathLike[str]) -> str | None:
    """The file's text, or None when there is no file. Bytes that are not UTF-8 come back
    as a string no golden parser accepts, so the damage is reported by path."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        return "\0not utf-8"


def relative_to_cwd(path: str | os.PathLike[str]) -> str:
    """``path`` relative to the working directory when it lies below it (shorter messages)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
