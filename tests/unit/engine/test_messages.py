"""Unit tests of the failure text (pytest_optcheck.engine.messages)."""

from __future__ import annotations

import numpy as np

from pytest_optcheck.engine.compare import compare
from pytest_optcheck.engine.messages import render_table, render_verdict, rule_text
from pytest_optcheck.engine.tolerance import Tolerance, resolve_tolerances
from pytest_optcheck.engine.trajectory import Trajectory

STEPS = 384


def traj(n: int = STEPS, **series) -> Trajectory:
    base = {"loss": np.linspace(1.0, 0.1, n), "lr": np.full((n, 2), 0.1), "grad_norm": np.ones(n)}
    base.update(series)
    return Trajectory({k: v for k, v in base.items() if v is not None},
                      epoch=np.arange(n) // 32, batch=np.arange(n) % 32)


def regressed_loss() -> np.ndarray:
    loss = np.linspace(1.0, 0.1, STEPS)
    loss[100:137] *= 1.01  # 37 steps, first at step 100 = epoch 3, batch 4
    return loss


def render(golden: Trajectory, current: Trajectory, tolerances=None, **kw) -> str:
    return render_verdict(compare(golden, current, tolerances), golden, current, **kw)


def test_headline_names_failing_series():
    text = render(traj(), traj(loss=regressed_loss(), grad_norm=np.ones(STEPS) * 2))
    assert text.splitlines()[0] == "optcheck: 2 of 3 series differ from the golden (loss, grad_norm)"


def test_passing_verdict_headline():
    assert render(traj(), traj()) == "optcheck: all 3 series within tolerance of the golden"


def test_step_failure_content():
    text = render(traj(), traj(loss=regressed_loss()),
                  golden_path="golden/test_x/test_sgd[cpu].json",
                  update_command="pytest --optcheck --snapshot-update 'tests/test_x.py::test_sgd[cpu]'",
                  picture="report/test_sgd.png")
    assert "loss: 37 of 384 steps (9.6%) outside tolerance" in text
    assert "tolerance: rtol=0.0001, atol=1e-07, step by step" in text
    assert "|current - golden| > atol + rtol*|golden|" in text
    assert "first step outside tolerance: 100 (epoch 3, batch 4)" in text
    assert "largest abs error 0.00765 at step 100; largest rel error 0.01 at step 133" in text
    lines = text.splitlines()
    assert lines[-3:] == [
        "golden: golden/test_x/test_sgd[cpu].json",
        "update with: pytest --optcheck --snapshot-update 'tests/test_x.py::test_sgd[cpu]'",
        "picture: report/test_sgd.png",
    ]
    assert "lr" not in text.split("\n\n")[1]  # passing series are not described


def test_table_rows_around_first_failure_are_marked():
    text = render(traj(), traj(loss=regressed_loss()))
    rows = [line.split() for line in text.splitlines() if line.startswith("     ")]
    assert [r[0] for r in rows] == ["97", "98", "99", "100", "101", "102", "103"]
    assert rows[3] == ["100", "3", "4", "0.765013055", "0.772663185", "0.00765", "0.01", "!"]
    assert rows[2][-1] != "!" and len(rows[2]) == 7
    assert "loss around step 100:" in text
    assert "step  epoch  batch" in text and "abs err  rel err" in text


def test_header_lines_come_first():
    text = render(traj(), traj(loss=regressed_loss()), header=["configuration changed: optimizer"])
    assert text.splitlines()[:2] == [
        "configuration changed: optimizer",
        "optcheck: 1 of 3 series differ from the golden (loss)",
    ]


def test_nan_first_appearance_and_its_own_table():
    loss = np.linspace(1.0, 0.1, STEPS)
    loss[17:] = np.nan
    text = render(traj(), traj(loss=loss))
    assert "loss: NaN first appeared at step 17 (epoch 0, batch 17) where the golden is finite" in text
    assert "NaN first appeared at step 17 (epoch 0, batch 17); the golden is finite there" in text
    row = next(line.split() for line in text.splitlines() if line.strip().startswith("17 "))
    assert row[4] == "nan" and row[-1] == "!"


def test_nan_after_earlier_failure_gets_a_second_table():
    loss = regressed_loss()
    loss[300] = np.inf
    text = render(traj(), traj(loss=loss))
    assert "inf first appeared at step 300 (epoch 9, batch 12)" in text
    assert "loss around step 100:" in text and "loss around step 300:" in text


def test_2d_series_names_the_group():
    lr = np.full((STEPS, 2), 0.1)
    lr[50:, 1] *= 1 + 1e-10
    text = render(traj(), traj(lr=lr))
    assert "first step outside tolerance: 50 (epoch 1, batch 18), group 1" in text
    assert "largest abs error 1e-11 at step 50, group 1" in text
    assert "lr[group 1] around step 50:" in text
    assert "0.10000000001" in text  # enough digits to see the difference
    assert "tolerance: rtol=1e-12, atol=0, step by step" in text


def test_length_mismatch_explained():
    golden = traj()
    current = traj(300)
    text = render(golden, current)
    assert "current trajectory has 300 steps, the golden 384 (shorter by 84)" in text
    assert "the run stopped early or epochs/batch size changed" in text
    assert "first 300 steps" in text


def test_missing_and_extra_series():
    text = render(traj(), traj(grad_norm=None, sparsity=np.zeros(STEPS)))
    assert text.splitlines()[0] == "optcheck: 2 of 4 series differ from the golden (grad_norm, sparsity)"
    assert "grad_norm: in the golden but not recorded by this run" in text
    assert "sparsity: recorded by this run but not in the golden (the record changed" in text


def test_summary_mode_shows_golden_and_current_values():
    loss = np.linspace(1.0, 0.1, STEPS)
    loss[-10:] = 0.2
    tols = resolve_tolerances(["loss", "lr", "grad_norm"], {"loss": {"mode": "final", "last": 10}})
    text = render(traj(), traj(loss=loss), tols)
    assert "loss: mean of last 10 steps differs: golden 0.110574413, current 0.2" in text
    assert "mean of last 10 steps: golden 0.110574413, current 0.2, abs diff 0.0894" in text
    assert "10 of 384 steps (2.6%) outside tolerance (per step, for information)" in text
    assert "first step outside tolerance: 374 (epoch 11, batch 22)" in text


def test_reach_mode_message():
    loss = np.linspace(1.0, 0.1, STEPS) + 1.0
    text = render(traj(), traj(loss=loss), {"loss": Tolerance(mode="reach", target=0.5, direction="lower")})
    assert "first step with value <= 0.5: golden step 213, current never reached it" in text
    assert "reaching the target earlier is never a regression" in text


def test_rule_text_follows_direction():
    assert rule_text(Tolerance()) == "a step fails when |current - golden| > atol + rtol*|golden|"
    assert "current - golden > atol" in rule_text(Tolerance(direction="lower"))
    assert "golden - current > atol" in rule_text(Tolerance(direction="higher"))


def test_render_table_clips_and_marks():
    g = np.array([1.0, 2.0, 3.0])
    c = np.array([1.0, 2.5, 3.0])
    lines = render_table("x", g, c, np.zeros(3, int), np.arange(3), center=1, context=5, tol=Tolerance())
    assert lines[0] == "  x around step 1:"
    assert [line.split()[0] for line in lines[2:]] == ["0", "1", "2"]
    assert lines[3].split() == ["1", "0", "1", "2", "2.5", "0.5", "0.25", "!"]


def test_values_get_digits_to_show_tiny_differences():
    lines = render_table("x", np.array([0.1]), np.array([0.1 + 1e-16]), np.zeros(1, int),
                         np.zeros(1, int), 0, tol=Tolerance(rtol=0))
    cells = lines[2].split()
    assert cells[3] != cells[4] and float(cells[4]) == 0.1 + 1e-16


def test_lines_stay_short():
    lr = np.full((STEPS, 2), 0.1)
    lr[50:, 1] *= 1 + 1e-10
    text = render(traj(), traj(loss=regressed_loss(), lr=lr, grad_norm=None, sparsity=np.zeros(STEPS)),
                  golden_path="golden/a.json", update_command="pytest --snapshot-update")
    assert max(len(line) for line in text.splitlines()) < 100
