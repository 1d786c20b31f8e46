"""A golden's noise envelope (``calibrate=N``): how far the run drifts when nothing changes.

When a golden is recorded with ``calibrate=N``, N replicas of the run start from
ulp-perturbed initial parameters (:mod:`pytest_optcheck.run.replicas`). Their deviation
from the unperturbed run, per series and step, is the run's own numerical noise: a change
of floating-point order (another BLAS, thread count, torch release, GPU, an algebraically
equal rewrite) moves a chaotic run by that much and no more, a behaviour change (a 0.5%
learning-rate change) by orders of magnitude more. The check then allows, per step, the
larger of the series' tolerance and ``factor`` times the envelope.

The envelope, per step ``i``: the largest ``|replica - reference|`` over the replicas and
over the steps ``i - window .. i + window`` (one replica's deviation crosses zero now and
then; a neighbouring step's does not), rounded *up* to :data:`DIGITS` significant digits
(compact, and never smaller than measured). :data:`FACTOR` and :data:`WINDOW` come from
the measurement in docs/tolerances.md ("Calibrated tolerances") and are stored in each
golden, so a later change of the defaults never changes what an existing golden allows.

Replicas that cannot measure rounding are refused (:func:`instability`): replicas that
started apart (a user's loop initialising from the global RNG, told by the first step:
:func:`started_apart`), and runs unstable at the rounding level (replicas that blow up).

Pure numpy, like the rest of the engine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .trajectory import Trajectory, as_2d

#: Allowed multiple of the envelope: the ulp-level rewrites measured stay under 0.4x the
#: windowed envelope, 0.5% and 2% learning-rate changes exceed it by 1000x and more.
FACTOR = 4.0
#: Half-width (steps) of the running maximum over neighbouring steps.
WINDOW = 4
#: Significant digits stored, rounded up.
DIGITS = 3
#: Replicas to suggest in messages and docs (the envelope hardly grows beyond 8).
SUGGESTED_REPLICAS = 8


@dataclasses.dataclass(frozen=True)
class Calibration:
    """The noise envelope of a golden, as stored in its header's ``calibration`` block."""

    replicas: int
    envelope: Mapping[str, np.ndarray]
    factor: float = FACTOR
    window: int = WINDOW
    #: How the replicas ran ("stacked", "sequential (...)"), for the reader of the golden.
    path: str = ""

    def allowance(self, name: str) -> np.ndarray | None:
        """The absolute difference allowed per step of series ``name`` (steps x groups)."""
        env = self.envelope.get(name)
        return None if env is None else self.factor * as_2d(env)

    def to_dict(self) -> dict[str, Any]:
        return {"factor": self.factor, "path": self.path, "replicas": self.replicas, "window": self.window,
                "envelope": {name: _plain(env) for name, env in self.envelope.items()}}

    @classmethod
    def from_dict(cls, data: Any) -> Calibration:
        """Parse a golden's block; a malformed one is a ValueError or TypeError saying what is wrong."""
        if not isinstance(data, Mapping):
            raise TypeError(f"'calibration' is a {type(data).__name__}, not an object")
        replicas, factor, window = data.get("replicas"), data.get("factor"), data.get("window", WINDOW)
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
            raise ValueError(f"'calibration.replicas' is {replicas!r}, not an integer >= 1")
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor > 0:
            raise ValueError(f"'calibration.factor' is {factor!r}, not a number > 0")
        envelope = data.get("envelope")
        if not isinstance(envelope, Mapping):
            raise TypeError("'calibration.envelope' is missing or not an object")
        arrays = {str(k): np.asarray(v, dtype=np.float64) for k, v in envelope.items()}
        for name, env in arrays.items():
            if env.ndim not in (1, 2) or not np.all(env >= 0):
                raise ValueError(f"'calibration.envelope.{name}' must hold numbers >= 0 per step")
        return cls(replicas, arrays, float(factor), int(window), str(data.get("path", "")))


def measure(reference: Trajectory, replicas: Sequence[Trajectory], path: str = "",
            factor: float = FACTOR, window: int = WINDOW) -> Calibration:
    """The envelope of ``replicas`` around ``reference``, per series of the reference."""
    envelope = {}
    for name in reference.names:
        ref = as_2d(reference[name])
        devs = [_deviation(ref, as_2d(r[name])) for r in replicas if name in r]
        raw = np.max(devs, axis=0) if devs else np.zeros_like(ref)
        env = round_up(running_max(raw, window))
        envelope[name] = env[:, 0] if np.ndim(reference[name]) == 1 else env
    return Calibration(len(replicas), envelope, factor, window, path)


#: Median envelope / |value| at or above which a run counts as unstable at the ulp level:
#: on a typical step its rounding noise is as large as the value itself (measured: the
#: chaotic MLP's median is 0.016; the seed's LBFGS, where 7 of 8 replicas blow up, 1e7).
UNSTABLE_MEDIAN = 1.0

#: How far apart (relative) the replicas' first loss may lie before the calibration is
#: refused as measuring something other than rounding: the larger of this and
#: :data:`FIRST_STEP_EPS` machine epsilons of the perturbed parameters. A one-ulp start
#: moves the first loss by rounding (measured, benchmarks/measure_calibration.py section 4:
#: at most 1 epsilon in float32/float64, 1.3e-5 under bf16 autocast), a start drawn from
#: the global RNG by percent (measured: 2.3e-3 at the least, a transformer layer; median
#: 0.02-0.08). 1e-4 sits 8x above the first and 20x below the second.
FIRST_STEP_RTOL = 1e-4
#: ... and in machine epsilons of the parameters' dtype, for low-precision parameters, whose
#: own rounding reaches 1e-4 (bf16: one epsilon is 7.8e-3; there a start from the global RNG
#: may not be told from a one-ulp one, and the test lets it pass rather than refuse wrongly).
FIRST_STEP_EPS = 16
#: Machine epsilon assumed when the replicas do not say what they perturbed (float32's).
FLOAT32_EPS = 2.0**-23


def instability(reference: Trajectory, replicas: Sequence[Trajectory], calibration: Calibration) -> dict[str, Any] | None:
    """Facts for the message when the replicas cannot measure rounding noise, or None if fine.

    First, replicas that started apart (:func:`started_apart`: a loop that initialises from
    the global RNG): then nothing else they show is rounding. Else, the run is unstable at
    the rounding level (a calibrated golden would allow almost anything): replicas that went
    NaN/inf where the run did not, and series whose median relative envelope reaches
    :data:`UNSTABLE_MEDIAN`."""
    apart = started_apart(reference, replicas)
    if apart is not None:
        return {"replicas": len(replicas), "apart": apart, "diverged": [], "wide": {}}
    diverged = []
    for index, replica in enumerate(replicas):
        for name in reference.names:
            if name not in replica:
                continue
            ref, rep = as_2d(reference[name]), as_2d(replica[name])
            n, k = min(ref.shape[0], rep.shape[0]), min(ref.shape[1], rep.shape[1])
            bad = np.isfinite(ref[:n, :k]) & ~np.isfinite(rep[:n, :k])
            if bad.any():
                diverged.append((index, name, int(np.argmax(bad.any(axis=1)))))
                break
    wide = {}
    for name, env in calibration.envelope.items():
        ref = np.abs(as_2d(reference[name]))
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(ref > 0, as_2d(env) / ref, 0.0)
        median = float(np.median(rel)) if rel.size else 0.0
        if median >= UNSTABLE_MEDIAN:
            wide[name] = median
    if not diverged and not wide:
        return None
    return {"replicas": len(replicas), "apart": None, "diverged": diverged, "wide": wide}


def started_apart(reference: Trajectory, replicas: Sequence[Trajectory], series: str = "loss") -> dict[str, Any] | None:
    """Facts when the replicas' first ``series`` value already lies further from the run's
    than one-ulp starts can put it, or None.

    Why the first step: before any update, a replica's loss is the run's loss evaluated at
    parameters one ulp away, which moves it by rounding (relative ~1e-7 in float32); chaos
    needs steps to amplify that. A loop that builds its model from the global RNG gives each
    replica other weights, and their first losses differ by percent: an envelope measured
    from them is as wide as a real change, which it would then let pass.

    The median over the replicas is judged (one odd replica, a loss with a jump, does not
    refuse), against :data:`FIRST_STEP_RTOL` or :data:`FIRST_STEP_EPS` epsilons of what the
    replicas perturbed (``meta["start_eps"]``, set by :mod:`pytest_optcheck.run.replicas`)."""
    if series not in reference.names or not replicas:
        return None
    ref = as_2d(reference[series])[:, 0]
    finite = np.flatnonzero(np.isfinite(ref) & (ref != 0))
    if finite.size == 0:
        return None
    step = int(finite[0])
    rel = []
    for replica in replicas:
        if series not in replica:
            continue
        values = as_2d(replica[series])[:, 0]
        if step < values.size and np.isfinite(values[step]):
            rel.append(abs(float(values[step]) - float(ref[step])) / abs(float(ref[step])))
    if not rel:
        return None
    eps = max(float(r.meta.get("start_eps", FLOAT32_EPS)) for r in replicas)
    limit = max(FIRST_STEP_RTOL, FIRST_STEP_EPS * eps)
    median = float(np.median(rel))
    if median <= limit:
        return None
    return {"series": series, "step": step, "median": median, "max": max(rel), "limit": limit, "eps": eps}


def _deviation(ref: np.ndarray, rep: np.ndarray) -> np.ndarray:
    """|rep - ref| over the reference's shape; equal values (NaN and same infinities
    included) count 0, a step one side lacks or cannot compare counts 0 (no evidence)."""
    out = np.zeros_like(ref)
    n, k = min(ref.shape[0], rep.shape[0]), min(ref.shape[1], rep.shape[1])
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.abs(rep[:n, :k] - ref[:n, :k])
    out[:n, :k] = np.where(np.isfinite(d), d, 0.0)
    return out


def running_max(values: np.ndarray, window: int) -> np.ndarray:
    """The maximum over steps ``i - window .. i + window`` (clipped at the ends), per column."""
    if window <= 0 or values.shape[0] == 0:
        return values
    padded = np.pad(values, ((window, window), (0, 0)), mode="edge")
    view = np.lib.stride_tricks.sliding_window_view(padded, 2 * window + 1, axis=0)
    return view.max(axis=-1)


def round_up(values: np.ndarray, digits: int = DIGITS) -> np.ndarray:
    """Round each value up to ``digits`` significant digits (zero stays zero)."""
    out = np.zeros_like(values, dtype=np.float64)
    positive = values > 0
    exponent = np.floor(np.log10(values[positive])) - (digits - 1)
    scale = np.power(10.0, exponent)
    rounded = np.ceil(values[positive] / scale * (1 - 1e-12)) * scale
    out[positive] = [float(f"{v:.{digits - 1}e}") for v in rounded]
    return out


def _plain(env: np.ndarray) -> list[Any]:
    return [float(v) if np.ndim(v) == 0 else [float(x) for x in v] for v in np.asarray(env)]
