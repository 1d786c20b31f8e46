"""The optcheck command line (pytest_optcheck.cli): show, plot, diff and their exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pytest_optcheck.cli import main
from pytest_optcheck.engine.trajectory import Trajectory
from pytest_optcheck.golden.format import Golden, dumps
from pytest_optcheck.report.plotting import short_labels, split_call

STEPS = 64
ENV = {"torch": "2.13.0", "numpy": "2.3.0", "python": "3.11.9", "device": "cpu", "device_name": "x86_64",
       "dtype": "float32", "platform": "Linux-x86_64"}
BASE_SPEC = {"model": "mlp(1, 10, 1)", "problem": "quadratic()", "optimizer": "SGD(lr=0.01)",
             "scheduler": None, "epochs": 2, "batch_size": 32, "record": ["loss", "lr"]}


def make_golden(tmp_path: Path, name: str, *, optimizer: str = "SGD(lr=0.01)", scale: float = 1.0,
                shift_from: int = 20, **spec) -> Path:
    loss = np.exp(-np.linspace(0, 3, STEPS)) + 0.01
    loss[shift_from:] *= scale
    traj = Trajectory({"loss": loss, "lr": np.full((STEPS, 1), 0.01)},
                      epoch=np.arange(STEPS) // 32, batch=np.arange(STEPS) % 32)
    full_spec = {**BASE_SPEC, "optimizer": optimizer, **spec}
    path = tmp_path / f"{name}.json"
    path.write_text(dumps(Golden(traj, spec=full_spec, environment=ENV, test=f"tests/test_opt.py::test_{name}")))
    return path


# -- show ----------------------------------------------------------------------------


def test_show_prints_header_and_series(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_golden(tmp_path, "adam", optimizer="Adam(betas=(0.9, 0.99), lr=0.01)")
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "tests/test_opt.py::test_adam" in out
    assert "Adam(betas=(0.9, 0.99), lr=0.01)" in out
    assert "torch 2.13.0" in out and "numpy 2.3.0" in out
    assert "steps:       64 (2 epochs)" in out
    loss_row = next(line for line in out.splitlines() if line.strip().startswith("loss"))
    assert "64" in loss_row and "1.01" in loss_row  # shape and first value
    assert any(line.strip().startswith("lr") and "64x1" in line for line in out.splitlines())


def test_show_several_goldens(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = make_golden(tmp_path, "a"), make_golden(tmp_path, "b")
    assert main(["show", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert f"== {a}" in out and f"== {b}" in out


def test_show_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", str(tmp_path / "nope.json")]) == 2
    err = capsys.readouterr().err
    assert "nope.json" in err and "does not exist" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_show_corrupt_golden_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_golden(tmp_path, "a")
    path.write_text(path.read_text()[:200])
    assert main(["show", str(path)]) == 2
    err = capsys.readouterr().err
    assert "a.json" in err and "not valid JSON" in err and "--snapshot-update" in err
    assert len(err.strip().splitlines()) == 1


# -- plot ----------------------------------------------------------------------------


def test_plot_overlays_goldens_with_short_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = [
        make_golden(tmp_path, "sgd"),
        make_golden(tmp_path, "momentum", optimizer="SGD(lr=0.01, momentum=0.9)"),
        make_golden(tmp_path, "adam", optimizer="Adam(lr=0.01)"),
        make_golden(tmp_path, "adadelta", optimizer="Adadelta(lr=1.0)"),
    ]
    out_png = tmp_path / "figs" / "optimizers.png"
    assert main(["plot", *map(str, paths), "-o", str(out_png)]) == 0
    data = out_png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    out = capsys.readouterr().out
    for label in ("SGD;", "SGD(momentum=0.9)", "Adam;", "Adadelta(lr=1.0)"):
        assert label in out + ";"


def test_plot_series_and_options(tmp_path: Path) -> None:
    paths = [make_golden(tmp_path, "a"), make_golden(tmp_path, "b", optimizer="Adam(lr=0.01)")]
    out_png = tmp_path / "lr.png"
    argv = ["plot", *map(str, paths), "-o", str(out_png), "--series", "loss", "--series", "lr", "--no-logy",
            "--title", "loss and lr"]
    assert main(argv) == 0
    assert out_png.stat().st_size > 10_000


def test_plot_unknown_series_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_golden(tmp_path, "a")
    assert main(["plot", str(path), "-o", str(tmp_path / "x.png"), "--series", "grad_norm"]) == 2
    err = capsys.readouterr().err
    assert "grad_norm" in err and "loss, lr" in err
    assert not (tmp_path / "x.png").exists()


def test_plot_requires_output(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["plot", str(make_golden(tmp_path, "a"))]) == 2
    assert "-o" in capsys.readouterr().err


def test_short_labels_keep_only_what_differs() -> None:
    def g(optimizer: str, **spec) -> Golden:
        traj = Trajectory({"loss": [1.0]})
        return Golden(traj, spec={**BASE_SPEC, "optimizer": optimizer, **spec})

    loaded = [g("SGD(lr=0.01)"), g("SGD(lr=0.01, momentum=0.9)"), g("Adam(betas=(0.9, 0.99), lr=0.01)"),
              g("LBFGS(lr=1)")]
    assert short_labels(loaded, ["a", "b", "c", "d"]) == ["SGD", "SGD(momentum=0.9)", "Adam", "LBFGS(lr=1)"]
    tied = [g("Adam(lr=0.01)"), g("SGD(lr=0.1)")]
    assert short_labels(tied, ["a", "b"]) == ["Adam(lr=0.01)", "SGD(lr=0.1)"]
    schedules = [g("SGD(lr=0.1)", scheduler="StepLR(step_size=4)", epochs=3), g("SGD(lr=0.1)", epochs=5)]
    assert short_labels(schedules, ["a", "b"]) == ["StepLR, epochs=3", "no scheduler, epochs=5"]
    same = [g("SGD(lr=0.1)"), g("SGD(lr=0.1)")]
    assert short_labels(same, ["run1", "run2"]) == ["run1", "run2"]


def test_split_call() -> None:
    assert split_call("Adam(betas=(0.9, 0.99), lr=0.01)") == ("Adam", [("betas", "(0.9, 0.99)"), ("lr", "0.01")])
    assert split_call("mlp(1, 10, 1)") == ("mlp", [("#0", "1"), ("#1", "10"), ("#2", "1")])
    assert split_call("my.module.make_opt") is None
    assert split_call("partial(torch.optim.lr_scheduler.LambdaLR, lr_lambda=tests.decay)") == (
        "LambdaLR", [("lr_lambda", "decay")])


# -- diff ----------------------------------------------------------------------------


def test_diff_identical_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = make_golden(tmp_path, "a")
    assert main(["diff", str(a), str(a)]) == 0
    out = capsys.readouterr().out
    assert "within tolerance" in out and "loss" in out and "lr" in out


def test_diff_reports_first_failing_step_and_tolerance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = make_golden(tmp_path, "a"), make_golden(tmp_path, "b", scale=1.01, shift_from=37)
    assert main(["diff", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "loss: 27 of 64 steps" in out
    assert "first step outside tolerance: 37 (epoch 1, batch 5)" in out
    assert "tolerance: rtol=0.0001, atol=1e-07, step by step" in out
    assert "golden: " in out and "a.json" in out


def test_diff_tolerance_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = make_golden(tmp_path, "a"), make_golden(tmp_path, "b", scale=1.01)
    assert main(["diff", str(a), str(b), "--tolerance", "loss: rtol=0.02"]) == 0
    assert main(["diff", str(a), str(b), "--rtol", "0.02"]) == 0
    assert main(["diff", str(a), str(b), "--rtol", "0.02", "--tolerance", "loss: rtol=1e-3"]) == 1
    out = capsys.readouterr().out
    assert "rtol=0.001" in out


def test_diff_bad_tolerance_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = make_golden(tmp_path, "a")
    assert main(["diff", str(a), str(a), "--tolerance", "loss: rtl=1"]) == 2
    err = capsys.readouterr().err
    assert "rtl" in err and "rtol" in err


def test_diff_tolerance_for_unknown_series_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = make_golden(tmp_path, "a")
    assert main(["diff", str(a), str(a), "--tolerance", "loos: rtol=1"]) == 2
    err = capsys.readouterr().err
    assert "loos." in err and "Did you mean: loss?" in err


def test_diff_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = make_golden(tmp_path, "a")
    assert main(["diff", str(a), str(tmp_path / "missing.json")]) == 2
    assert "missing.json" in capsys.readouterr().err


def test_diff_spec_differences(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = make_golden(tmp_path, "a")
    b = make_golden(tmp_path, "b", optimizer="SGD(lr=0.02)")
    assert main(["diff", str(a), str(b)]) == 0  # same numbers: compared anyway
    out = capsys.readouterr().out
    assert "spec differs" in out and "'SGD(lr=0.01)' -> 'SGD(lr=0.02)'" in out
    assert main(["diff", str(a), str(b), "--ignore-spec"]) == 0
    assert "spec differs" not in capsys.readouterr().out
    assert main(["diff", str(a), str(b), "--strict-spec"]) == 1
    assert "configuration changed" in capsys.readouterr().out


def test_diff_reads_trajectory_json_and_npz(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = make_golden(tmp_path, "a")
    from pytest_optcheck.golden.format import read_golden as read

    traj = read(a).trajectory
    (tmp_path / "t.json").write_text(traj.to_json())
    np.savez(tmp_path / "t.npz", **traj.to_numpy())
    assert main(["diff", str(a), str(tmp_path / "t.json")]) == 0
    assert main(["diff", str(tmp_path / "t.json"), str(tmp_path / "t.npz")]) == 0


def test_help_of_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("show", "plot", "diff"):
        assert main([command, "--help"]) == 0
        assert f"optcheck {command}" in capsys.readouterr().out
    assert main([]) == 2


def test_python_dash_m_help() -> None:
    out = subprocess.run([sys.executable, "-m", "pytest_optcheck", "--help"], capture_output=True, text=True,
                         check=True, timeout=60)
    assert "show" in out.stdout and "plot" in out.stdout and "diff" in out.stdout
