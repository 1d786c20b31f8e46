"""The one tolerance rule: how far a value may be from its golden at each step.

``atol + rtol * |golden|`` — the rule of ``np.isclose`` and ``torch.testing.assert_close`` —
widened, for a calibrated golden (``calibrate=N``), to the calibration allowance
(``factor * envelope``, :meth:`~.envelope.Calibration.allowance`) where that is larger.
Every place that judges or shows a difference asks :func:`allowed`: the comparison
(:mod:`.compare`), the checks without goldens (:mod:`.stepwise`), the failure message
(:mod:`.messages`) and the report's picture, so they can never disagree.

Kept apart from :mod:`.tolerance`, which must not import numpy (the plugin parses
tolerances in every pytest session). Pure numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .tolerance import Tolerance


def allowed(tol: Tolerance, golden: Any, allowance: Any = None) -> Any:
    """The largest difference allowed from ``golden`` (an array, or one number):
    ``atol + rtol * |golden|``, or ``allowance`` (same shape, absolute) where larger.

    A non-finite golden gives a non-finite bound (the callers decide what NaN and inf
    mean); the arithmetic warns about nothing."""
    with np.errstate(invalid="ignore", over="ignore"):
        bound = tol.atol + tol.rtol * np.abs(golden)
        if allowance is not None:
            bound = np.maximum(bound, allowance)
    return bound
