"""The ``optcheck`` command called in process (``main([...])``): what each subcommand prints,
word for word, what it refuses and how (one line on stderr, exit 2), its exit statuses, and a
reader that goes away. No subprocess: these run in mutmut's forked workers."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_optcheck import cli
from pytest_optcheck.cli import CliError, main
from pytest_optcheck.engine.thinning import thin
from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.errors import OptcheckError
from pytest_optcheck.golden.format import Golden, dumps

STEPS = 64
ENV = {"torch": "2.13.0", "numpy": "2.3.0", "python": "3.11.9", "device": "cpu", "device_name": "x86_64",
       "dtype": "float32", "platform": "Linux-x86_64"}
SPEC = {"model": "mlp(1, 10, 1)", "problem": "quadratic()", "optimizer": "SGD(lr=0.01)",
        "scheduler": None, "epochs": 2, "batch_size": 32, "record": ["loss", "lr"]}


def write(path: Path, golden: Golden) -> Path:
    path.write_text(dumps(golden), encoding="utf-8")
    return path


def run_golden(tmp_path: Path, name: str, *, scale: float = 1.0, shift_from: int = 20,
               environment: dict[str, Any] | None = None, **spec: Any) -> Path:
    loss = np.exp(-np.linspace(0, 3, STEPS)) + 0.01
    loss[shift_from:] *= scale
    traj = Trajectory({"loss": loss, "lr": np.full((STEPS, 1), 0.01)},
                      epoch=np.arange(STEPS) // 32, batch=np.arange(STEPS) % 32)
    return write(tmp_path / f"{name}.json", Golden(traj, spec={**SPEC, **spec}, environment=environment or ENV,
                                                   test=f"tests/test_opt.py::test_{name}"))


def flat(text: str) -> str:
    """argparse wraps to the terminal's width: compare the words."""
    return " ".join(text.split())


# -- show ----------------------------------------------------------------------------


def test_show_prints_every_part_of_a_golden(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = run_golden(tmp_path, "a")
    assert main(["show", str(path)]) == 0
    assert capsys.readouterr() == (
        (f"== {path}\n"
        "test:        tests/test_opt.py::test_a\n"
        "label:       SGD(lr=0.01)\n"
        "spec:\n"
        "  batch_size  32\n"
        "  epochs      2\n"
        "  model       mlp(1, 10, 1)\n"
        "  optimizer   SGD(lr=0.01)\n"
        "  problem     quadratic()\n"
        '  record      ["loss", "lr"]\n'
        "  scheduler   null\n"
        "environment: torch 2.13.0 on x86_64 (cpu, float32)\n"
        "             numpy 2.3.0, python 3.11.9, platform Linux-x86_64\n"
        "steps:       64 (2 epochs)\n"
        "series:\n"
        "  name  shape  first      final        min   max  non-finite\n"
        "  loss     64   1.01  0.0597871  0.0597871  1.01           0\n"
        "  lr     64x1   0.01       0.01       0.01  0.01           0\n"), "")


def test_show_a_recorded_run_with_its_name_meta_libraries_and_non_finite_values(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    traj = Trajectory({"loss": np.array([3.0, np.nan, 1.0, np.inf, 0.5, 0.25]), "w": np.array([[1.0, 2.0]] * 6)},
                      epoch=np.zeros(6, int), batch=np.arange(6))
    traj.meta.update(kind="train", device="cpu")
    spec = {"source": "own loop", "optimizer": "SGD(lr=0.1)", "scheduler": "StepLR(step_size=2)"}
    path = write(tmp_path / "m.json", Golden(traj, spec=spec, environment={**ENV, "python": "", "libraries": {
        "timm": "1.0", "peft": "0.9"}}, test="t.py::x", name="fast"))
    assert main(["show", str(path)]) == 0
    assert capsys.readouterr().out == (
        f"== {path}\n"
        "test:        t.py::x  [fast]\n"
        "label:       SGD(lr=0.1) + StepLR(step_size=2)\n"
        "run (as recorded):\n"
        "  optimizer  SGD(lr=0.1)\n"
        "  scheduler  StepLR(step_size=2)\n"
        "  source     own loop\n"
        "environment: torch 2.13.0 on x86_64 (cpu, float32)\n"
        "             numpy 2.3.0, platform Linux-x86_64, peft 0.9, timm 1.0\n"
        "steps:       6 (1 epoch)\n"
        'meta:        {"device": "cpu", "kind": "train"}\n'
        "series:\n"
        "  name  shape   first   final   min  max  non-finite\n"
        "  loss      6       3    0.25  0.25    3           2\n"
        "  w       6x2  [1, 2]  [1, 2]     1    2           0\n")


def test_show_a_thinned_golden_takes_its_extremes_from_the_buckets(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    traj = thin(Trajectory({"loss": np.array([5.0, 1.0, 9.0, 2.0, np.nan, 0.5, 7.0])}), 3)
    path = write(tmp_path / "th.json", Golden(traj))
    assert main(["show", str(path)]) == 0
    assert capsys.readouterr().out == (
        f"== {path}\n"
        "test:        -\n"
        "spec:        - (recorded without a spec: trajectory_snapshot or a custom loop)\n"
        "steps:       7 (1 epoch)\n"
        "thinned:     record_every=3: 3 steps kept (0, 3, 6, ...), each bucket's min, max and mean\n"
        "series:\n"
        "  name  shape  first  final  min  max  non-finite\n"
        "  loss      3      5      7    1    9           2\n")  # kept rows alone: 2 and 7


def test_show_an_empty_golden_without_extras(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "e.json", Golden(Trajectory({"loss": np.array([])}),
                                             environment={"torch": "2.1", "device": "cpu", "dtype": "float32"}))
    assert main(["show", str(path)]) == 0
    assert capsys.readouterr().out == (
        f"== {path}\n"
        "test:        -\n"
        "spec:        - (recorded without a spec: trajectory_snapshot or a custom loop)\n"
        "environment: torch 2.1 on cpu (cpu, float32)\n"
        "steps:       0 (0 epochs)\n"
        "series:\n"
        "  name  shape  first  final  min  max  non-finite\n"
        "  loss      0      -      -    -    -           0\n")


def test_show_several_goldens_in_blocks_apart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path / "a.json", Golden(Trajectory({"x": [1.0, 2.0]})))
    b = write(tmp_path / "b.json", Golden(Trajectory({"y": [-1.5]}), test="t::b"))
    assert main(["show", str(a), str(b)]) == 0
    assert capsys.readouterr().out == (
        f"== {a}\ntest:        -\nspec:        - (recorded without a spec: trajectory_snapshot or a custom loop)\n"
        "steps:       2 (1 epoch)\nseries:\n"
        "  name  shape  first  final  min  max  non-finite\n"
        "  x         2      1      2    1    2           0\n"
        "\n"
        f"== {b}\ntest:        t::b\nspec:        - (recorded without a spec: trajectory_snapshot or a custom loop)\n"
        "steps:       1 (1 epoch)\nseries:\n"
        "  name  shape  first  final   min   max  non-finite\n"
        "  y         1   -1.5   -1.5  -1.5  -1.5           0\n")


def test_show_reads_every_file_before_printing_any(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = run_golden(tmp_path, "a")
    assert main(["show", str(a), str(tmp_path / "nope.json")]) == 2
    assert capsys.readouterr() == ("", (f"optcheck: {str(tmp_path / 'nope.json')!r} does not exist; give the path "
                                       "of a golden .json file (see `optcheck show`).\n"))


# -- loading -------------------------------------------------------------------------


def test_a_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", str(tmp_path)]) == 2
    assert capsys.readouterr() == ("", (f"optcheck: {str(tmp_path)!r} is a directory, not a file; give the path of "
                                       "a golden .json file (see `optcheck show`).\n"))


def test_a_file_that_is_not_utf_8_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bin.json"
    path.write_bytes(b"\xff\xfe\x00junk")
    assert main(["show", str(path)]) == 2
    assert capsys.readouterr().err == f"optcheck: {str(path)!r} is not UTF-8 text, so not a golden JSON file.\n"


def test_a_trajectory_json_and_an_npz_are_read_with_their_stem_as_test(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    traj = Trajectory({"loss": [1.0, 0.5]})
    (tmp_path / "t.json").write_text(traj.to_json(), encoding="utf-8")
    np.savez(tmp_path / "n.npz", **traj.to_numpy())
    for name in ("t.json", "n.npz"):
        golden = cli.load(str(tmp_path / name))
        assert golden.test == Path(name).stem and golden.spec is None
        np.testing.assert_array_equal(golden.trajectory["loss"], [1.0, 0.5])
    assert main(["show", str(tmp_path / "t.json")]) == 0
    assert "\ntest:        t\n" in capsys.readouterr().out


def test_a_damaged_trajectory_json_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"series": {"loss": [1.0, 2.0]}, "epoch": [0]}), encoding="utf-8")
    with pytest.raises(CliError) as info:
        cli.load(str(path))
    assert str(info.value).startswith(f"optcheck: {str(path)!r} looks like a Trajectory JSON but is damaged: ")
    assert str(info.value).endswith(".")
    assert main(["show", str(path)]) == 2
    assert capsys.readouterr().err == cli._one_line(str(info.value)) + "\n"


def test_a_golden_is_not_read_as_a_bare_trajectory(tmp_path: Path) -> None:
    path = run_golden(tmp_path, "a")
    golden = cli.load(str(path))
    assert golden.test == "tests/test_opt.py::test_a" and golden.spec == SPEC and golden.environment == ENV


def test_an_unreadable_npz_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(CliError) as info:
        cli.load(str(path))
    assert str(info.value).startswith(f"optcheck: {str(path)!r} is not a readable trajectory .npz "
                                      "(Trajectory.to_numpy() saved with np.savez): ")
    pickled = tmp_path / "p.npz"
    np.savez(pickled, loss=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CliError, match="is not a readable trajectory .npz"):
        cli.load(str(pickled))  # pickles are never loaded
    assert main(["show", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"optcheck: {str(path)!r} is not a readable trajectory .npz")


def test_a_corrupt_golden_is_worded_by_the_golden_reader(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = run_golden(tmp_path, "a")
    path.write_text(path.read_text(encoding="utf-8")[:200], encoding="utf-8")
    assert main(["show", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"optcheck: golden file {str(path)!r} is not valid JSON") or str(path) in err
    assert err.count("\n") == 1 and "  " not in err  # folded to one line


def test_a_trajectory_jsons_meta_is_shown_with_sorted_keys(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"series": {"loss": [1.0]}, "meta": {"zeta": 1, "alpha": "a"}}), encoding="utf-8")
    assert main(["show", str(path)]) == 0
    assert '\nmeta:        {"alpha": "a", "zeta": 1}\n' in capsys.readouterr().out


def test_goldens_are_read_as_utf_8_whatever_the_locale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import locale

    path = write(tmp_path / "u.json", Golden(Trajectory({"loss": [1.0]}), test="tests/test_ä.py::test_µ"))
    saved = locale.setlocale(locale.LC_CTYPE)
    try:
        locale.setlocale(locale.LC_CTYPE, "C")  # an ASCII locale: its default encoding cannot read this file
        assert main(["show", str(path)]) == 0
    finally:
        locale.setlocale(locale.LC_CTYPE, saved)
    assert "\ntest:        tests/test_ä.py::test_µ\n" in capsys.readouterr().out


# -- plot ----------------------------------------------------------------------------


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The figures ``optcheck plot`` saves (it still writes them)."""
    saved: list[Any] = []
    real = cli.save_figure

    def keep(figure: Any, path: Any) -> None:
        saved.append(figure)
        real(figure, path)

    monkeypatch.setattr(cli, "save_figure", keep)
    return saved


def test_plot_says_what_it_wrote(tmp_path: Path, capsys: pytest.CaptureFixture[str], figures: list[Any]) -> None:
    paths = [run_golden(tmp_path, "sgd"), run_golden(tmp_path, "adam", optimizer="Adam(lr=0.01)")]
    out_png = tmp_path / "figs" / "opt.PNG"
    assert main(["plot", *map(str, paths), "-o", str(out_png)]) == 0
    assert capsys.readouterr() == (f"wrote {out_png} (2 trajectories: SGD; Adam)\n", "")
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (figure,) = figures
    (axis,) = figure.axes
    assert axis.get_ylabel() == "loss" and axis.get_yscale() == "log"  # default: loss, log when positive
    assert [t.get_text() for t in axis.get_legend().get_texts()] == ["SGD", "Adam"]
    assert figure._suptitle.get_text() == ("loss — model mlp(1, 10, 1), problem quadratic(), epochs 2, "
                                           "batch_size 32")


def test_plot_labels_fall_back_to_the_test_names(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 figures: list[Any]) -> None:
    paths = [run_golden(tmp_path, "one"), run_golden(tmp_path, "two")]
    assert main(["plot", *map(str, paths), "-o", str(tmp_path / "same.png")]) == 0
    assert capsys.readouterr().out == f"wrote {tmp_path / 'same.png'} (2 trajectories: test_one; test_two)\n"


def test_plot_labels_fall_back_to_the_file_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = [write(tmp_path / f"{name}.json", Golden(Trajectory({"loss": [1.0, 0.5]}))) for name in ("one", "two")]
    assert main(["plot", *map(str, paths), "-o", str(tmp_path / "f.png")]) == 0
    assert capsys.readouterr().out == f"wrote {tmp_path / 'f.png'} (2 trajectories: one; two)\n"


def test_plot_series_scale_and_title_options(tmp_path: Path, figures: list[Any]) -> None:
    paths = [run_golden(tmp_path, "a"), run_golden(tmp_path, "b", optimizer="Adam(lr=0.01)")]
    argv = ["plot", *map(str, paths), "-o", str(tmp_path / "lr.png"), "--series", "loss", "--series", "lr",
            "--no-logy", "--title", "loss and lr"]
    assert main(argv) == 0
    assert [a.get_ylabel() for a in figures[0].axes] == ["loss", "lr"]
    assert [a.get_yscale() for a in figures[0].axes] == ["linear", "linear"]
    assert figures[0]._suptitle.get_text() == "loss and lr"
    assert main([*argv[:-3], "--logy", "--title", ""]) == 0
    assert [a.get_yscale() for a in figures[1].axes] == ["log", "log"]
    assert figures[1]._suptitle is None  # an empty title is no title


def test_plot_refuses_a_series_a_golden_lacks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = run_golden(tmp_path, "a")
    assert main(["plot", str(path), "-o", str(tmp_path / "x.png"), "--series", "loss", "--series",
                 "grad_norm"]) == 2
    assert capsys.readouterr() == ("", (f"optcheck: {str(path)!r} has no series 'grad_norm' (it has loss, lr); "
                                       "pick one with --series.\n"))
    assert not (tmp_path / "x.png").exists()


def test_plot_refuses_a_figure_name_that_is_not_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = run_golden(tmp_path, "a")
    out = str(tmp_path / "x.pdf")
    assert main(["plot", str(path), "-o", out]) == 2
    assert capsys.readouterr() == ("", f"optcheck: -o {out!r}: the figure is written as PNG; name it FILE.png.\n")
    assert not (tmp_path / "x.pdf").exists()


def test_plot_needs_an_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plot", str(run_golden(tmp_path, "a"))]) == 2
    assert "the following arguments are required: -o/--output" in capsys.readouterr().err


def test_a_file_error_is_one_line_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = run_golden(tmp_path, "a")
    blocker = tmp_path / "ANNEX"  # a name ending in X: only ": " is stripped from the line's end
    blocker.write_text("", encoding="utf-8")
    assert main(["plot", str(path), "-o", str(blocker / "x.png")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err in (f"optcheck: File exists: {blocker}\n", f"optcheck: Not a directory: {blocker}\n",
                            f"optcheck: Not a directory: {blocker / 'x.png'}\n")


@pytest.mark.parametrize(("error", "line"), [
    (OSError(28, "No space left on device"), "optcheck: No space left on device"),
    (OSError("device gone"), "optcheck: device gone"),
    (OptcheckError("optcheck: first\n  second"), "optcheck: first second"),
])
def test_errors_while_writing_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch, error: Exception, line: str) -> None:
    def fail(figure: Any, path: Any) -> None:
        raise error

    monkeypatch.setattr(cli, "save_figure", fail)
    assert main(["plot", str(run_golden(tmp_path, "a")), "-o", str(tmp_path / "x.png")]) == 2
    assert capsys.readouterr() == ("", line + "\n")


# -- diff ----------------------------------------------------------------------------


def test_diff_within_tolerance_lists_each_series(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = run_golden(tmp_path, "a")
    assert main(["diff", str(a), str(a)]) == 0
    assert capsys.readouterr() == (
        ("optcheck: all 2 series within tolerance of the golden\n"
        "  loss  largest rel error 0, abs 0 (rtol=0.0001, atol=1e-07, step by step)\n"
        "  lr    largest rel error 0, abs 0 (rtol=1e-12, atol=0, step by step)\n"), "")


def test_diff_of_trajectories_without_series(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "none.json", Golden(Trajectory({})))
    assert main(["diff", str(path), str(path)]) == 0
    assert capsys.readouterr() == ("optcheck: all 0 series within tolerance of the golden\n", "")


def test_diff_prints_the_spec_header_then_the_tests_message(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    a = run_golden(tmp_path, "a")
    b = run_golden(tmp_path, "b", scale=1.01, shift_from=60, optimizer="SGD(lr=0.02)")
    assert main(["diff", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("spec differs (numbers compared anyway; --strict-spec fails on this, --ignore-spec "
                          "hides it):\n"
                          "  optimizer: 'SGD(lr=0.01)' -> 'SGD(lr=0.02)'\n"
                          "\n"
                          "optcheck: 1 of 2 series differ from the golden (loss)\n"
                          "\n"
                          "loss: 4 of 64 steps (6.2%) outside tolerance\n"
                          "  tolerance: rtol=0.0001, atol=1e-07, step by step\n")
    assert "  first step outside tolerance: 60 (epoch 1, batch 28)\n" in out
    assert out.endswith(f"\ngolden: {a}\n")
    assert main(["diff", str(a), str(b), "--ignore-spec"]) == 1
    assert capsys.readouterr().out.startswith("optcheck: 1 of 2 series differ from the golden (loss)\n\n")


def test_diff_says_when_the_environment_differs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = run_golden(tmp_path, "a")
    b = run_golden(tmp_path, "b", scale=1.01, shift_from=60, environment={**ENV, "torch": "2.14.0"})
    assert main(["diff", str(a), str(b)]) == 1
    assert capsys.readouterr().out.startswith(
        "environment differs: recorded with torch 2.13.0 on x86_64 (cpu, float32); now torch 2.14.0 on x86_64 "
        "(cpu, float32) (torch 2.13.0 -> 2.14.0)\n")


def test_diff_strict_spec_fails_without_comparing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = run_golden(tmp_path, "a"), run_golden(tmp_path, "b", optimizer="SGD(lr=0.02)")
    assert main(["diff", str(a), str(b), "--strict-spec"]) == 1
    assert capsys.readouterr() == (
        ("optcheck: configuration changed since the golden was recorded (the numbers were not compared):\n"
        "  optimizer: 'SGD(lr=0.01)' -> 'SGD(lr=0.02)'\n"
        "Re-record the golden if the change is intended.\n"
        f"golden: {a}\n"), "")
    assert main(["diff", str(a), str(b), "--strict-spec", "--ignore-spec"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_diff_same_spec_has_no_header(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = run_golden(tmp_path, "a"), run_golden(tmp_path, "b", optimizer="SGD(lr=0.01)")
    assert main(["diff", str(a), str(b), "--strict-spec"]) == 0
    assert capsys.readouterr().out.startswith("optcheck: all 2 series within tolerance of the golden\n")


def test_diff_tolerances_from_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = run_golden(tmp_path, "a"), run_golden(tmp_path, "b", scale=1.01)
    assert main(["diff", str(a), str(b), "--rtol", "0.02", "--atol", "0.5"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "  loss  largest rel error 0.01, abs 0.00396 (rtol=0.02, atol=0.5, step by step)",
        "  lr    largest rel error 0, abs 0 (rtol=0.02, atol=0.5, step by step)"]
    assert main(["diff", str(a), str(b), "--rtol", "0.02", "--tolerance", "*: atol=0",
                 "--tolerance", "loss: mode=final"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "  loss  largest rel error 0.01, abs 0.00396 (rtol=0.02, atol=0, final value)",
        "  lr    largest rel error 0, abs 0 (rtol=0.02, atol=0, step by step)"]
    assert main(["diff", str(a), str(b), "--atol", "1", "--tolerance", "loss: atol=0"]) == 1
    assert "  tolerance: rtol=0.0001, atol=0, step by step\n" in capsys.readouterr().out


def test_cli_tolerance_layer() -> None:
    def layer(*argv: str) -> dict[str, Any]:
        from pytest_optcheck.engine.tolerance import parse_tolerance_lines

        return cli.tolerance_layer(cli.build_parser().parse_args(["diff", "a", "b", *argv]), parse_tolerance_lines)

    assert layer() == {}
    assert layer("--atol", "0") == {"*": {"atol": 0.0}}
    assert layer("--rtol", "0.1", "--tolerance", "*: atol=1", "--tolerance", "loss: rtol=2") == {
        "*": {"rtol": 0.1, "atol": 1.0}, "loss": {"rtol": 2.0}}


def test_diff_refuses_a_bad_tolerance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = run_golden(tmp_path, "a")
    assert main(["diff", str(a), str(a), "--tolerance", "loss: rtl=1"]) == 2
    assert capsys.readouterr() == ("", ("optcheck: --tolerance entry 'loss: rtl=1': unknown tolerance field 'rtl' "
                                       "(value '1'). Did you mean: rtol? Valid fields: rtol, atol, mode, direction, "
                                       "budget, last, target.\n"))


def test_diff_refuses_a_tolerance_for_no_series(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = run_golden(tmp_path, "a")
    assert main(["diff", str(a), str(a), "--tolerance", "loos: rtol=1", "--tolerance", "zeta: rtol=1"]) == 2
    assert capsys.readouterr() == ("", ("optcheck: --tolerance names no series of these trajectories: loos, zeta. "
                                       "Did you mean: loss? They have: loss, lr.\n"))


def test_diff_names_the_series_of_both_trajectories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path / "a.json", Golden(Trajectory({"loss": [1.0, 0.5]})))
    b = write(tmp_path / "b.json", Golden(Trajectory({"loss": [1.0, 0.5], "lr": [0.1, 0.1]})))
    assert main(["diff", str(a), str(b), "--tolerance", "lr: rtol=1", "--tolerance", "x: rtol=1"]) == 2
    assert capsys.readouterr().err == ("optcheck: --tolerance names no series of these trajectories: x. "
                                       "They have: loss, lr.\n")


def test_diff_refuses_a_tolerance_the_engine_cannot_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = run_golden(tmp_path, "a")
    assert main(["diff", str(a), str(a), "--tolerance", "loss: mode=reach"]) == 2
    assert capsys.readouterr() == ("", ("optcheck: series 'loss': mode='reach' compares the first step reaching a "
                                       "target, but no target is set. Add target=<value>, e.g. 'mode=reach, "
                                       "target=0.1'.\n"))


def test_diff_of_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = run_golden(tmp_path, "a")
    assert main(["diff", str(a), str(tmp_path / "missing.json")]) == 2
    assert capsys.readouterr().err == (f"optcheck: {str(tmp_path / 'missing.json')!r} does not exist; give the "
                                       "path of a golden .json file (see `optcheck show`).\n")


# -- accept ----------------------------------------------------------------------------


def report(tmp_path: Path, *entries: tuple[str, str, Golden | None]) -> Path:
    """A report folder listing a result for each (nodeid, golden path, result) below tmp_path/proj."""
    root, folder = tmp_path / "proj", tmp_path / "report"
    records = []
    for nodeid, golden, result in entries:
        file = f"results/{golden}"
        if result is not None:
            (folder / file).parent.mkdir(parents=True, exist_ok=True)
            (folder / file).write_text(dumps(result), encoding="utf-8")
        target = root / golden
        sha = hashlib.sha256(target.read_bytes()).hexdigest() if target.is_file() else None
        records.append({"nodeid": nodeid, "result": {"file": file, "golden": golden, "golden_sha256": sha}})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps({"records": records}), encoding="utf-8")
    return folder


def new() -> Golden:
    return Golden(Trajectory({"loss": [2.0, 1.0]}), spec={})


def test_accept_writes_the_results_over_their_goldens(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "proj" / "golden").mkdir(parents=True)
    (tmp_path / "proj" / "golden" / "a.json").write_text("old", encoding="utf-8")
    folder = report(tmp_path, ("t.py::a", "golden/a.json", new()), ("t.py::b", "golden/b.json", new()))
    monkeypatch.chdir(tmp_path / "proj")  # --root defaults to the current folder
    assert main(["accept", str(folder), "--dry-run"]) == 0
    assert capsys.readouterr() == ("would accept: golden/a.json\nwould accept: golden/b.json\n", "")
    assert (tmp_path / "proj" / "golden" / "a.json").read_text(encoding="utf-8") == "old"
    assert not (tmp_path / "proj" / "golden" / "b.json").exists()
    assert main(["accept", str(folder), "t.py::b"]) == 0
    assert capsys.readouterr() == ("accepted: golden/b.json\n", "")
    assert (tmp_path / "proj" / "golden" / "b.json").read_text(encoding="utf-8") == dumps(new())
    assert (tmp_path / "proj" / "golden" / "a.json").read_text(encoding="utf-8") == "old"


def test_accept_below_another_root_and_its_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "proj" / "golden").mkdir(parents=True)
    (tmp_path / "proj" / "golden" / "a.json").write_text("old", encoding="utf-8")
    folder = report(tmp_path, ("t.py::a", "golden/a.json", new()), ("t.py::b", "golden/b.json", None))
    assert main(["accept", str(folder), "--root", str(tmp_path / "proj")]) == 1
    assert capsys.readouterr() == (
        "accepted: golden/a.json\n",
        (f"optcheck: refused golden/b.json: the result {folder / 'results/golden/b.json'} is missing from the "
        "report\n"))


def test_accept_with_nothing_to_accept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = report(tmp_path)
    assert main(["accept", str(folder)]) == 0
    assert capsys.readouterr() == ((f"optcheck: {folder} lists no results to accept (every check passed, or the "
                                   "run had no report).\n"), "")


def test_accept_of_a_folder_without_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["accept", str(tmp_path)]) == 2
    assert capsys.readouterr() == ("", (f"optcheck: {str(tmp_path)!r} holds no summary.json: give the folder that "
                                       "`pytest --optcheck --optcheck-report=DIR` wrote (a CI artifact, "
                                       "unpacked).\n"))


# -- the command line itself -------------------------------------------------------------


def test_no_command_prints_the_help_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("usage: optcheck [-h] COMMAND ...\n")
    assert "Inspect, plot and compare pytest-optcheck golden trajectories." in captured.err


def test_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["shwo"]) == 2
    assert "invalid choice: 'shwo'" in capsys.readouterr().err


HELP = {
    None: ["usage: optcheck [-h] COMMAND ...",
           "Inspect, plot and compare pytest-optcheck golden trajectories.",
           "show what a golden holds: test, spec, environment, every series",
           "plot overlay several goldens on one figure",
           "diff compare B (current) with A (golden), as the tests do",
           "accept copy a report's results (failing or missing checks) over their goldens",
           ("Files: golden JSON written by `pytest --optcheck`, a Trajectory.to_json() file, or an .npz from "
           "Trajectory.to_numpy(). Exit status: 0 ok, 1 diff found a difference, 2 usage/file error.")],
    "show": ["usage: optcheck show [-h] GOLDEN [GOLDEN ...]",
             ("Print what each golden holds: the test, the spec, the environment it was recorded in, and every "
             "series with its shape, first and final values, min and max."),
             "GOLDEN golden file(s)"],
    "plot": [("usage: optcheck plot [-h] -o FILE.png [--series NAME] [--logy | --no-logy] [--title TITLE] "
             "GOLDEN [GOLDEN ...]"),
             ("Overlay several goldens on one figure, one panel per series. Legend labels come from the specs and "
             "keep only what tells the runs apart (e.g. 'SGD', 'SGD(momentum=0.9)', 'Adadelta(lr=1.0)')."),
             "GOLDEN golden file(s) to overlay",
             "FILE.png where to write the figure",
             "--series NAME series to plot, repeat for several panels (default: loss)",
             "log y axis (default: log when every value is positive, never for lr/momentum)",
             "--title TITLE figure title (default: the series and what all runs share)",
             "example: optcheck plot golden/examples/test_optimizers/*.json -o optimizers.png"],
    "diff": [("usage: optcheck diff [-h] [--tolerance 'SERIES: field=value, ...'] [--rtol RTOL] [--atol ATOL] "
             "[--ignore-spec | --strict-spec] A B"),
             ("Compare trajectory B (the current one) with A (the golden) using the tests' engine and failure "
             "message. Tolerances default to the per-series defaults of the plugin. When the specs differ, the "
             "differing keys are printed as a header and the numbers are compared anyway (that is what comparing "
             "two runs usually means); --strict-spec makes a spec difference a failure without comparing "
             "numbers, exactly like the test; --ignore-spec hides the header."),
             "A the golden (reference) trajectory",
             "B the current trajectory, compared against A",
             ("per-series tolerance, e.g. 'loss: rtol=1e-3, mode=final' or '*: rtol=1e-4' (repeatable; overrides "
             "--rtol/--atol for that series)"),
             "--rtol RTOL relative tolerance for every series",
             "--atol ATOL absolute tolerance for every series",
             "--ignore-spec do not print spec differences",
             "--strict-spec a spec difference is a failure ('configuration changed'), numbers not compared",
             ("exit status: 0 within tolerance, 1 different, 2 usage or file error. example: optcheck diff old.json "
             "new.json --tolerance 'loss: rtol=1e-3, mode=final'")],
    "accept": ["usage: optcheck accept [-h] [--root ROOT] [--dry-run] REPORT_DIR [TEST ...]",
               ("A run with --optcheck-report=DIR keeps the current trajectory of every failing or missing check "
               "in DIR/results, in the golden format (compare one with `optcheck diff GOLDEN RESULT`). accept "
               "copies those, and only those, over their goldens below ROOT, atomically; a result whose golden "
               "changed since the run is refused with a message."),
               "REPORT_DIR the folder --optcheck-report wrote (with summary.json)",
               "TEST accept only the results of tests whose node id contains one of these",
               "--root ROOT the project's rootdir, where golden paths start (default: .)",
               "--dry-run say what would be accepted, write nothing",
               ("exit status: 0 all accepted, 1 some refused, 2 usage or file error. example: optcheck accept "
               "ci-report/ (run from the project's root)")],
}


@pytest.mark.parametrize("command", list(HELP), ids=lambda c: c or "optcheck")
def test_help_words(command: str | None, capsys: pytest.CaptureFixture[str],
                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # no wrapping inside the usage line
    assert main([command, "--help"] if command else ["--help"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    text = flat(captured.out)
    for words in HELP[command]:
        assert f" {words} " in f" {text} "  # whole words: nothing added before or after


def test_parsed_defaults() -> None:
    args = cli.build_parser().parse_args(["plot", "g.json", "-o", "f.png"])
    assert (args.series, args.logy, args.title) == (None, None, None)
    args = cli.build_parser().parse_args(["diff", "a", "b"])
    assert (args.tolerance, args.rtol, args.atol, args.ignore_spec, args.strict_spec) == ([], None, None, False,
                                                                                           False)
    args = cli.build_parser().parse_args(["diff", "a", "b", "--rtol", "1e-3", "--atol", "2"])
    assert (args.rtol, args.atol) == (1e-3, 2.0)
    args = cli.build_parser().parse_args(["accept", "r"])
    assert (args.only, args.root, args.dry_run) == ([], ".", False)


# -- a reader that goes away -------------------------------------------------------------


class ClosedPipe(io.TextIOBase):
    """A stdout whose reader has gone: writing (or only flushing) raises BrokenPipeError.
    ``fileno()`` is a real file's, to see where the command points it afterwards."""

    def __init__(self, file: Any, *, on_write: bool) -> None:
        self.file, self.on_write = file, on_write

    def write(self, text: str) -> int:
        if self.on_write:
            raise BrokenPipeError(32, "Broken pipe")
        return len(text)

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self) -> int:
        return self.file.fileno()


@pytest.mark.parametrize("on_write", [True, False], ids=["write", "flush"])
def test_a_closed_pipe_ends_quietly_with_141(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch, on_write: bool) -> None:
    a = run_golden(tmp_path, "a")
    with open(tmp_path / "stdout", "wb", buffering=0) as file:
        monkeypatch.setattr("sys.stdout", ClosedPipe(file, on_write=on_write))
        fds = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
        assert main(["diff", str(a), str(a)]) == 141
        if fds is not None:
            assert len(os.listdir("/proc/self/fd")) == fds  # devnull's descriptor is closed again
        os.write(file.fileno(), b"after")  # the descriptor now leads to devnull: the write is dropped
    assert (tmp_path / "stdout").read_bytes() == b""
    assert capsys.readouterr().err == ""


def test_a_closed_pipe_with_no_real_stdout(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdout", io.StringIO())  # fileno() raises: nothing to point at devnull
    assert cli._reader_went_away() == 141
