"""Runs are bit-identical across repetition, test order, global RNG use and xdist."""

from __future__ import annotations

import pytest
from conftest import golden_files

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


def test_goldens_are_bit_identical_serial_reversed_and_under_xdist(project: pytest.Pytester) -> None:
    project.makepyfile(test_det=MODULE)
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=5)
    serial = golden_bytes(project)
    assert len(serial) == 3

    # Any reordering, with other tests reseeding and consuming the global RNG: unchanged.
    project.makeconftest(REVERSE)
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=5)
    assert golden_bytes(project) == serial

    # Recorded afresh by two xdist workers: the very same bytes.
    for path in serial:
        (project.path / path).unlink()
    result = project.runpytest("--optcheck", "--snapshot-update", "-n", "2")
    result.assert_outcomes(passed=5)
    assert golden_bytes(project) == serial


def test_a_check_passes_under_xdist_against_serial_goldens(project: pytest.Pytester) -> None:
    project.makepyfile(test_det=MODULE)
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=5)
    result = project.runpytest("--optcheck", "-n", "2")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*3 checks: 3 passed*"])
