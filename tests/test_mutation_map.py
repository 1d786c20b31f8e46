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


def test_a_mutant_is_counted_for_the_module_that_holds_it() -> None:
    tool = mutation_tool()
    assert tool.module_of("pytest_optcheck.engine.compare.x_relative_error__mutmut_3") == "engine/compare.py"
    assert tool.module_of("pytest_optcheck.plugin.xdist.x_worker_payload__mutmut_2") == "plugin/xdist.py"
    assert tool.module_of("pytest_optcheck.plugin.xǁSummaryǁpytest_sessionfinish__mutmut_1") == "plugin/__init__.py"
    assert tool.module_of("pytest_optcheck.x___getattr____mutmut_1") == "__init__.py"


def test_a_run_that_tested_no_mutant_fails_instead_of_scoring_nothing(monkeypatch, capsys) -> None:
    """mutmut stops, testing nothing, when the mapped tests fail on the unmutated code: that is a
    failure to see, not a module without a score."""
    tool = mutation_tool()
    results = {"results": "pytest_optcheck.handle.x_f__mutmut_1: not checked\n"
                          "pytest_optcheck.handle.x_f__mutmut_2: not checked\n"}
    monkeypatch.setattr(tool, "scratch_copy", lambda target, modules: None)
    monkeypatch.setattr(tool, "mutmut", lambda target, *args, capture=True, timeout=None:
                        results.get(args[0], True))
    assert tool.main(["handle.py"]) == 1
    assert "no mutant of handle.py was tested" in capsys.readouterr().out
    assert tool.main(["handle.py", "--report-only"]) == 0
    results["results"] = ("pytest_optcheck.handle.x_f__mutmut_1: killed\n"
                          "pytest_optcheck.handle.x_f__mutmut_2: survived\n")
    assert tool.main(["handle.py"]) == 1  # 50%
    results["results"] = "pytest_optcheck.handle.x_f__mutmut_1: killed\n"
    assert tool.main(["handle.py"]) == 0
