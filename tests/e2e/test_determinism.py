"""Runs are bit-identical across repetition, test order, global RNG use and xdist."""

from __future__ import annotations

import pytest

from tests.e2e.goldens import golden_files

MODULE = """
import pytest
import torch

pytestmark = pytest.mark.optcheck(epochs=2, record=["loss", "lr", "grad_norm"])

def test_reseed_global_rng():
    torch.manual_seed(1234)
    torch.rand(100)

@pytest.mark.parametrize("label", [
    pytest.param("adam", marks=pytest.mark.optcheck(optimizer="Adam(lr=0.01)")),
    pytest.param("momentum", marks=pytest.mark.optcheck(optimizer="SGD(lr=0.01, momentum=0.9)")),
    pytest.param("lbfgs", marks=pytest.mark.optcheck(optimizer="LBFGS(lr=0.01, max_iter=3)")),
])
def test_run(optcheck, label):
    optcheck.check()

def test_consume_global_rng():
    torch.randn(1000)
"""

REVERSE = """
def pytest_collection_modifyitems(items):
    items.reverse()
"""


def golden_bytes(project: pytest.Pytester) -> dict[str, bytes]:
    return {p: (project.path / p).read_bytes() for p in golden_files(project.path)}


def record_afresh(project: pytest.Pytester, *args: str) -> dict[str, bytes]:
    """Delete every golden, record them anew, return their bytes: each order is compared
    on goldens it *created* (a ``--snapshot-update`` over existing goldens keeps any within
    tolerance, so it could not show a difference)."""
    for path in golden_files(project.path):
        (project.path / path).unlink()
    project.runpytest("--optcheck", "--snapshot-update", *args).assert_outcomes(passed=5)
    return golden_bytes(project)


def test_goldens_are_bit_identical_serial_reversed_and_under_xdist(project: pytest.Pytester) -> None:
    project.makepyfile(test_det=MODULE)
    serial = record_afresh(project)
    assert len(serial) == 3

    # Any reordering, with other tests reseeding and consuming the global RNG: the same bytes.
    project.makeconftest(REVERSE)
    assert record_afresh(project) == serial

    # Recorded afresh by two xdist workers: the very same bytes.
    project.makeconftest("")
    assert record_afresh(project, "-n", "2") == serial
