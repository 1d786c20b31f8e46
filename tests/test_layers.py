"""The package's shape, guarded: module-level imports form no cycle, and each layer imports
only the layers below it (docs/architecture.md). Imports inside functions (lazy ones) and under
``TYPE_CHECKING`` may form cycles — that is how upper layers stay cheap to import — but they go
downwards too, except the few listed in :data:`ALLOWED_LAZY`, each with its reason."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_optcheck"

#: What each layer may import at module level (besides itself and the package's top modules).
ALLOWED = {
    "engine": set(),
    "declare": {"engine"},
    "run": {"engine", "declare"},
    "golden": {"engine"},
    "checks": {"engine", "declare", "run", "golden"},
    "report": {"engine", "golden"},
    "plugin": {"engine", "declare", "run", "golden", "checks", "report", "handle"},  # handle: the fixture's object
    "integrations": {"engine", "declare", "run", "golden", "checks"},
}
TOP = {"errors"}  # imported by every layer

#: Imports inside functions or under ``TYPE_CHECKING`` that go up a layer, allowed for the reason
#: given: (importing module, imported module) -> why. An entry that no longer matches an import
#: fails the test, so the list shrinks when one is fixed.
ALLOWED_LAZY: dict[tuple[str, str], str] = {
    ("pytest_optcheck.engine.trajectory", "pytest_optcheck.report.plotting"):
        "Trajectory.plot() (a Trajectory plots itself) hands off to the one plotting module, imported "
        "when called: the numpy-only engine never imports matplotlib otherwise",
}

MODULE, LAZY, TYPE_HINT = "module level", "inside a function", "under TYPE_CHECKING"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    where = PACKAGE.parent / Path(*dotted.split("."))
    return where.with_suffix(".py").exists() or where.is_dir()


def imports(path: Path) -> list[tuple[str, str, int]]:
    """Every package module ``path`` imports: see :func:`imports_in`."""
    return imports_in(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")


def imports_in(source: str, name: str, is_package: bool = False) -> list[tuple[str, str, int]]:
    """Every package module the module ``name`` imports, resolved to absolute names: (module,
    where, line), where is :data:`MODULE`, :data:`LAZY` (inside a function) or :data:`TYPE_HINT`."""
    tree = ast.parse(source)
    package = name if is_package else name.rsplit(".", 1)[0]
    found: list[tuple[str, str, int]] = []

    def targets(node: ast.Import | ast.ImportFrom) -> list[str]:
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        if node.level:
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        return [f"{target}.{alias.name}" if _is_module(f"{target}.{alias.name}") else target for alias in node.names]

    def visit(node: ast.AST, where: str) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.extend((t, where, node.lineno) for t in targets(node)
                         if t == PACKAGE.name or t.startswith(PACKAGE.name + "."))
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            where = LAZY if where == MODULE else where
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                visit(child, TYPE_HINT)
            for child in node.orelse:
                visit(child, where)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, where)

    visit(tree, MODULE)
    return found


def module_level_imports(path: Path) -> set[str]:
    """Package modules imported at module level (class bodies and ``try`` blocks included)."""
    return {target for target, where, _ in imports(path) if where == MODULE}


def upward(module: str, target: str) -> bool:
    """Whether ``module`` importing ``target`` goes against :data:`ALLOWED` (modules outside the
    layers — the package's top modules — are not checked)."""
    parts = module.split(".")
    if len(parts) < 3 or parts[1] not in ALLOWED:
        return False
    layer, t = parts[1], target.split(".")
    other = t[1] if len(t) > 1 else ""
    return other != layer and other not in ALLOWED[layer] and other not in TOP


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in module_level_imports(path) if m in modules and m != name}
            for name, path in modules.items()}


def test_no_module_level_import_cycles() -> None:
    edges = graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)


def test_layers_import_only_downwards() -> None:
    wrong = [f"{module} imports {target}" for module, targets in graph().items() for target in targets
             if upward(module, target)]
    assert not wrong, "\n".join(sorted(wrong))


def test_lazy_and_type_checking_imports_go_downwards_too() -> None:
    """An import inside a function or under TYPE_CHECKING breaks no import order, but it still
    ties a lower layer to a higher one: only the listed exceptions may."""
    seen: set[tuple[str, str]] = set()
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        for target, where, line in imports(path):
            if where == MODULE or not upward(module, target):
                continue
            seen.add((module, target))
            if (module, target) not in ALLOWED_LAZY:
                wrong.append(f"{module} imports {target} {where} (line {line}): move it, or list it in ALLOWED_LAZY "
                             "with the reason")
    stale = [f"ALLOWED_LAZY lists {module} -> {target}, which no longer imports it: remove the entry"
             for module, target in ALLOWED_LAZY if (module, target) not in seen]
    assert not wrong + stale, "\n".join(sorted(wrong) + stale)


def test_the_import_finder_sees_every_kind_of_import() -> None:
    """The guard itself: lazy, TYPE_CHECKING, absolute and class-body imports are all found."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "import pytest_optcheck.errors\n"
        "if TYPE_CHECKING:\n    from ..golden.format import Golden\n"
        "class A:\n    from . import compare\n"
        "def f():\n    from pytest_optcheck.report import picture\n"
        "    try:\n        import pytest_optcheck.run.train\n    except ImportError:\n        pass\n")
    found = {(target, where) for target, where, _ in imports_in(source, "pytest_optcheck.engine.probe")}
    assert found == {
        ("pytest_optcheck.errors", MODULE),
        ("pytest_optcheck.golden.format", TYPE_HINT),
        ("pytest_optcheck.engine.compare", MODULE),
        ("pytest_optcheck.report.picture", LAZY),
        ("pytest_optcheck.run.train", LAZY),
    }
