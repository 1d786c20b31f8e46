"""The failure text of a per-epoch series (``rec.log_epoch``: a validation loss, an EMA
model's evaluation). Its entries are epochs, not steps, so every fact names an epoch; the
per-step sentences are in :mod:`.messages`, which calls this one."""

from __future__ import annotations

import numpy as np

from .compare import SeriesVerdict, outside_tolerance
from .messages import _align, describe_tolerance, error_cells, format_pair


def epoch_block(sv: SeriesVerdict, golden: np.ndarray, current: np.ndarray) -> list[str]:
    """A failing per-epoch series (``rec.log_epoch``): its epochs are its steps, so every fact
    names epochs, and the table shows the epochs around the first failure."""
    lines = [f"{sv.name} (per epoch): {sv.n_failed} of {sv.n_checked} epochs outside tolerance"
             if not sv.length_mismatch else
             f"{sv.name} (per epoch): current run has {sv.steps_current} epochs, the golden {sv.steps_golden}",
             f"  tolerance: {describe_tolerance(sv.tolerance).replace('step by step', 'epoch by epoch')}"]
    if sv.first_failure is not None:
        g, c = format_pair(float(golden[sv.first_failure]), float(current[sv.first_failure]))
        lines.append(f"  first epoch outside tolerance: epoch {sv.first_failure} (golden {g}, current {c})")
    rows = [("epoch", "golden", "current", "abs err", "rel err", "")]
    center = sv.first_failure or 0
    end = min(len(golden), len(current), center + 4)
    outside = outside_tolerance(golden[:end], current[:end], sv.tolerance)  # the epochs shown, judged at once
    for e in range(max(0, center - 3), end):
        g, c = format_pair(float(golden[e]), float(current[e]))
        rows.append((str(e), g, c, *error_cells(float(golden[e]), float(current[e])), "!" if outside[e] else ""))
    return lines + ["  per epoch:", *_align(rows)]
