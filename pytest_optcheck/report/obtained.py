"""CI's results, kept to be accepted: with ``--optcheck-report=DIR``, the current trajectory
of every check that failed or had no golden is written beside the report, in the golden
format, at ``DIR/results/<the golden's path below the rootdir>`` (pytest-regressions'
"obtained" files, pytest-mpl's results folder). ``summary.json`` lists each one with the
golden it would replace and that golden's SHA-256 as the run read it, so
``optcheck accept DIR`` (:func:`accept`) copies those files — and only those — over their
goldens, and refuses one whose golden changed since the run. A golden recorded on a CI
runner (a GPU) is downloaded and accepted without re-running anything.

Pure file work: no torch, no pytest (the ``optcheck`` command runs it on a laptop).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..engine.outcome import Outcome, Status
from ..errors import OptcheckError
from ..golden.files import write_atomic
from ..golden.format import dumps, loads

#: The folder of the report that holds the results.
RESULTS = "results"
#: Checks whose current trajectory is kept: the golden disagrees, is missing, was recorded for
#: another configuration, or cannot be read. (An error, or a check without golden, has none.)
KEPT = (Status.FAILED, Status.MISSING, Status.CONFIG_CHANGED, Status.CORRUPT)


def sha256_of(path: str | os.PathLike[str]) -> str | None:
    """The file's SHA-256 (hex), or None when there is no file."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def write_result(report_dir: Path, rootdir: Path, outcome: Outcome) -> dict[str, Any] | None:
    """Keep ``outcome``'s current trajectory beside the report, if it is one to accept;
    return its entry for ``summary.json`` (None when nothing is kept)."""
    if outcome.status not in KEPT or outcome.current is None or outcome.path is None:
        return None
    golden = Path(outcome.path).resolve()
    try:
        relative = golden.relative_to(Path(rootdir).resolve())
    except ValueError:  # a golden root outside the rootdir: kept by its absolute path's tail
        relative = Path(*golden.parts[1:])
    target = Path(report_dir) / RESULTS / relative
    write_atomic(target, dumps(outcome.current))
    return {"file": (Path(RESULTS) / relative).as_posix(), "golden": relative.as_posix(),
            "golden_sha256": sha256_of(golden)}


@dataclasses.dataclass
class Accepted:
    """What ``optcheck accept`` did: goldens written, and results refused (with why)."""

    written: list[str] = dataclasses.field(default_factory=list)
    refused: list[str] = dataclasses.field(default_factory=list)


def results_of(report_dir: Path) -> list[dict[str, Any]]:
    """The results a report lists (``summary.json``'s records that carry one)."""
    summary = Path(report_dir) / "summary.json"
    try:
        data = json.loads(summary.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OptcheckError(f"optcheck: {str(report_dir)!r} holds no summary.json: give the folder that "
                            f"`pytest --optcheck --optcheck-report=DIR` wrote (a CI artifact, unpacked).") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise OptcheckError(f"optcheck: {str(summary)!r} is not a readable summary ({exc}); download the report "
                            f"again.") from None
    records = data.get("records") if isinstance(data, Mapping) else None
    if not isinstance(records, list):
        raise OptcheckError(f"optcheck: {str(summary)!r} lists no records; is it an optcheck report?")
    return [r for r in records if isinstance(r, Mapping) and isinstance(r.get("result"), Mapping)]


def accept(report_dir: str | os.PathLike[str], root: str | os.PathLike[str] = ".",
           only: Iterable[str] = (), dry_run: bool = False) -> Accepted:
    """Copy each result the report lists over its golden below ``root`` (the project's
    rootdir), atomically. A result is refused when its golden changed since the run (its
    SHA-256 differs from the one the run read, or it appeared or vanished), when the file is
    missing from the report, or when it is no readable golden. ``only``: node-id substrings
    that limit which results are taken."""
    report_dir, root = Path(report_dir), Path(root)
    done = Accepted()
    wanted = list(only)
    for record in results_of(report_dir):
        result = record["result"]
        if wanted and not any(w in str(record.get("nodeid", "")) for w in wanted):
            continue
        golden_rel = str(result.get("golden", ""))
        source = report_dir / str(result.get("file", ""))
        target = root / golden_rel
        if not golden_rel or Path(golden_rel).is_absolute() or ".." in Path(golden_rel).parts:
            done.refused.append(f"{golden_rel!r}: not a path below the project; the summary is damaged")
            continue
        now, then = sha256_of(target), result.get("golden_sha256")
        if now != then:
            what = ("was created since the run" if then is None else "was deleted since the run" if now is None
                    else "changed since the run (its SHA-256 differs from the one the run read)")
            done.refused.append(f"{golden_rel}: the golden {what}; re-run the check against it instead")
            continue
        try:
            text = source.read_text(encoding="utf-8")
            loads(text, source)
        except (FileNotFoundError, IsADirectoryError):  # no such file (a summary without "file": the folder)
            done.refused.append(f"{golden_rel}: the result {source} is missing from the report")
            continue
        except (OptcheckError, UnicodeDecodeError) as exc:
            done.refused.append(f"{golden_rel}: the result cannot be read: {exc}")
            continue
        if not dry_run:
            write_atomic(target, text)
        done.written.append(golden_rel)
    return done
