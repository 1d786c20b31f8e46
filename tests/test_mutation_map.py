"""benchmarks/mutation.py knows every module with logic: each is mapped to the unit tests that
guard it (``MODULES``) or listed with the reason it is not mutated (``NOT_MUTATED``), and every
mapped test file exists. A new module fails here until it is one or the other (issue 22)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def mutation_tool():
    spec = importlib.util.spec_from_file_location("optcheck_mutation", REPO / "benchmarks" / "mutation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_module_with_logic_is_mutated_or_says_why_not() -> None:
    tool = mutation_tool()
    package = REPO / tool.PACKAGE
    modules = {p.relative_to(package).as_posix() for p in package.rglob("*.py")}
    unknown = sorted(m for m in modules if m not in tool.MODULES and m not in tool.NOT_MUTATED
                     and tool.has_logic(package / m))
    assert not unknown, f"add each to MODULES (with its unit tests) or NOT_MUTATED (with the reason): {unknown}"
    stale = sorted((set(tool.MODULES) | set(tool.NOT_MUTATED)) - modules)
    assert not stale, f"benchmarks/mutation.py names modules that no longer exist: {stale}"
    assert not set(tool.MODULES) & set(tool.NOT_MUTATED)


def test_every_mapped_test_file_exists() -> None:
    tool = mutation_tool()
    missing = sorted({t for tests in tool.MODULES.values() for t in tests if not (REPO / t).is_file()})
    assert not missing, missing
