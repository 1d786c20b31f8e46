"""Which goldens are orphans (golden/orphans.py), every rule of its docstring on one tree: owned,
deleted test, deleted test file, a device the run did not judge, hidden files, another key's
folder, a folder that mirrors no test file, a sanitised folder, a test file that exists but was
not collected, files that are not optcheck goldens, and the run's paths."""

from __future__ import annotations

from pathlib import Path

from pytest_optcheck.golden.format import SCHEMA_KEY
from pytest_optcheck.golden.layout import GoldenLayout
from pytest_optcheck.golden.orphans import Collected, find_orphans

HEADER = f'{{"{SCHEMA_KEY}": 1}}\n'


def golden(root: Path, relative: str, text: str = HEADER) -> None:
    path = root / "golden" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("", encoding="utf-8")
    return path


def orphans(root: Path, owners: set[tuple[str, str]], files: list[Path], paths: tuple[Path, ...]) -> list[str]:
    layout = GoldenLayout(root / "golden", root)
    collected = Collected(frozenset(owners), frozenset(str(f) for f in files), paths)
    asked: list[str] = []

    def cpu_only(device: str) -> bool:
        asked.append(device)
        return device == "cpu"

    found = find_orphans(layout, collected, cpu_only)
    assert len(asked) == len(set(asked))  # each device asked once
    return [p.relative_to(layout.root).as_posix() for p in found]


def test_every_rule_on_one_tree(tmp_path: Path) -> None:
    collected = [touch(tmp_path / "tests" / "test_m.py"), touch(tmp_path / "tests" / "test_empty.py")]
    touch(tmp_path / "tests" / "test_exists.py")  # on disk, not collected in this run
    golden(tmp_path, "tests/test_m/.test_hidden[cpu].json")  # hidden: never judged
    golden(tmp_path, "tests/test_m/test_a[cpu].json")  # owned
    golden(tmp_path, "tests/test_m/test_a[cpu]--loss.json")  # owned, a named check
    golden(tmp_path, "tests/test_m/test_gone[cpu].json")  # a deleted test
    golden(tmp_path, "tests/test_m/test_gone[cuda].json")  # a device this run did not judge
    golden(tmp_path, "tests/test_m/test_plain[cpu].json", '{"something": "else"}\n')  # not an optcheck golden
    late = " " * (257 - len(SCHEMA_KEY) - 2) + f'"{SCHEMA_KEY}"'  # the key ends at byte 257: past the head read
    golden(tmp_path, "tests/test_m/test_late_key[cpu].json", late)
    (tmp_path / "golden" / "tests" / "test_m" / "test_dir[cpu].json").mkdir()  # unreadable as a file
    golden(tmp_path, "tests/test_empty/test_x[cpu].json")  # a collected file that owns nothing any more
    golden(tmp_path, "tests/test_deleted/test_a[cpu].json")  # a deleted test file
    golden(tmp_path, "tests/test_exists/test_a[cpu].json")  # its file exists: not this run's to judge
    golden(tmp_path, "tests/test_x_y~0123abcd/test_a[cpu].json")  # sanitised: its test file cannot be told
    golden(tmp_path, "data/keep.json")  # mirrors no test file
    golden(tmp_path, "torch-2.11/tests/test_m/test_gone[cpu].json")  # another key's goldens
    golden(tmp_path, "zz/late_test/test_a[cpu].json")  # a deleted *_test.py file, after the key folder

    owners = {("tests/test_m", "test_a[cpu]")}
    assert orphans(tmp_path, owners, collected, (tmp_path,)) == [
        "tests/test_deleted/test_a[cpu].json",
        "tests/test_empty/test_x[cpu].json",
        "tests/test_m/test_gone[cpu].json",
        "zz/late_test/test_a[cpu].json",
    ]


def test_deleted_test_files_are_judged_only_inside_the_run_s_paths(tmp_path: Path) -> None:
    golden(tmp_path, "tests/test_deleted/test_a[cpu].json")
    golden(tmp_path, "other/test_far/test_a[cpu].json")
    run_paths = (tmp_path / "tests" / "test_deleted.py",)  # the run named the (now deleted) file itself
    assert orphans(tmp_path, set(), [], run_paths) == ["tests/test_deleted/test_a[cpu].json"]
    assert orphans(tmp_path, set(), [], (tmp_path / "tests",)) == ["tests/test_deleted/test_a[cpu].json"]
    assert orphans(tmp_path, set(), [], ()) == []


def test_no_golden_folder_no_orphans(tmp_path: Path) -> None:
    assert orphans(tmp_path, set(), [], (tmp_path,)) == []
