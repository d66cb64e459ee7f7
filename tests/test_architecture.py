"""The package's shape, checked from its source: the rules of README.md's *Architecture*.

Read statically (nothing is imported), so a rule broken anywhere in ``ci_pipeline`` fails here
with the module and the line, whatever the tests of that module cover.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ci_pipeline"
#: A module longer than this says why in its docstring, with these words.
MAX_LINES = 400
LONG_REASON = "Over 400 lines"
#: The packages allowed to talk to the database: every query lives in the store.
SQL_PACKAGES = ("ci_pipeline.store",)
#: What only a module that runs SQL needs (an ``Engine`` to pass along is fine anywhere).
SQL_NAMES = {"select", "text", "Session", "update", "delete", "insert", "func", "or_", "and_"}


@dataclass(frozen=True)
class Module:
    name: str  # dotted
    path: Path
    tree: ast.Module

    @property
    def package(self) -> str:
        """The package the module's relative names resolve against."""
        return self.name if self.path.name == "__init__.py" else self.name.rpartition(".")[0]


def modules() -> dict[str, Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = Module(name, path, ast.parse(path.read_text(encoding="utf-8")))
    return found


MODULES = modules()


def imports(module: Module) -> Iterator[tuple[int, str, list[str]]]:
    """(line, imported module, names taken from it) for every import, lazy ones included."""
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base, [a.name for a in node.names]


def edges(module: Module) -> set[str]:
    """The project modules ``module`` imports (``from pkg import mod`` names the module)."""
    out = set()
    for _line, target, names in imports(module):
        if not target.startswith("ci_pipeline"):
            continue
        submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
        out.update(submodules or [target])
        if submodules and len(submodules) < len(names):
            out.add(target)  # names defined in the package itself, too
    out.discard(module.name)
    return out


def import_graph() -> dict[str, list[str]]:
    return {name: sorted(edges(m) & MODULES.keys()) for name, m in MODULES.items()}


def cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for name in graph:
        if name not in index:
            visit(name)
    return found


def test_the_checker_reads_the_real_package() -> None:
    """The checks below would pass on nothing: make sure they read the real package."""
    assert {"ci_pipeline.store", "ci_pipeline.detect.stats", "ci_pipeline.cli.app"} <= set(MODULES)
    assert "ci_pipeline.store.tables" in edges(MODULES["ci_pipeline.store.submissions"])
    # `from ci_pipeline.read import files` names the module, not the package.
    tree = ast.parse("from ci_pipeline.read import files\n")
    fake = Module("ci_pipeline.x", PACKAGE / "x.py", tree)
    assert edges(fake) == {"ci_pipeline.read.files"}


def test_the_cycle_finder_finds_cycles() -> None:
    """a → b → c → a is one cycle; d → a and e alone are not in any."""
    graph = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"], "e": []}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": ["b"], "b": []}) == []


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_no_module_takes_another_modules_private_names() -> None:
    offences = []
    for module in MODULES.values():
        project_aliases: set[str] = set()
        for line, target, names in imports(module):
            if not target.startswith("ci_pipeline"):
                continue
            offences += [f"{module.path}:{line} imports {target}.{n}" for n in names if _private(n)]
            project_aliases.update(names)
        for node in ast.walk(module.tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in project_aliases
                and _private(node.attr)
            ):
                offences.append(f"{module.path}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert offences == []


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_long_modules_say_why() -> None:
    long = {
        str(m.path.relative_to(PACKAGE.parent)): n
        for m in MODULES.values()
        if (n := len(m.path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
        and LONG_REASON not in (ast.get_docstring(m.tree) or "")
    }
    assert long == {}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_says_what_it_is_for(name: str) -> None:
    module = MODULES[name]
    if module.path.name == "__init__.py" and not module.tree.body:
        return  # an empty package marker
    assert ast.get_docstring(module.tree), f"{module.path} has no docstring"


def test_only_the_store_runs_sql() -> None:
    offences = []
    for module in MODULES.values():
        if module.name.startswith(SQL_PACKAGES):
            continue
        for line, target, names in imports(module):
            if target.split(".")[0] in ("sqlalchemy", "sqlmodel") and SQL_NAMES & set(names):
                offences.append(f"{module.path}:{line} {target}: {sorted(SQL_NAMES & set(names))}")
    assert offences == []
