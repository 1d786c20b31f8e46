"""What the checks without goldens share: which tolerances apply.

Each check compares a run with a reference run of the same spec, so the golden's
tolerance layers (ini, command line, marker) do not apply: they say how far a run may be
from a *recording*. A check has its own measured defaults (``docs/tolerances.md``) and
takes the call's keywords on top, in the form ``check()`` accepts: ``rtol=...`` for
everything, ``loss="rtol=1e-3"`` per series, ``params=...`` / ``state=...`` for the
parameters and the optimizer state, compared element by element after every step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ...engine.stepwise import TENSOR_KINDS
from ...engine.tolerance import Tolerance, check_layer, resolve_tolerances

#: ``{series or '*': fields}``, the form of a tolerance layer.
Layer = Mapping[str, Mapping[str, Any]]

EXACT: Layer = {"*": {"rtol": 0.0, "atol": 0.0}}


def differential_tolerances(series: Iterable[str], defaults: Layer, short: Mapping[str, Any],
                            *, where: str) -> dict[str, Tolerance]:
    """The Tolerance of every series and of ``params`` / ``state``: defaults, then the call's."""
    names = [*series, *TENSOR_KINDS]
    layer = check_layer(None, short, names, where=where)
    return resolve_tolerances(names, defaults, layer)
