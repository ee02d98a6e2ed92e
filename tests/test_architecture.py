"""The layering of docs/architecture.md, checked on the code: which package may import which, stages through
their public interfaces only, no import circle, no import hidden inside a function, and the environment read only
by the settings layer and the edges. Each failure names the file, the import and the rule it breaks."""

from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# package -> the idlink packages it may import (docs/architecture.md, "Packages and import direction")
ALLOWED: dict[str, frozenset[str]] = {
    "settings": frozenset(),
    "inbox": frozenset(),
    "warehouse": frozenset({"settings"}),
    "clients": frozenset({"settings"}),
    "ingestion": frozenset({"settings", "clients", "warehouse"}),
    "reverse_etl": frozenset({"settings", "clients", "warehouse"}),
    "publishing": frozenset({"settings", "warehouse"}),
    "privacy": frozenset({"settings", "inbox", "warehouse"}),
    "stewardship": frozenset({"settings", "warehouse"}),
    "gateway": frozenset({"settings", "clients", "inbox", "warehouse", "ingestion", "reverse_etl"}),
    "orchestration": frozenset({"settings", "clients", "inbox", "warehouse", "ingestion", "reverse_etl",
                                "publishing", "privacy"}),
    "sandbox": frozenset(),
}
# importer -> stages it may reach through their package root only (their public interface)
PUBLIC_ONLY: dict[str, frozenset[str]] = {"gateway": frozenset({"ingestion", "reverse_etl"})}
# function-local imports that stay, each for the reason in the comment beside it in the code
LOCAL_IMPORTS_ALLOWED = {("sandbox/synthetic/pools.py", "faker")}
# modules that read the process environment: the settings layer, and edges that hand it to child processes
ENVIRONMENT_READERS = {
    "settings/load.py",  # the one parser of configuration
    "gateway/__main__.py",  # an edge: hands --inbox to uvicorn's worker processes through it
    "orchestration/demo.py",  # an edge: adds the sandbox's variables for the runs it starts
    "orchestration/defs/linking.py",  # points dbt's subprocess at the warehouse (dagster-dbt passes os.environ)
    "sandbox/akamai/webhooks.py",  # the sandbox's own delivery tuning (SANDBOX_AKAMAI_WEBHOOK_*)
    "sandbox/synthetic/pools.py",  # XDG_CACHE_HOME, where the synthetic pools are cached
}


@dataclass(frozen=True)
class Import:
    path: str  # file, relative to the repository
    line: int
    module: str  # the idlink module imported (a package's __init__ is the package name)
    text: str
    local: bool  # inside a function


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    base = REPO.joinpath(*name.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _imports(path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    rel = str(path.relative_to(REPO))
    local_nodes = {id(sub) for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for sub in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from package import submodule` imports the submodule; `from module import name` the module
            targets = [f"{node.module}.{a.name}" if _is_module(f"{node.module}.{a.name}") else node.module
                       for a in node.names]
        for target in targets:
            if target.split(".")[0] in ALLOWED or target.split(".")[0] in {"bench", "tests"}:
                found.append(Import(rel, node.lineno, target, ast.unparse(node), id(node) in local_nodes))
            elif id(node) in local_nodes:
                found.append(Import(rel, node.lineno, target, ast.unparse(node), True))
    return found


def _package_files() -> list[Path]:
    return sorted(p for package in ALLOWED for p in (REPO / package).rglob("*.py"))


def test_packages_import_only_the_layers_below_them():
    broken = []
    for path in _package_files():
        importer = path.relative_to(REPO).parts[0]
        for imp in _imports(path):
            imported = imp.module.split(".")[0]
            if imported == importer or imported not in ALLOWED and imported not in {"bench", "tests"}:
                continue
            if imported not in ALLOWED[importer]:
                allowed = ", ".join(sorted(ALLOWED[importer])) or "nothing of idlink"
                broken.append(f"{imp.path}:{imp.line}: `{imp.text}` - {importer}/ may import {allowed}")
    assert not broken, "forbidden imports:\n" + "\n".join(broken)


def test_the_gateway_reaches_other_stages_through_their_public_interface_only():
    broken = []
    for path in _package_files():
        importer = path.relative_to(REPO).parts[0]
        for imp in _imports(path):
            stage = imp.module.split(".")[0]
            if stage in PUBLIC_ONLY.get(importer, ()) and imp.module != stage:
                broken.append(f"{imp.path}:{imp.line}: `{imp.text}` - {importer}/ uses {stage}/ through "
                              f"`from {stage} import ...` only (its public interface)")
    assert not broken, "imports of another stage's internals:\n" + "\n".join(broken)


def test_no_import_is_hidden_inside_a_function():
    broken = [f"{imp.path}:{imp.line}: `{imp.text}` - imports belong at module level (a local import hides a "
              "circle; keep one only for a heavy optional dependency, with the reason in a comment)"
              for path in _package_files() for imp in _imports(path)
              if imp.local and (imp.path, imp.module.split(".")[0]) not in LOCAL_IMPORTS_ALLOWED]
    assert not broken, "function-local imports:\n" + "\n".join(broken)


def test_no_module_imports_itself_back_through_a_circle():
    graph: dict[str, set[str]] = {}
    where: dict[tuple[str, str], Import] = {}
    for path in _package_files():
        name = _module_name(path)
        graph.setdefault(name, set())
        for imp in _imports(path):
            if not imp.local and imp.module != name and _is_module(imp.module):
                graph[name].add(imp.module)
                where.setdefault((name, imp.module), imp)
    circles = _circles(graph)
    described = []
    for circle in circles:
        steps = [where[(a, b)] for a, b in zip(circle, circle[1:] + circle[:1], strict=True) if (a, b) in where]
        described.append(" -> ".join(circle + circle[:1]) + "\n" + "\n".join(
            f"    {s.path}:{s.line}: `{s.text}` - no import circles" for s in steps))
    assert not circles, "import circles:\n" + "\n".join(described)


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_only_the_settings_layer_and_the_edges_touch_the_environment():
    broken = []
    for path in _package_files():
        rel = str(path.relative_to(REPO))
        if rel in ENVIRONMENT_READERS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            reads = (isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv")
                     and isinstance(node.value, ast.Name) and node.value.id == "os")
            if reads:
                broken.append(f"{rel}:{node.lineno}: `{ast.unparse(node)}` - configuration is read once by "
                              "settings.load_settings at an edge and passed down")
    assert not broken, "environment reads below the edges:\n" + "\n".join(broken)


def test_the_distribution_ships_the_product_without_the_sandbox_tests_or_benchmarks():
    include = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    shipped = {pattern.rstrip("*") for pattern in include}
    assert shipped == set(ALLOWED) - {"sandbox"}
