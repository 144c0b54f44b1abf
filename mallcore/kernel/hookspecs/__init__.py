"""The hooks a center implements: the one page an integrator needs.

A center is a class (usually a :class:`mallcore.kernel.Center`) whose methods
are marked ``@hookimpl``. The kernel calls every enabled center's
implementation in center order (a center runs after those it ``requires`` or
lists in ``after``); ``tryfirst`` / ``trylast`` move one to the front or
back. An implementation may take fewer arguments than the hook offers.

Lifecycle hooks receive an :class:`~mallcore.kernel.OrderContext`. Each stage
runs in **one database transaction**: the order's change, every center's
writes through ``ctx.conn`` / ``ctx.session`` and the events from
``ctx.emit`` commit together or not at all. **A raise rolls the whole stage
back**; raise :class:`~mallcore.kernel.Rejected` (or another
:class:`~mallcore.kernel.MallcoreError`) to refuse with a stable code. Never
commit inside a hook (docs/architecture.md, "The stage transaction").

Every hook is documented alike: what it is for; when it is called, in which
transaction; each argument; what it returns (and whether the first answer
wins); what a raise does; an example. The modules follow an order's life
(``orders``, ``aftersale``), then what a center brings (``bring``) and what
runs while a request is served (``serving``); this package gathers them.
``tests/kernel/test_hookspecs.py`` holds each hook to this, and to a test and
a line in docs/writing-a-center.md.
"""

from .aftersale import *  # noqa: F403
from .bring import *  # noqa: F403
from .markers import PROJECT, hookimpl, hookspec
from .orders import *  # noqa: F403
from .serving import *  # noqa: F403

__all__ = ["PROJECT", "hookimpl", "hookspec"]
