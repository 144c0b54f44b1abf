"""Idempotent writes over HTTP: one dependency every write route uses.

A write route declares ``idempotent: Idempotent`` and hands its body and its
work to it; the work answers through the :class:`~mallcore.kernel.idempotency.Reply`
it is given, inside its own transaction::

    @post("/wms/inbound", status_code=201, sync_to_thread=True)
    def inbound(data: JSONBody[InboundIn], idempotent: Idempotent) -> Response[InboundOut]:
        def work(reply: Reply) -> None:
            with kernel.db.transaction() as conn:
                ...
                reply(conn, InboundOut(...), 201)

        return idempotent(data, work)

The ``Idempotency-Key`` header is read, and documented in the OpenAPI
schema, by the dependency; the key's scope is the route's method and path,
so one key never answers for another route. A replay answers the first
response with ``Idempotent-Replayed: true`` and runs nothing; the same key
with another body is refused (422 ``idempotency_key_reused``); of two
concurrent requests with one key, the loser's transaction rolls back and it
answers as the winner did.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

import msgspec
from litestar import Request, Response
from litestar.di import NamedDependency, Provide
from litestar.params import HeaderParameter
from sqlalchemy.exc import IntegrityError

from ..errors import MallcoreError
from ..idempotency import Idempotency, Reply, Stored
from ..types import Claim, Principal
from .guards import principal_of

if TYPE_CHECKING:
    from ..kernel import Kernel

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        description="Replays of the same key return the first response and change nothing.",
    ),
]

REPLAYED = {"Idempotent-Replayed": "true"}


def raw_json(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response[Any]:
    """A response whose body is JSON already encoded (a stored or freshly built reply)."""
    return Response(content=body, status_code=status, media_type="application/json", headers=headers)


class IdempotentWrite:
    """Run a write once per ``Idempotency-Key``; see the module docstring."""

    __slots__ = ("key", "principal", "scope", "store", "subject")

    def __init__(self, store: Idempotency, principal: Principal, key: str | None, scope: str) -> None:
        self.store = store
        # The caller (a route declaring ``idempotent`` needs no ``principal`` of its own).
        self.principal = principal
        self.subject = principal.subject
        self.key = key
        self.scope = scope

    def __call__(self, data: Any, work: Callable[[Reply], object]) -> Response[Any]:
        """Run ``work(reply)`` unless the key was answered already; ``data`` is the parsed body."""
        claim = self._claim(data)
        if claim is not None:
            stored = self.store.lookup(claim)
            if stored is not None:
                return self._replay(claim, stored)
        reply = Reply(self.store, claim)
        try:
            work(reply)
        except (IntegrityError, MallcoreError):
            # A concurrent request with the same key may have won, or this one's
            # answer was an error stored on purpose (a declined payment): answer as stored.
            stored = self.store.lookup(claim) if claim is not None else None
            if stored is None:
                raise
            return self._replay(claim, stored)  # type: ignore[arg-type]
        return self._answer(reply)

    async def run_async(self, data: Any, work: Callable[[Reply], Awaitable[object]]) -> Response[Any]:
        """:meth:`__call__` for a coroutine handler: ``await work(reply)``; the key's
        look-ups (only with a key) run on the loop's executor."""
        claim = self._claim(data)
        if claim is not None:
            stored = await _in_thread(self.store.lookup, claim)
            if stored is not None:
                return self._replay(claim, stored)
        reply = Reply(self.store, claim)
        try:
            await work(reply)
        except (IntegrityError, MallcoreError):
            stored = await _in_thread(self.store.lookup, claim) if claim is not None else None
            if stored is None:
                raise
            return self._replay(claim, stored)  # type: ignore[arg-type]
        return self._answer(reply)

    def _claim(self, data: Any) -> Claim | None:
        if self.key is None:
            return None
        canonical = b"" if data is None else msgspec.json.encode(data)
        return self.store.claim(self.subject, self.key, self.scope, canonical)

    def _replay(self, claim: Claim, stored: Stored) -> Response[Any]:
        status, body = self.store.replay(claim, stored)
        return raw_json(body, status, REPLAYED)

    def _answer(self, reply: Reply) -> Response[Any]:
        if reply.body is None or reply.status is None:
            raise RuntimeError(f"{self.scope}: the route's work returned without calling reply()")
        return raw_json(reply.body, reply.status)


async def _in_thread(fn: Callable[[Claim], Stored | None], claim: Claim) -> Stored | None:
    return await asyncio.get_running_loop().run_in_executor(None, fn, claim)


# Declare ``idempotent: Idempotent`` in a route handler to receive it.
Idempotent: TypeAlias = NamedDependency[IdempotentWrite]


def idempotent_provider(kernel: Kernel) -> Provide:
    """The ``idempotent`` dependency of a kernel's routes."""
    store = kernel.idempotency

    def provide(request: Request[Any, Any, Any], idempotency_key: IdempotencyKey = None) -> IdempotentWrite:
        # The caller as the ``principal`` dependency gives it (401 without a valid token),
        # resolved once per request, without another dependency to resolve per request.
        principal = principal_of(request)
        path = request.scope["path"]
        mount = kernel.mount_path
        if mount and path.startswith(mount):
            path = path[len(mount) :] or "/"
        return IdempotentWrite(store, principal, idempotency_key, f"{request.method} {path}")

    return Provide(provide, sync_to_thread=False)
