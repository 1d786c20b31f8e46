"""Unit tests of the comparison engine (pytest_optcheck.engine.compare, .tolerance)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pytest_optcheck.engine.compare import Verdict, compare, compare_series, outside_tolerance
from pytest_optcheck.engine.messages import describe_tolerance, series_reason
from pytest_optcheck.engine.tolerance import (
    FALLBACK_DEFAULT,
    SERIES_DEFAULTS,
    Tolerance,
    ToleranceError,
    parse_tolerance,
    parse_tolerance_lines,
    resolve_tolerances,
    unknown_series,
)
from pytest_optcheck.engine.trajectory import Trajectory

ROOT = Path(__file__).resolve().parents[3]
STEPS = 384
EPOCH = np.arange(STEPS) // 32
BATCH = np.arange(STEPS) % 32


def curve(n: int = STEPS) -> np.ndarray:
    return np.linspace(1.0, 0.1, n)


def check(golden, current, **fields):
    return compare_series("loss", np.asarray(golden), np.asarray(current), Tolerance(**fields), EPOCH, BATCH)


# -- purity ---------------------------------------------------------------------------


def test_engine_and_message_import_no_torch_pytest_or_matplotlib():
    code = (
        "import pytest_optcheck.engine.compare, pytest_optcheck.engine.messages, sys; "
        "assert 'torch' not in sys.modules and 'pytest' not in sys.modules "
        "and 'matplotlib' not in sys.modules, sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('torch', 'pytest', 'matplotlib'))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


# -- the element rule -----------------------------------------------------------------


def test_identical_series_pass_with_zero_error():
    v = check(curve(), curve())
    assert v.passed and v.n_failed == 0 and v.max_abs == 0.0 and series_reason(v) == "within tolerance"
    assert v.first_failure is None and v.max_abs_at is None


def test_rule_is_atol_plus_rtol_times_golden():
    g = np.array([100.0, 100.0, 0.0, 0.0])
    c = np.array([100.0 + 1.0 + 1e-3 - 1e-9, 100.0 + 1.0 + 1e-3 + 1e-6, 1e-3, 1.1e-3])
    bad = outside_tolerance(g, c, Tolerance(rtol=1e-2, atol=1e-3))
    assert bad.tolist() == [False, True, False, True]


def test_step_failures_counted_with_first_failure_epoch_and_batch():
    c = curve().copy()
    c[100:137] *= 1.01
    v = check(curve(), c, rtol=1e-4)
    assert not v.passed
    assert (v.n_failed, v.n_checked) == (37, 384)
    assert v.fraction_failed == pytest.approx(37 / 384)
    assert (v.first_failure, v.first_failure_epoch, v.first_failure_batch) == (100, 3, 4)
    assert v.max_rel == pytest.approx(0.01)
    assert v.max_abs_at == (100, 0)  # largest absolute error where the curve is highest
    assert "37 of 384 steps (9.6%) outside tolerance" in series_reason(v)


def test_nan_equals_nan_and_same_signed_inf_equal():
    g = np.array([1.0, np.nan, np.inf, -np.inf])
    assert check(g, g.copy()).passed
    assert not check(g, np.array([1.0, np.nan, -np.inf, -np.inf])).passed
    assert not check(g, np.array([1.0, 2.0, np.inf, -np.inf])).passed  # golden NaN, current finite


@pytest.mark.parametrize(("bad", "name"), [(np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "-inf")])
def test_nonfinite_current_fails_and_reports_first_step(bad, name):
    c = curve().copy()
    c[17] = bad
    c[40] = bad
    v = check(curve(), c, rtol=1.0, atol=10.0, budget=0.5)  # huge tolerance and budget: still fails
    assert not v.passed
    assert v.nonfinite_step == 17 and v.nonfinite_value == name
    assert series_reason(v) == f"{name} first appeared at step 17 (epoch 0, batch 17) where the golden is finite"


def test_nonfinite_fails_even_when_direction_lower():
    c = curve().copy()
    c[5] = -np.inf
    assert not check(curve(), c, direction="lower").passed


# -- direction ------------------------------------------------------------------------


def test_direction_lower_never_fails_on_lower_values():
    assert check(curve(), curve() * 0.5, direction="lower").passed
    assert not check(curve(), curve() * 0.5).passed
    v = check(curve(), curve() * 1.5, direction="lower")
    assert not v.passed and v.n_failed == STEPS


def test_direction_higher_never_fails_on_higher_values():
    assert check(curve(), curve() * 1.5, direction="higher").passed
    v = check(curve(), curve() * 0.5, direction="higher")
    assert not v.passed and v.n_failed == STEPS


# -- budget ---------------------------------------------------------------------------


def test_budget_just_under_and_just_over():
    c = curve(100).copy()
    g = curve(100)
    c[:29] += 1.0
    assert check(g, c, budget=0.29).passed  # 29 of 100 allowed (0.29*100 is 28.999999999999996)
    assert not check(g, c, budget=0.28).passed
    c[29] += 1.0
    assert not check(g, c, budget=0.29).passed


# -- length and groups ----------------------------------------------------------------


def test_current_shorter_fails_with_explanation():
    v = check(curve(), curve()[:300])
    assert not v.passed and v.length_mismatch
    assert v.n_checked == 300 and v.n_failed == 0
    assert series_reason(v) == (
        "current trajectory has 300 steps, the golden 384 (shorter by 84): "
        "the run stopped early or epochs/batch size changed"
    )


def test_current_longer_fails_with_explanation():
    v = check(curve(100), curve(110)[:110])
    assert not v.passed and v.length_mismatch and (v.steps_golden, v.steps_current) == (100, 110)
    assert "longer by 10" in series_reason(v)


def test_2d_series_reports_the_group():
    g = np.full((STEPS, 3), 0.1)
    c = g.copy()
    c[50:, 2] *= 1 + 1e-9
    c[60, 1] *= 1 + 1e-6
    v = compare_series("lr", g, c, SERIES_DEFAULTS["lr"], EPOCH, BATCH)
    assert not v.passed
    assert v.first_failure == 50 and v.first_failure_group == 2
    assert v.max_rel_at == (60, 1) and v.max_abs_at == (60, 1)
    assert v.n_failed == STEPS - 50  # steps, not elements
    assert v.groups_golden == 3


def test_group_count_change_fails():
    g = np.full((10, 2), 0.1)
    v = compare_series("lr", g, np.full((10, 3), 0.1), SERIES_DEFAULTS["lr"])
    assert not v.passed and "3 param groups, the golden 2" in series_reason(v)


# -- summary modes --------------------------------------------------------------------


def test_final_mode_compares_mean_of_last_steps():
    c = curve().copy()
    c[:300] *= 1.5  # early steps differ wildly: does not matter
    v = check(curve(), c, mode="final", last=10, rtol=1e-4)
    assert v.passed
    assert v.summary["golden"] == pytest.approx(curve()[-10:].mean())
    assert v.n_failed == 300  # still reported, for information
    c[-1] *= 1.01
    v = check(curve(), c, mode="final", last=10, rtol=1e-4)
    assert not v.passed and "mean of last 10 steps differs" in series_reason(v)
    assert v.summary["abs"] == pytest.approx(0.001 / 10, rel=1e-6)  # one step of ten moved


def test_final_mode_judged_on_worst_group():
    g = np.ones((20, 3))
    c = g.copy()
    c[-1, 1] = 1.5
    c[-1, 2] = 1.9
    v = compare_series("lr", g, c, Tolerance(mode="final"))
    assert not v.passed and v.summary["group"] == 2 and v.summary["current"] == 1.9


def test_auc_mode_uses_trapezoid_area():
    g = curve()
    c = g + np.where(np.arange(STEPS) % 2 == 0, 1e-3, -1e-3)  # oscillates, same area
    assert not check(g, c, rtol=1e-4).passed
    v = check(g, c, mode="auc", rtol=1e-4)
    assert v.summary["golden"] == pytest.approx(np.trapezoid(g))
    assert v.passed
    v = check(g, g * 1.01, mode="auc", rtol=1e-4)
    assert not v.passed and "area under the curve differs" in series_reason(v)


def test_reach_mode_compares_first_step_reaching_target():
    g = curve()  # reaches 0.5 at step 213
    later = np.concatenate([[1.0] * 10, g[:-10]])  # reaches it 10 steps later
    earlier = np.concatenate([g[10:], [0.1] * 10])
    v = check(g, g * 1.0001, mode="reach", target=0.5, rtol=0.0, atol=0.0)
    assert v.summary["golden"] == 213
    assert not check(g, later, mode="reach", target=0.5, atol=5).passed
    assert check(g, later, mode="reach", target=0.5, atol=10).passed
    assert not check(g, earlier, mode="reach", target=0.5, atol=5).passed
    assert check(g, earlier, mode="reach", target=0.5, atol=5, direction="lower").passed
    assert not check(g, later, mode="reach", target=0.5, atol=5, direction="lower").passed


def test_reach_mode_never_reaching():
    g = curve()
    v = check(g, g + 1.0, mode="reach", target=0.5, direction="lower")
    assert not v.passed and v.summary["current"] == math.inf and "current never" in series_reason(v)
    assert check(g + 1.0, g + 1.0, mode="reach", target=0.5).passed  # neither reaches it
    assert not check(g + 1.0, g, mode="reach", target=0.5).passed
    assert check(g + 1.0, g, mode="reach", target=0.5, direction="lower").passed


def test_reach_mode_higher_uses_greater_or_equal():
    acc = np.linspace(0.0, 1.0, 101)  # reaches 0.9 at step 90
    v = compare_series("acc", acc, acc, Tolerance(mode="reach", target=0.9, direction="higher"))
    assert v.passed and v.summary["golden"] == 90


def test_reach_mode_requires_target():
    with pytest.raises(ToleranceError, match="target"):
        Tolerance(mode="reach")


# -- whole trajectories ---------------------------------------------------------------


def traj(n: int = STEPS, **series) -> Trajectory:
    base = {"loss": curve(n), "lr": np.full((n, 2), 0.1), "grad_norm": np.ones(n)}
    base.update(series)
    return Trajectory({k: v for k, v in base.items() if v is not None},
                      epoch=np.arange(n) // 32, batch=np.arange(n) % 32)


def test_compare_uses_series_defaults_and_passes():
    v = compare(traj(), traj())
    assert v.passed and not v.failed and [s.name for s in v.series] == ["loss", "lr", "grad_norm"]
    assert v.series[1].tolerance == SERIES_DEFAULTS["lr"]


def test_compare_missing_and_extra_series_fail():
    v = compare(traj(), traj(grad_norm=None, sparsity=np.zeros(STEPS)))
    assert not v.passed and not v.failed
    assert v.missing_series == ["grad_norm"] and v.extra_series == ["sparsity"]


def test_compare_honours_given_tolerances():
    cur = traj(loss=curve() * 1.001)
    assert not compare(traj(), cur).passed
    assert compare(traj(), cur, {"loss": Tolerance(rtol=1e-2)}).passed


def test_worst_and_to_dict_are_json_ready():
    cur = traj(loss=curve() * 1.001, grad_norm=np.r_[np.ones(STEPS - 1) * 1.1, np.nan])
    v = compare(traj(), cur)
    assert v.worst().name == "grad_norm"
    data = json.loads(json.dumps(v.to_dict(), allow_nan=False))
    assert data["passed"] is False and data["worst"] == "grad_norm"
    assert data["series"][0]["tolerance"]["rtol"] == SERIES_DEFAULTS["loss"].rtol
    assert data["series"][2]["nonfinite_step"] == STEPS - 1


def test_worst_of_empty_verdict_is_none():
    assert Verdict(series=[]).worst() is None


# -- tolerances: parsing --------------------------------------------------------------


def test_defaults():
    assert SERIES_DEFAULTS["lr"] == SERIES_DEFAULTS["momentum"] == Tolerance(rtol=1e-12, atol=0.0)
    assert SERIES_DEFAULTS["sparsity"] == Tolerance(rtol=0.0, atol=1e-9)
    for name in ("loss", "grad_norm", "param_norm", "update_norm"):
        assert SERIES_DEFAULTS[name] == Tolerance(rtol=1e-4, atol=1e-7)
    assert FALLBACK_DEFAULT == Tolerance(rtol=1e-5, atol=1e-8)


def test_parse_tolerance_forms():
    assert parse_tolerance({"rtol": 1e-4, "mode": "final"}, where="x") == {"rtol": 1e-4, "mode": "final"}
    assert parse_tolerance("rtol=1e-4, atol=0, mode=final, last=10, direction='lower'", where="x") == {
        "rtol": 1e-4, "atol": 0.0, "mode": "final", "last": 10, "direction": "lower",
    }
    assert parse_tolerance("mode=reach target=0.5", where="x") == {"mode": "reach", "target": 0.5}
    assert parse_tolerance(Tolerance(rtol=0.1), where="x")["rtol"] == 0.1
    assert parse_tolerance(None, where="x") == {}


def test_parse_tolerance_bad_field_suggests():
    with pytest.raises(ToleranceError) as info:
        parse_tolerance("rtl=1e-4", where="--optcheck-tolerance")
    msg = str(info.value)
    assert "--optcheck-tolerance" in msg and "'rtl'" in msg and "1e-4" in msg
    assert "Did you mean: rtol" in msg and "Valid fields: rtol, atol, mode" in msg
    assert isinstance(info.value, ValueError)


def test_parse_tolerance_bad_mode_suggests():
    with pytest.raises(ToleranceError) as info:
        parse_tolerance({"mode": "fnal"}, where="marker key 'tolerance'")
    msg = str(info.value)
    assert "marker key 'tolerance'" in msg and "'fnal'" in msg and "Did you mean: final" in msg
    assert "step, final, auc, reach" in msg


def test_parse_tolerance_bad_direction_suggests():
    with pytest.raises(ToleranceError, match="Did you mean: lower"):
        parse_tolerance({"direction": "lowr"}, where="check()")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({"rtol": -1e-4}, "rtol=-0.0001 is negative"),
        ({"atol": "abc"}, "atol='abc' is not usable"),
        ({"rtol": float("nan")}, "is not usable"),
        ({"rtol": True}, "is not usable"),
        ({"budget": 1.0}, "0 <= budget < 1"),
        ({"budget": -0.1}, "0 <= budget < 1"),
        ({"last": 0}, "last=0 must be a whole number"),
        ({"last": 2.5}, "must be a whole number"),
        ("rtol", "cannot read 'rtol'"),
        (3, "must be a dict"),
    ],
)
def test_parse_tolerance_bad_values(value, fragment):
    with pytest.raises(ToleranceError) as info:
        parse_tolerance(value, where="check()")
    assert fragment in str(info.value) and "check()" in str(info.value)


def test_tolerance_constructor_normalises_and_validates():
    assert Tolerance(rtol=1, last=10.0, mode="final") == Tolerance(rtol=1.0, last=10, mode="final")
    assert isinstance(Tolerance(rtol=1).rtol, float)
    with pytest.raises(ToleranceError, match="negative"):
        Tolerance(rtol=-1.0)


def test_merged_overrides_only_given_fields():
    tol = Tolerance(rtol=1e-3, mode="final", last=5)
    merged = tol.merged({"atol": 1e-6})
    assert (merged.rtol, merged.atol, merged.mode, merged.last) == (1e-3, 1e-6, "final", 5)
    with pytest.raises(ToleranceError, match="Did you mean: auc"):
        tol.merged({"mode": "auk"})


def test_describe():
    assert describe_tolerance(Tolerance(rtol=1e-5, atol=0)) == "rtol=1e-05, atol=0, step by step"
    assert describe_tolerance(Tolerance(mode="final", last=10, direction="lower")) == (
        "rtol=1e-05, atol=0, mean of last 10 steps, lower is never a regression"
    )
    assert "up to 0.05 of steps may fail" in describe_tolerance(Tolerance(budget=0.05))
    assert "area under the curve" in describe_tolerance(Tolerance(mode="auc"))
    assert "first step with value >= 0.9" in describe_tolerance(Tolerance(mode="reach", target=0.9, direction="higher"))


def test_parse_tolerance_lines():
    lines = ["loss: rtol=1e-4, mode=final", "", "# comment", "*:atol=0", "lr:rtol=0,atol=1e-9", "loss: last=5"]
    assert parse_tolerance_lines(lines, where="ini optcheck_tolerance") == {
        "loss": {"rtol": 1e-4, "mode": "final", "last": 5},
        "*": {"atol": 0.0},
        "lr": {"rtol": 0.0, "atol": 1e-9},
    }


def test_parse_tolerance_lines_errors_name_where():
    with pytest.raises(ToleranceError, match="ini optcheck_tolerance.*SERIES: field=value"):
        parse_tolerance_lines(["rtol=1e-4"], where="ini optcheck_tolerance")
    with pytest.raises(ToleranceError, match="--optcheck-tolerance entry 'loss: rtl=1'.*Did you mean: rtol"):
        parse_tolerance_lines(["loss: rtl=1"], where="--optcheck-tolerance")


# -- tolerances: precedence -----------------------------------------------------------


def test_resolve_tolerances_field_level_merge_across_layers():
    ini = {"*": {"rtol": 1.0, "atol": 1.0, "budget": 0.1}, "loss": {"mode": "final", "last": 3}}
    cli = {"loss": {"rtol": 2.0}, "*": {"atol": 2.0}}
    marker = {"loss": {"last": 7}, "*": {"rtol": 3.0}}  # "*" first, so loss's rtol becomes 3 here
    check_arg = {"loss": {"direction": "lower"}}
    tols = resolve_tolerances(["loss", "lr", "other"], ini, cli, marker, check_arg)
    assert tols["loss"] == Tolerance(rtol=3.0, atol=2.0, mode="final", direction="lower", budget=0.1, last=7)
    assert tols["lr"] == Tolerance(rtol=3.0, atol=2.0, budget=0.1)
    assert tols["other"] == Tolerance(rtol=3.0, atol=2.0, budget=0.1)


def test_resolve_named_series_beats_star_within_a_layer():
    tols = resolve_tolerances(["loss", "lr"], {"loss": {"rtol": 0.5}, "*": {"rtol": 0.1}})
    assert tols["loss"].rtol == 0.5 and tols["lr"].rtol == 0.1


def test_resolve_starts_from_defaults():
    tols = resolve_tolerances(["lr", "loss", "mystery"], {"loss": {"mode": "auc"}}, None)
    assert tols["lr"] == SERIES_DEFAULTS["lr"]
    assert tols["loss"] == SERIES_DEFAULTS["loss"].merged({"mode": "auc"})
    assert tols["mystery"] == FALLBACK_DEFAULT


def test_resolve_reach_without_target_names_series():
    with pytest.raises(ToleranceError, match="series 'loss'.*target"):
        resolve_tolerances(["loss"], {"loss": {"mode": "reach"}})
    tols = resolve_tolerances(["loss"], {"loss": {"mode": "reach"}}, {"loss": {"target": 0.2}})
    assert tols["loss"].target == 0.2


def test_unknown_series():
    assert unknown_series(["loss", "lr"], {"loos": {}, "*": {}}, None, {"lr": {}}) == ["loos"]
