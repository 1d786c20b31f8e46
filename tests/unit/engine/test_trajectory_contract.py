"""engine/trajectory.py's contract, pinned: what a Trajectory and its Buckets accept and
refuse (the words of each refusal), what they keep read-only, every conversion round trip
(dict, JSON, numpy; full and thinned; grouped, non-finite and per-epoch values), equality on
every field, derive, row_of, repr, and the helpers the golden format and pictures share."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from pytest_optcheck.engine.trajectory import (
    Buckets,
    Trajectory,
    as_2d,
    decode_floats,
    encode_floats,
    json_ready,
    use_log_scale,
)

LOSS = [1.0, math.nan, math.inf, -math.inf, 0.5]
LR = [[0.1, 0.01]] * 5


def full() -> Trajectory:
    return Trajectory({"loss": LOSS, "lr": LR}, [0, 0, 1, 1, 2], [0, 1, 0, 1, 0], {"run": {"source": "t"}},
                      epoch_series={"val": [0.3, math.nan, 0.2]})


def thinned() -> Trajectory:
    stats = {"loss": {"min": [1.0, -math.inf, 0.5], "max": [math.nan, math.inf, 0.5], "mean": [1.0, 2.0, 0.5]},
             "lr": {s: [[0.1, 0.01]] * 3 for s in ("min", "max", "mean")}}
    return Trajectory({"loss": [1.0, math.inf, 0.5], "lr": [[0.1, 0.01]] * 3}, [0, 1, 2], [0, 0, 0],
                      {"record_every": 2}, buckets=Buckets(2, 5, stats), epoch_series={"val": [0.3]})


# -- what is accepted and kept -------------------------------------------------------


def test_defaults_and_read_only_arrays() -> None:
    t = Trajectory({"loss": [3, 2, 1]})
    assert t["loss"].dtype == np.float64 and t.epoch.tolist() == [0, 0, 0] and t.batch.tolist() == [0, 1, 2]
    assert t.steps.tolist() == [0, 1, 2] and t.meta == {} and t.buckets is None and t.epoch_series == {}
    assert (t.every, t.total_steps, len(t), list(t), t.names) == (1, 3, 3, ["loss"], ["loss"])
    for arr in (t["loss"], t.epoch, t.batch, t.steps):
        assert not arr.flags.writeable
    assert Trajectory({}).steps.tolist() == [] and len(Trajectory({})) == 0
    assert t.series == {"loss": t["loss"]} and t.series is not t.series


def test_the_caller_s_arrays_are_copied_not_frozen() -> None:
    loss, epoch, val = np.array([1.0, 2.0]), np.array([0, 1]), np.array([0.5])
    stats = {s: np.array([1.0, 2.0]) for s in ("min", "max", "mean")}
    t = Trajectory({"loss": loss}, epoch, epoch_series={"val": val})
    buckets = Buckets(1, 2, {"loss": stats})
    loss[0], epoch[0], val[0], stats["min"][0] = 9.0, 9, 9.0, 9.0  # still writable...
    assert (t["loss"][0], t.epoch[0], t.epoch_series["val"][0]) == (1.0, 0, 0.5)  # ...and not the trajectory's
    assert buckets.stats["loss"]["min"][0] == 1.0


def test_a_thinned_trajectory_takes_its_steps_from_its_buckets() -> None:
    t = thinned()
    assert (t.steps.tolist(), t.every, t.total_steps, len(t)) == ([0, 2, 4], 2, 5, 3)
    assert t.buckets.bounds(0) == (0, 1) and t.buckets.bounds(2) == (4, 4) and t.buckets.count == 3
    assert not t.buckets.stats["loss"]["min"].flags.writeable
    assert t.buckets.stats["lr"]["mean"].dtype == np.float64
    assert Trajectory({"loss": [1.0, 2.0]}, buckets=Buckets(3, 6, {}), steps=[0, 5]).steps.tolist() == [0, 5]


@pytest.mark.parametrize(("build", "message"), [
    (lambda: Trajectory({"loss": 1.0}), "series 'loss' must be 1-D (steps,) or 2-D (steps, groups); got shape ()"),
    (lambda: Trajectory({"lr": np.zeros((2, 2, 2))}),
     "series 'lr' must be 1-D (steps,) or 2-D (steps, groups); got shape (2, 2, 2)"),
    (lambda: Trajectory({"loss": [1.0, 2.0], "lr": [[0.1, 0.2, 0.3]]}),
     "series 'lr' has 1 steps but the others have 2: every series needs one row per step"),
    (lambda: Trajectory({"loss": [1.0, 2.0]}, epoch=[0]), "epoch must have one entry per step (2); got shape (1,)"),
    (lambda: Trajectory({"loss": [1.0, 2.0]}, batch=[0]), "batch must have one entry per step (2); got shape (1,)"),
    (lambda: Trajectory({"loss": [1.0, 2.0]}, steps=[0]), "steps must have one entry per step (2); got shape (1,)"),
    (lambda: Trajectory({"loss": [1.0, 2.0]}, buckets=Buckets(2, 5, {})),
     "a thinned trajectory needs one row per bucket: 2 rows, but 5 steps in buckets of 2 make 3"),
    (lambda: Trajectory({"loss": [1.0]}, epoch_series={"loss": [1.0]}),
     "series 'loss' is both a per-step and a per-epoch series"),
    (lambda: Trajectory({"loss": [1.0]}, epoch_series={"val": [[1.0]]}),
     "per-epoch series 'val' must be 1-D (epochs,); got shape (1, 1)"),
    (lambda: Buckets(0, 5, {}), "buckets need every >= 1 and total >= 0; got every=0, total=5"),
    (lambda: Buckets(2, -1, {}), "buckets need every >= 1 and total >= 0; got every=2, total=-1"),
    (lambda: Buckets(2, 4, {"loss": {"min": [1, 2]}}), "buckets of series 'loss' lack max, mean"),
    (lambda: Buckets(2, 4, {"loss": {s: [1.0, 2.0, 3.0] for s in ("min", "max", "mean")}}),
     "buckets of series 'loss': min has shape (3,), but 4 steps in buckets of 2 make 2 buckets"),
    (lambda: Buckets(2, 4, {"loss": {s: np.zeros((2, 1, 1)) for s in ("min", "max", "mean")}}),
     "buckets of series 'loss': min has shape (2, 1, 1), but 4 steps in buckets of 2 make 2 buckets"),
])
def test_refusals_say_what_is_wrong(build, message) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        build()


def test_edge_sizes_are_accepted() -> None:
    assert Buckets(1, 0, {}).count == 0 and Buckets(1, 3, {}).count == 3
    assert Trajectory({"g": np.zeros((2, 0))})["g"].shape == (2, 0)
    assert Trajectory({"loss": [1.0]}, buckets=Buckets(1, 1, {})).every == 1


def test_a_missing_series_names_the_ones_there() -> None:
    with pytest.raises(KeyError, match=re.escape("no series 'acc' in this trajectory; it has ['loss', 'lr']. "
                                                 "Add it to the spec's `record` key to record it.")):
        full()["acc"]
    assert "loss" in full() and "acc" not in full()


# -- conversions -------------------------------------------------------------------


def test_to_dict_is_pinned_and_every_conversion_round_trips() -> None:
    t = full()
    assert t.to_dict() == {"steps": 5, "epoch": [0, 0, 1, 1, 2], "batch": [0, 1, 0, 1, 0],
                           "series": {"loss": [1.0, "NaN", "Infinity", "-Infinity", 0.5], "lr": [[0.1, 0.01]] * 5},
                           "meta": {"run": {"source": "t"}}, "epoch_series": {"val": [0.3, "NaN", 0.2]}}
    assert json.loads(t.to_json()) == t.to_dict() and t.to_json().startswith('{"batch": ')
    assert Trajectory.from_dict(t.to_dict()) == t and Trajectory.from_json(t.to_json()) == t
    arrays = t.to_numpy()
    assert sorted(arrays) == ["batch", "epoch", "loss", "lr"]
    back = Trajectory.from_numpy(arrays)
    assert back.names == ["loss", "lr"] and back.epoch.tolist() == [0, 0, 1, 1, 2] and back.batch.tolist() == [0, 1, 0, 1, 0]
    np.testing.assert_array_equal(back["loss"], t["loss"])
    arrays["loss"][0] = 7.0  # copies: the trajectory stays
    assert t["loss"][0] == 1.0


def test_a_thinned_trajectory_round_trips_with_its_buckets() -> None:
    t = thinned()
    data = t.to_dict()
    assert (data["record_every"], data["total_steps"], data["step"]) == (2, 5, [0, 2, 4])
    assert data["buckets"]["loss"] == {"min": [1.0, "-Infinity", 0.5], "max": ["NaN", "Infinity", 0.5],
                                       "mean": [1.0, 2.0, 0.5]}
    assert Trajectory.from_dict(data) == t and Trajectory.from_json(t.to_json()) == t
    arrays = t.to_numpy()
    assert arrays["record_every"].tolist() == [2, 5] and arrays["step"].tolist() == [0, 2, 4]
    assert sorted(arrays) == ["batch", "epoch", "loss", "loss.max", "loss.mean", "loss.min", "lr", "lr.max",
                              "lr.mean", "lr.min", "record_every", "step"]
    back = Trajectory.from_numpy(arrays)
    assert back.buckets == t.buckets and back.steps.tolist() == [0, 2, 4] and back.epoch.tolist() == [0, 1, 2]
    assert "epoch_series" not in Trajectory({"loss": [1.0]}).to_dict()
    assert "buckets" not in Trajectory({"loss": [1.0]}).to_dict()


def test_equality_looks_at_every_field() -> None:
    t = full()
    assert t == full() and t != "a trajectory" and (t == 1) is False
    changed = [
        Trajectory({"loss": LOSS}, t.epoch, t.batch, epoch_series=t.epoch_series),
        Trajectory({"loss": [*LOSS[:4], 0.6], "lr": LR}, t.epoch, t.batch, epoch_series=t.epoch_series),
        Trajectory(t.series, [0, 0, 1, 1, 3], t.batch, epoch_series=t.epoch_series),
        Trajectory(t.series, t.epoch, [0, 1, 0, 1, 1], epoch_series=t.epoch_series),
        Trajectory(t.series, t.epoch, t.batch, steps=[0, 1, 2, 3, 5], epoch_series=t.epoch_series),
        Trajectory(t.series, t.epoch, t.batch),
        Trajectory(t.series, t.epoch, t.batch, epoch_series={"val": [0.3, math.nan, 0.25]}),
        Trajectory(t.series, t.epoch, t.batch, epoch_series={"ema": [0.3, math.nan, 0.2]}),
        Trajectory({"lr": LR, "loss": LOSS}, t.epoch, t.batch, epoch_series=t.epoch_series),
    ]
    for other in changed:
        assert t != other and other != t
    assert t == Trajectory(t.series, t.epoch, t.batch, {"other": "meta"}, epoch_series=t.epoch_series)  # meta aside
    b = thinned().buckets
    assert b == thinned().buckets and b != "buckets" and b.__eq__(1) is NotImplemented
    assert b != Buckets(2, 6, b.stats) and b != b.only(["loss"]) and b != Buckets(3, 5, {k: {s: v[s][:2]
                                                                                          for s in v}
                                                                                      for k, v in b.stats.items()})
    moved = {n: dict(st) for n, st in b.stats.items()}
    moved["loss"]["mean"] = [1.0, 2.0, 0.6]
    assert b != Buckets(2, 5, moved)
    reordered = {"lr": b.stats["lr"], "loss": b.stats["loss"]}
    assert b != Buckets(2, 5, reordered)


def test_derive_keeps_the_steps_and_replaces_series_or_meta() -> None:
    t = thinned()
    only_loss = t.derive({"loss": t["loss"]})
    assert only_loss.names == ["loss"] and list(only_loss.buckets.stats) == ["loss"]
    assert only_loss.steps.tolist() == [0, 2, 4] and only_loss.epoch.tolist() == [0, 1, 2]
    assert only_loss.epoch_series["val"].tolist() == [0.3] and only_loss.meta == {"record_every": 2}
    new_meta = t.derive(meta={"run": "x"})
    assert new_meta.meta == {"run": "x"} and new_meta == t
    f = full().derive()
    assert f == full() and f.meta == full().meta and f.buckets is None
    assert full().derive(meta={}).meta == {}


def test_row_of_finds_real_steps() -> None:
    assert [full().row_of(s) for s in (-1, 0, 4, 5)] == [None, 0, 4, None]
    assert [thinned().row_of(s) for s in (0, 1, 2, 4, 5, 6)] == [0, None, 1, 2, None, None]


def test_repr_names_series_shapes_and_thinning() -> None:
    assert repr(full()) == "Trajectory(steps=5, loss[5], lr[5, 2], val[3 epochs])"
    assert repr(thinned()) == "Trajectory(steps=3, record_every=2 of 5, loss[3], lr[3, 2], val[1 epochs])"


# -- helpers -----------------------------------------------------------------------


def test_floats_encode_and_decode_exactly() -> None:
    assert encode_floats(np.array([0.1, math.nan, math.inf, -math.inf])) == [0.1, "NaN", "Infinity", "-Infinity"]
    assert encode_floats(np.array([[1.0, math.inf]])) == [[1.0, "Infinity"]]
    assert decode_floats([1, 0.5]).tolist() == [1.0, 0.5] and decode_floats([1, 0.5]).dtype == np.float64
    decoded = decode_floats([0.5, "NaN", "Infinity", "-Infinity"])
    assert decoded[0] == 0.5 and math.isnan(decoded[1]) and decoded[2:].tolist() == [math.inf, -math.inf]
    rows = decode_floats([[1, "Infinity"], [2, 3.0]])
    assert rows.tolist() == [[1.0, math.inf], [2.0, 3.0]] and rows.dtype == np.float64
    assert decode_floats([[1, 2], [3, 4]]).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert decode_floats([[], []]).shape == (2, 0) and decode_floats([]).shape == (0,)
    with pytest.raises(ValueError, match=r"^not a number: 'nan'$"):
        decode_floats([1.0, "nan"])
    with pytest.raises(TypeError, match=r"^not a number: True$"):
        decode_floats([1.0, True])
    with pytest.raises(TypeError, match=r"^not a number: None$"):
        decode_floats([[1.0, None]])
    with pytest.raises(ValueError):
        decode_floats([[1.0, 2.0], [3.0]])  # ragged rows


def test_json_ready_makes_strict_json() -> None:
    value = {"a": np.float32(1.5), 2: (math.nan, math.inf, -math.inf), "b": [np.int64(3), None, True, "s"],
             "c": object}
    assert json_ready(value) == {"a": 1.5, "2": ["NaN", "Infinity", "-Infinity"], "b": [3, None, True, "s"],
                                 "c": str(object)}


def test_as_2d_and_the_log_scale_rule() -> None:
    assert as_2d([1, 2]).shape == (2, 1) and as_2d([[1, 2]]).shape == (1, 2) and as_2d([1]).dtype == np.float64
    assert as_2d(np.zeros((2, 2, 2))).shape == (2, 4)
    assert use_log_scale("loss", [[1.0, math.nan, 2.0], [0.5]])
    assert not use_log_scale("loss", [[1.0, 0.0]]) and not use_log_scale("loss", [[1.0], [-1.0]])
    assert not use_log_scale("lr", [[0.1]]) and not use_log_scale("momentum", [[0.9]])
    assert not use_log_scale("loss", [[math.nan], []])
