"""The console's frame: session middleware, the signed-in guard, sign-in and out,
the language switch, static files and HTML error pages.

Every console route runs behind, in order: the session middleware (a valid
session cookie makes its principal the request's caller, through
``use_principal``, and puts the layout's context in the request state),
Litestar's CSRF middleware (a form posted without its token is refused with
403) and the router's guard :func:`signed_in` (staff only: anyone else is sent
to the sign-in page). A center's page handlers then apply their own role
guards and services, exactly as its API does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import anyio.to_thread
from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import DefineMiddleware
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template
from litestar.types import ASGIApp, Receive, Scope, Send

from mallcore.kernel import MallcoreError, Principal, Unauthenticated
from mallcore.kernel.console import LANG_COOKIE, STATE_KEY, ConsolePage, language, render, tr
from mallcore.kernel.http import principal_of, use_principal

from .session import COOKIE

if TYPE_CHECKING:
    from . import ConsoleCenter

PUBLIC = "console.public"  # in a route's opt: open without a session (sign-in, static files)
STAFF = frozenset({"admin", "merchant", "warehouse", "finance", "risk"})
# Handlers get the console center as ``console: Console``.
Console = NamedDependency["ConsoleCenter"]
Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def is_staff(principal: Principal) -> bool:
    return not principal.roles.isdisjoint(STAFF)


def session_middleware(center: ConsoleCenter) -> DefineMiddleware:
    # A function, not the center: Litestar deep-copies a router when it registers it.
    return DefineMiddleware(_session_middleware, get_center=lambda: center)


def _session_middleware(app: ASGIApp, get_center: Callable[[], ConsoleCenter]) -> ASGIApp:
    center = get_center()

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            connection: ASGIConnection[Any, Any, Any, Any] = ASGIConnection(scope)
            cookie = connection.cookies.get(COOKIE)
            # The session's row and its token are read from the database: off the event loop.
            principal = (
                await anyio.to_thread.run_sync(center.sessions.read, cookie, connection) if cookie else None
            )
            if principal is not None and is_staff(principal):
                use_principal(connection, principal)
                menu = [p for p in center.pages if p.shown_to(principal)]
            else:
                principal, menu = None, []
            scope.setdefault("state", {})[STATE_KEY] = {
                "me": principal,
                "menu": menu,
                "base": center.base,
                "zone": center.zone,
                "here": scope["path"],
                "query": scope.get("query_string", b"").decode("latin-1"),
            }
        await app(scope, receive, send)

    return middleware


def signed_in(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """The console router's guard: staff only (a bearer token also works, for scripts)."""
    if handler.opt.get(PUBLIC):
        return
    if not is_staff(principal_of(connection)):
        raise Unauthenticated("the console is for staff; sign in", code="unauthenticated")


# -- error pages ---------------------------------------------------------------------------


def _sign_in_redirect(request: Request[Any, Any, Any]) -> Response[Any]:
    base = request.scope.get("state", {}).get(STATE_KEY, {}).get("base", "")
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = here if request.method == "GET" else base + "/"
    return Redirect(path=f"{base}/sign-in?next={quote(target)}", status_code=303)


def _error_page(request: Request[Any, Any, Any], status: int, code: str, detail: str) -> Response[Any]:
    page = render(request, "console/error.html", status=status, code=code, detail=detail)
    page.status_code = status
    return page


def mallcore_error(request: Request[Any, Any, Any], exc: MallcoreError) -> Response[Any]:
    if exc.status == 401:
        return _sign_in_redirect(request)
    return _error_page(request, exc.status, exc.code, exc.detail)


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, PermissionDeniedException) and "CSRF" in str(exc.detail):
        return _error_page(request, 403, "csrf_failed", "the form's security token is missing or wrong")
    return _error_page(request, exc.status_code, "http_error", str(exc.detail))


ERROR_PAGES = {MallcoreError: mallcore_error, HTTPException: http_error}


# -- sign-in, sign-out, language ------------------------------------------------------------


def _safe_next(center: ConsoleCenter, target: str | None) -> str:
    """Where to go after signing in: only a page of the console (no open redirect)."""
    if target and target.startswith(center.base + "/") and "//" not in target and "\\" not in target:
        return target
    return center.base + "/"


class SignInController(Controller):
    path = "/"
    opt = {PUBLIC: True}

    @get("/sign-in", sync_to_thread=False)
    def form(
        self, request: Request[Any, Any, Any], console: Console, next: FromQuery[str | None] = None
    ) -> Template:
        return render(request, "console/signin.html", next=_safe_next(console, next), error=None)

    @post("/sign-in", sync_to_thread=True, status_code=303)
    def sign_in(self, request: Request[Any, Any, Any], console: Console, data: Form) -> Response[Any]:
        t = tr(language(request))
        token = (data.get("token") or "").strip()
        target = _safe_next(console, data.get("next"))
        try:
            principal = console.kernel.auth.resolve(token, request) if token else None
        except Unauthenticated:
            principal = None
        if principal is None:
            error, status = t("Unknown or expired token.", "令牌无效或已过期。"), 401
        elif not is_staff(principal):
            error, status = t("The console is for staff.", "后台仅供员工使用。"), 403
        else:
            response: Response[Any] = Redirect(path=target, status_code=303)
            response.set_cookie(
                COOKIE,
                console.sessions.issue(token, principal),
                path=console.base,
                max_age=console.sessions.seconds,
                httponly=True,
                samesite="lax",
                secure=console.secure(request),
            )
            return response
        page = render(request, "console/signin.html", next=target, error=error)
        page.status_code = status
        return page

    @post("/sign-out", sync_to_thread=True, status_code=303)
    def sign_out(self, request: Request[Any, Any, Any], console: Console) -> Response[Any]:
        """Ends the session on the server (every copy of the cookie), then clears the cookie."""
        console.sessions.end(request.cookies.get(COOKIE))
        response: Response[Any] = Redirect(path=f"{console.base}/sign-in", status_code=303)
        response.delete_cookie(COOKIE, path=console.base)
        return response

    @get("/lang/{code:str}", sync_to_thread=False, status_code=303)
    def switch_language(
        self, code: FromPath[str], console: Console, next: FromQuery[str | None] = None
    ) -> Response[Any]:
        """Remember the language picked on any page (a link: works without JavaScript)."""
        response: Response[Any] = Redirect(path=_safe_next(console, next), status_code=303)
        if code in ("en", "zh"):
            response.set_cookie(LANG_COOKIE, code, path="/", max_age=365 * 86400, samesite="lax")
        return response


def menu_of(pages: list[tuple[str, Any]]) -> list[ConsolePage]:
    """Every center's pages, sorted for the menu."""
    out: list[ConsolePage] = []
    for _center, contributed in pages:
        out.extend(contributed or ())
    return sorted(out, key=lambda p: (p.order, p.path))
