"""Role rules as Litestar guards, declared once on a Controller or a route.

::

    class TemplateController(Controller):
        path = "/tms/templates"
        guards = [roles("merchant", "warehouse", "finance")]

        @post("/", guards=[roles("merchant")], sync_to_thread=True)
        def create(self, data: JSONBody[TemplateIn], principal: Caller, ...) -> ...: ...

- :func:`roles` answers 403 ``role_required`` unless the caller holds one of
  the roles (admins always pass);
- :func:`platform` answers 403 ``platform_only`` unless the caller is an
  admin or platform staff (``platform=True``) with one of the roles.

A guard runs before the body is read: a caller without the role learns
nothing about what the route would have said of their input. Whether the
caller may touch *this* object (its shop, its owner) depends on the object
and stays with the code that loads it (404 when not visible). The bearer
token is resolved once per request, shared by the guards and the
``principal`` dependency.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from ..access import require, require_platform

if TYPE_CHECKING:
    from ..kernel import Kernel
    from ..types import Principal

# A function returning the kernel serving a route, in the route's ``opt`` (set on
# the kernel's router).
KERNEL_OPT = "mallcore.kernel"
PRINCIPAL_SCOPE = "mallcore.principal"

Guard = Any  # Litestar's guard signature: (connection, route handler) -> None


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The caller of this request (401 without a valid bearer token), resolved once."""
    scope = cast(dict[str, Any], connection.scope)
    principal = scope.get(PRINCIPAL_SCOPE)
    if principal is None:
        kernel: Kernel = connection.route_handler.opt[KERNEL_OPT]()
        principal = kernel.auth.from_header(connection.headers.get("authorization"), connection)  # type: ignore[arg-type]
        scope[PRINCIPAL_SCOPE] = principal
    return cast("Principal", principal)


def use_principal(connection: ASGIConnection[Any, Any, Any, Any], principal: Principal) -> None:
    """Make ``principal`` the caller of this request, for a center that authenticates
    requests another way than a bearer token (the console's session cookie): the
    guards and the ``principal`` dependency then see it."""
    cast(dict[str, Any], connection.scope)[PRINCIPAL_SCOPE] = principal


def roles(*names: str) -> Guard:
    """A guard: 403 ``role_required`` unless the caller holds one of ``names``."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        require(principal_of(connection), *names)

    guard.__qualname__ = f"roles({', '.join(names)})"
    return guard


def platform(*names: str) -> Guard:
    """A guard: 403 ``platform_only`` unless an admin or platform staff holding one of ``names``."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        require_platform(principal_of(connection), *names)

    guard.__qualname__ = f"platform({', '.join(names)})"
    return guard
