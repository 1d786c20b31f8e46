"""The failure text (engine/messages.py) pinned whole, one scenario per way a series can
fail: a param group, each summary mode (final, auc, reach), a one-sided direction, a
budget, a NaN, another length, other param groups, missing and extra series, a thinned
run's bucket, a calibrated golden. Each text was read and found right when pinned: a change
to any word, number or column is a change users see, and must show here."""

from __future__ import annotations

import math

import numpy as np

from pytest_optcheck.engine.compare import compare
from pytest_optcheck.engine.envelope import Calibration
from pytest_optcheck.engine.messages import render_verdict
from pytest_optcheck.engine.thinning import thin
from pytest_optcheck.engine.tolerance import Tolerance
from pytest_optcheck.engine.trajectory import Trajectory

N = 40
LOSS = np.linspace(1.0, 0.2, N)
CALIBRATION = Calibration(8, {"loss": np.full(N, 1e-4), "lr": np.zeros((N, 2))})


def traj(n: int = N, **series) -> Trajectory:
    base = {"loss": np.linspace(1.0, 0.2, n), "lr": np.stack([np.full(n, 0.1), np.full(n, 0.01)], 1)}
    base.update(series)
    return Trajectory({k: v for k, v in base.items() if v is not None}, np.arange(n) // 10, np.arange(n) % 10)


def render(golden: Trajectory, current: Trajectory, tolerances=None, calibration=None) -> str:
    return render_verdict(compare(golden, current, tolerances, calibration), golden, current, calibration=calibration)


def group_lr() -> np.ndarray:
    lr = np.stack([np.full(N, 0.1), np.full(N, 0.01)], 1)
    lr[25:, 1] = 0.011
    return lr


def last_off() -> np.ndarray:
    loss = LOSS.copy()
    loss[-1] = 0.25
    return loss


def with_nan() -> np.ndarray:
    loss = LOSS.copy()
    loss[30] = math.nan
    return loss


def spiked() -> np.ndarray:
    loss = np.linspace(1.0, 0.2, 100)
    loss[57] = 5.0
    return loss


def shifted() -> np.ndarray:
    loss = LOSS.copy()
    loss[20:] += 0.01
    return loss


def test_group() -> None:
    assert render(traj(), traj(lr=group_lr())) == """\
optcheck: 1 of 2 series differ from the golden (lr)

lr: 15 of 40 steps (37.5%) outside tolerance
  tolerance: rtol=1e-12, atol=0, step by step
  rule: a step fails when |current - golden| > atol + rtol*|golden|
  largest abs error 0.001 at step 25, group 1; largest rel error 0.1 at step 25, group 1
  first step outside tolerance: 25 (epoch 2, batch 5), group 1
  lr[group 1] around step 25:
    step  epoch  batch  golden  current  abs err  rel err
      22      2      2    0.01     0.01        0        0
      23      2      3    0.01     0.01        0        0
      24      2      4    0.01     0.01        0        0
      25      2      5    0.01    0.011    0.001      0.1  !
      26      2      6    0.01    0.011    0.001      0.1  !
      27      2      7    0.01    0.011    0.001      0.1  !
      28      2      8    0.01    0.011    0.001      0.1  !"""


def test_final() -> None:
    assert render(traj(), traj(loss=last_off()), {"loss": Tolerance(rtol=0.01, mode="final", last=3)}) == """\
optcheck: 1 of 2 series differ from the golden (loss)

loss: mean of last 3 steps differs: golden 0.220512821, current 0.237179487
  tolerance: rtol=0.01, atol=0, mean of last 3 steps
  rule: fails when |current - golden| > atol + rtol*|golden| on the summary
  mean of last 3 steps: golden 0.220512821, current 0.237179487, abs diff 0.0167, rel diff 0.0756, allowed 0.00221
  1 of 40 steps (2.5%) outside tolerance (per step, for information)
  largest abs error 0.05 at step 39; largest rel error 0.25 at step 39
  first step outside tolerance: 39 (epoch 3, batch 9)
  loss around step 39:
    step  epoch  batch       golden      current  abs err  rel err
      36      3      6  0.261538462  0.261538462        0        0
      37      3      7  0.241025641  0.241025641        0        0
      38      3      8  0.220512821  0.220512821        0        0
      39      3      9          0.2         0.25     0.05     0.25  !"""


def test_auc() -> None:
    assert render(traj(), traj(loss=LOSS * 1.05), {"loss": Tolerance(rtol=0.01, mode="auc")}) == """\
optcheck: 1 of 2 series differ from the golden (loss)

loss: area under the curve differs: golden 23.4, current 24.57
  tolerance: rtol=0.01, atol=0, area under the curve
  rule: fails when |current - golden| > atol + rtol*|golden| on the summary
  area under the curve: golden 23.4, current 24.57, abs diff 1.17, rel diff 0.05, allowed 0.234
  40 of 40 steps (100.0%) outside tolerance (per step, for information)
  largest abs error 0.05 at step 0; largest rel error 0.05 at step 37
  first step outside tolerance: 0 (epoch 0, batch 0)
  loss around step 0:
    step  epoch  batch       golden      current  abs err  rel err
       0      0      0            1         1.05     0.05     0.05  !
       1      0      1  0.979487179   1.02846154    0.049     0.05  !
       2      0      2  0.958974359   1.00692308   0.0479     0.05  !
       3      0      3  0.938461538  0.985384615   0.0469     0.05  !"""


def test_reach() -> None:
    assert render(traj(), traj(loss=np.linspace(1.0, 0.5, N)), {"loss": Tolerance(rtol=0.0, mode="reach", target=0.4)}) == """\
optcheck: 1 of 2 series differ from the golden (loss)

loss: first step reaching 0.4 differs: golden 30, current never
  tolerance: rtol=0, atol=0, first step with value <= 0.4
  rule: |step_current - step_golden| > atol + rtol*step_golden (never reaching it fails)
  first step with value <= 0.4: golden step 30, current never reached it, allowed difference 0 steps
  39 of 40 steps (97.5%) outside tolerance (per step, for information)
  largest abs error 0.3 at step 39; largest rel error 1.5 at step 39
  first step outside tolerance: 1 (epoch 0, batch 1)
  loss around step 1:
    step  epoch  batch       golden      current  abs err  rel err
       0      0      0            1            1        0        0
       1      0      1  0.979487179  0.987179487  0.00769  0.00785  !
       2      0      2  0.958974359  0.974358974   0.0154    0.016  !
       3      0      3  0.938461538  0.961538462   0.0231   0.0246  !
       4      0      4  0.917948718  0.948717949   0.0308   0.0335  !"""


def test_lower() -> None:
    assert render(traj(), traj(loss=LOSS * 1.05), {"loss": Tolerance(rtol=0.01, direction="lower")}) == """\
optcheck: 1 of 2 series differ from the golden (loss)

loss: 40 of 40 steps (100.0%) outside tolerance
  tolerance: rtol=0.01, atol=0, step by step, lower is never a regression
  rule: a step fails when current - golden > atol + rtol*|golden|
  largest abs error 0.05 at step 0; largest rel error 0.05 at step 37
  first step outside tolerance: 0 (epoch 0, batch 0)
  loss around step 0:
    step  epoch  batch       golden      current  abs err  rel err
       0      0      0            1         1.05     0.05     0.05  !
       1      0      1  0.979487179   1.02846154    0.049     0.05  !
       2      0      2  0.958974359   1.00692308   0.0479     0.05  !
       3      0      3  0.938461538  0.985384615   0.0469     0.05  !"""


def test_budget() -> None:
    assert render(traj(), traj(loss=LOSS * 1.05), {"loss": Tolerance(rtol=0.01, budget=0.1)}) == """\
optcheck: 1 of 2 series differ from the golden (loss)

loss: 40 of 40 steps (100.0%) outside tolerance, budget 10.0%
  tolerance: rtol=0.01, atol=0, step by step, up to 0.1 of steps may fail
  rule: a step fails when |current - golden| > atol + rtol*|golden|
  40 of 40 steps (100.0%) outside tolerance
  largest abs error 0.05 at step 0; largest rel error 0.05 at step 37
  first step outside tolerance: 0 (epoch 0, batch 0)
  loss around step 0:
    step  epoch  batch       golden      current  abs err  rel err
       0      0      0            1         1.05     0.05     0.05  !
       1      0      1  0.979487179   1.02846154    0.049     0.05  !
       2      0      2  0.958974359   1.00692308   0.0479     0.05  !
       3      0      3  0.938461538  0.985384615   0.0469     0.05  !"""


def test_nan() -> None:
    assert render(traj(), traj(loss=with_nan())) == """\
optcheck: 1 of 2 series differ from the golden (loss)

loss: NaN first appeared at step 30 (epoch 3, batch 0) where the golden is finite
  tolerance: rtol=0.0001, atol=1e-07, step by step
  rule: a step fails when |current - golden| > atol + rtol*|golden|
  1 of 40 steps (2.5%) outside tolerance
  first step outside tolerance: 30 (epoch 3, batch 0)
  NaN first appeared at step 30 (epoch 3, batch 0); the golden is finite there
  loss around step 30:
    step  epoch  batch       golden      current  abs err  rel err
      27      2      7  0.446153846  0.446153846        0        0
      28      2      8  0.425641026  0.425641026        0        0
      29      2      9  0.405128205  0.405128205        0        0
      30      3      0  0.384615385          nan        -        -  !
      31      3      1  0.364102564  0.364102564        0        0
      32      3      2  0.343589744  0.343589744        0        0
      33      3      3  0.323076923  0.323076923        0        0"""


def test_length() -> None:
    assert render(traj(), traj(n=35)) == """\
optcheck: 2 of 2 series differ from the golden (loss, lr)

loss: current trajectory has 35 steps, the golden 40 (shorter by 5): the run stopped early or epochs/batch size changed
  tolerance: rtol=0.0001, atol=1e-07, step by step
  rule: a step fails when |current - golden| > atol + rtol*|golden|
  34 of 35 steps (97.1%) outside tolerance
  largest abs error 0.103 at step 34; largest rel error 0.339 at step 34
  first step outside tolerance: 1 (epoch 0, batch 1)
  (the statistics above cover the first 35 steps, common to both)
  loss around step 1:
    step  epoch  batch       golden      current  abs err  rel err
       0      0      0            1            1        0        0
       1      0      1  0.979487179  0.976470588  0.00302  0.00308  !
       2      0      2  0.958974359  0.952941176  0.00603  0.00629  !
       3      0      3  0.938461538  0.929411765  0.00905  0.00964  !
       4      0      4  0.917948718  0.905882353   0.0121   0.0131  !

lr: current trajectory has 35 steps, the golden 40 (shorter by 5): the run stopped early or epochs/batch size changed
  tolerance: rtol=1e-12, atol=0, step by step
  rule: a step fails when |current - golden| > atol + rtol*|golden|
  (the statistics above cover the first 35 steps, common to both)"""


def test_groups() -> None:
    assert render(traj(), traj(lr=np.full((N, 3), 0.1))) == """\
optcheck: 1 of 2 series differ from the golden (lr)

lr: current has 3 param groups, the golden 2: the optimizer's param groups changed
  tolerance: rtol=1e-12, atol=0, step by step
  rule: a step fails when |current - golden| > atol + rtol*|golden|
  40 of 40 steps (100.0%) outside tolerance
  largest abs error 0.09 at step 0, group 1; largest rel error 9 at step 0, group 1
  first step outside tolerance: 0 (epoch 0, batch 0), group 1
  lr[group 1] around step 0:
    step  epoch  batch  golden  current  abs err  rel err
       0      0      0    0.01      0.1     0.09        9  !
       1      0      1    0.01      0.1     0.09        9  !
       2      0      2    0.01      0.1     0.09        9  !
       3      0      3    0.01      0.1     0.09        9  !"""


def test_missing() -> None:
    assert render(traj(), traj(lr=None, grad_norm=np.ones(N))) == """\
optcheck: 2 of 3 series differ from the golden (lr, grad_norm)

lr: in the golden but not recorded by this run (record it again, or update the golden)
grad_norm: recorded by this run but not in the golden (the record changed: update the golden)"""


def test_buckets() -> None:
    assert render(thin(traj(n=100), 10), thin(traj(n=100, loss=spiked()), 10)) == """\
optcheck: 1 of 2 series differ from the golden (loss)

loss: 1 of 10 buckets of 10 steps (10.0%) outside tolerance
  tolerance: rtol=0.0001, atol=1e-07, step by step
  rule: a step fails when |current - golden| > atol + rtol*|golden|
  first bucket outside tolerance: steps 50-59, max: golden 0.595959596, current 5 (a bucket's min, max and mean cover every step in it, kept or not)
  loss over steps 50-59 (bucket 5 of 10 steps):
    stat       golden      current  abs err  rel err
     min  0.523232323  0.523232323        0        0
     max  0.595959596            5      4.4     7.39  !
    mean   0.55959596   1.00565657    0.446    0.797  !"""


def test_calibrated() -> None:
    assert render(traj(), traj(loss=shifted()), calibration=CALIBRATION) == """\
optcheck: 1 of 2 series differ from the golden (loss)

loss: 20 of 40 steps (50.0%) outside tolerance
  tolerance: rtol=0.0001, atol=1e-07, step by step
  rule: a step fails when |current - golden| > atol + rtol*|golden|
  calibrated: a step may also differ by up to 4 x the noise envelope of 8 ulp-perturbed replicas, when that is larger
  outside 4 x noise envelope (0.0001) at step 20
  largest abs error 0.01 at step 20; largest rel error 0.05 at step 39
  first step outside tolerance: 20 (epoch 2, batch 0)
  loss around step 20:
    step  epoch  batch       golden      current  abs err  rel err
      17      1      7  0.651282051  0.651282051        0        0
      18      1      8  0.630769231  0.630769231        0        0
      19      1      9   0.61025641   0.61025641        0        0
      20      2      0   0.58974359   0.59974359     0.01    0.017  !
      21      2      1  0.569230769  0.579230769     0.01   0.0176  !
      22      2      2  0.548717949  0.558717949     0.01   0.0182  !
      23      2      3  0.528205128  0.538205128     0.01   0.0189  !"""


def ones_at(*steps: int) -> np.ndarray:
    out = np.zeros(N)
    out[list(steps)] = 1.0
    return out


def last_lr_doubled() -> np.ndarray:
    lr = np.stack([np.full(N, 0.1), np.full(N, 0.01)], 1)
    lr[-1, 1] = 0.02
    return lr


def with_infs() -> np.ndarray:
    loss = LOSS.copy()
    loss[10], loss[12] = math.inf, -math.inf
    return loss


def shifted_from_50() -> np.ndarray:
    loss = np.linspace(1.0, 0.2, 100)
    loss[50:] *= 1.01
    return loss


def test_skipped() -> None:
    assert render(traj(skipped=ones_at(3, 7)), traj(skipped=ones_at(3, 8))) == """\
optcheck: 1 of 3 series differ from the golden (skipped)

skipped: 2 of 40 steps (5.0%) outside tolerance
  tolerance: rtol=0, atol=0, step by step
  rule: a step fails when |current - golden| > atol + rtol*|golden|
  largest abs error 1 at step 7; largest rel error inf at step 8
  first step outside tolerance: 7 (epoch 0, batch 7)
  the GradScaler skipped other steps than when the golden was recorded (1: skipped, for inf/NaN gradients)
  skipped around step 7:
    step  epoch  batch  golden  current  abs err  rel err
       4      0      4       0        0        0        0
       5      0      5       0        0        0        0
       6      0      6       0        0        0        0
       7      0      7       1        0        1        1  !
       8      0      8       0        1        1      inf  !
       9      0      9       0        0        0        0
      10      1      0       0        0        0        0"""


def test_final_group() -> None:
    assert render(traj(), traj(lr=last_lr_doubled()), {"lr": Tolerance(rtol=0.01, mode="final", last=1)}) == """\
optcheck: 1 of 2 series differ from the golden (lr)

lr: final value differs: golden 0.01, current 0.02 (group 1)
  tolerance: rtol=0.01, atol=0, final value
  rule: fails when |current - golden| > atol + rtol*|golden| on the summary
  final value (group 1): golden 0.01, current 0.02, abs diff 0.01, rel diff 1, allowed 0.0001
  1 of 40 steps (2.5%) outside tolerance (per step, for information)
  largest abs error 0.01 at step 39, group 1; largest rel error 1 at step 39, group 1
  first step outside tolerance: 39 (epoch 3, batch 9), group 1
  lr[group 1] around step 39:
    step  epoch  batch  golden  current  abs err  rel err
      36      3      6    0.01     0.01        0        0
      37      3      7    0.01     0.01        0        0
      38      3      8    0.01     0.01        0        0
      39      3      9    0.01     0.02     0.01        1  !"""


def test_reach_higher() -> None:
    assert render(traj(acc=np.linspace(0.1, 0.9, N)), traj(acc=np.linspace(0.1, 0.7, N)),
                  {"acc": Tolerance(rtol=0.1, mode="reach", target=0.8, direction="higher")}) == """\
optcheck: 1 of 3 series differ from the golden (acc)

acc: first step reaching 0.8 differs: golden 35, current never
  tolerance: rtol=0.1, atol=0, first step with value >= 0.8, reaching the target earlier is never a regression
  rule: step_current - step_golden > atol + rtol*step_golden (never reaching it fails)
  first step with value >= 0.8: golden step 35, current never reached it, allowed difference 3.5 steps
  36 of 40 steps (90.0%) outside tolerance (per step, for information)
  largest abs error 0.2 at step 39; largest rel error 0.222 at step 39
  first step outside tolerance: 4 (epoch 0, batch 4)
  acc around step 4:
    step  epoch  batch       golden      current  abs err  rel err
       1      0      1  0.120512821  0.115384615  0.00513   0.0426
       2      0      2  0.141025641  0.130769231   0.0103   0.0727
       3      0      3  0.161538462  0.146153846   0.0154   0.0952
       4      0      4  0.182051282  0.161538462   0.0205    0.113  !
       5      0      5  0.202564103  0.176923077   0.0256    0.127  !
       6      0      6  0.223076923  0.192307692   0.0308    0.138  !
       7      0      7  0.243589744  0.207692308   0.0359    0.147  !"""


def test_infs() -> None:
    assert render(traj(), traj(loss=with_infs())) == """\
optcheck: 1 of 2 series differ from the golden (loss)

loss: inf first appeared at step 10 (epoch 1, batch 0) where the golden is finite
  tolerance: rtol=0.0001, atol=1e-07, step by step
  rule: a step fails when |current - golden| > atol + rtol*|golden|
  2 of 40 steps (5.0%) outside tolerance
  first step outside tolerance: 10 (epoch 1, batch 0)
  inf first appeared at step 10 (epoch 1, batch 0); the golden is finite there
  loss around step 10:
    step  epoch  batch       golden      current  abs err  rel err
       7      0      7  0.856410256  0.856410256        0        0
       8      0      8  0.835897436  0.835897436        0        0
       9      0      9  0.815384615  0.815384615        0        0
      10      1      0  0.794871795          inf        -        -  !
      11      1      1  0.774358974  0.774358974        0        0
      12      1      2  0.753846154         -inf        -        -  !
      13      1      3  0.733333333  0.733333333        0        0"""


def test_footer_epoch() -> None:
    lr = np.full((N, 2), 0.1)
    golden = Trajectory({"loss": LOSS, "lr": lr}, np.arange(N) // 10, np.arange(N) % 10,
                        epoch_series={"val": [0.5, 0.4, 0.3, 0.2]})
    current = Trajectory({"loss": LOSS * 1.01, "lr": lr}, np.arange(N) // 10, np.arange(N) % 10,
                         epoch_series={"val": [0.5, 0.4, 0.35, 0.2]})
    assert render_verdict(compare(golden, current), golden, current, header=["optcheck: the golden was recorded with torch 2.12"],
                          golden_path="golden/t.json", update_command="pytest --snapshot-update",
                          picture="report/t.png") == """\
optcheck: the golden was recorded with torch 2.12
optcheck: 2 of 3 series differ from the golden (loss, val)

loss: 40 of 40 steps (100.0%) outside tolerance
  tolerance: rtol=0.0001, atol=1e-07, step by step
  rule: a step fails when |current - golden| > atol + rtol*|golden|
  largest abs error 0.01 at step 0; largest rel error 0.01 at step 33
  first step outside tolerance: 0 (epoch 0, batch 0)
  loss around step 0:
    step  epoch  batch       golden      current  abs err  rel err
       0      0      0            1         1.01     0.01     0.01  !
       1      0      1  0.979487179  0.989282051  0.00979     0.01  !
       2      0      2  0.958974359  0.968564103  0.00959     0.01  !
       3      0      3  0.938461538  0.947846154  0.00938     0.01  !

val (per epoch): 1 of 4 epochs outside tolerance
  tolerance: rtol=1e-05, atol=1e-08, epoch by epoch
  first epoch outside tolerance: epoch 2 (golden 0.3, current 0.35)
  per epoch:
    epoch  golden  current  abs err  rel err
        0     0.5      0.5        0        0
        1     0.4      0.4        0        0
        2     0.3     0.35     0.05    0.167  !
        3     0.2      0.2        0        0

golden: golden/t.json
update with: pytest --snapshot-update
picture: report/t.png"""


def test_thinned_steps() -> None:
    assert render(thin(traj(n=100), 10), thin(traj(n=100, loss=shifted_from_50()), 10)) == """\
optcheck: 1 of 2 series differ from the golden (loss)

loss: 5 of 10 kept steps (one in 10, 50.0%) outside tolerance
  tolerance: rtol=0.0001, atol=1e-07, step by step
  rule: a step fails when |current - golden| > atol + rtol*|golden|
  largest abs error 0.00596 at step 50; largest rel error 0.01 at step 70
  5 of 10 buckets of 10 steps (50.0%) outside tolerance
  first bucket outside tolerance: steps 50-59, min: golden 0.523232323, current 0.528464646 (a bucket's min, max and mean cover every step in it, kept or not)
  first step outside tolerance: 50 (epoch 5, batch 0)
  loss around step 50:
    step  epoch  batch       golden      current  abs err  rel err
      20      2      0  0.838383838  0.838383838        0        0
      30      3      0  0.757575758  0.757575758        0        0
      40      4      0  0.676767677  0.676767677        0        0
      50      5      0  0.595959596  0.601919192  0.00596     0.01  !
      60      6      0  0.515151515   0.52030303  0.00515     0.01  !
      70      7      0  0.434343434  0.438686869  0.00434     0.01  !
      80      8      0  0.353535354  0.357070707  0.00354     0.01  !"""


def test_cal_tol_wins() -> None:
    assert render(traj(), traj(loss=shifted()), {"loss": Tolerance(rtol=0.001, atol=0.0)},
                  calibration=Calibration(8, {"loss": np.full(N, 1e-3), "lr": np.zeros((N, 2))})) == """\
optcheck: 1 of 2 series differ from the golden (loss)

loss: 20 of 40 steps (50.0%) outside tolerance
  tolerance: rtol=0.001, atol=0, step by step
  rule: a step fails when |current - golden| > atol + rtol*|golden|
  calibrated: a step may also differ by up to 4 x the noise envelope of 8 ulp-perturbed replicas, when that is larger
  outside 4 x noise envelope (0.001) at step 20
  largest abs error 0.01 at step 20; largest rel error 0.05 at step 39
  first step outside tolerance: 20 (epoch 2, batch 0)
  loss around step 20:
    step  epoch  batch       golden      current  abs err  rel err
      17      1      7  0.651282051  0.651282051        0        0
      18      1      8  0.630769231  0.630769231        0        0
      19      1      9   0.61025641   0.61025641        0        0
      20      2      0   0.58974359   0.59974359     0.01    0.017  !
      21      2      1  0.569230769  0.579230769     0.01   0.0176  !
      22      2      2  0.548717949  0.558717949     0.01   0.0182  !
      23      2      3  0.528205128  0.538205128     0.01   0.0189  !"""
