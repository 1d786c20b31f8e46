"""Reading what an end-to-end session wrote under its ``golden/`` folder."""

from __future__ import annotations

import json
from pathlib import Path


def golden_files(root: Path) -> list[str]:
    """Every golden under ``root/golden``, as sorted posix paths relative to ``root``."""
    base = root / "golden"
    if not base.exists():
        return []
    return sorted(p.relative_to(root).as_posix() for p in base.rglob("*.json"))


def read_golden(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
