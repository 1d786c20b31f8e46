"""``optcheck diff A B | head``: a reader that closes the pipe early is no error (issue 19, item 12)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_a_closed_pipe_ends_quietly() -> None:
    golden = sorted((ROOT / "golden" / "examples").rglob("*.json"))
    a, b = str(golden[0]), str(golden[1])
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line is written: every write fails
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run([sys.executable, "-m", "pytest_optcheck", "diff", a, b], check=False, stdout=write,
                              stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    finally:
        os.close(write)
    assert done.stderr == ""
    assert done.returncode == 141
