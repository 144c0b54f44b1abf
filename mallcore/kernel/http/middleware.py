"""Around every request: a request id on the request and every log line
(``X-Request-ID``), the request made current for ``ctx.request``
(:mod:`mallcore.kernel.facts`), then the metrics and the access log line.

The access log writes one line per request, ``http.request``, with method,
path, status, duration (``ms``), request id and the caller's subject (when
the request carried a token that was resolved); an answer of 400 or more
carries its error ``code``. Lines are at info up to 4xx (a client's mistake
is not the server's warning), at warning for a 503 ``overloaded`` (the
admission line shedding load, as designed: under overload there are
thousands a second, and they are not errors to page anyone about) and at
error for any other 5xx.

A request that matches no route (404 ``not_found`` for an unknown path, 405
``method_not_allowed`` for a known path with another method) never reaches
the kernel router's middleware: Litestar answers it while routing. The app's
``before_send`` hook (:func:`unmatched_hook`, set by ``MallcorePlugin``)
counts it under the route label ``unmatched`` (never the raw path, which
would make one series per scanned URL), with its latency (from the time
:func:`stamp_arrival` put in the scope at the app's entry), and writes its
access log line, with a request id.
"""

from __future__ import annotations

import itertools
import os
import secrets
import time
from collections.abc import Callable
from typing import Any, cast

import structlog
from litestar import Litestar
from litestar.middleware import DefineMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from .. import facts
from ..metrics import Metrics
from .errors import BY_STATUS, CODE_SCOPE
from .guards import PRINCIPAL_SCOPE

# The route label of requests that matched no route.
UNMATCHED = "unmatched"
# The scope key of a request's arrival time (``time.perf_counter()``), set at the app's entry.
ARRIVED = "mallcore.arrived"


class _Stamped:
    def __init__(self, handler: ASGIApp) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[ARRIVED] = time.perf_counter()  # type: ignore[literal-required]
        await self.handler(scope, receive, send)


def stamp_arrival(app: Litestar) -> None:
    """A start-up hook: the app's entry notes each request's arrival in its scope, so that a request
    no route matched (answered while routing, before any middleware) has a latency too."""
    if not isinstance(app.asgi_handler, _Stamped):
        app.asgi_handler = _Stamped(app.asgi_handler)


# The id of a request that brings none: 32 hex digits, a random half drawn once per
# process (again in a forked child) and a counting half, unique without reading the
# OS's random source for every request (uuid4 did: 6% of the event loop's time).
_counter = itertools.count()
_prefix = ""


def _reseed() -> None:
    global _prefix, _counter
    _prefix, _counter = secrets.token_hex(8), itertools.count()


_reseed()
os.register_at_fork(after_in_child=_reseed)


def _new_request_id() -> str:
    return f"{_prefix}{next(_counter):016x}"


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            return value.decode("latin-1")[:64] or _new_request_id()
    return _new_request_id()


def request_middleware(
    reader: facts.FactsReader, metrics: Metrics | None = None, *, access_log: bool = True
) -> DefineMiddleware:
    """The kernel router's middleware, reading request facts with ``reader``."""

    # A function, not the object: Litestar deep-copies a middleware's arguments.
    def metrics_of() -> Metrics | None:
        return metrics

    return DefineMiddleware(_request_middleware, reader=reader, metrics_of=metrics_of, access_log=access_log)


def _request_middleware(
    app: ASGIApp, reader: facts.FactsReader, metrics_of: Callable[[], Metrics | None], access_log: bool
) -> ASGIApp:
    metrics = metrics_of()
    # One logger per app, as the kernel has its own (a cached module-level one would keep
    # the processors of whichever configuration it first met).
    access = structlog.get_logger("mallcore.access")

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        header = (b"x-request-id", request_id.encode("latin-1"))
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        tokens: Any = structlog.contextvars.bind_contextvars(request_id=request_id)
        current = facts.enter(scope, reader)  # type: ignore[arg-type]
        try:
            await app(scope, receive, send_with_id)
        finally:
            facts.leave(current)
            seconds = time.perf_counter() - started
            method = str(scope.get("method", ""))
            if metrics is not None:
                metrics.request(method, scope.get("path_template") or UNMATCHED, status, seconds)
            if access_log:
                _log(access, scope, method, status, seconds)
            structlog.contextvars.reset_contextvars(**tokens)

    return middleware


def unmatched_hook(metrics: Metrics | None, *, access_log: bool, mount_path: str = "") -> Any:
    """A ``before_send`` hook: count and log the answers of requests that matched no route
    (under ``mount_path``, when mallcore is mounted into a host's app)."""
    prefix = mount_path.rstrip("/")

    async def hook(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start" or scope.get("route_handler") is not None:
            return
        if scope.get("type") != "http" or (prefix and not str(scope.get("path", "")).startswith(prefix)):
            return
        status = message["status"]
        method = str(scope.get("method", ""))
        request_id = _request_id(scope)
        message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode("latin-1"))]
        arrived = cast(dict[str, Any], scope).get(ARRIVED)
        seconds = None if arrived is None else time.perf_counter() - arrived
        if metrics is not None:
            if seconds is None:
                metrics.requests.labels(method, UNMATCHED, str(status)).inc()
            else:
                metrics.request(method, UNMATCHED, status, seconds)
        if access_log:
            code = cast(dict[str, Any], scope).get(CODE_SCOPE) or BY_STATUS.get(status, "http_error")
            # looked up per answer (rare): a logger cached at start-up would keep its first configuration
            access = structlog.get_logger("mallcore.access")
            log = _level(access, status, code)
            log(
                "http.request",
                method=method,
                path=scope["path"],
                status=status,
                request_id=request_id,
                route=UNMATCHED,
                code=code,
                **({} if seconds is None else {"ms": round(seconds * 1000, 2)}),
            )

    return hook


def _level(access: Any, status: int, code: str | None) -> Any:
    """The access logger's method for an answer (see the module's docstring)."""
    if status < 500:
        return access.info
    return access.warning if code == "overloaded" else access.error


def _log(access: Any, scope: Scope, method: str, status: int, seconds: float) -> None:
    extra: dict[str, Any] = {}
    principal: Any = scope.get(PRINCIPAL_SCOPE)
    if principal is not None:
        extra["subject"] = principal.subject
    if status >= 400:
        extra["code"] = scope.get(CODE_SCOPE)
    log = _level(access, status, extra.get("code"))
    log(
        "http.request",
        method=method,
        path=scope["path"],
        status=status,
        ms=round(seconds * 1000, 2),
        **extra,
    )
