"""What a run's checks did, gathered for the terminal summary and the report.

Records are plain dicts so they cross from xdist workers to the controller through
``config.workeroutput`` unchanged (pytest-mpl carries its summary the same way).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

#: Statuses in the order a reviewer wants to read them (failures first).
STATUS_ORDER = ("failed", "config-changed", "corrupt", "missing", "error", "updated", "created", "passed")


@dataclasses.dataclass
class Results:
    records: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    vacuous: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    orphans: list[str] = dataclasses.field(default_factory=list)
    pruned: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    def add(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def merge(self, payload: dict[str, Any]) -> None:
        """Fold in what an xdist worker sent (see :meth:`payload`)."""
        self.records.extend(payload.get("records", []))
        self.vacuous.extend(payload.get("vacuous", []))

    def payload(self) -> dict[str, Any]:
        return {"records": self.records, "vacuous": self.vacuous}

    def by_status(self, status: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["status"] == status]

    def sorted_records(self) -> list[dict[str, Any]]:
        rank = {s: i for i, s in enumerate(STATUS_ORDER)}
        return sorted(self.records, key=lambda r: (rank.get(r["status"], 99), r["nodeid"], r.get("name") or ""))

    def summary_lines(self) -> list[str]:
        """Lines for the terminal summary: goldens created, updated, failing, orphaned."""
        lines: list[str] = []
        counts = {s: len(self.by_status(s)) for s in STATUS_ORDER}
        if self.records:
            shown = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
            noun = "check" if len(self.records) == 1 else "checks"
            lines.append(f"{len(self.records)} {noun}: {shown}")
        for status, title in (
            ("created", "goldens created"),
            ("updated", "goldens updated (were out of tolerance)"),
            ("failed", "goldens out of tolerance"),
            ("config-changed", "goldens recorded with another configuration"),
            ("corrupt", "goldens that cannot be read"),
            ("missing", "goldens missing"),
            ("error", "checks that raised an error"),
        ):
            lines += _section(title, (r["path"] for r in self.by_status(status)))
        if self.vacuous:
            lines.append("checks that would NOT notice a 1% learning-rate change (vacuous tolerance):")
            lines += [f"  {v['nodeid']}{_name(v)}: {v['detail']}" for v in self.vacuous]
        lines += _section("orphaned goldens (no test owns them; remove with --optcheck-prune)", self.orphans)
        lines += _section("orphaned goldens removed", self.pruned)
        lines += self.notes
        return lines


def _name(record: dict[str, Any]) -> str:
    return f" [{record['name']}]" if record.get("name") else ""


def _section(title: str, paths: Iterable[str | None]) -> list[str]:
    items = sorted({p for p in paths if p})
    if not items:
        return []
    return [f"{title} ({len(items)}):"] + [f"  {p}" for p in items]
