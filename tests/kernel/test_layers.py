"""The kernel's modules import each other in layers, never in a circle (docs/architecture.md, "Layers").

The graph is read from the source with ``ast``: every import counts, at the
top of a module, inside a function or under ``TYPE_CHECKING``. The one
allowed exception: ``hookspecs`` names, for annotations, the types its hooks
receive, including the kernel's.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KERNEL = REPO / "mallcore" / "kernel"
ALLOWED_BACK_EDGES_FROM = {
    "mallcore.kernel.hookspecs",
    *(f"mallcore.kernel.hookspecs.{m}" for m in ("orders", "aftersale", "bring", "serving")),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in KERNEL.rglob("*.py")}


def imports(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, relative imports resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            for alias in node.names:
                # ``from . import tables`` imports the module mallcore.kernel.tables
                yield f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module


def kernel_graph() -> dict[str, set[str]]:
    return {name: {m for m in imports(path) if m in MODULES and m != name} for name, path in MODULES.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_kernels_modules_import_each_other_without_a_cycle():
    graph = kernel_graph()
    assert len(graph) > 30 and graph["mallcore.kernel.kernel"]  # the scan sees the kernel
    without_hookspecs = {
        name: set() if name in ALLOWED_BACK_EDGES_FROM else deps for name, deps in graph.items()
    }
    assert cycles(without_hookspecs) == []


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_data_types_sit_at_the_bottom():
    graph = kernel_graph()
    assert graph["mallcore.kernel.types"] <= {"mallcore.kernel.errors"}
    assert graph["mallcore.kernel.errors"] == set()


def test_services_never_reach_the_kernel_object():
    # kernel.py wires them; only what sits on top (HTTP, demo, centers' base class) names it.
    on_top = {
        "mallcore.kernel",
        "mallcore.kernel.center",
        "mallcore.kernel.demo",
        *ALLOWED_BACK_EDGES_FROM,
    }
    reaching = sorted(
        name
        for name, deps in kernel_graph().items()
        if "mallcore.kernel.kernel" in deps
        and name not in on_top
        and not name.startswith("mallcore.kernel.http")
    )
    assert reaching == []


def test_the_kernel_never_imports_what_sits_above_it():
    # mallcore.bench, mallcore.contrib, mallcore.plugins (centers), mallcore.cli, mallcore.testing...
    reaching = sorted(
        (name, module)
        for name, path in MODULES.items()
        for module in imports(path)
        if module.startswith("mallcore.") and not module.startswith("mallcore.kernel")
    )
    assert reaching == []
    # centers are found through entry points, never imported by name
    assert not any("mallcore_" in module for path in MODULES.values() for module in imports(path))


def test_no_module_of_mallcore_grows_past_700_lines():
    # A file that long holds several jobs: split it by job (docs/architecture.md, "Layers").
    long = {
        str(path.relative_to(REPO)): count
        for path in (REPO / "mallcore").rglob("*.py")
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > 700
    }
    assert long == {}
