"""Hooks called while a request is served: identity, the order's view, the tracking page, the staff console's pages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .markers import hookspec

__all__ = ["console_pages", "order_view", "resolve_principal", "tracking_page"]

if TYPE_CHECKING:  # pragma: no cover - names for annotations only
    import sqlalchemy as sa
    from litestar import Request

    from ..console import ConsolePage
    from ..kernel import Kernel
    from ..schemas import OrderView
    from ..tracking import TrackingPage
    from ..types import Principal


# -- Identity and views: called while a request is served --------------------------------


@hookspec(firstresult=True)
def resolve_principal(kernel: Kernel, token: str, request: Request[Any, Any, Any] | None) -> Principal | None:
    """Turn a bearer token into a :class:`Principal`.

    Called for each HTTP request that carries ``Authorization: Bearer``,
    outside any transaction. The kernel's own implementation (static tokens
    from config, then JWT, then tokens issued by ``mallcore token create``)
    runs last, so a host platform can bring its own identity.

    :param kernel: the kernel.
    :param token: the bearer token.
    :param request: the Litestar request, or ``None`` outside HTTP.
    :returns: the principal, or ``None`` if the token is not this
        implementation's. The first non-``None`` answer wins; no answer at
        all is 401 ``invalid_token``.
    :raises Unauthenticated: answers 401 with its code; any other exception
        is a 500.

    Example::

        @hookimpl
        def resolve_principal(self, token):
            user = self.sso.user_for(token)
            return None if user is None else Principal(user.id, frozenset({"customer"}))
    """


@hookspec
def order_view(kernel: Kernel, conn: sa.Connection, order: Any, view: OrderView) -> None:
    """Add a center's part to an order as clients see it.

    Called when an order is rendered (``GET /orders/{id}``, placement and
    payment responses), in the transaction that renders it (a read
    transaction, or the stage's). TMS fills ``view.shipments``; others may
    add to ``view.extra``. Keep it to one query.

    :param kernel: the kernel.
    :param conn: the open transaction.
    :param order: the order (:class:`~mallcore.kernel.Order`).
    :param view: the response being built; change it in place.
    :returns: nothing; every implementation is called.
    :raises: any exception answers 500 (and, in a stage, rolls it back).

    Example::

        @hookimpl
        def order_view(self, conn, order, view):
            view.extra["fee"] = self.charged(conn, order.id)
    """


@hookspec
def tracking_page(kernel: Kernel, conn: sa.Connection, order: Any, page: TrackingPage) -> None:
    """Add a center's sections to the customer's tracking page.

    Called when ``GET /track/{order_id}?token=...`` renders (a signed link,
    no login), in the read transaction that renders it, after the kernel has
    read the order, its lines and its public timeline. The page is for the
    customer: show nothing internal. Build cards with the page's helpers so
    every center writes alike: ``page.t(en, zh)`` (the page's language only),
    ``page.time(at)`` (the shop's time zone), ``page.money(amount)``
    (``¥158.00``). A card that shows an object's timeline takes it with
    ``page.entries(ref)``, which claims the entries so the order history does
    not repeat them. Keep it to a few queries.

    :param kernel: the kernel.
    :param conn: the open read transaction.
    :param order: the order (:class:`~mallcore.kernel.Order`).
    :param page: the page being built (:class:`~mallcore.kernel.TrackingPage`):
        add :class:`~mallcore.kernel.TrackingCard` objects to ``page.section(key, title)``.
    :returns: nothing; every implementation is called, in center order.
    :raises: any exception answers 500 (a page that cannot be drawn is a bug).

    Example::

        @hookimpl
        def tracking_page(self, conn, order, page):
            points = self.earned(conn, order.id)
            if points:
                card = TrackingCard(key="points", title=page.t("Points", "积分"))
                card.facts.append(TrackingFact(label=page.t("Earned", "获得"), value=str(points)))
                page.section("points", page.t("Points", "积分"), rank=80).cards.append(card)
    """


@hookspec
def console_pages(kernel: Kernel) -> list[ConsolePage]:
    """A center's menu entries and pages in the staff console.

    Called once by the ``console`` center when the app is built (when its
    routes are collected), outside any transaction; not called at all when
    the console is not enabled. The handlers of the pages returned are
    mounted under the console's path, behind its session cookie, CSRF check
    and HTML error pages; they declare their guards like any route
    (``roles("merchant")``), receive ``principal: Caller`` from the session,
    render with :func:`mallcore.kernel.console.render` and call the center's
    own services (the same code path as the center's API).

    :param kernel: the kernel.
    :returns: a list of :class:`~mallcore.kernel.console.ConsolePage` (menu
        entry, handlers, home-page tiles); every implementation is called and
        the menu is sorted by ``order``.
    :raises: any exception stops the app from being built.

    Example::

        @hookimpl
        def console_pages(self, kernel):
            return [ConsolePage(path="/waivers", label="Waivers", label_zh="免单",
                                handlers=[WaiverPages], roles=("merchant",))]
    """
