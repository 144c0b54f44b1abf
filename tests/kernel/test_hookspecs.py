"""Every hook is documented alike, named in the guide and has a test
(after pytest's hookspec docstrings and datasette's test_plugin_hooks_have_tests)."""

import inspect
import re
from pathlib import Path

import pytest

from mallcore.kernel import hookspecs

HOOKS = sorted(
    name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, "mallcore_spec")
)
TESTS = Path(__file__).resolve().parents[1]
GUIDE = TESTS.parent / "docs" / "writing-a-center.md"


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


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hookspec_documents_each_argument_its_return_a_raise_and_an_example(hook):
    spec = getattr(hookspecs, hook)
    doc = inspect.getdoc(spec) or ""
    arguments = list(inspect.signature(spec).parameters)
    documented = re.findall(r"^:param (\w+):", doc, re.M)
    assert documented == arguments, f"{hook}: one ':param <name>:' line per argument, in order"
    assert re.search(r"^:returns: ", doc, re.M), f"{hook}: say what it returns"
    assert re.search(r"^:raises( \w+)?: ", doc, re.M), f"{hook}: say what a raise does"
    assert re.search(r"\btransaction\b", doc), f"{hook}: say in which transaction (or outside any)"
    if getattr(spec, "mallcore_spec", {}).get("firstresult"):
        assert "first non-``None`` answer wins" in " ".join(doc.split()), f"{hook}: say the first answer wins"
    example = doc.partition("Example::")[2]
    assert "@hookimpl" in example and f"def {hook}(self" in example, f"{hook}: show an implementation"


def test_the_meta_test_reads_the_parameters_it_checks():
    def sample(ctx, refund):
        """Sample.

        :param ctx: the context.
        :returns: nothing.
        """

    doc = inspect.getdoc(sample) or ""
    assert re.findall(r"^:param (\w+):", doc, re.M) == ["ctx"] != list(inspect.signature(sample).parameters)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_named_in_the_guide_to_writing_a_center(hook):
    assert f"`{hook}(" in GUIDE.read_text(encoding="utf-8"), f"docs/writing-a-center.md does not name {hook}"
