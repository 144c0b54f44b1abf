"""Every error as JSON: ``{"code": <stable code>, "detail": <for humans>}``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from ..db import lost_race
from ..errors import MallcoreError, Overloaded

BY_STATUS = {
    400: "invalid_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}

# Litestar's wording when a body is not JSON at all (msgspec's DecodeError).
_UNREADABLE = ("malformed", "truncated", "invalid utf-8", "trailing characters")

log = structlog.get_logger("mallcore")

# Seconds a client is told to wait when the database cannot be reached (every 503 says when).
DATABASE_RETRY_AFTER = 5

# Where a rendered error's code is left for the access log (middleware.py).
CODE_SCOPE = "mallcore.code"


def _json(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None, request: Any = None
) -> Response[bytes]:
    if request is not None:
        request.scope[CODE_SCOPE] = body.get("code")
    return Response(
        content=msgspec.json.encode(body), status_code=status, media_type="application/json", headers=headers
    )


def mallcore_error(request: Request[Any, Any, Any], exc: MallcoreError) -> Response[bytes]:
    return _json(exc.status, exc.to_dict(), exc.headers or None, request)


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    code = BY_STATUS.get(status, "http_error")
    detail = exc.detail or code
    body: dict[str, Any] = {"code": code, "detail": detail}
    if status == 400 and any(word in str(detail).lower() for word in _UNREADABLE):
        body["code"] = "malformed_json"
    if isinstance(exc, ValidationException) and exc.extra:
        body["errors"] = exc.extra
    headers = getattr(exc, "headers", None)
    return _json(status, body, dict(headers) if headers else None, request)


def out_of_range(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    # An id beyond 64 bits, a string longer than its column: bad input, and the
    # stage that raised it rolled back. Any other OverflowError is a bug.
    if isinstance(exc, OverflowError) and "too large to convert" not in str(exc):
        return internal_error(request, exc)
    return _json(
        422, {"code": "invalid_input", "detail": "a value is out of range for its field"}, request=request
    )


def write_conflict(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    # A uniqueness or foreign-key clash that no check before it could see (two requests
    # creating the same thing at once), or a lost serialization race. The stage rolled
    # back: nothing was written. 409, so the client re-reads and retries.
    log.warning("database.write_conflict", path=request.url.path, error=str(getattr(exc, "orig", exc)))
    return _json(
        409,
        {
            "code": "write_conflict",
            "detail": "another request changed the same data at the same time; nothing was written, try again",
        },
        request=request,
    )


@contextmanager
def resend_on_conflict() -> Iterator[None]:
    """For webhook endpoints: a write that lost a race answers 503 ``retry_later``.

    Nothing was recorded, and senders (carriers, payment providers) resend on a 5xx
    where many drop an event on a 4xx such as the API's 409 ``write_conflict``.
    """
    try:
        yield
    except (IntegrityError, OperationalError) as exc:
        if not lost_race(exc):
            raise
        log.warning("webhook.write_conflict", error=str(getattr(exc, "orig", exc)))
        raise Overloaded(
            "the event was not recorded (a concurrent write); send it again", code="retry_later"
        ) from None


def database_error(request: Request[Any, Any, Any], exc: OperationalError) -> Response[bytes]:
    if lost_race(exc):
        return write_conflict(request, exc)
    log.exception("database.error", path=request.url.path)
    return _json(
        503,
        {"code": "database_unavailable", "detail": "the database is unavailable; try again"},
        {"Retry-After": str(DATABASE_RETRY_AFTER)},
        request=request,
    )


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.exception("request.failed", path=request.url.path)
    return _json(
        500, {"code": "internal_error", "detail": "internal error; it has been logged"}, request=request
    )


HANDLERS: dict[Any, Any] = {
    MallcoreError: mallcore_error,
    HTTPException: http_error,
    OperationalError: database_error,
    IntegrityError: write_conflict,
    DataError: out_of_range,
    OverflowError: out_of_range,
    Exception: internal_error,
}
