"""A chaotic run checked against a calibrated golden (``calibrate=8``).

A 1-64-64-1 tanh MLP fitting sin(6x) + noise with SGD, momentum 0.9, lr 0.1 amplifies a
one-ulp change past the default rtol 1e-4 within ~130 of its 384 steps: another BLAS, thread
count or torch release would fail a plain golden with no change of behaviour. Recorded with
``calibrate=8``, the golden holds the noise envelope of 8 ulp-perturbed replicas, and the
check allows max(tolerance, 4 x envelope) per step — which still fails a 0.5% learning-rate
change by orders of magnitude (docs/tolerances.md, "Calibrated tolerances").
"""

import pytest


@pytest.mark.optcheck(problem="sine", optimizer="SGD(lr=0.1, momentum=0.9)", calibrate=8)
def test_chaotic_tanh_mlp(optcheck):
    optcheck.check()
