"""Fails on an import cycle between the project's modules, or on an app import in billing_site.

Every import counts, also those inside functions (a cycle hidden in a function is still a
cycle: it only moves the failure to run time). billing_site is the generic layer: only its
composition root (urls, settings, wsgi) may name the apps. Run: python scripts/check_imports.py
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOT_PROJECT = {"tests", "bench", "scripts"}
# billing_site modules that wire the apps together and so may import them.
COMPOSITION_ROOT = {"billing_site.urls", "billing_site.settings", "billing_site.settings_test", "billing_site.wsgi"}


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in sorted(p.parent for p in root.glob("*/__init__.py")):
        if package.name in NOT_PROJECT or package.name.startswith("."):
            continue
        for path in package.rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules this module imports (the deepest module each import names)."""
    found: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
                break
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def problems(root: Path = ROOT) -> list[str]:
    modules = project_modules(root)
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    found = [f"import cycle: {' <-> '.join(c)}" for c in cycles(graph)]
    for name, targets in sorted(graph.items()):
        if name.startswith("billing_site") and name not in COMPOSITION_ROOT:
            found += [f"{name} imports the app module {t}" for t in sorted(targets) if not t.startswith("billing_site")]
    return found


if __name__ == "__main__":
    sys.setrecursionlimit(10_000)
    issues = problems()
    print("\n".join(issues) or "imports: no cycle, billing_site imports no app")
    sys.exit(1 if issues else 0)
