"""Every hook is documented and has a test (after datasette's test_plugin_hooks_have_tests)."""

import inspect
import re
from pathlib import Path

import pytest

from mallcore.kernel import hookspecs

HOOKS = sorted(
    name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, "mallcore_spec")
)
TESTS = Path(__file__).resolve().parents[1]


def test_there_are_hooks_to_check():
    assert {
        "order_pre_validate",
        "order_price",
        "order_reserve",
        "order_pay",
        "order_dispatch",
        "order_deliver",
        "order_after_sale",
        "order_cancel",
    } <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hookspec_has_a_docstring_saying_when_and_what_a_raise_does(hook):
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert len(doc) > 80, f"{hook} needs a docstring"
    assert re.search(r"\bcalled\b", doc, re.I), f"{hook}: say when it is called"
    assert re.search(r"\braise", doc, re.I), f"{hook}: say what a raise does"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hookspec_has_a_test(hook):
    pattern = re.compile(rf"def test_hook_{hook}[_(]")
    found = [p for p in TESTS.rglob("test_*.py") if pattern.search(p.read_text(encoding="utf-8"))]
    assert found, f"no test named test_hook_{hook}... exercises the {hook} hook"
