"""The names golden/layout.py gives, pinned exactly where benchmarks/mutation.py found them loose:
the report's picture names, the hidden-name and length edges of ``safe_filename``, the ids of
tests in nested classes, a test file outside the rootdir, the room a check's name gets, a device
read past a bracket inside a parameter id, and the version order of the other keys."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pytest_optcheck.golden.layout import (
    MAX_FILENAME,
    MAX_STEM,
    GoldenLayout,
    device_of,
    picture_name,
    safe_filename,
)
from pytest_optcheck.golden.layout import (
    test_id as id_of,
)


def digest(name: str) -> str:
    return hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]


def test_picture_names_are_flat_and_unique_per_test_and_check() -> None:
    assert picture_name("tests/test_x.py::TestA::test_b[cpu]", None) == "tests__test_x.py--TestA--test_b[cpu].png"
    assert picture_name("tests/test_x.py::test_b[cpu]", "loss") == "tests__test_x.py--test_b[cpu]--loss.png"
    odd = "t.py::test_b[a b]"
    assert picture_name(odd, None) == f"t.py--test_b[a_b]~{digest('t.py--test_b[a b]')}.png"


def test_a_hidden_name_gets_an_underscore_and_a_hash() -> None:
    assert safe_filename(".hidden") == f"_hidden~{digest('.hidden')}"


def test_a_name_of_exactly_the_limit_is_kept_whole() -> None:
    assert safe_filename("a" * MAX_STEM) == "a" * MAX_STEM
    assert safe_filename("a" * (MAX_STEM + 1)) == "a" * MAX_STEM + "~" + digest("a" * (MAX_STEM + 1))


def test_ids_of_tests_in_nested_classes_join_the_classes_with_dots() -> None:
    assert id_of("tests/test_x.py::TestOuter::TestInner::test_a[cpu]") == "TestOuter.TestInner.test_a[cpu]"
    assert id_of("tests/test_x.py::test_a[cpu]") == "test_a[cpu]"


def test_a_test_file_outside_the_rootdir_gets_a_folder_named_after_its_own(tmp_path: Path) -> None:
    layout = GoldenLayout(tmp_path / "root" / "golden", tmp_path / "root")
    outside = tmp_path / "elsewhere" / "test_out.py"
    folder = safe_filename(str(outside.resolve().parent))  # the parent's full path, as one name
    assert layout.folder_for(outside) == layout.root / safe_filename(folder) / "test_out"


def test_a_long_check_name_is_cut_so_the_file_name_fits_exactly(tmp_path: Path) -> None:
    layout = GoldenLayout(tmp_path / "golden", tmp_path)
    path = layout.path_for(tmp_path / "test_x.py", "t" * 100, "n" * 300)
    assert len(path.name) == MAX_FILENAME  # 100 + "--" + 134 + "~" + 8 hex + ".json"


def test_the_device_is_read_up_to_the_last_bracket() -> None:
    assert device_of("test_x[[1]-cpu].json") == "cpu"  # a parameter id holding a bracket of its own


def test_other_keys_come_in_version_order(tmp_path: Path) -> None:
    keyed = GoldenLayout(tmp_path / "golden", tmp_path, "torch-2.13")
    path = keyed.path_for(tmp_path / "test_x.py", "test_a[cpu]")
    versions = ["torch-2.10", "torch-10.0", "torch-2.9", "torch-2.11", "torch-1.13"]
    for key in versions:
        other = GoldenLayout(tmp_path / "golden", tmp_path, key).path_for(tmp_path / "test_x.py", "test_a[cpu]")
        other.parent.mkdir(parents=True)
        other.write_text("{}\n", encoding="utf-8")
    (tmp_path / "golden" / "notakey").mkdir()
    (tmp_path / "golden" / "notakey" / "test_x").mkdir()
    (tmp_path / "golden" / "notakey" / "test_x" / "test_a[cpu].json").write_text("{}\n", encoding="utf-8")
    assert keyed.other_keys(path) == ["torch-1.13", "torch-2.9", "torch-2.10", "torch-2.11", "torch-10.0"]
