"""What the plugin costs a project that has it installed but runs no optcheck test.

Runs a plain 50-test suite in fresh processes, alternately with the plugin and with
``-p no:optcheck``, and prints the median wall time of each and their ratio (the target
is within 5%: configuring the plugin must import neither numpy, torch nor matplotlib).

    python benchmarks/bench_plugin_load.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = "\n".join(f"def test_{i}():\n    assert {i} + 1 > {i}\n" for i in range(50))


def run(project: Path, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=project,
                   check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        (project / "pytest.ini").write_text("[pytest]\n")
        (project / "test_plain.py").write_text(TESTS)
        run(project)  # warm the file system caches
        with_plugin, without = [], []
        for _ in range(args.runs):  # interleaved, so drift hits both alike
            with_plugin.append(run(project))
            without.append(run(project, "-p", "no:optcheck"))
    a, b = statistics.median(with_plugin), statistics.median(without)
    print(f"plain 50-test suite, median of {args.runs} interleaved runs each")
    print(f"  with pytest-optcheck:  {a * 1000:7.1f} ms")
    print(f"  with -p no:optcheck:   {b * 1000:7.1f} ms")
    print(f"  ratio:                 {a / b:7.3f}  (target <= 1.05)")


if __name__ == "__main__":
    main()
