"""Recording a run into a Trajectory, split by job: :mod:`.recorder` (the
:class:`Recorder` and its optimizer hooks), :mod:`.series` (the per-series stores),
:mod:`.norms` (the norm reducers) and :mod:`.hosts` (bringing device values to the host)."""

from .hosts import HostFloat
from .recorder import HOOKED_SERIES, TENSOR_SERIES, Recorder, group_lrs, group_momenta

__all__ = ["HOOKED_SERIES", "TENSOR_SERIES", "HostFloat", "Recorder", "group_lrs", "group_momenta"]
