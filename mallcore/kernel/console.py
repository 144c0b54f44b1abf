"""What a center gives the staff console: its menu entries, pages and home-page figures.

The ``console`` center serves the back office in the browser. It does not
know the other centers: it calls the ``console_pages`` hook, and each
center answers with :class:`ConsolePage` entries whose Litestar handlers live
in the center's own package (``mallcore/plugins/<center>/console.py`` and
``templates/<center>/console/``), so a deployment that adds a center gets its
pages. The console mounts them under its path with the staff's session,
CSRF protection and its error pages; a handler declares ``principal:
Caller`` as on any route, passes the same guards (``roles(...)``) and calls
the center's own services, so a page and the API never disagree.

A page handler renders with :func:`render`, which adds what the console's
layout needs (language, menu, who is signed in), reads the language with
:func:`language`, and pages a list by keyset with :func:`keyset` (never
``OFFSET``)::

    @get("/waivers", sync_to_thread=True)
    def waivers(self, request: Request, principal: Caller, fee: Fee, before: int | None = None) -> Template:
        with fee.kernel.db.transaction(write=False) as conn:
            stmt = sa.select(t.waivers).where(visible_to(principal, t.waivers.c.shop))
            rows, more = keyset(conn, stmt, t.waivers.c.id, before)
        return render(request, "fee/console/waivers.html", rows=rows, more=more)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
import sqlalchemy as sa
from litestar.response import Template

from .errors import InvalidInput
from .i18n import pick_language
from .money import format_amount
from .regions import region_name

StructT = TypeVar("StructT", bound=msgspec.Struct)

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection

    from .types import Principal

__all__ = [
    "LANG_COOKIE",
    "STATE_KEY",
    "ConsolePage",
    "Tile",
    "base_path",
    "form_body",
    "keyset",
    "language",
    "money",
    "read_cursor",
    "render",
    "tr",
    "write_cursor",
]

# The cookie that remembers the language a user picked on any page ("en" or "zh").
LANG_COOKIE = "mallcore_lang"
# Where the console keeps, in a request's state, the context its layout needs.
STATE_KEY = "mallcore.console"


class Tile(msgspec.Struct, kw_only=True):
    """A figure on the console's home page (``value``), with optional detail rows and a link
    (``href``, a path under the console: ``"/after-sales"``)."""

    label: str
    label_zh: str
    value: str
    href: str | None = None
    rows: list[tuple[str, str]] = msgspec.field(default_factory=list)
    # "warn" draws attention (something is due or waiting)
    tone: str = ""


class ConsolePage(msgspec.Struct, kw_only=True, frozen=True):
    """A center's part of the console: a menu entry, its handlers and home-page tiles.

    - ``path``: where the menu entry points, under the console (``"/after-sales"``).
    - ``label`` / ``label_zh``: the menu entry in English and Chinese.
    - ``handlers``: Litestar controllers or handlers; their paths are relative to
      the console's mount path. Each declares its guards (``roles(...)``).
    - ``roles``: who sees the menu entry (admins always do); an empty tuple is
      every signed-in staff member. The handlers' guards are the rule; this only
      keeps a menu from offering what the user may not open.
    - ``order``: position in the menu (lower first).
    - ``tiles``: ``tiles(principal, lang)`` returns the center's figures for
      the home page, already limited to what the principal may see.
    """

    path: str
    label: str
    label_zh: str
    handlers: Sequence[Any] = ()
    roles: tuple[str, ...] = ()
    order: int = 100
    tiles: Callable[[Principal, str], list[Tile]] | None = None

    def shown_to(self, principal: Principal) -> bool:
        return not self.roles or principal.has(*self.roles)


def language(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The language of a console page: the remembered choice, else the browser's."""
    chosen = connection.cookies.get(LANG_COOKIE)
    if chosen in ("en", "zh"):
        return chosen
    return pick_language(connection.headers.get("accept-language"))


def tr(lang: str) -> Callable[[str, str], str]:
    """``t = tr(lang); t("Orders", "订单")``: the text in the page's language."""
    return (lambda en, zh: zh) if lang == "zh" else (lambda en, zh: en)


def money(amount: int | None, currency: str) -> str:
    """An amount as people read it (``¥158.00``: :func:`~mallcore.kernel.format_amount`); empty for ``None``."""
    return "" if amount is None else format_amount(amount, currency)


def render(connection: ASGIConnection[Any, Any, Any, Any], template: str, **context: Any) -> Template:
    """A console page: ``template`` (which extends ``console/layout.html``) with ``context``.

    Adds what the console put in the request's state (``lang``, ``t``, ``me``,
    ``menu``, ``base``), ``money`` and ``region`` (an address's region code as
    place names, :func:`~mallcore.kernel.regions.region_name`); outside the
    console only ``lang``, ``t``, ``money`` and ``region``.
    """
    lang = language(connection)
    base: dict[str, Any] = {
        "lang": lang,
        "t": tr(lang),
        "money": money,
        "region": lambda code: region_name(code, lang),
    }
    base.update(connection.scope.get("state", {}).get(STATE_KEY, {}))
    base.update(context)
    return Template(template_name=template, context=base)


def keyset(
    conn: sa.Connection,
    stmt: sa.Select[Any],
    key: sa.ColumnElement[Any],
    before: Any,
    *,
    limit: int = 50,
    ascending: bool = False,
) -> tuple[list[Any], Any]:
    """One page of ``stmt`` by keyset on the unique column ``key`` (never ``OFFSET``).

    Newest first by default: rows with ``key < before``; ``ascending`` pages
    the other way (``key > before``). Returns the rows and the cursor of the
    next page (``None`` on the last one).
    """
    if before is not None:
        stmt = stmt.where(key > before if ascending else key < before)
    stmt = stmt.order_by(key.asc() if ascending else key.desc()).limit(limit + 1)
    rows = list(conn.execute(stmt))
    more = None
    if len(rows) > limit:
        rows = rows[:limit]
        name = getattr(key, "key", None)
        more = getattr(rows[-1], name) if name else rows[-1][0]
    return rows, more


def base_path(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """Where the console is served (``/console``), for a handler's redirects."""
    return str(connection.scope.get("state", {}).get(STATE_KEY, {}).get("base", "/console"))


def form_body(fields: Mapping[str, Any], kind: type[StructT]) -> StructT:
    """A form's fields as the API's request body: the same validation, 422 ``invalid_input`` when bad."""
    try:
        return msgspec.convert(dict(fields), kind, strict=False)
    except msgspec.ValidationError as exc:
        raise InvalidInput(str(exc), code="invalid_input") from None


def write_cursor(at: datetime, key: int) -> str:
    """The cursor of a page ordered by a time and an id: ``<iso time>_<id>``."""
    return f"{at.isoformat()}_{key}"


def read_cursor(text: str | None) -> tuple[datetime, int] | None:
    """:func:`write_cursor` read back; 422 ``invalid_cursor`` for anything else."""
    if not text:
        return None
    at, _, key = text.rpartition("_")
    try:
        return datetime.fromisoformat(at), int(key)
    except ValueError:
        raise InvalidInput("not a page cursor", code="invalid_cursor") from None
