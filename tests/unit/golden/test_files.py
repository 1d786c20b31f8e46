"""golden/files.py's small promises, pinned where benchmarks/mutation.py found them loose: the
temporary file is hidden, named after the target and lies in its folder (so the rename is atomic
and an interrupted write leaves no file a glob for goldens would pick up); a writer that removed
the temporary file itself still fails with its own error; reading names a missing or non-UTF-8
file; paths are shown relative to the working directory when they lie below it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_optcheck.golden import files


def temporary_of(target: Path, monkeypatch: pytest.MonkeyPatch, content: str = "{}\n") -> Path:
    seen: list[str] = []
    replace = os.replace

    def recording(src: str, dst: str) -> None:
        seen.append(src)
        replace(src, dst)

    monkeypatch.setattr(files.os, "replace", recording)
    files.write_atomic(target, content)
    monkeypatch.undo()
    (src,) = seen
    return Path(src)


def test_the_temporary_file_is_hidden_named_after_the_target_and_beside_it(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "golden" / "test_a[cpu].json"
    tmp = temporary_of(target, monkeypatch)
    assert tmp.parent == target.parent
    assert tmp.name.startswith(".test_a[cpu].json.") and tmp.name.endswith(".tmp")
    assert not tmp.exists() and target.read_text(encoding="utf-8") == "{}\n"


def test_a_long_target_name_is_cut_to_200_characters_in_the_temporary_name(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / ("t" * 240 + ".json")
    tmp = temporary_of(target, monkeypatch)
    assert tmp.name.startswith("." + "t" * 200 + ".")


def test_text_is_written_as_utf_8_with_lf(tmp_path: Path) -> None:
    target = tmp_path / "g.json"
    files.write_atomic(target, '{"é": 1}\n')
    assert target.read_bytes() == '{"é": 1}\n'.encode()


def test_a_writer_that_removed_its_temporary_file_fails_with_its_own_error(tmp_path: Path) -> None:
    def writer(tmp: str) -> None:
        os.unlink(tmp)
        raise ValueError("the writer broke")

    with pytest.raises(ValueError, match="the writer broke"):
        files.write_atomic(tmp_path / "p.png", writer)
    assert list(tmp_path.iterdir()) == []


def test_read_text_names_missing_and_non_utf_8_files(tmp_path: Path) -> None:
    assert files.read_text(tmp_path / "absent.json") is None
    (tmp_path / "text.json").write_bytes('{"ü": 1}'.encode())
    assert files.read_text(tmp_path / "text.json") == '{"ü": 1}'
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00")
    assert files.read_text(tmp_path / "binary.json") == "\0not utf-8"


def test_paths_below_the_working_directory_are_shown_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path / "")
    assert files.relative_to_cwd(tmp_path / "golden" / "a.json") == os.path.join("golden", "a.json")
    outside = tmp_path.parent / "elsewhere.json"
    assert files.relative_to_cwd(outside) == str(outside)


LOCALE_PROBE = """
import locale, sys
from pathlib import Path
from pytest_optcheck.golden import files

assert locale.getpreferredencoding(False).lower().replace("-", "") not in ("utf8",), locale.getpreferredencoding(False)
path = Path(sys.argv[1])
text = "\\u00e9 \\u00fc\\n"  # escaped: the command line itself must be ASCII here
files.write_atomic(path, text)
assert path.read_bytes() == text.encode("utf-8"), path.read_bytes()
assert files.read_text(path) == text
"""


def test_goldens_are_utf_8_whatever_the_locale(tmp_path: Path) -> None:
    """An ASCII locale (as LC_ALL=C without Python's UTF-8 mode, or cp1252 on Windows) must not
    change the bytes of a golden nor how it reads back."""
    import subprocess
    import sys

    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0",
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # this process's package, mutated or not
    done = subprocess.run([sys.executable, "-c", LOCALE_PROBE, str(tmp_path / "g.json")], env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
