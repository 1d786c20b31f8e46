"""The norm reducers of a recording (run/record/norms.py), driven directly: which way a
model's norms are reduced, every series alone and together on both ways against the obvious
float64 computation, the gradients a sharded model hands over, no parameters or no
gradients, counts that stay exact in low precision, and the history buffer's bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pytest_optcheck.run.record import norms as norms_module
from pytest_optcheck.run.record.norms import NORM_ROWS, SPARSITY_EPS, Norms, _accumulator, _ForeachNorms, _HistoryNorms

ALL = frozenset(NORM_ROWS)


@pytest.fixture(autouse=True)
def no_grad():
    """The recorder makes and calls its reducer with autograd off (its hooks run inside the step)."""
    with torch.no_grad():
        yield


def parameters(*sizes: int, dtype: torch.dtype = torch.float64) -> list[torch.Tensor]:
    """Parameters with a few weights at or near zero (sparsity counts |w| <= 1e-3, 1e-3 included)."""
    generator = torch.Generator().manual_seed(sum(sizes))
    out = []
    for size in sizes:
        p = torch.randn(size, generator=generator, dtype=dtype)
        p[0] = SPARSITY_EPS  # exactly at the bound: counted
        if size > 2:
            p[1], p[2] = 0.0, 2 * SPARSITY_EPS  # counted; not counted
        out.append(torch.nn.Parameter(p))
    return out


def norm(tensors) -> float:
    return math.sqrt(math.fsum(float((t.detach().double() ** 2).sum()) for t in tensors))


def run(reducer: Norms, params: list[torch.Tensor], grads: list[list[torch.Tensor | None]], steps: int = 3,
        first: int = 0) -> dict[str, list[float]]:
    """``steps`` SGD-like steps through ``reducer``'s hooks; the expected series, computed the obvious way."""
    expected: dict[str, list[float]] = {n: [] for n in NORM_ROWS}
    for step in range(steps):
        for p, g in zip(params, grads[step]):
            p.grad = g
        used = grads[step]
        before = [p.detach().clone() for p in params]
        reducer.before_step(grads="grad_norm" in reducer.want)  # as the recorder calls it
        with torch.no_grad():
            for p, g in zip(params, used):
                if g is not None:
                    p.sub_(0.1 * g.to_dense())
        reducer.after_step(first + step)
        expected["grad_norm"].append(norm([g.to_dense() for g in used if g is not None]))
        expected["param_norm"].append(norm(params))
        expected["update_norm"].append(norm([p - b for p, b in zip(params, before)]))
        flat = torch.cat([p.detach().flatten() for p in params]) if params else torch.zeros(0)
        expected["sparsity"].append(float((flat.abs() <= SPARSITY_EPS).sum()) / max(1, flat.numel()))
    return expected


def gradients(params: list[torch.Tensor], steps: int = 3) -> list[list[torch.Tensor | None]]:
    generator = torch.Generator().manual_seed(7)
    out = [[torch.randn(p.shape, generator=generator, dtype=p.dtype) for p in params] for _ in range(steps)]
    for row in out:
        for g in row:
            g[:3] = 0.0  # the weights at or near zero stay there
    return out


def test_norms_accumulate_in_float64_except_on_mps() -> None:
    assert _accumulator(torch.device("cpu")) == torch.float64
    assert _accumulator(torch.device("cuda")) == torch.float64
    assert _accumulator(torch.device("mps")) == torch.float32


def test_small_models_of_one_dtype_use_the_history_buffer_the_rest_per_tensor_norms(monkeypatch) -> None:
    small = parameters(3, 4, dtype=torch.float32)
    assert type(Norms.make(small, ALL)) is _HistoryNorms
    monkeypatch.setattr(norms_module, "FLAT_NUMEL", 7)  # exactly that many elements: still small
    assert type(Norms.make(small, ALL)) is _HistoryNorms
    monkeypatch.setattr(norms_module, "FLAT_NUMEL", 6)
    assert type(Norms.make(small, ALL)) is _ForeachNorms
    monkeypatch.setattr(norms_module, "FLAT_NUMEL", 1 << 16)
    assert type(Norms.make([small[0], parameters(2)[0]], ALL)) is _ForeachNorms  # two dtypes
    assert type(Norms.make([], ALL)) is _ForeachNorms


@pytest.mark.parametrize("want", [{n} for n in NORM_ROWS] + [set(NORM_ROWS)], ids=lambda w: "+".join(sorted(w)))
@pytest.mark.parametrize("sizes", [(5,), (4, 3, 1)], ids=["one parameter", "three"])
@pytest.mark.parametrize("path", ["history", "per tensor"])
def test_every_series_alone_or_together_is_the_obvious_float64_norm(path, sizes, want, monkeypatch) -> None:
    if path == "per tensor":
        monkeypatch.setattr(norms_module, "FLAT_NUMEL", 0)
    params = parameters(*sizes)
    reducer = Norms.make(params, frozenset(want))
    assert type(reducer) is (_HistoryNorms if path == "history" else _ForeachNorms)
    expected = run(reducer, params, gradients(params))
    out = reducer.series(3)
    assert list(out) == [n for n in NORM_ROWS if n in want]
    for name in want:
        np.testing.assert_allclose(out[name], expected[name], rtol=1e-13, atol=0, err_msg=name)
    if "sparsity" in want:
        assert out["sparsity"].tolist() == expected["sparsity"] and expected["sparsity"][0] > 0


@pytest.mark.parametrize("path", ["history", "per tensor"])
def test_the_gradients_are_the_ones_the_step_uses_when_they_are_not_the_parameters_own(path, monkeypatch) -> None:
    """A sharded model hands over its shards' gradients: those are the ones measured."""
    if path == "per tensor":
        monkeypatch.setattr(norms_module, "FLAT_NUMEL", 0)
    params = parameters(4, 3)
    grads = gradients(params)
    current: list[list[torch.Tensor]] = []
    reducer = Norms.make(params, ALL, grads=lambda: current[-1])
    expected = []
    for step in range(3):
        current.append(grads[step])
        for p in params:
            p.grad = torch.full_like(p, 100.0)  # not what the step uses
        expected.append(norm(grads[step]))
        reducer.before_step(grads=True)
        reducer.after_step(step)
    np.testing.assert_allclose(reducer.series(3)["grad_norm"], expected, rtol=1e-13)


def test_no_parameters_read_zero_norms_and_zero_sparsity() -> None:
    reducer = Norms.make([], ALL)
    for step in range(2):
        reducer.before_step(grads=True)
        reducer.after_step(step)
    out = reducer.series(2)
    assert {name: values.tolist() for name, values in out.items()} == {name: [0.0, 0.0] for name in NORM_ROWS}


@pytest.mark.parametrize("path", ["history", "per tensor"])
def test_missing_and_sparse_gradients_count_as_zero_and_as_their_values(path, monkeypatch) -> None:
    if path == "per tensor":
        monkeypatch.setattr(norms_module, "FLAT_NUMEL", 0)
    params = parameters(4, 3, 5)
    sparse = torch.sparse_coo_tensor([[1, 3]], torch.tensor([2.0, -1.0], dtype=torch.float64), (4,),
                                     check_invariants=True)
    dense = torch.full((5,), 0.5, dtype=torch.float64)
    rounds = [[None, None, None],  # a step before any backward: no gradients at all
              [None, None, dense],  # the first parameter unused
              [sparse, None, None],  # sparse ones only
              [sparse, None, dense]]
    reducer = Norms.make(params, frozenset({"grad_norm"}))
    for step, grads in enumerate(rounds):
        for p, g in zip(params, grads):
            p.grad = g
        reducer.before_step(grads=True)
        reducer.after_step(step)
    np.testing.assert_allclose(reducer.series(4)["grad_norm"], [0.0, norm([dense]), norm([sparse.to_dense()]),
                                                                norm([sparse.to_dense(), dense])], rtol=1e-13)
    only_sparse = Norms.make(params[:1], frozenset({"grad_norm"}))  # every gradient sparse, none missing
    params[0].grad = sparse
    only_sparse.before_step(grads=True)
    only_sparse.after_step(0)
    np.testing.assert_allclose(only_sparse.series(1)["grad_norm"], [norm([sparse.to_dense()])], rtol=1e-13)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_the_small_weights_of_a_low_precision_model_are_counted_exactly(dtype) -> None:
    """bfloat16 holds integers exactly only up to 256: the count is summed in float64."""
    params = [torch.nn.Parameter(torch.zeros(2100, dtype=dtype)), torch.nn.Parameter(torch.ones(3, dtype=dtype))]
    reducer = Norms.make(params, frozenset({"sparsity"}))
    assert type(reducer) is _HistoryNorms
    reducer.before_step(grads=False)
    reducer.after_step(0)
    assert reducer.series(1)["sparsity"].tolist() == [2100 / 2103]


def test_the_count_of_a_large_model_stays_exact_past_float32_integers() -> None:
    """2**24 + 1 small weights: a float32 count would read 2**24."""
    params = [torch.nn.Parameter(torch.zeros((1 << 24) + 1, dtype=torch.float16))]
    reducer = Norms.make(params, frozenset({"sparsity"}))
    assert type(reducer) is _ForeachNorms
    reducer.before_step(grads=False)
    reducer.after_step(0)
    assert reducer.series(1)["sparsity"].tolist() == [1.0]


def test_the_history_is_reduced_a_block_at_a_time_within_its_bytes(monkeypatch) -> None:
    params = parameters(4, 6)  # float64: 10 numbers, 80 bytes a part, 3 parts with every series
    monkeypatch.setattr(norms_module, "HISTORY_BYTES", 1000)
    reducer = Norms.make(params, ALL)
    assert len(reducer.history_rows) == 4  # 1000 // 240 rows: never more than HISTORY_BYTES
    grads = gradients(params, steps=6)
    expected = {n: [] for n in NORM_ROWS}
    for step in range(6):
        one = run(reducer, params, [grads[step]], steps=1, first=step)
        for n in NORM_ROWS:
            expected[n] += one[n]
        # reduced when the history is full, not before
        assert len(reducer.vectors.steps) == (4 if step >= 3 else 0) and reducer.row == (step + 1) % 4
    out = reducer.series(6)
    for name in NORM_ROWS:
        np.testing.assert_allclose(out[name], expected[name], rtol=1e-13, err_msg=name)
    monkeypatch.setattr(norms_module, "HISTORY_BYTES", 100)  # less than one row: one row at a time
    assert len(Norms.make(params, ALL).history_rows) == 1


def test_a_step_copies_its_starting_point_and_gradients_in_one_call(monkeypatch) -> None:
    """The history's point: a step costs a few kernel launches, so the usual step copies
    what it needs before (start and gradients) in one call, and after it in another."""
    calls = []
    real = torch._foreach_copy_

    def counted(*args, **kwargs):
        calls.append(len(args[0]))
        return real(*args, **kwargs)

    params = parameters(4, 3)
    for want, before in [(ALL, [4]), (frozenset({"grad_norm"}), [2]), (frozenset({"update_norm"}), [2])]:
        reducer = Norms.make(params, want)
        for p, g in zip(params, gradients(params)[0]):
            p.grad = g
        monkeypatch.setattr(torch, "_foreach_copy_", counted)
        calls.clear()
        reducer.before_step(grads="grad_norm" in want)
        assert calls == before, want
        monkeypatch.setattr(torch, "_foreach_copy_", real)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("path", ["history", "per tensor"])
def test_on_a_gpu_the_norms_are_reduced_where_the_parameters_are(path, monkeypatch) -> None:
    if path == "per tensor":
        monkeypatch.setattr(norms_module, "FLAT_NUMEL", 0)
    params = [torch.nn.Parameter(p.detach().cuda()) for p in parameters(4, 3)]
    reducer = Norms.make(params, ALL)
    if path == "history":
        assert reducer.staging.device.type == "cuda" and reducer.history.device.type == "cuda"
    grads = [[g.cuda() for g in row] for row in gradients(params)]
    grads[0][0] = None  # a parameter without a gradient at the first step
    expected = run(reducer, params, grads)
    out = reducer.series(3)
    for name in NORM_ROWS:
        np.testing.assert_allclose(out[name], expected[name], rtol=1e-12, err_msg=name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_parameters_on_two_devices_make_one_norm_on_the_first() -> None:
    host, device = parameters(4, 3)
    params = [host, torch.nn.Parameter(device.detach().cuda())]
    reducer = Norms.make(params, ALL)
    assert type(reducer) is _ForeachNorms
    expected = run(reducer, params, [[g.to(p.device) for g, p in zip(row, params)] for row in gradients(params)])
    out = reducer.series(3)
    for name in NORM_ROWS:
        np.testing.assert_allclose(out[name], expected[name], rtol=1e-12, err_msg=name)
