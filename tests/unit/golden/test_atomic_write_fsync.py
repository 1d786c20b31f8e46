"""A golden reaches the disk before it replaces the old one (golden/files.py): the temporary
file is flushed and fsync'd, then renamed. Without the fsync a crash right after the rename can
leave an empty golden where a good one was (issue 22, promise 2)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_optcheck.golden import files


def test_the_temporary_file_is_fsynced_before_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[tuple[str, object]] = []
    fsync, replace = os.fsync, os.replace

    def recording_fsync(fd: int) -> None:
        events.append(("fsync", os.fstat(fd).st_ino))
        fsync(fd)

    def recording_replace(src: str, dst: str) -> None:
        events.append(("replace", os.stat(src).st_ino))
        replace(src, dst)

    monkeypatch.setattr(files.os, "fsync", recording_fsync)
    monkeypatch.setattr(files.os, "replace", recording_replace)
    target = tmp_path / "golden" / "test_a.json"
    target.parent.mkdir()
    target.write_text("old", encoding="utf-8")
    files.write_atomic(target, '{"new": true}\n')
    monkeypatch.undo()

    assert [kind for kind, _ in events] == ["fsync", "replace"]
    (_, synced), (_, renamed) = events
    assert synced == renamed == target.stat().st_ino  # the file fsync'd is the one renamed into place
    assert target.read_text(encoding="utf-8") == '{"new": true}\n'
