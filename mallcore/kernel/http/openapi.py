"""The OpenAPI document tells the truth: errors, statuses and who needs a token.

Every route of the kernel's router (the kernel's and every center's) is
annotated once, when the router is built:

- **errors** are documented with their real shape, ``{"code", "detail", ...}``
  (:class:`ErrorBody`), for each status the route can answer (a status the
  route documents itself, ``responses=``, wins):

  - 400: a body or a query parameter that does not parse (routes taking either;
    a path parameter that does not parse matches no route: 404);
  - 401: routes that need a token;
  - 403: routes with a role guard, and writes that need a token (a stage checks
    the caller's role); a read without a guard shows less, it never refuses;
  - 404: routes naming an object, in their path or their body;
  - 409: writes;
  - 413 and 415: routes taking a JSON body (too large; not ``application/json``);
  - 422: routes taking input (a value out of range, a refused body);
  - 429: every limited route, when rate limits are on, and every route that
    needs a token (a client sending bad tokens again and again, ``too_many_attempts``);
  - 503: writes (the admission line), and reads that touch the database (an
    unreachable database); a read that needs no token and does not run in a
    thread (a handler of config values) never answers it.

  429 and 503 answers declare their ``Retry-After`` header (seconds).
- **request bodies** carry an example (:mod:`.examples`), made once per body
  type from its msgspec type;
- **the bearer scheme** is required only by routes that need a caller: a
  ``principal`` (or ``idempotent``) parameter, or a guard; webhooks,
  ``/track``, the public catalog and the operations routes name none;
- **descriptions** come from the handlers' docstrings (``use_handler_docstrings``);
  every route has one (a test walks the document).
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Router
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example, OpenAPIHeader, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.params import BodyKwarg

from .examples import example_of
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
    413: ("body_too_large", "Request Entity Too Large", "The body is larger than http.max_body_bytes"),
    415: (
        "unsupported_media_type",
        "the body must be JSON (Content-Type: application/json)",
        "The body is not sent as application/json",
    ),
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


# Answers that tell the client when to try again.
RETRY_AFTER_STATUSES = ("429", "503")
RETRY_AFTER = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.INTEGER, minimum=0),
    required=True,
    description="Seconds to wait before sending the request again",
)


def error_response(status: int) -> ResponseSpec:
    code, detail, description = _ERRORS[status]
    return ResponseSpec(
        ErrorBody,
        generate_examples=False,
        description=description,
        examples=[Example(summary=code, value={"code": code, "detail": detail})],
    )


def _parameters(handler: HTTPRouteHandler) -> frozenset[str]:
    return _names(handler.fn)


@functools.lru_cache(maxsize=4096)
def _names(fn: Any) -> frozenset[str]:
    # one signature per handler function, whatever the number of apps built with it
    return frozenset(inspect.signature(fn).parameters) - {"self"}


def needs_token(handler: HTTPRouteHandler) -> bool:
    """Whether the route needs a caller: a caller parameter, or a guard (its own, its controller's,
    its center router's)."""
    # the kernel router's own guard (limits.principal_limit) counts callers, it requires none
    return bool(CALLER_PARAMETERS & _parameters(handler)) or _guarded(handler)


def _guarded(handler: HTTPRouteHandler) -> bool:
    guards = [g for layer in handler.ownership_layers for g in (getattr(layer, "guards", None) or ())]
    return any(getattr(g, "__qualname__", "") != PRINCIPAL_LIMIT for g in guards)


def statuses(handler: HTTPRouteHandler, path: str, method: str, *, limited: bool) -> list[int]:
    """The error statuses a route can answer (see the module's docstring)."""
    if handler.opt.get(UNLIMITED):
        return []
    parameters = _parameters(handler)
    takes_body = "data" in parameters
    queries = bool(parameters - CALLER_PARAMETERS - {"data", "request", "self"} - _path_names(path))
    token = needs_token(handler)
    write = method in WRITES
    out: set[int] = set()
    if takes_body or queries:
        out.add(400)
    if takes_body or queries or "{" in path:
        out.add(422)
    if takes_body:
        out |= {413, 415}
    if token:
        out.add(401)
    if token and (write or _guarded(handler)):
        out.add(403)
    if "{" in path or takes_body:
        out.add(404)
    if write:
        out |= {409, 422}
    if limited or token:
        out.add(429)  # rate limits; repeated bad tokens (too_many_attempts) whether limits are on or not
    # writes wait in the admission line; a read touches the database unless it needs no token and
    # runs on the event loop (the handlers that answer from config)
    if write or token or handler.sync_to_thread is not False:
        out.add(503)
    return sorted(out)


def _path_names(path: str) -> set[str]:
    return {part.strip("{}").split(":")[0] for part in path.split("/") if part.startswith("{")}


def _body_example(handler: HTTPRouteHandler) -> Any:
    """The example for the route's body: its own (``Body(examples=...)``) or one made from its type."""
    field = handler.parsed_fn_signature.parameters.get("data")
    if field is None:
        return None
    if isinstance(field.kwarg_definition, BodyKwarg) and field.kwarg_definition.examples:
        return None  # Litestar puts the route's own in the schema
    return example_of(field.annotation)


@dataclass
class DocumentedOperation(Operation):
    """The class Litestar builds a route's operation with: it adds the body's example,
    declares ``Retry-After`` on the 429 and 503 answers and drops the 400 Litestar adds to
    every route with a parameter when the route cannot answer it (a path parameter that does
    not parse matches no route). Each route gets a subclass naming its handler and the
    statuses it documents (:func:`_operation_class`)."""

    def __post_init__(self) -> None:
        if self.responses and 400 not in self._documented:  # type: ignore[attr-defined]
            self.responses.pop("400", None)
        for status, response in (self.responses or {}).items():
            if status in RETRY_AFTER_STATUSES and isinstance(response, OpenAPIResponse):
                response.headers = {**(response.headers or {}), "Retry-After": RETRY_AFTER}
        body = self.request_body
        media = getattr(body, "content", {}).get("application/json") if body is not None else None
        if media is None or media.examples or getattr(media.schema, "examples", None):
            return
        example = _body_example(self._handler)  # type: ignore[attr-defined]
        if example is not None:
            media.examples = {"example": Example(summary="a valid body", value=example)}


def _operation_class(handler: HTTPRouteHandler, documented: set[int]) -> type[Operation]:
    # A plain subclass (``type``), not a new dataclass per route: it inherits the generated
    # ``__init__``, which calls ``__post_init__``; making a dataclass per route was a fifth of
    # the time an app took to build.
    attrs = {"_handler": handler, "_documented": frozenset(documented)}
    return type("DocumentedOperation", (DocumentedOperation,), attrs)


def document(router: Router, kernel: Kernel) -> None:
    """Annotate every route of ``router`` (once, before an app registers it)."""
    limits = kernel.config.http.limits
    limited = limits.enabled and any(
        r.strip() for r in (limits.per_ip, limits.per_principal, limits.per_webhook)
    )
    for route in router.routes:
        for handler in getattr(route, "route_handlers", ()):
            if not isinstance(handler, HTTPRouteHandler):
                continue
            method = next(iter(sorted(handler.http_methods)))
            given = dict(handler.responses or {})
            for status in statuses(handler, route.path, method, limited=limited):
                given.setdefault(status, error_response(status))
            handler.responses = given
            if handler.operation_class is Operation:
                handler.operation_class = _operation_class(handler, set(given))
            if needs_token(handler) and not handler.security:
                handler.security = [{BEARER: []}]
