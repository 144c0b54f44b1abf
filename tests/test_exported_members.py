"""The public surface of mallcore.kernel: what centers may import, and that they import nothing else."""

from __future__ import annotations

import ast
import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import mallcore.kernel as kernel
import mallcore.kernel.http as http

REPO = Path(__file__).resolve().parents[1]

# The modules a center may import (listed in mallcore/kernel/__init__.py's docstring).
PUBLIC_MODULES = {
    "mallcore.kernel",
    "mallcore.kernel.aftersale",
    "mallcore.kernel.columns",
    "mallcore.kernel.console",
    "mallcore.kernel.fast",
    "mallcore.kernel.http",
    "mallcore.kernel.schemas",
    "mallcore.kernel.signing",
    "mallcore.kernel.tables",
}


def isort_style(name: str) -> tuple[int, str]:
    # constants, then classes, then functions: ruff's RUF022 order
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def defined_in(obj: object) -> str | None:
    """The module whose source defines ``obj``: its own for classes and functions, else
    the mallcore module that binds it at top level (``SYSTEM = Principal(...)``)."""
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return obj.__module__
    for name, module in sorted(sys.modules.items()):
        if not name.startswith("mallcore.") or not getattr(module, "__file__", None):
            continue
        bound = {key for key, value in vars(module).items() if value is obj}
        if bound & assigned_at_top_level(module):
            return name
    return None


def assigned_at_top_level(module: ModuleType) -> set[str]:
    tree = ast.parse(Path(module.__file__ or "").read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


@pytest.mark.parametrize("package", [kernel, http], ids=lambda p: p.__name__)
def test_all_is_sorted_and_every_name_is_defined_by_mallcore(package):
    assert package.__all__ == sorted(package.__all__, key=isort_style)
    assert len(set(package.__all__)) == len(package.__all__)
    assert set(package.__all__) <= set(dir(package)), set(package.__all__) - set(dir(package))
    foreign = {name: defined_in(getattr(package, name)) for name in package.__all__}
    foreign = {name: where for name, where in foreign.items() if not (where or "").startswith("mallcore.")}
    assert foreign == {}, "exported but not defined in mallcore"


def test_the_names_centers_rely_on_are_exported():
    needed = {
        "Center",
        "hookimpl",
        "hookspec",
        "OrderContext",
        "Phase",
        "Rejected",
        "OutOfStock",
        "Conflict",
        "InvalidInput",
        "NotFound",
        "Forbidden",
        "Principal",
        "Caller",
        "require",
        "SYSTEM",
        "Job",
        "Kernel",
        "Payment",
        "Refund",
        "RefundItem",
        "allocate",
        "share",
        "utcnow",
        "load_config",
        "pass_kernel",
    }
    assert needed <= set(kernel.__all__)


def test_the_public_modules_are_the_ones_the_kernel_documents():
    doc = kernel.__doc__ or ""
    for module in PUBLIC_MODULES - {"mallcore.kernel"}:
        assert f":mod:`{module}`" in doc, module


def kernel_imports(path: Path) -> Iterator[tuple[int, str, str | None]]:
    """(line, module, imported name or None) for every import of mallcore.kernel in ``path``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("mallcore.kernel"):
                    yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "mallcore" and any(a.name == "kernel" for a in node.names):
                yield node.lineno, "mallcore.kernel", None
            elif node.module.startswith("mallcore.kernel"):
                for alias in node.names:
                    yield node.lineno, node.module, alias.name


def violations(path: Path) -> list[str]:
    """The imports of ``path`` that reach past the public API."""
    exported = {"mallcore.kernel": set(kernel.__all__), "mallcore.kernel.http": set(http.__all__)}
    wrong = []
    for line, module, name in kernel_imports(path):
        if module not in PUBLIC_MODULES:
            wrong.append(f"{path.name}:{line} imports {module}")
        elif name is None or name in exported.get(module, {name}) or f"{module}.{name}" in PUBLIC_MODULES:
            continue
        else:
            wrong.append(f"{path.name}:{line} imports {name} from {module}, which does not export it")
    return wrong


def test_centers_and_examples_import_only_the_public_api():
    files = sorted(
        path for root in (REPO / "mallcore" / "plugins", REPO / "examples") for path in root.rglob("*.py")
    )
    assert sum(1 for path in files for _ in kernel_imports(path)) > 100  # the scan reads their imports
    assert [v for path in files for v in violations(path)] == []


def test_the_scan_catches_a_private_import(tmp_path):
    center = tmp_path / "center.py"
    center.write_text(
        "from mallcore.kernel import Center, db, tables\n"
        "from mallcore.kernel.orders import OrderService\n"
        "from mallcore.kernel.http import create_app, app\n"
        "def f():\n    import mallcore.kernel.plugins\n"
    )
    assert violations(center) == [
        "center.py:1 imports db from mallcore.kernel, which does not export it",
        "center.py:2 imports mallcore.kernel.orders",
        "center.py:3 imports app from mallcore.kernel.http, which does not export it",
        "center.py:5 imports mallcore.kernel.plugins",
    ]
