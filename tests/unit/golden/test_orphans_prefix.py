"""A golden belongs to a test by its whole name (golden/layout.py ``owns``): the goldens of a
deleted ``test_ab`` are orphans even while ``test_a`` exists — a prefix match would hand
``test_ab.json`` to ``test_a`` and keep it forever (issue 22, promise 3)."""

from __future__ import annotations

from pathlib import Path

from pytest_optcheck.golden.format import SCHEMA_KEY
from pytest_optcheck.golden.layout import GoldenLayout, owns
from pytest_optcheck.golden.orphans import Collected, find_orphans


def test_owns_takes_the_whole_name_or_a_named_check() -> None:
    assert owns("test_a.json", "test_a")
    assert owns("test_a--loss.json", "test_a")
    assert not owns("test_ab.json", "test_a")
    assert not owns("test_ab--loss.json", "test_a")
    assert not owns("test_a[cpu]x.json", "test_a[cpu]")


def test_the_goldens_of_a_deleted_test_whose_name_extends_a_living_one_are_orphans(tmp_path: Path) -> None:
    layout = GoldenLayout(tmp_path / "golden", tmp_path)
    test_file = tmp_path / "tests" / "test_m.py"
    test_file.parent.mkdir()
    test_file.write_text("def test_a(): pass\n", encoding="utf-8")
    folder = layout.folder_for(test_file)
    folder.mkdir(parents=True)
    for name in ("test_a.json", "test_a--loss.json", "test_ab.json", "test_ab--loss.json"):
        (folder / name).write_text(f'{{"{SCHEMA_KEY}": 1}}\n', encoding="utf-8")
    owner = folder.relative_to(layout.root).as_posix()
    collected = Collected(frozenset({(owner, "test_a")}), frozenset({str(test_file)}), (tmp_path,))

    orphans = find_orphans(layout, collected, lambda device: True)

    assert [p.name for p in orphans] == ["test_ab--loss.json", "test_ab.json"]
