"""The per-series stores of a recording (run/record/series.py), unit by unit: a logged
series (Column) with its step placement, refusals, blocks and re-reads; the param-group
rows (GroupRows); the norm reducers' per-step vectors (Vectors)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pytest_optcheck.errors import OptcheckError
from pytest_optcheck.run.record import series as series_module
from pytest_optcheck.run.record.series import Column, GroupRows, Vectors


def logged(read_cpu: bool, *entries: tuple[int, object]) -> Column:
    column = Column("loss", read_cpu=read_cpu)
    for steps, value in entries:
        column.add(steps, value)
    return column


def same(a: np.ndarray, b: list[float]) -> bool:
    return a.dtype == np.float64 and np.array_equal(a, np.array(b, dtype=np.float64), equal_nan=True)


def test_a_value_that_is_no_number_is_refused_when_logged_with_its_name() -> None:
    with pytest.raises(OptcheckError) as caught:
        Column("loss").add(0, "low")
    assert str(caught.value) == ("optcheck: rec.log(loss=...) needs a number or a one-element tensor; "
                                 "got str 'low'.")
    with pytest.raises(OptcheckError) as caught:  # a CPU tensor is read when logged: refused then, not later
        Column("acc").add(0, torch.tensor(1 + 2j))
    assert str(caught.value) == ("optcheck: rec.log(acc=...) needs a number or a one-element tensor; "
                                 "got complex (1+2j).")
    with pytest.raises(OptcheckError, match=r"rec.log\(loss=...\) needs one number per call; got a tensor of "
                                            r"shape \(2,\). Reduce it first \(e.g. loss=x.mean\(\)\)."):
        Column("loss").add(0, torch.zeros(2))


def test_numbers_of_any_kind_are_kept_as_floats() -> None:
    column = logged(True, (0, 1), (1, np.float32(0.5)), (2, torch.tensor(3)), (3, torch.tensor(True)), (4, 0.25))
    assert same(column.series(5), [1.0, 0.5, 3.0, 1.0, 0.25])
    assert all(type(v) is float for v in logged(True, (0, 2), (1, torch.tensor(7))).values)


@pytest.mark.parametrize("read_cpu", [True, False], ids=["read when logged", "kept as tensors"])
def test_a_series_is_nan_where_nothing_was_logged_and_reads_again_after_more_steps(read_cpu) -> None:
    column = Column("loss", read_cpu=read_cpu)
    assert same(column.series(3), [math.nan] * 3)  # nothing logged yet
    column.add(2, torch.tensor(1.5))  # logged after two steps, the first without a value: the second's
    column.add(2, 2.5)  # before the third step: its value; a Python float between tensors keeps its place
    column.add(3, torch.tensor(3.5, dtype=torch.float64))
    assert same(column.series(5), [math.nan, 1.5, 2.5, 3.5, math.nan])
    assert same(column.series(3), [math.nan, 1.5, 2.5])  # entries of later steps are left out
    column.add(4, torch.tensor(4.5))  # recorded on after a read
    column.add(5, 5.5)
    assert same(column.series(6), [math.nan, 1.5, 2.5, 3.5, 4.5, 5.5])
    assert same(column.series(6), [math.nan, 1.5, 2.5, 3.5, 4.5, 5.5])


@pytest.mark.parametrize("read_cpu", [True, False], ids=["read when logged", "kept as tensors"])
def test_blocks_of_chunk_entries_read_back_in_order(read_cpu, monkeypatch) -> None:
    monkeypatch.setattr(series_module, "CHUNK", 2)
    column = Column("loss", read_cpu=read_cpu)
    values = [0.5, 1.5, torch.tensor(2.5), torch.tensor(3.5), 4.5, torch.tensor(5.5), torch.tensor(6.5)]
    for step, value in enumerate(values):
        column.add(step, value)
        # a long run holds one block every CHUNK entries, not one small object per entry
        assert len(column.blocks) == (step + 1) // 2 and len(column.values) == (step + 1) % 2
    assert same(column.series(7), [0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5])
    column.add(7, torch.tensor(7.5))
    column.add(8, 8.5)
    column.add(9, torch.tensor(9.5))
    assert same(column.series(10), [0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5])


def test_several_values_of_a_step_are_combined_by_its_rule() -> None:
    for rule, expected in [("mean", 2.0), ("sum", 6.0), ("first", 1.0), ("last", 3.0), ("min", 1.0), ("max", 3.0)]:
        column = logged(True, (0, 5.0), (1, 1.0), (1, 2.0), (1, 3.0), (2, 7.0))
        column.reduce = rule
        assert same(column.series(3), [5.0, expected, 7.0]), rule


def test_group_rows_are_float64_with_nan_for_groups_not_there_yet() -> None:
    rows = GroupRows()
    assert rows.array(0).shape == (0, 0) and rows.array(0).dtype == np.float64
    rows.add([1, 2])  # an int lr is a number like any other
    assert same(rows.array(1).ravel(), [1.0, 2.0])
    rows.add([0.5, 0.25])
    whole = rows.array(2)
    assert same(whole.ravel(), [1.0, 2.0, 0.5, 0.25]) and whole.shape == (2, 2)
    rows = GroupRows()
    rows.add([0.1])
    rows.add([0.2, torch.tensor(0.3, dtype=torch.float64)])  # a tensor lr, and a group added during the run
    rows.add([0.4, 0.5, 0.6])
    grown = rows.array(3)
    assert grown.shape == (3, 3) and same(grown.ravel(), [0.1, math.nan, math.nan, 0.2, 0.3, math.nan, 0.4, 0.5, 0.6])
    assert same(rows.array(2).ravel(), [0.1, math.nan, 0.2, 0.3])


def test_vectors_read_back_per_step_in_order_whichever_way_they_came(monkeypatch) -> None:
    monkeypatch.setattr(series_module, "CHUNK", 2)
    vectors = Vectors()
    assert vectors.host(2, 3).shape == (2, 3) and np.isnan(vectors.host(2, 3)).all()
    for step in range(3):
        vectors.add(step, torch.tensor([step, 10.0 * step], dtype=torch.float32))
    assert len(vectors.chunks) == 1 and len(vectors.tensors) == 1  # stacked every CHUNK steps
    vectors.add_rows([3, 4], torch.tensor([[3.0, 30.0], [4.0, 40.0]]))
    vectors.add(5, torch.tensor([5.0, 50.0]))
    out = vectors.host(6, 2)
    assert out.dtype == np.float64 and out.tolist() == [[i, 10.0 * i] for i in range(6)]
    assert vectors.host(4, 2).tolist() == [[i, 10.0 * i] for i in range(4)]  # later steps left out
    vectors.add(6, torch.tensor([6.0, 60.0]))  # recorded on after a read
    assert vectors.host(8, 2)[:7].tolist() == [[i, 10.0 * i] for i in range(7)]
    assert np.isnan(vectors.host(8, 2)[7]).all()  # a step whose hook never ran


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_vectors_recorded_on_a_gpu_after_a_read_join_the_host_ones() -> None:
    vectors = Vectors()
    vectors.add(0, torch.tensor([1.0, 2.0], device="cuda"))
    assert vectors.host(1, 2).tolist() == [[1.0, 2.0]]
    vectors.add(1, torch.tensor([3.0, 4.0], device="cuda"))  # cannot be concatenated with the host chunk
    assert vectors.host(2, 2).tolist() == [[1.0, 2.0], [3.0, 4.0]]
