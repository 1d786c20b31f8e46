"""The ``optcheck`` command: look at goldens outside pytest.

``show`` says what a golden holds, ``plot`` overlays several goldens on one figure (the
seed's nine-optimizer comparison is one call), ``diff`` compares two trajectories with the
same engine and message as the tests, ``accept`` copies a CI report's results (the current
runs of its failing or missing checks) over their goldens. No torch import anywhere: these run in a second on
a laptop that only has the golden files from a CI artifact or a code review.

Exit status: 0 success (``diff``: within tolerance), 1 ``diff`` found a difference (``accept``:
refused a result),
2 usage or file errors (printed as one line naming the file and the fix); 141, quietly, when
the reader of its output went away (`optcheck diff A B | head`), as a shell expects.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .engine import messages
from .engine.trajectory import Trajectory
from .errors import OptcheckError, suggest
from .golden.environment import describe_environment
from .golden.format import SCHEMA_KEY, Golden, is_run_description, loads, spec_change_lines, spec_changes
from .report.plotting import default_title, fallback_label, plot_goldens, save_figure, short_labels, spec_value

PROG = "optcheck"


class CliError(OptcheckError):
    """A problem the user fixes (missing file, bad option): one line on stderr, exit 2."""


# -- entry point ---------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; return the exit status instead of raising (testable in-process)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2), already printed
        return int(exc.code or 0)
    if not args.command:  # the subparsers' dest: None when no subcommand was given
        parser.print_help(sys.stderr)
        return 2
    try:
        status = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows here, not at exit where it cannot be caught
        return status
    except BrokenPipeError:
        return _reader_went_away()
    except OptcheckError as exc:
        print(_one_line(str(exc)), file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{PROG}: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2


def _reader_went_away() -> int:
    """``optcheck diff A B | head``: the reader closed the pipe, which is no error of ours.
    Python's documented way: point stdout at devnull so the interpreter's final flush stays
    quiet, and exit as a process killed by SIGPIPE would (128 + 13)."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is no real file (in-process tests)
        pass
    finally:
        os.close(devnull)
    return 141


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Inspect, plot and compare pytest-optcheck golden trajectories.",
        epilog="Files: golden JSON written by `pytest --optcheck`, a Trajectory.to_json() file, or an .npz "
               "from Trajectory.to_numpy(). Exit status: 0 ok, 1 diff found a difference, 2 usage/file error.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_show(sub)
    _add_plot(sub)
    _add_diff(sub)
    _add_accept(sub)
    return parser


def _add_show(sub: Any) -> None:
    p = sub.add_parser("show", help="what a golden holds: test, spec, environment, every series",
                       description="Print what each golden holds: the test, the spec, the environment "
                                   "it was recorded in, and every series with its shape, first and final "
                                   "values, min and max.")
    p.add_argument("goldens", nargs="+", metavar="GOLDEN", help="golden file(s)")
    p.set_defaults(func=cmd_show)


def _add_plot(sub: Any) -> None:
    p = sub.add_parser("plot", help="overlay several goldens on one figure",
                       description="Overlay several goldens on one figure, one panel per series. Legend "
                                   "labels come from the specs and keep only what tells the runs apart "
                                   "(e.g. 'SGD', 'SGD(momentum=0.9)', 'Adadelta(lr=1.0)').",
                       epilog="example: optcheck plot golden/examples/test_optimizers/*.json -o optimizers.png")
    p.add_argument("goldens", nargs="+", metavar="GOLDEN", help="golden file(s) to overlay")
    p.add_argument("-o", "--output", required=True, metavar="FILE.png", help="where to write the figure")
    p.add_argument("--series", action="append", metavar="NAME",
                   help="series to plot, repeat for several panels (default: loss)")
    p.add_argument("--logy", action=argparse.BooleanOptionalAction,  # unset: None, the automatic choice
                   help="log y axis (default: log when every value is positive, never for lr/momentum)")
    p.add_argument("--title", help="figure title (default: the series and what all runs share)")
    p.set_defaults(func=cmd_plot)


def _add_diff(sub: Any) -> None:
    p = sub.add_parser(
        "diff", help="compare B (current) with A (golden), as the tests do",
        description="Compare trajectory B (the current one) with A (the golden) using the tests' engine "
                    "and failure message. Tolerances default to the per-series defaults of the plugin. "
                    "When the specs differ, the differing keys are printed as a header and the numbers "
                    "are compared anyway (that is what comparing two runs usually means); --strict-spec "
                    "makes a spec difference a failure without comparing numbers, exactly like the test; "
                    "--ignore-spec hides the header.",
        epilog="exit status: 0 within tolerance, 1 different, 2 usage or file error. "
               "example: optcheck diff old.json new.json --tolerance 'loss: rtol=1e-3, mode=final'",
    )
    p.add_argument("a", metavar="A", help="the golden (reference) trajectory")
    p.add_argument("b", metavar="B", help="the current trajectory, compared against A")
    p.add_argument("--tolerance", action="append", default=[], metavar="'SERIES: field=value, ...'",
                   help="per-series tolerance, e.g. 'loss: rtol=1e-3, mode=final' or '*: rtol=1e-4' "
                        "(repeatable; overrides --rtol/--atol for that series)")
    p.add_argument("--rtol", type=float, help="relative tolerance for every series")
    p.add_argument("--atol", type=float, help="absolute tolerance for every series")
    spec = p.add_mutually_exclusive_group()
    spec.add_argument("--ignore-spec", action="store_true", help="do not print spec differences")
    spec.add_argument("--strict-spec", action="store_true",
                      help="a spec difference is a failure ('configuration changed'), numbers not compared")
    p.set_defaults(func=cmd_diff)


def _add_accept(sub: Any) -> None:
    p = sub.add_parser(
        "accept", help="copy a report's results (failing or missing checks) over their goldens",
        description="A run with --optcheck-report=DIR keeps the current trajectory of every failing or missing "
                    "check in DIR/results, in the golden format (compare one with `optcheck diff GOLDEN RESULT`). "
                    "accept copies those, and only those, over their goldens below ROOT, atomically; a result "
                    "whose golden changed since the run is refused with a message.",
        epilog="exit status: 0 all accepted, 1 some refused, 2 usage or file error. "
               "example: optcheck accept ci-report/ (run from the project's root)",
    )
    p.add_argument("report", metavar="REPORT_DIR", help="the folder --optcheck-report wrote (with summary.json)")
    p.add_argument("only", nargs="*", metavar="TEST", help="accept only the results of tests whose node id "
                                                           "contains one of these")
    p.add_argument("--root", default=".", help="the project's rootdir, where golden paths start (default: .)")
    p.add_argument("--dry-run", action="store_true", help="say what would be accepted, write nothing")
    p.set_defaults(func=cmd_accept)


def cmd_accept(args: argparse.Namespace) -> int:
    from .report.obtained import accept

    done = accept(args.report, args.root, args.only, dry_run=args.dry_run)
    verb = "would accept" if args.dry_run else "accepted"
    for path in done.written:
        print(f"{verb}: {path}")
    for why in done.refused:
        print(f"{PROG}: refused {why}", file=sys.stderr)
    if not done.written and not done.refused:
        print(f"{PROG}: {args.report} lists no results to accept (every check passed, or the run had no report).")
    return 1 if done.refused else 0


# -- loading ---------------------------------------------------------------------------


def load(path: str) -> Golden:
    """A golden JSON, a bare Trajectory JSON or an .npz; any problem is a CliError."""
    file = Path(path)
    if not file.is_file():
        what = "is a directory, not a file" if file.is_dir() else "does not exist"
        raise CliError(f"{PROG}: {path!r} {what}; give the path of a golden .json file (see `optcheck show`).")
    if file.suffix == ".npz":
        return _load_npz(file)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CliError(f"{PROG}: {path!r} is not UTF-8 text, so not a golden JSON file.") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None  # let loads() word the error (line, column, the fix)
    if isinstance(data, dict) and SCHEMA_KEY not in data and "series" in data:
        try:
            return Golden(Trajectory.from_dict(data), test=file.stem)
        except (KeyError, TypeError, ValueError) as exc:
            raise CliError(f"{PROG}: {path!r} looks like a Trajectory JSON but is damaged: {exc}.") from None
    return loads(text, path)


def _load_npz(file: Path) -> Golden:
    try:
        with np.load(file, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        return Golden(Trajectory.from_numpy(arrays), test=file.stem)
    except (OSError, ValueError) as exc:
        raise CliError(f"{PROG}: {str(file)!r} is not a readable trajectory .npz "
                       f"(Trajectory.to_numpy() saved with np.savez): {exc}.") from None


# -- show --------------------------------------------------------------------------------


def cmd_show(args: argparse.Namespace) -> int:
    loaded = [(path, load(path)) for path in args.goldens]  # all readable before printing any
    blocks = ["\n".join(describe(path, g)) for path, g in loaded]
    print("\n\n".join(blocks))
    return 0


def describe(path: str, golden: Golden) -> list[str]:
    """The readable summary of one golden, header first, then one row per series."""
    traj = golden.trajectory
    lines = [f"== {path}"]
    lines.append(f"test:        {golden.test or '-'}" + (f"  [{golden.name}]" if golden.name else ""))
    if golden.spec:
        lines.append(f"label:       {golden.label}")
        lines.append("run (as recorded):" if is_run_description(golden.spec) else "spec:")
        width = max(len(k) for k in golden.spec)
        lines += [f"  {k.ljust(width)}  {spec_value(v)}" for k, v in golden.spec.items()]
    else:
        lines.append("spec:        - (recorded without a spec: trajectory_snapshot or a custom loop)")
    if golden.environment:
        env = golden.environment
        lines.append(f"environment: {describe_environment(env)}")
        extra = [f"{k} {env[k]}" for k in ("numpy", "python", "platform") if env.get(k)]
        extra += [f"{name} {version}" for name, version in (env.get("libraries") or {}).items()]
        if extra:
            lines.append(f"             {', '.join(extra)}")
    epochs = len(np.unique(traj.epoch))
    lines.append(f"steps:       {traj.total_steps} ({epochs} epoch{'s' if epochs != 1 else ''})")
    if traj.buckets is not None:
        lines.append(f"thinned:     record_every={traj.every}: {len(traj)} steps kept (0, {traj.every}, "
                     f"{2 * traj.every}, ...), each bucket's min, max and mean")
    if traj.meta:
        lines.append(f"meta:        {json.dumps(traj.meta, sort_keys=True)}")
    lines.append("series:")
    lines += _series_table(traj)
    return lines


def _series_table(traj: Trajectory) -> list[str]:
    rows = [("name", "shape", "first", "final", "min", "max", "non-finite")]
    for name in traj.names:
        values = traj[name]
        seen = values  # a thinned run's extremes are its buckets' (every step), not its kept rows'
        if traj.buckets is not None and name in traj.buckets.stats:
            seen = np.concatenate([traj.buckets.stats[name]["min"], traj.buckets.stats[name]["max"]])
        finite = seen[np.isfinite(seen)]
        first, final = _row_text(values[0]) if len(values) else "-", _row_text(values[-1]) if len(values) else "-"
        low = f"{finite.min():.6g}" if finite.size else "-"
        high = f"{finite.max():.6g}" if finite.size else "-"
        bad = int(seen.size - finite.size)
        rows.append((name, "x".join(map(str, values.shape)), first, final, low, high, str(bad)))
    widths = [max(len(r[j]) for r in rows) for j in range(len(rows[0]))]
    return ["  " + "  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths)))
            for r in rows]


def _row_text(row: Any) -> str:
    values = np.atleast_1d(row)
    texts = [f"{float(v):.6g}" for v in values]
    return texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"


# -- plot ----------------------------------------------------------------------------------


def cmd_plot(args: argparse.Namespace) -> int:
    loaded = [load(path) for path in args.goldens]
    series = args.series or ["loss"]
    for path, golden in zip(args.goldens, loaded):
        for name in series:
            if name not in golden.trajectory:
                raise CliError(f"{PROG}: {path!r} has no series {name!r} (it has "
                               f"{', '.join(golden.trajectory.names)}); pick one with --series.")
    output = Path(args.output)
    if output.suffix.lower() != ".png":
        raise CliError(f"{PROG}: -o {args.output!r}: the figure is written as PNG; name it FILE.png.")
    labels = short_labels(loaded, [fallback_label(p, g) for p, g in zip(args.goldens, loaded)])
    title = args.title if args.title is not None else default_title(loaded, series)
    save_figure(plot_goldens(loaded, labels, series, logy=args.logy, title=title), output)
    print(f"wrote {output} ({len(loaded)} trajectories: {'; '.join(labels)})")
    return 0


# -- diff ----------------------------------------------------------------------------------


def cmd_diff(args: argparse.Namespace) -> int:
    from .checks.golden_check import judge
    from .engine.outcome import Status
    from .engine.tolerance import ToleranceError, parse_tolerance_lines, unknown_series
    from .golden.format import dumps

    golden, current = load(args.a), load(args.b)
    try:
        layer = tolerance_layer(args, parse_tolerance_lines)
    except ToleranceError as exc:
        raise CliError(str(exc)) from None
    names = list(dict.fromkeys([*golden.trajectory.names, *current.trajectory.names]))
    typos = unknown_series(names, layer)
    if typos:
        raise CliError(f"{PROG}: --tolerance names no series of these trajectories: {', '.join(typos)}."
                       f"{suggest(typos[0], names)} They have: {', '.join(names)}.")
    header = [] if args.ignore_spec or args.strict_spec else _spec_header(golden, current)
    if not args.strict_spec:
        current = dataclasses.replace(current, spec=golden.spec)  # compared as if recorded under A's spec
    outcome = judge(current, dumps(golden), path=args.a, tolerance_layers=(layer,))
    if outcome.status in (Status.FAILED, Status.CONFIG_CHANGED):
        print("\n".join([*header, outcome.message]))
        return 1
    if outcome.status is not Status.PASSED:
        raise CliError(_one_line(outcome.message))
    print("\n".join([*header, *_passed_lines(outcome)]))
    return 0


def tolerance_layer(args: argparse.Namespace, parse_lines: Any) -> dict[str, dict[str, Any]]:
    """--rtol/--atol as the '*' entry, then --tolerance lines (a named series wins)."""
    layer: dict[str, dict[str, Any]] = {}
    star = {k: v for k, v in (("rtol", args.rtol), ("atol", args.atol)) if v is not None}
    if star:
        layer["*"] = star
    for series, fields in parse_lines(args.tolerance, where="--tolerance").items():
        layer.setdefault(series, {}).update(fields)
    return layer


def _spec_header(golden: Golden, current: Golden) -> list[str]:
    changes = spec_changes(golden.spec, current.spec)
    if not changes:
        return []
    lines = ["spec differs (numbers compared anyway; --strict-spec fails on this, --ignore-spec hides it):"]
    return lines + spec_change_lines(changes) + [""]


def _passed_lines(outcome: Any) -> list[str]:
    verdict = outcome.verdict
    lines = [f"optcheck: all {len(verdict.series)} series within tolerance of the golden"]
    width = max((len(s.name) for s in verdict.series), default=0)
    for sv in verdict.series:
        lines.append(f"  {sv.name.ljust(width)}  largest rel error {messages.format_number(sv.max_rel)}, abs {messages.format_number(sv.max_abs)} "
                     f"({messages.describe_tolerance(sv.tolerance)})")
    return lines


def _one_line(text: str) -> str:
    return " ".join(text.split())
