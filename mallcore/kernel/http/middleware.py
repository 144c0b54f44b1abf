"""Around every request: a request id on the request and every log line
(``X-Request-ID``), and the request made current for ``ctx.request``
(:mod:`mallcore.kernel.facts`)."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from litestar.middleware import DefineMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from .. import facts


def request_middleware(reader: facts.FactsReader) -> DefineMiddleware:
    """The kernel router's middleware, reading request facts with ``reader``."""
    return DefineMiddleware(_request_middleware, reader=reader)


def _request_middleware(app: ASGIApp, reader: facts.FactsReader) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")[:64]
                break
        request_id = request_id or uuid.uuid4().hex
        header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        tokens: Any = structlog.contextvars.bind_contextvars(request_id=request_id)
        current = facts.enter(scope, reader)  # type: ignore[arg-type]
        try:
            await app(scope, receive, send_with_id)
        finally:
            facts.leave(current)
            structlog.contextvars.reset_contextvars(**tokens)

    return middleware
