"""Unit tests of the golden store: format, layout, files, environment (pytest_optcheck.golden)."""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from pytest_optcheck.checks.golden_check import missing_text
from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.errors import GoldenFileError
from pytest_optcheck.golden import environment as env_module
from pytest_optcheck.golden import layout as layouts
from pytest_optcheck.golden.files import write_atomic
from pytest_optcheck.golden.format import ABSENT, Golden, dumps, loads, spec_changes
from pytest_optcheck.golden.format import read_golden as read
from pytest_optcheck.golden.layout import GoldenLayout, device_of, safe_filename

REPO = Path(__file__).resolve().parents[3]
SPEC = {"optimizer": "Adam(lr=0.01)", "epochs": 2, "record": ["loss", "lr"], "scheduler": None}
ENV = {"torch": "2.13.0", "numpy": "2.1.0", "python": "3.11.7", "device": "cpu", "device_name": "x86_64",
       "dtype": "float32", "platform": "Linux-x86_64"}

AWKWARD = [0.1, 1 / 3, -0.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 1e-17,
           float(np.float32(0.1)), float(np.float32(1 / 3)), float(np.nextafter(np.float32(1), np.float32(2))),
           math.nan, math.inf, -math.inf, 123456789.12345679]


def sample(**series: list) -> Golden:
    series = series or {"loss": AWKWARD, "lr": [[0.01, 0.001]] * len(AWKWARD)}
    steps = len(next(iter(series.values())))
    traj = Trajectory(series, epoch=[i // 4 for i in range(steps)], batch=[i % 4 for i in range(steps)],
                      meta={"interval": "step", "b": 1, "a": [1, 2]})
    return Golden(traj, dict(SPEC), dict(ENV), test="tests/test_x.py::test_a[cpu]", name=None)


# -- round trip ---------------------------------------------------------------------------


def test_round_trip_is_bit_exact_including_non_finite_and_float32_values() -> None:
    original = sample()
    back = loads(dumps(original))
    for name in ("loss", "lr"):
        a, b = original.trajectory[name], back.trajectory[name]
        assert a.shape == b.shape
        assert a.tobytes() == b.tobytes()  # bit-identical: -0.0, NaN, subnormals, float32 values
    assert back.trajectory.epoch.tolist() == original.trajectory.epoch.tolist()
    assert back.trajectory.batch.tolist() == original.trajectory.batch.tolist()
    assert (back.spec, back.environment, back.test, back.name) == (SPEC, ENV, original.test, None)
    assert back.trajectory.meta == original.trajectory.meta
    assert dumps(back) == dumps(original)


def test_text_is_strict_json_lf_only_one_value_per_line() -> None:
    text = dumps(sample())
    assert "\r" not in text and text.endswith("}\n")

    def reject(constant: str) -> None:
        raise AssertionError(f"bare {constant} in a golden: not portable JSON")

    data = json.loads(text, parse_constant=reject)
    assert data["series"]["loss"][-4:-1] == ["NaN", "Infinity", "-Infinity"]
    assert list(data)[:6] == ["optcheck_golden", "test", "name", "spec", "environment", "meta"]
    # Schema 2: ten values a line (line j holds steps 10j..10j+9), so a review diff shows the
    # lines of the steps that moved; a constant lr is one run.
    assert "\n      0.1, 0.3333333333333333, " in text
    assert data["series"]["lr"] == {"runs": [[[0.01, 0.001], len(data["series"]["loss"])]]}


def test_equal_input_gives_equal_bytes_whatever_the_key_order() -> None:
    a = sample()
    b = sample()
    b.spec = dict(reversed(list(SPEC.items())))
    b.environment = dict(reversed(list(ENV.items())))
    b.trajectory.meta = dict(reversed(list(b.trajectory.meta.items())))
    assert dumps(a).encode() == dumps(b).encode()
    data = json.loads(dumps(a))  # dicts keep the file's order
    for block in ("spec", "environment", "meta"):
        assert list(data[block]) == sorted(data[block]), block


def test_series_names_and_strings_are_escaped() -> None:
    golden = sample(**{'odd "name"\\': [1.0, 2.0], "ünï": [3.0, 4.0]})
    golden.spec = {"optimizer": 'partial(f, s="a\\nb")'}
    back = loads(dumps(golden))
    assert back.trajectory.names == ['odd "name"\\', "ünï"]
    assert back.spec == golden.spec


def test_empty_trajectory_round_trips() -> None:
    golden = Golden(Trajectory({"loss": []}), None, {})
    assert len(loads(dumps(golden)).trajectory) == 0


# -- errors ----------------------------------------------------------------------------------


def _damaged(**changes: object) -> str:
    data = json.loads(dumps(sample()))
    data.update(changes)
    return json.dumps(data)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (dumps(sample())[:300], "is not valid JSON"),
        ("", "is not valid JSON"),
        ("<<<<<<< HEAD\n{}\n=======\n{}\n>>>>>>> branch\n", "is not valid JSON"),
        ("[1, 2]", "is not an optcheck golden"),
        ('{"loss": [1]}', "is not an optcheck golden"),
        (_damaged(series=[1, 2]), "is damaged: 'series' is a list"),
        (_damaged(series={"loss": "abc"}), "is damaged"),
        (_damaged(series={"loss": [{}]}), "is damaged"),
        (_damaged(spec=5), "is damaged: 'spec' is a int"),
        (_damaged(environment=[]), "is damaged: 'environment' is a list"),
        (_damaged(steps=3), "is damaged: header says 3 steps"),
        (_damaged(epoch=[0]), "is damaged"),
        (json.dumps({k: v for k, v in json.loads(dumps(sample())).items() if k != "series"}),
         "is damaged: the 'series' key is missing"),
    ],
    ids=["truncated", "empty", "merge-conflict", "not-an-object", "no-schema-key", "series-list",
         "series-text", "series-object", "spec-int", "environment-list", "steps", "epoch-length", "no-series"],
)
def test_corrupt_goldens_raise_a_clean_error_naming_the_path_and_the_fix(text: str, expected: str) -> None:
    with pytest.raises(GoldenFileError) as info:
        loads(text, "golden/tests/test_x/test_a[cpu].json")
    message = str(info.value)
    assert "golden file 'golden/tests/test_x/test_a[cpu].json'" in message
    assert expected in message
    assert "re-record it with `pytest --optcheck --snapshot-update`" in message


def test_unknown_schema_version_is_a_clear_error() -> None:
    with pytest.raises(GoldenFileError, match=r"golden file 'g\.json' has schema version 3, but this "
                                              r"pytest-optcheck reads versions 1, 2\. Upgrade pytest-optcheck"):
        loads(_damaged(optcheck_golden=3), "g.json")


def test_read_names_a_missing_or_binary_file(tmp_path: Path) -> None:
    with pytest.raises(GoldenFileError, match="no golden file at"):
        read(tmp_path / "absent.json")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(GoldenFileError, match=r"binary\.json' is not UTF-8 text"):
        read(binary)
    good = tmp_path / "good.json"
    write_atomic(good, dumps(sample()))
    assert read(good).spec == SPEC


def test_loading_never_executes_code() -> None:
    payload = _damaged(spec={"optimizer": "__import__('os').system('exit 1')"})
    assert loads(payload).spec == {"optimizer": "__import__('os').system('exit 1')"}


# -- atomic writes ------------------------------------------------------------------------------


def test_write_atomic_replaces_whole_files_writes_lf_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "folder" / "g.json"
    write_atomic(target, "a\nb\n")
    write_atomic(target, "c\nd\n")
    assert target.read_bytes() == b"c\nd\n"
    assert [p.name for p in target.parent.iterdir()] == ["g.json"]


def test_write_atomic_keeps_the_old_file_when_the_write_fails(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "g.json"
    target.write_bytes(b"old\n")

    def broken(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, "new\n")
    assert target.read_bytes() == b"old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["g.json"]


def test_write_atomic_handles_the_longest_golden_name(tmp_path: Path) -> None:
    layout = GoldenLayout(tmp_path / "golden", tmp_path)
    path = layout.path_for(tmp_path / "test_x.py", "test_a[" + "x" * 400 + "]", "n" * 400)
    assert len(path.name) <= 255
    write_atomic(path, "{}\n")
    assert path.read_bytes() == b"{}\n"


# -- file names and layout --------------------------------------------------------------------------

ODD_IDS = ["adam/w", "adamw", "a b", "a_b", "a\\b", "../../etc/passwd", "..", ".", ".hidden", "ünï", "uni",
           "x:y", "x_y", "tab\tname", "nul\0byte", "", "a" * 300, "a" * 301, "CON", "test_a[cpu]"]


def test_safe_filename_never_collides_and_never_leaves_its_folder() -> None:
    names = [safe_filename(i) for i in ODD_IDS]
    assert len(set(names)) == len(ODD_IDS)
    for original, name in zip(ODD_IDS, names):
        assert "/" not in name and "\\" not in name and "\0" not in name
        assert not name.startswith(".") or name == ""
        assert name.isascii() and len(name) <= layouts.MAX_STEM + 9
        assert Path(name).name == name, original
    assert safe_filename("test_a[cpu]") == "test_a[cpu]"  # readable ids are kept as they are
    assert safe_filename("test_b[lr=0.1-cpu]") == "test_b[lr=0.1-cpu]"
    assert safe_filename("adam/w") != safe_filename("adamw") and safe_filename("a b") != safe_filename("a_b")
    assert safe_filename("adam/w") == safe_filename("adam/w")  # stable across runs


def test_layout_paths_mirror_the_test_file_and_stay_under_the_root(tmp_path: Path) -> None:
    rootdir = tmp_path / "project"
    layout = GoldenLayout(rootdir / "golden", rootdir)
    test_file = rootdir / "tests" / "unit" / "test_opt.py"
    assert layout.path_for(test_file, "test_a[cpu]") == rootdir / "golden/tests/unit/test_opt/test_a[cpu].json"
    assert layout.path_for(test_file, "TestX.test_a[cuda]", "short") == \
        rootdir / "golden/tests/unit/test_opt/TestX.test_a[cuda]--short.json"
    keyed = GoldenLayout(rootdir / "golden", rootdir, "torch-2.13")
    assert keyed.path_for(test_file, "test_a[cpu]") == rootdir / "golden/torch-2.13/tests/unit/test_opt/test_a[cpu].json"
    assert keyed.owner(test_file, "tests/unit/test_opt.py::test_a[cpu]") == ("tests/unit/test_opt", "test_a[cpu]")
    assert layout.golden_path(test_file, "tests/unit/test_opt.py::TestX::test_a[cpu]", "n") == \
        rootdir / "golden/tests/unit/test_opt/TestX.test_a[cpu]--n.json"

    root = (rootdir / "golden").resolve()
    for test_id in ODD_IDS:
        for name in (None, "../" + test_id):
            for where in (test_file, tmp_path / "elsewhere" / "test_out.py", rootdir / "a b" / "test_é.py"):
                path = layout.path_for(where, test_id or "t", name).resolve()
                assert path.is_relative_to(root), (where, test_id, name)
                assert len(path.name) <= 255


def test_other_keys_and_missing_hint_find_goldens_of_other_torch_versions(tmp_path: Path) -> None:
    rootdir = tmp_path
    test_file = rootdir / "tests" / "test_opt.py"
    keyed = GoldenLayout(rootdir / "golden", rootdir, "torch-2.13")
    path = keyed.path_for(test_file, "test_a[cpu]")
    assert keyed.other_keys(path) == [] and "exist for" not in missing_text("p", None, [], keyed.key)
    for key in ("torch-2.9", "torch-2.11", None):
        other = GoldenLayout(rootdir / "golden", rootdir, key).path_for(test_file, "test_a[cpu]")
        write_atomic(other, "{}\n")
    (rootdir / "golden" / "torch-2.12" / "unrelated").mkdir(parents=True)
    assert keyed.other_keys(path) == ["no key", "torch-2.9", "torch-2.11"]
    hint = missing_text("p", None, keyed.other_keys(path), keyed.key).splitlines()[-1]
    assert hint.startswith("goldens of this test exist for: no key, torch-2.9, torch-2.11")
    plain = GoldenLayout(rootdir / "golden", rootdir)
    assert plain.other_keys(plain.path_for(test_file, "test_a[cpu]")) == ["torch-2.9", "torch-2.11"]
    assert keyed.other_keys(tmp_path / "outside.json") == []


def test_device_is_read_back_from_golden_file_names() -> None:
    assert device_of("test_a[cpu].json") == "cpu"
    assert device_of("test_a[cuda].json") == "cuda"
    assert device_of("test_a[lr=0.1-cuda]--short.json") == "cuda"
    assert device_of(safe_filename("test_a[x-cuda:1]") + ".json") == "cuda:1"
    assert device_of("test_a[mps-x].json") == "mps"
    assert device_of("test_plain.json") is None
    assert device_of("test_a[cpux].json") is None


# -- environment and spec ------------------------------------------------------------------------------


def test_environment_and_spec_changes_are_listed_by_key() -> None:
    now = dict(ENV, torch="2.14.0")
    assert env_module.environment_changes(ENV, now) == ["torch 2.13.0 -> 2.14.0"]
    assert env_module.environment_changes(ENV, ENV) == []
    assert "torch 2.13.0 on x86_64 (cpu, float32)" == env_module.describe_environment(ENV)
    changes = spec_changes({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4})
    assert changes == [("b", 2, 3), ("c", ABSENT, 4)]
    assert spec_changes(None, {"a": 1}) == []


def test_environment_of_this_machine_has_every_key() -> None:
    env = env_module.environment()
    assert tuple(env) == env_module.ENV_KEYS
    assert env["device"] == "cpu" and env["dtype"] == "float32"


def test_gitattributes_keeps_goldens_lf() -> None:
    lines = (REPO / ".gitattributes").read_text(encoding="utf-8").splitlines()
    assert "golden/** text eol=lf" in lines


def test_goldens_get_the_mode_any_new_file_gets(tmp_path: Path) -> None:
    """Not mkstemp's private 0600: goldens are shared data, readable like any file there."""
    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "g.json", "{}\n")
        write_atomic(tmp_path / "p.png", lambda tmp: Path(tmp).write_bytes(b"png"))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "g.json").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "p.png").stat().st_mode) == 0o640
    write_atomic(tmp_path / "h.json", "{}\n")
    assert stat.S_IMODE((tmp_path / "h.json").stat().st_mode) == 0o666 & ~old
