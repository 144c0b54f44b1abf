"""The OpenAPI document tells the truth: errors, statuses and who needs a token.

Every route of the kernel's router (the kernel's and every center's) is
annotated once, when the router is built:

- **errors** are documented with their real shape, ``{"code", "detail", ...}``
  (:class:`ErrorBody`), for each status the route can answer: 400 (a body or
  parameter that does not parse), 401 and 403 (routes that need a token),
  404 (routes naming an object, in their path or their body), 409 and 422
  (writes, and reads that take parameters), 429 (rate limits, when on) and
  503 (the admission line for writes, an unreachable database for all). A
  status the route documents itself (``responses=``) wins;
- **the bearer scheme** is required only by routes that need a caller: a
  ``principal`` (or ``idempotent``) parameter, or a guard; webhooks,
  ``/track``, the public catalog and the operations routes name none;
- **descriptions** come from the handlers' docstrings (``use_handler_docstrings``).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

import msgspec
from litestar import Router
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

from .limits import PRINCIPAL_LIMIT, UNLIMITED

if TYPE_CHECKING:
    from ..kernel import Kernel

BEARER = "bearer"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Parameters that mean "this route needs a caller" (Caller, and the Idempotent dependency built on it).
CALLER_PARAMETERS = frozenset({"principal", "idempotent"})


class ErrorBody(msgspec.Struct):
    """Every error: a stable ``code`` to branch on, a ``detail`` for people, and context
    fields where useful (``errors`` for a body that does not match, ``checks``...)."""

    code: str
    detail: str


_ERRORS: dict[int, tuple[str, str, str]] = {
    400: ("malformed_json", "the body is not valid JSON", "The body or a parameter does not parse"),
    401: ("unauthenticated", "a bearer token is required", "No token, or an unknown one"),
    402: ("payment_failed", "the provider declined the payment", "The payment provider declined"),
    403: ("role_required", "this needs one of the roles: merchant", "The caller lacks the role"),
    404: ("not_found", "order 42 not found", "It does not exist, or the caller may not see it"),
    409: (
        "write_conflict",
        "another request changed the same data at the same time; nothing was written, try again",
        "The state does not allow it, or a concurrent write won; nothing was written",
    ),
    422: ("invalid_input", "a value is out of range for its field", "Input refused; nothing was written"),
    429: (
        "rate_limited",
        "too many requests; retry in 12 s",
        "Rate limited; the Retry-After header says when to try again",
    ),
    503: (
        "overloaded",
        "the server is busy; nothing was written, try again",
        "Busy (overloaded, retry_later) or the database is unavailable; retry after Retry-After",
    ),
}


def error_response(status: int) -> ResponseSpec:
    code, detail, description = _ERRORS[status]
    return ResponseSpec(
        ErrorBody,
        generate_examples=False,
        description=description,
        examples=[Example(summary=code, value={"code": code, "detail": detail})],
    )


def _parameters(handler: HTTPRouteHandler) -> set[str]:
    return set(inspect.signature(handler.fn).parameters) - {"self"}


def needs_token(handler: HTTPRouteHandler) -> bool:
    """Whether the route needs a caller: a caller parameter, or a guard (its own, its controller's,
    its center router's)."""
    if CALLER_PARAMETERS & _parameters(handler):
        return True
    guards = [g for layer in handler.ownership_layers for g in (getattr(layer, "guards", None) or ())]
    # the kernel router's own guard (limits.principal_limit) counts callers, it requires none
    return any(getattr(g, "__qualname__", "") != PRINCIPAL_LIMIT for g in guards)


def statuses(handler: HTTPRouteHandler, path: str, method: str, *, limited: bool) -> list[int]:
    """The error statuses a route can answer (see the module's docstring)."""
    if handler.opt.get(UNLIMITED):
        return []
    parameters = _parameters(handler)
    takes_body = "data" in parameters
    takes_input = takes_body or "{" in path or bool(parameters - CALLER_PARAMETERS - {"data", "request"})
    out = {503}
    if takes_input:
        out |= {400, 422}
    if needs_token(handler):
        out |= {401, 403}
    if "{" in path or takes_body:
        out.add(404)
    if method in WRITES:
        out |= {400, 409, 422}
    if limited:
        out.add(429)
    return sorted(out)


def document(router: Router, kernel: Kernel) -> None:
    """Annotate every route of ``router`` (once, before an app registers it)."""
    limits = kernel.config.http.limits
    limited = limits.enabled and bool(limits.per_ip.strip() or limits.per_principal.strip())
    for route in router.routes:
        for handler in getattr(route, "route_handlers", ()):
            if not isinstance(handler, HTTPRouteHandler):
                continue
            method = next(iter(sorted(handler.http_methods)))
            given = dict(handler.responses or {})
            for status in statuses(handler, route.path, method, limited=limited):
                given.setdefault(status, error_response(status))
            handler.responses = given
            if needs_token(handler) and not handler.security:
                handler.security = [{BEARER: []}]
