"""Under ``pytest -n N``: each worker sends what its session saw — the check records and the
goldens' owners — and the controller merges them, so one summary, one report and one orphan
judgement cover every worker (pytest-mpl's way). Registered only when xdist is present."""

from __future__ import annotations

import json
from typing import Any

from ..report.results import Results
from .pruning import Pruning

WORKER_KEY = "optcheck"


def worker_payload(results: Results, pruning: Pruning) -> str:
    """Everything a worker hands over, as JSON (``config.workeroutput`` crosses a channel)."""
    return json.dumps({**results.payload(), **pruning.payload()}, allow_nan=False)


def merge_payload(raw: str, results: Results, pruning: Pruning) -> None:
    """Fold one worker's payload into the controller's results and owners."""
    payload = json.loads(raw)
    results.merge(payload)
    pruning.merge(payload)


class XdistMerge:
    def __init__(self, results: Results, pruning: Pruning) -> None:
        self.results = results
        self.pruning = pruning

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        raw = getattr(node, "workeroutput", {}).get(WORKER_KEY)
        if raw:
            merge_payload(raw, self.results, self.pruning)
