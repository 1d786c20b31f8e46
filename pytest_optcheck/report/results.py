"""What a session's checks did, gathered for the terminal summary, the report and xdist.

Records are plain JSON-ready dicts, so they cross from xdist workers to the controller
through ``config.workeroutput`` unchanged (pytest-mpl carries its summary the same way) and
land in ``summary.json`` as they are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from ..engine.outcome import STATUS_ORDER, Outcome, Status


@dataclasses.dataclass
class Results:
    records: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    vacuous: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    orphans: list[str] = dataclasses.field(default_factory=list)
    pruned: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    #: Checks ``--optcheck-sensitivity`` probed; None when it was not asked for.
    probed: int | None = None

    def add_outcome(self, nodeid: str, name: str | None, outcome: Outcome, picture: str | None = None,
                    result: Mapping[str, Any] | None = None) -> None:
        from ..engine.trajectory import json_ready
        from ..golden.files import relative_to_cwd

        self.records.append(json_ready({
            "nodeid": nodeid,
            "name": name,
            "status": str(outcome.status),
            "path": relative_to_cwd(outcome.path) if outcome.path else None,
            "worst": outcome.worst(),
            "message": "" if outcome.ok else outcome.message,
            "picture": picture,
            "notes": list(outcome.notes),
            **({"result": dict(result)} if result else {}),
        }))

    def payload(self) -> dict[str, Any]:
        """What an xdist worker sends to the controller (see :meth:`merge`)."""
        return {"records": self.records, "vacuous": self.vacuous, "probed": self.probed}

    def merge(self, payload: Mapping[str, Any]) -> None:
        """Fold in what an xdist worker sent."""
        self.records.extend(payload.get("records", []))
        self.vacuous.extend(payload.get("vacuous", []))
        if payload.get("probed") is not None:
            self.probed = (self.probed or 0) + payload["probed"]

    def by_status(self, status: Status) -> list[dict[str, Any]]:
        return [r for r in self.records if r["status"] == status]

    def sorted_records(self) -> list[dict[str, Any]]:
        rank = {s: i for i, s in enumerate(STATUS_ORDER)}
        return sorted(self.records, key=lambda r: (rank.get(r["status"], 99), r["nodeid"], r.get("name") or ""))

    def counts(self) -> dict[str, int]:
        """Checks per status, failures first; statuses with none left out."""
        counts = {str(s): len(self.by_status(s)) for s in STATUS_ORDER}
        return {s: n for s, n in counts.items() if n}

    def summary_lines(self) -> list[str]:
        """Lines for the terminal summary: goldens created, updated, failing, orphaned, and
        the failing checks that have no golden (named by their test, as they have no file)."""
        lines: list[str] = []
        if self.records:
            shown = ", ".join(f"{n} {s}" for s, n in self.counts().items())
            noun = "check" if len(self.records) == 1 else "checks"
            lines.append(f"{len(self.records)} {noun}: {shown}")
        for status, title in SECTIONS:
            lines += _section(title, (r["path"] for r in self.by_status(status)))
        lines += _section("checks without a golden that failed (resume, parity, distributed)",
                          (f"{r['nodeid']}{_name(r)}" for r in self.by_status(Status.FAILED) if not r["path"]))
        if self.probed is not None:
            lines.append(_sensitivity_line(self.probed, len(self.vacuous)))
        if self.vacuous:
            lines.append("checks that would NOT notice a 1% larger step (every update x1.01, as from lr x1.01; vacuous tolerance):")
            lines += [f"  {v['nodeid']}{_name(v)}: {v['detail']}" for v in self.vacuous]
        lines += _section("orphaned goldens (no test owns them; remove with --optcheck-prune)", self.orphans)
        lines += _section("orphaned goldens removed", self.pruned)
        lines += self.notes
        return lines


SECTIONS = (
    (Status.CREATED, "goldens created"),
    (Status.UPDATED, "goldens updated (were out of tolerance)"),
    (Status.REPAIRED, "goldens rewritten (were damaged: could not be read)"),
    (Status.FAILED, "goldens out of tolerance"),
    (Status.CONFIG_CHANGED, "goldens recorded with another configuration"),
    (Status.CORRUPT, "goldens that cannot be read"),
    (Status.MISSING, "goldens missing"),
    (Status.ERROR, "checks that raised an error"),
)


def _sensitivity_line(probed: int, vacuous: int) -> str:
    """What ``--optcheck-sensitivity`` did, also (above all) when every check noticed the 1%."""
    if probed == 0:
        return ("sensitivity: no check was probed (it probes declarative checks, optcheck.check() without a "
                "trajectory, that passed)")
    noun = "check" if probed == 1 else "checks"
    if vacuous == 0:
        return f"sensitivity: {probed} {noun} probed with every step x1.01; each noticed it"
    return f"sensitivity: {probed} {noun} probed with every step x1.01; {vacuous} did not notice it"


def _name(record: Mapping[str, Any]) -> str:
    return f" [{record['name']}]" if record.get("name") else ""


def _section(title: str, paths: Iterable[str | None]) -> list[str]:
    items = sorted({p for p in paths if p})
    if not items:
        return []
    return [f"{title} ({len(items)}):"] + [f"  {p}" for p in items]
