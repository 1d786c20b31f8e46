"""Mutation testing of the pure modules: would the fast unit tests notice a one-token bug?

Not part of CI (minutes of CPU). Run it after changing the engine, the spec parser, the
tolerance parser or the golden format, and keep docs/mutation.md's table honest:

    python benchmarks/mutation.py                       # the four DEFAULT modules, ~6 min on 2 cores
    python benchmarks/mutation.py engine/tolerance.py   # one module
    python benchmarks/mutation.py --diff                # also print each survivor's diff

It copies the package and the unit tests into a scratch folder (the work tree and its
``mutants/`` stay untouched), writes a ``[mutmut]`` section into the copy's setup.cfg, runs
``mutmut run`` there with one worker, and prints per module: mutants, killed, equivalent
(listed in :data:`EQUIVALENT` with the reason, left out of the score), surviving, and the
score = killed / (mutants - equivalent). It exits 1 when a module scores below 90%.

mutmut (3.x) was picked by measurement on this 2-core machine (docs/mutation.md): it
forks one warmed-up pytest process per mutant, while cosmic-ray and pytest-gremlins start
a fresh interpreter — and torch, through tests/conftest.py — for every mutant or batch.
Install it into the project's environment: ``pip install mutmut``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "pytest_optcheck"

#: Module (under pytest_optcheck/) -> the fast unit tests that guard it.
MODULES: dict[str, list[str]] = {
    "engine/compare.py": ["tests/unit/engine/test_compare.py", "tests/unit/engine/test_compare_edges.py", "tests/unit/engine/test_compare_calibration.py",
                          "tests/unit/engine/test_messages.py"],
    "engine/tolerance.py": ["tests/unit/engine/test_compare.py", "tests/unit/engine/test_tolerance.py", "tests/unit/engine/test_messages.py"],
    "declare/spec.py": ["tests/unit/declare/test_spec.py", "tests/unit/declare/test_spec_validation.py", "tests/unit/declare/test_spec_units.py"],
    "golden/format.py": ["tests/unit/golden/test_store.py", "tests/unit/golden/test_text.py",
                         "tests/unit/golden/test_calibration_block.py"],
    "engine/messages.py": ["tests/unit/engine/test_messages.py", "tests/unit/engine/test_compare.py"],
}
#: Run when no module is named. engine/messages.py (670 mutants, most of them in sentences)
#: would take the run past 10 minutes on 2 cores: name it to include it.
DEFAULT = ["engine/compare.py", "engine/tolerance.py", "declare/spec.py", "golden/format.py"]

#: Mutants that cannot change behaviour, excluded from the score: name -> why. Names are
#: those of the 2026-11-25 run (docs/mutation.md); mutmut numbers mutants per function, so
#: editing a function renumbers its mutants: re-check this list (``--diff``) when it does.
_C, _S, _F = "pytest_optcheck.engine.compare.", "pytest_optcheck.declare.spec.", "pytest_optcheck.golden.format."
_FLOAT64 = "its inputs are float64 arrays already (as_2d); for integers the rule gives the same booleans"
_NEGATIVE = "any negative fill works: it is only compared with 0 / with differences >= 0"
_CODEC = "codec names are case-insensitive: 'UTF-8' is 'utf-8'"
_HANDLER = "slices at token boundaries are valid UTF-8: no error handler is ever consulted"
EQUIVALENT: dict[str, str] = {
    _C + "x_outside_tolerance__mutmut_3": _FLOAT64,
    _C + "x_outside_tolerance__mutmut_5": _FLOAT64,
    _C + "x_outside_tolerance__mutmut_8": _FLOAT64,
    _C + "x_outside_tolerance__mutmut_10": _FLOAT64,
    _C + "x_compare_series__mutmut_67": "the initial `passed` (None here) is overwritten once the values are judged",
    _C + "x_compare_series__mutmut_109": "the initial `passed` (True here) is overwritten once the values are judged",
    _C + "x_compare_series__mutmut_141": "only the epoch of _position(...) is used, which batch=None leaves alone",
    _C + "x_compare_series__mutmut_147": "only the batch of _position(...) is used, which epoch=None leaves alone",
    _C + "x__judge_values__mutmut_36": "_summaries(tol, allow, allow): [1] is computed from the same array as [0]",
    _C + "x__fit__mutmut_19": "j <= k for j == k: out[:m, k:] is empty, the (m, 1) column broadcasts into it as a no-op",
    _C + "x__error_stats__mutmut_27": _NEGATIVE,
    _C + "x__error_stats__mutmut_49": _NEGATIVE,
    _C + "x__error_stats__mutmut_60": "only for an empty array, where the next line short-circuits on `not arr.size`",
    _C + "x__nonfinite_name__mutmut_17": "the value is +-inf there (NaN is handled first): > 0, >= 0 and > 1 agree",
    _C + "x__nonfinite_name__mutmut_18": "the value is +-inf there (NaN is handled first): > 0, >= 0 and > 1 agree",
    _C + "x__reach_step__mutmut_1": "comparisons with NaN do not warn in numpy 2: errstate(invalid) changes nothing",
    _C + "x__reach_step__mutmut_21": "astype(None) is astype(float64)",
    _C + "x__reach_bad__mutmut_32": "where current never reaches the target, excess is inf: bad is True already",
    _C + "x__summary_dict__mutmut_1": "Python-float arithmetic on finite or NaN inputs: no numpy warning to silence",
    _C + "x__summary_dict__mutmut_2": "division guarded by `if g`: no numpy warning to silence",
    _C + "x__summary_dict__mutmut_3": "Python-float arithmetic on finite or NaN inputs: no numpy warning to silence",
    _C + "x__summary_dict__mutmut_4": "division guarded by `if g`: no numpy warning to silence",
    _C + "x__worst_group__mutmut_23": _NEGATIVE,
    _C + "x__worst_group__mutmut_25": "only with zero groups, where the caller's g_val[group] raises IndexError anyway",
    _C + "x__worst_group__mutmut_28": "only with zero groups, where the caller's g_val[group] raises IndexError anyway",
    _C + "x_relative_error__mutmut_44": "g == 0 == diff means c == 0, which `same` sets to 0 anyway; else inf either way",
    _C + "x_relative_error__mutmut_52": "g == 0 == diff means c == 0, which `same` sets to 0 anyway",
    _C + "xǁSeriesVerdictǁto_dict__mutmut_4": "dataclasses.asdict already wrote the same tolerance dict",
    _C + "xǁSeriesVerdictǁto_dict__mutmut_5": "dataclasses.asdict already wrote the same tolerance dict",
    _F + "x_dumps__mutmut_19": "ensure_ascii=None is falsy, like False",
    _F + "x_dumps__mutmut_60": "ensure_ascii=None is falsy, like False",
    _F + "x__calibration_lines__mutmut_13": "ensure_ascii=None is falsy, like False",
    _F + "x__calibration_lines__mutmut_22": "ensure_ascii=None is falsy, like False",
    _F + "x_read_golden__mutmut_5": _CODEC,
    _S + "xǁSpecǁcanonical__mutmut_3": "COMPARISON_KEYS are the last two of KEYS: break and continue end the loop alike",
    _S + "xǁSpecǁcanonical__mutmut_23": "key= only names the key in an error, and a Spec's call strings are valid",
    _S + "xǁSpecǁcanonical__mutmut_27": "record is a tuple, which canonical_value turns into the same list",
    _S + "xǁSpecǁcanonical__mutmut_28": "record is a tuple, which canonical_value turns into the same list",
    _S + "x_canonical_value__mutmut_11": "only the key order of a dict: every consumer compares dicts or sorts keys",
    _S + "x_canonical_value__mutmut_12": "only the key order of a dict: every consumer compares dicts or sorts keys",
    _S + "x__lambda_source__mutmut_42": _CODEC,
    _S + "x__lambda_source__mutmut_68": _CODEC,
    _S + "x__lambda_source__mutmut_64": _HANDLER,
    _S + "x__lambda_source__mutmut_69": _HANDLER,
    _S + "x__lambda_source__mutmut_70": _HANDLER,
    _S + "x__lambda_source__mutmut_53": "one line: chunk[-1] is chunk[0], already cut at col1",
    _S + "x__lambda_source__mutmut_55": "one line: chunk[-1] is chunk[0], already cut at col1",
    _S + "x__lambda_source__mutmut_77": "defensive: inspect.signature does not fail on a function with a code object",
    _S + "x__lambda_source__mutmut_78": "defensive: inspect.signature does not fail on a function with a code object",
}

#: Mutants mutmut cannot switch on, checked by hand instead and counted as killed: the
#: validators ``_choice(INTERVALS)``, ``_int(1)``... are closures made when spec.py is
#: imported, before mutmut activates a mutant. ``mutmut apply NAME`` in the --keep folder
#: then pytest tests/unit/declare/test_spec.py tests/unit/declare/test_spec_validation.py: each one fails (2026-11-25).
KILLED_BY_HAND: set[str] = {_S + f"x__choice__mutmut_{i}" for i in range(1, 11)} | {
    _S + f"x__int__mutmut_{i}" for i in range(1, 6)}

#: mutmut's exit-code statuses that count as killed.
KILLED = {"killed", "timeout", "caught by type check", "segfault", "killed by hand"}


def scratch_copy(target: Path, modules: list[str]) -> None:
    """The package, pyproject.toml and the modules' unit tests in ``target``."""
    shutil.copytree(REPO / PACKAGE, target / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", ".gitattributes"):  # a golden-format test reads .gitattributes
        shutil.copy2(REPO / name, target / name)
    tests = sorted({t for m in modules for t in MODULES[m]})
    (target / "tests").mkdir()
    for test in tests:
        (target / test).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / test, target / test)
    for folder in [target / "tests", *(d for d in (target / "tests").rglob("*") if d.is_dir())]:
        (folder / "__init__.py").touch()  # tests/ is a package (tests/unit/<layer>/, tests/e2e/)
    # Not the suite's conftest: its torch warm-up starts thread pools that hang in the
    # processes mutmut forks, and these unit tests need neither it nor pytester.
    (target / "tests" / "conftest.py").write_text('"""Mutation runs: no torch warm-up."""\n', encoding="utf-8")
    selection = "\n    ".join(tests)
    only = "\n    ".join(f"{PACKAGE}/{m}" for m in modules)
    (target / "setup.cfg").write_text(
        "[mutmut]\n"
        f"source_paths = {PACKAGE}\n"
        "also_copy = .gitattributes\n"
        f"only_mutate =\n    {only}\n"
        f"pytest_add_cli_args_test_selection =\n    {selection}\n"
        "pytest_add_cli_args =\n    -p\n    no:cacheprovider\n    -p\n    no:xdist\n    -p\n    no:randomly\n"
        "use_git_change_detection = false\n",
        encoding="utf-8",
    )


def mutmut(target: Path, *args: str, capture: bool = True) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # mutmut puts mutants/ first itself
    done = subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=target, env=env, text=True,
                          capture_output=capture, check=False)
    if done.returncode != 0 and capture:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"mutmut {' '.join(args)} failed with exit code {done.returncode}")
    return done.stdout if capture else ""


DIFFS = """
import json, sys
from mutmut.__main__ import find_mutant, get_diff_for_mutant
out = {}
for name in json.loads(sys.stdin.read()):
    lines = get_diff_for_mutant(name, path=find_mutant(name).path).splitlines()
    out[name] = [x for x in lines if x[:1] in "-+" and x[:3] not in ("---", "+++")]
print(json.dumps(out))
"""


def survivor_diffs(target: Path, names: list[str]) -> dict[str, list[str]]:
    """Each survivor's changed lines, from one process (``mutmut show`` per mutant is slow)."""
    import json

    done = subprocess.run([sys.executable, "-c", DIFFS], cwd=target, input=json.dumps(names), text=True,
                          capture_output=True, check=True)
    return json.loads(done.stdout)


def module_of(mutant: str) -> str:
    """``pytest_optcheck.engine.compare.x_f__mutmut_3`` -> ``engine/compare.py``."""
    dotted = mutant.split(".x", 1)[0] if ".x_" in mutant or ".xǁ" in mutant else mutant.rsplit(".", 1)[0]
    return dotted.removeprefix(PACKAGE + ".").replace(".", "/") + ".py"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help=f"default: all of {', '.join(MODULES)}")
    parser.add_argument("--diff", action="store_true", help="print each survivor's diff")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args(argv)
    modules = args.modules or DEFAULT
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {unknown}; choose from {list(MODULES)}")

    with tempfile.TemporaryDirectory(prefix="optcheck-mutation-") as tmp:
        target = args.keep or Path(tmp)
        if target.exists() and args.keep:
            shutil.rmtree(target)
        target.mkdir(parents=True, exist_ok=True)
        scratch_copy(target, modules)
        start = time.perf_counter()
        mutmut(target, "run", "--max-children", "1", capture=False)
        elapsed = time.perf_counter() - start
        lines = mutmut(target, "results", "--all", "true").splitlines()
        status = dict(re.match(r"\s*(\S+): (.+)$", line).groups() for line in lines if ": " in line)
        status.update({m: "killed by hand" for m in KILLED_BY_HAND if m in status})
        survivors = sorted(m for m, s in status.items() if s not in KILLED and m not in EQUIVALENT)
        diffs = survivor_diffs(target, survivors) if args.diff and survivors else {}

    print(f"\nmutmut over {len(modules)} module(s) in {elapsed:.0f} s\n")
    print(f"{'module':<22} {'mutants':>7} {'killed':>7} {'equiv.':>7} {'survived':>8} {'score':>7}")
    worst = 100.0
    for module in modules:
        mine = {m: s for m, s in status.items() if module_of(m) == module}
        counts = Counter("equivalent" if m in EQUIVALENT else ("killed" if s in KILLED else "survived")
                         for m, s in mine.items())
        scored = counts["killed"] + counts["survived"]
        score = 100.0 * counts["killed"] / scored if scored else 100.0
        worst = min(worst, score)
        print(f"{module:<22} {len(mine):>7} {counts['killed']:>7} {counts['equivalent']:>7} "
              f"{counts['survived']:>8} {score:>6.1f}%")
    excluded = sorted(m for m in EQUIVALENT if m in status)
    if excluded:
        print(f"\nequivalent, left out of the score ({len(excluded)}):")
        for m in excluded:
            print(f"  {m}: {EQUIVALENT[m]}")
    if survivors:
        print("\nsurviving mutants (mutmut show NAME in the --keep folder prints one):")
        for m in survivors:
            print(f"  {m}: {status[m]}")
            for line in diffs.get(m, []):
                print(f"      {line.strip()}")
    return 0 if worst >= 90.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
