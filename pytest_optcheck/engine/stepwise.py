"""Two runs of one spec compared step by step — no golden: the checks of resume, parity
and distributed training (``checks/differential/resume.py``, ``parity.py``, ``distributed.py``).

A :class:`Run` is what a run leaves: its Trajectory (loss, lr... one value per step) and,
for every step, each parameter and optimizer-state tensor as a numpy array (``run/states``
records them). The series are compared by :func:`~.compare.compare`, with its tolerance
modes; the tensors element by element after every step, PyTorch's own habit in
``torch/testing/_internal/common_optimizers.py``: an element fails when
``|other - reference| > atol + rtol * |reference|`` (``torch.testing.assert_close``'s rule,
:func:`.bound.allowed`).
Tensors take the tolerance of the pseudo-series ``params`` (parameters) or ``state``
(optimizer state), which the checks' keywords set like any series'. Pure numpy.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np

from .bound import allowed
from .compare import Verdict, compare
from .tolerance import Tolerance
from .trajectory import Trajectory

#: One step's tensors: name -> array (``hidden.weight``, ``exp_avg of hidden.weight``).
StepTensors = Mapping[str, np.ndarray]

#: The tolerance names of the tensors, beside the trajectory's series.
TENSOR_KINDS = ("params", "state")


def tensor_kind(name: str) -> str:
    """``"state"`` for a piece of optimizer state (``exp_avg of w``), else ``"params"``."""
    return "state" if " of " in name else "params"


@dataclasses.dataclass(frozen=True)
class Run:
    """One run of a spec: its trajectory and its tensors after every step."""

    trajectory: Trajectory
    tensors: Sequence[StepTensors] = ()


@dataclasses.dataclass(frozen=True)
class TensorDifference:
    """The first tensor outside tolerance: where, which element, by how much — or a
    structural difference (``reason``: a tensor one run lacks, another shape, fewer steps)."""

    step: int
    name: str
    reason: str = "values"
    index: tuple[int, ...] = ()
    reference: float = math.nan
    other: float = math.nan
    tolerance: Tolerance | None = None
    #: For ``reason="shape"``: ``"<reference shape> | <other shape>"``.
    detail: str = ""

    @property
    def abs_err(self) -> float:
        return abs(self.other - self.reference)

    @property
    def rel_err(self) -> float:
        if self.reference == 0:
            return 0.0 if self.other == 0 else math.inf
        return self.abs_err / abs(self.reference)


@dataclasses.dataclass(frozen=True)
class TensorVerdict:
    """All tensors of all steps: the first difference, and the largest errors seen."""

    first: TensorDifference | None
    max_abs: float = 0.0
    max_rel: float = 0.0
    worst: str | None = None
    compared: int = 0

    @property
    def passed(self) -> bool:
        return self.first is None


@dataclasses.dataclass(frozen=True)
class RunComparison:
    """The series verdict and the tensor verdict of one pair of runs."""

    series: Verdict
    tensors: TensorVerdict

    @property
    def passed(self) -> bool:
        return self.series.passed and self.tensors.passed

    @property
    def max_rel(self) -> float:
        """The largest relative difference anywhere: series and tensors (for notes)."""
        rel = [s.max_rel for s in self.series.series if math.isfinite(s.max_rel)]
        return max([self.tensors.max_rel, *rel]) if rel or self.tensors.compared else 0.0


def compare_runs(reference: Run, other: Run, tolerances: Mapping[str, Tolerance]) -> RunComparison:
    """Series by :func:`compare` (tolerances by series name), tensors by :func:`compare_tensors`."""
    names = reference.trajectory.names
    series = compare(reference.trajectory, other.trajectory, {n: tolerances[n] for n in names if n in tolerances})
    tensors = compare_tensors(reference.tensors, other.tensors, {k: tolerances[k] for k in TENSOR_KINDS})
    return RunComparison(series, tensors)


def compare_tensors(
    reference: Sequence[StepTensors], other: Sequence[StepTensors], tolerances: Mapping[str, Tolerance]
) -> TensorVerdict:
    """Every tensor of every step; stops at the first step with a difference."""
    max_abs = max_rel = 0.0
    worst: str | None = None
    compared = 0

    def ended(first: TensorDifference | None) -> TensorVerdict:
        """The verdict with what was measured up to here."""
        return TensorVerdict(first, max_abs, max_rel, worst, compared)

    for step, (ref, oth) in enumerate(zip(reference, other)):
        for name in ref:
            if name not in oth:
                return ended(TensorDifference(step, name, "missing"))
            a, b = np.asarray(ref[name], dtype=np.float64), np.asarray(oth[name], dtype=np.float64)
            if a.shape != b.shape:
                return ended(TensorDifference(step, name, "shape", detail=f"{a.shape} | {b.shape}"))
            compared += 1
            tol = tolerances[tensor_kind(name)]
            bad, abs_err, rel_err = _outside(a, b, tol)
            if abs_err.size and float(abs_err.max()) > max_abs:
                max_abs = float(abs_err.max())
            if rel_err.size and float(rel_err.max()) > max_rel:
                max_rel, worst = float(rel_err.max()), name
            if bad.any():
                flat = int(np.argmax(np.where(bad, abs_err, -1.0)))  # the largest error outside tolerance
                index = tuple(int(i) for i in np.unravel_index(flat, a.shape))
                return ended(TensorDifference(step, name, "values", index, float(a.reshape(-1)[flat]),
                                              float(b.reshape(-1)[flat]), tol))
        extra = [n for n in oth if n not in ref]
        if extra:
            return ended(TensorDifference(step, extra[0], "extra"))
    if len(reference) != len(other):
        return ended(TensorDifference(min(len(reference), len(other)), "", "steps", reference=len(reference),
                                      other=len(other)))
    return ended(None)


def _outside(a: np.ndarray, b: np.ndarray, tol: Tolerance) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(outside tolerance, abs error, rel error) element-wise; NaN equals NaN, inf equals the
    same-signed inf, and nothing else non-finite passes."""
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        abs_err = np.where(same, 0.0, np.abs(b - a))
        rel_err = np.where(same, 0.0, np.where(a == 0, np.inf, abs_err / np.abs(a)))
        # a non-finite element passes only when it is the same (an infinite reference allows
        # an infinite difference: +inf against -inf must still fail)
        bad = ~same & (~(abs_err <= allowed(tol, a)) | ~np.isfinite(a) | ~np.isfinite(b))
    # NaN errors (NaN against a number) count as infinite; infinite ones stay infinite
    # (nan_to_num's default would make them the largest float)
    return bad, np.where(np.isnan(abs_err), np.inf, abs_err), np.where(np.isnan(rel_err), np.inf, rel_err)
