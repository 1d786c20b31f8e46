"""The one-line bugs of issue 22, each applied by hand to the package, its test run, and reverted.

Each promise of issue 22 (and the two thin spots) has a test that must fail with its bug in
place. This applies each one-line mutant in turn, runs only the test written for it, restores
the file, and prints CAUGHT or SURVIVED. Run from the repository root:

    python benchmarks/promise_mutants.py          # all of them (about 30 s)
    python benchmarks/promise_mutants.py 4 A      # those whose label starts with 4 or A

Exits 1 when a mutant survives.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
P = "pytest_optcheck/"
#: (label, file, the line's text, the bug, the test that must catch it)
MUTANTS = [
 ("1 tensors relative to the other run", P+"engine/stepwise.py", "tol.rtol * np.abs(a))", "tol.rtol * np.abs(b))", ["tests/unit/engine/test_stepwise_reference.py"]),
 ("2 no fsync", P+"golden/files.py", "                os.fsync(handle.fileno())\n", "                pass\n", ["tests/unit/golden/test_atomic_write_fsync.py"]),
 ("3 prefix match", P+"golden/layout.py", 'filename.startswith(stem + "--")', "filename.startswith(stem)", ["tests/unit/golden/test_orphans_prefix.py"]),
 ("4 only more replicas", P+"checks/golden_check.py", "_replicas(outcome.golden) != calibrate", "_replicas(outcome.golden) < calibrate", ["tests/unit/checks/test_recalibrate_on_update.py"]),
 ("5 before's keys only", P+"checks/differential/checkpoint.py", "keys = list(before[part]) + [k for k in after[part] if k not in before[part]]", "keys = list(before[part])", ["tests/unit/checks/test_resume_lost_state.py"]),
 ("6 numbering from 2", P+"plugin/checking.py", "return None if index == 0 else str(index)", "return None if index == 0 else str(index + 1)", ["tests/e2e/test_unnamed_snapshots.py"]),
 ("7 latest failure", P+"report/picture.py", "step, name = min(steps)", "step, name = max(steps)", ["tests/unit/report/test_first_failure_mark.py"]),
 ("A round", P+"engine/compare.py", "allowed = math.floor(tol.budget", "allowed = round(tol.budget", ["tests/unit/engine/test_budget_rounding.py"]),
 ("A ceil", P+"engine/compare.py", "allowed = math.floor(tol.budget", "allowed = math.ceil(tol.budget", ["tests/unit/engine/test_budget_rounding.py"]),
 ("B named before star", P+"engine/tolerance.py", 'for key in ("*", name):', 'for key in (name, "*"):', ["tests/unit/engine/test_tolerance_layer_order.py"]),
]


def main(only: list[str]) -> int:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    survived = 0
    with tempfile.TemporaryDirectory() as tmp:
        backup = Path(tmp) / "original.py"
        for label, name, old, new, tests in MUTANTS:
            if only and not any(label.startswith(o) for o in only):
                continue
            path = REPO / name
            source = path.read_text(encoding="utf-8")
            if source.count(old) != 1:
                raise SystemExit(f"{label}: {old!r} occurs {source.count(old)} times in {name}, not once: update MUTANTS")
            shutil.copy2(path, backup)
            try:
                path.write_text(source.replace(old, new), encoding="utf-8")
                done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                                       "-x", *tests], cwd=REPO, env=env, capture_output=True, text=True, check=False)
            finally:
                shutil.copy2(backup, path)
            caught = done.returncode == 1
            survived += not caught
            last = (done.stdout.strip().splitlines() or [""])[-1]
            print(f"{label:36} {'CAUGHT' if caught else f'SURVIVED (exit {done.returncode})'}  {last}", flush=True)
    return 1 if survived else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
