"""The package's shape, guarded: module-level imports form no cycle, and each layer imports
only the layers below it (README, "How it works"). Imports inside functions (lazy ones) and
under ``TYPE_CHECKING`` do not count: they are how upper layers stay cheap to import."""

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
    "plugin": {"engine", "declare", "run", "golden", "checks", "report"},
    "integrations": {"engine", "declare", "run", "golden", "checks"},
}
TOP = {"errors"}  # imported by every layer


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_level_imports(path: Path) -> set[str]:
    """Package modules imported at module level, resolved to absolute names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if (PACKAGE.parent / Path(*candidate.split("."))).with_suffix(".py").exists()
                          or (PACKAGE.parent / Path(*candidate.split("."))).is_dir() else target)
    return found


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
    wrong = []
    for module, imports in graph().items():
        parts = module.split(".")
        if len(parts) < 3 or parts[1] not in ALLOWED:
            continue
        layer = parts[1]
        for target in imports:
            t = target.split(".")
            other = t[1] if len(t) > 1 else ""
            if other != layer and other not in ALLOWED[layer] and other not in TOP:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(sorted(wrong))
