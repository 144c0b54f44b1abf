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
from datetime import datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
import sqlalchemy as sa
from litestar.response import Redirect, Response, Template

from .errors import InvalidInput, MallcoreError
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
    "FormError",
    "Tile",
    "base_path",
    "form_body",
    "form_error",
    "form_fields",
    "keyset",
    "language",
    "local_time",
    "minor_units",
    "money",
    "read_cursor",
    "render",
    "submit",
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
    """A form's fields as the API's request body: the same validation, 422 ``invalid_input`` when
    bad. Fields the body does not have (the CSRF token, a page cursor) are not part of it."""
    known = set(kind.__struct_fields__)
    try:
        return msgspec.convert({k: v for k, v in fields.items() if k in known}, kind, strict=False)
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


# -- forms: the API's errors on the form's own page ----------------------------------------

# What a person reads for an error code, when a center gives no text of its own: by status.
_BY_STATUS = {
    400: ("The form was not understood.", "表单无法识别。"),
    403: ("You may not do this.", "无权执行此操作。"),
    409: ("Not possible in the current state.", "当前状态不允许此操作。"),
    422: ("Some fields are not valid.", "部分字段填写有误。"),
    429: ("Too many attempts; wait a moment.", "操作过于频繁,请稍后再试。"),
}


class FormError(msgspec.Struct, kw_only=True, frozen=True):
    """An API error as a form shows it: ``status`` and ``code`` as the API answers, ``message``
    in the page's language, ``detail`` the API's own text (which field, which value)."""

    status: int
    code: str
    message: str
    detail: str


def form_error(
    connection: ASGIConnection[Any, Any, Any, Any],
    exc: MallcoreError,
    messages: Mapping[str, tuple[str, str]] | None = None,
) -> FormError:
    """``exc`` for the page: the center's text for its code (``{code: (en, zh)}``), else by status."""
    en, zh = (messages or {}).get(exc.code) or _BY_STATUS.get(
        exc.status, ("Could not do that.", "操作未完成。")
    )
    return FormError(
        status=exc.status, code=exc.code, message=tr(language(connection))(en, zh), detail=exc.detail
    )


def form_fields(
    data: Mapping[str, Any], *, lists: Sequence[str] = (), flags: Sequence[str] = ()
) -> dict[str, Any]:
    """A posted form as the API's JSON body would have it: blank fields left out (the body's
    default applies), ``lists`` always lists (checkboxes, repeated fields), ``flags`` booleans
    (a checkbox is sent only when ticked). The CSRF token is not a field."""
    out: dict[str, Any] = {}
    for name, value in data.items():
        if name == "_csrf_token":
            continue
        if name in lists:
            items = value if isinstance(value, list) else [value]
            out[name] = [v.strip() for v in items if isinstance(v, str) and v.strip()]
        elif isinstance(value, str):
            if value.strip():
                out[name] = value.strip()
        elif value is not None:
            out[name] = value
    for name in lists:
        out.setdefault(name, [])
    for name in flags:
        out[name] = name in out and out[name] not in ("0", "false", "off")
    return out


def submit(
    connection: ASGIConnection[Any, Any, Any, Any],
    work: Callable[[], str | Response[Any]],
    again: Callable[[FormError], Template],
    messages: Mapping[str, tuple[str, str]] | None = None,
    *,
    not_found_on_page: bool = False,
) -> Response[Any]:
    """Run a form's ``work`` (the API's own service call), then send the browser on: ``work``
    returns the console page to go to (``"/risk/rules?done=added"``, under the console's path:
    a 303 there) or a response of its own. When the API refuses it (400, 403, 409, 422, 429),
    the form's page again (``again``) with the error on it and the API's status. Not-found and
    signed-out errors go to the console's error handling: another shop's object is a 404 page,
    as in the API (``not_found_on_page``: a form that creates something shows a 404 for a code
    typed into it, e.g. an unknown shop, on its page too)."""
    try:
        done = work()
    except MallcoreError as exc:
        if exc.status == 401 or exc.status >= 500 or (exc.status == 404 and not not_found_on_page):
            raise
        page = again(form_error(connection, exc, messages))
        page.status_code = exc.status
        return page
    return Redirect(f"{base_path(connection)}{done}", status_code=303) if isinstance(done, str) else done


def minor_units(text: str | None, field: str) -> int | None:
    """An amount as staff type it (``12.5``, ``¥1,200``) in minor units (``1250``); blank is
    ``None``; anything else 422 ``invalid_amount`` naming ``field``. Two decimals (yuan, dollars)."""
    if text is None or not str(text).strip():
        return None
    raw = str(text).replace("¥", "").replace(",", "").replace(",", "").strip()
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0 or value != value.quantize(Decimal("0.01")) or value > 10**12:
        raise InvalidInput(f"{field}: '{str(text)[:20]}' is not an amount", code="invalid_amount")
    return int(value * 100)


def local_time(text: str | None, zone: tzinfo) -> str | None:
    """A ``datetime-local`` field, read in the staff's time zone, as the API's ISO time with its
    offset; blank is ``None``; anything else 422 ``invalid_input``."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"not a date and time: {text[:40]}", code="invalid_input") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).isoformat()
