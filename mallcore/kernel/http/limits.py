"""Rate limits and back-pressure, in front of the kernel's routes.

**Rate limits** (``[http.limits]``), with the ``limits`` library: every
request counts against its client IP (``per_ip``; behind trusted proxies,
the forwarded address), and every request carrying a valid token against
its caller's subject (``per_principal``). Past a limit the answer is 429
``rate_limited`` with ``Retry-After`` (seconds until the window lets the
next request through). Counts live in each process (``memory://``) or in
Redis (``storage = "redis://host:6379/0"``), where every worker and host
shares them. If the storage cannot be reached, requests are let through
(and logged): a limiter that fails must not take the shop down; ``/ready``
reports it.

Other code that needs a limit of its own (repeated bad tokens from one
client...) takes the kernel's limiter with :func:`limiter` and calls
:meth:`Limiter.hit` with its own category::

    wait = limiter(kernel).hit("bad_token", ip, limiter(kernel).rules("10/minute"))
    if wait is not None:
        raise RateLimited("too many bad tokens", retry_after=wait)

**Webhooks** (routes marked ``opt={WEBHOOK: True}``: the payment
providers' and the carriers' callbacks) count in a bucket of their own,
``per_webhook`` per sending address, instead of ``per_ip``: a provider
resending a burst of events is not refused because shoppers share its
address's count, and does not use up theirs. Past it, 429 ``rate_limited``
with ``Retry-After`` as for any limit (providers resend).

**Back-pressure** (``[http.overload]``): at most ``max_writes_in_flight``
writes (POST, PUT, PATCH, DELETE) run at once in a process; the next ones
wait in line, and one that waited ``max_wait_ms`` without a place is answered
503 ``overloaded`` with ``Retry-After`` at once, before its body is read,
instead of queueing until the client times out. Reads are not queued.
``/health``, ``/ready`` and ``/metrics`` are neither limited nor queued.
The line is adaptive by default (``line = "adaptive"``, :class:`Shedding`):
``max_wait_ms`` is for bursts; under sustained overload the wait is cut to
``target_wait_ms``, so admitted writes are not each slowed by a long wait. A
write joining the line so far back that, at the rate places come free, it
could not get one within the wait is refused at once (:class:`Admission`).
The 503's ``Retry-After`` grows while refusals last, up to
``max_retry_after_s``, spread out (:meth:`Shedding.retry_after`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import DefineMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from .. import facts
from ..config import OverloadConfig
from ..errors import MallcoreError, Overloaded, RateLimited, Unauthenticated
from ..ratelimits import Limiter
from .errors import CODE_SCOPE
from .guards import principal_of

if TYPE_CHECKING:
    from ..kernel import Kernel

log = structlog.get_logger("mallcore.limits")

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PRINCIPAL_LIMIT = "principal_limit"
# Set in the ``opt`` of routes that are neither limited nor queued (/health, /ready, /metrics).
UNLIMITED = "mallcore.unlimited"
# Set in the ``opt`` of webhook routes: limited by ``per_webhook`` instead of ``per_ip``.
WEBHOOK = "mallcore.webhook"


def _unlimited(scope: Scope) -> bool:
    handler = scope.get("route_handler")
    return bool(handler is not None and handler.opt.get(UNLIMITED))


async def _answer(scope: Scope, send: Send, exc: MallcoreError) -> None:
    """Answer ``exc`` as the error handlers would, from a middleware (before any route ran)."""
    import msgspec

    scope[CODE_SCOPE] = exc.code  # type: ignore[literal-required]
    body = msgspec.json.encode(exc.to_dict())
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in exc.headers.items()),
    ]
    start: Any = {"type": "http.response.start", "status": exc.status, "headers": headers}
    await send(start)
    end: Any = {"type": "http.response.body", "body": body}
    await send(end)


def limiter(kernel: Kernel) -> Limiter:
    """The kernel's limiter (``kernel.limiter``, made on first use) for limits of one's own."""
    return kernel.limiter


class Shedding:
    """When the admission line cuts waits short: its controller, CoDel-style (``line = "adaptive"``).

    A line that drains is a burst: a write may wait up to ``max_wait_ms`` for a place. A line
    that stands is overload: a write was refused, or every admitted write waited longer than
    ``target_wait_ms`` for ``interval_ms``. Then waiting longer only adds to every admitted
    write's time and changes nothing of how many are placed (the writes in flight keep the
    writer busy), so the wait is cut to ``target_wait_ms`` until no write has been refused for
    ``interval_ms``. With ``line = "fixed"`` the wait is always ``max_wait_ms``.

    It reads no clock: ``now`` is the caller's (seconds), so tests drive it with made-up times.
    """

    def __init__(self, config: OverloadConfig) -> None:
        self.adaptive = config.line == "adaptive"
        self.longest = config.max_wait_ms / 1000
        self.target = min(config.target_wait_ms, config.max_wait_ms) / 1000
        self.interval = config.interval_ms / 1000
        self.max_retry_after = config.max_retry_after_s
        self._above_since: float | None = None
        self._until = -math.inf
        # when the line started refusing without a pause of an interval (None: it never has)
        self._refusing_since: float | None = None
        self._refused_until = -math.inf
        self._spread = 0

    def shedding(self, now: float) -> bool:
        """Whether waits are cut to the target at ``now``."""
        return self.adaptive and now < self._until

    def bound(self, now: float) -> float:
        """The longest a write that starts waiting at ``now`` may wait."""
        return self.target if self.shedding(now) else self.longest

    def retry_after(self, now: float) -> int:
        """The ``Retry-After`` (seconds) of a write refused at ``now``: 1 for a burst; while
        writes keep being refused (no interval without one), a second more for every four
        intervals of it, up to ``max_retry_after_s``, spread over [n, 2n) in turn, so that a
        flood of refused clients comes back spread out and later, not all in the next second."""
        since = self._refusing_since
        if since is None or now >= self._refused_until:
            return 1
        n = min(self.max_retry_after, 1 + int((now - since) / (4 * self.interval)))
        self._spread += 1
        return min(self.max_retry_after, n + self._spread % n)

    def waited(self, seconds: float, admitted: bool, now: float) -> None:
        """A write left the line at ``now`` after ``seconds``, admitted or refused."""
        if not admitted:
            if self._refusing_since is None or now >= self._refused_until:
                self._refusing_since = now
            self._refused_until = now + self.interval
            self._until = now + self.interval
        elif seconds <= self.target:
            self._above_since = None
        elif self._above_since is None:
            self._above_since = now
        elif now - self._above_since >= self.interval:
            self._until = now + self.interval


class Admission:
    """A bounded line in front of writes: ``max_writes_in_flight`` at once, ``max_wait_ms`` at most.

    How long a write waits for a place is :class:`Shedding`'s (``max_wait_ms``, or
    ``target_wait_ms`` under sustained overload). ``max_wait_ms`` holds for every admitted
    write, also when the event loop runs late (a machine short of CPU): a place that comes free
    only after it (the loop woke the waiter late) is handed on, and the write is refused like
    one that found none. A write that finds a place free takes it at once and is never refused.
    ``observe(seconds, outcome)`` is told each wait, ``admitted`` or ``refused``.

    A count and a queue of waiters rather than an ``asyncio.Semaphore``: a write that finds a
    place free (nearly every one) costs an addition, and a place that comes free is handed
    straight to the oldest waiter. While writes wait, the time between places coming free is
    kept (a moving average): a write that would join the line so far back that it could not
    get a place within the wait is refused at once, without a timer (:meth:`expected_wait`).
    """

    def __init__(self, config: OverloadConfig, observe: Callable[[float, str], None] | None = None) -> None:
        self.size = config.max_writes_in_flight
        self.shedding = Shedding(config)
        self.observe = observe
        self._taken = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        # How fast places come free while writes wait (seconds between two, a moving average),
        # for the wait a write at the back of the line can expect: 0 (unknown) until two
        # places came free to waiting writes in a row, and again once the line has drained.
        self._gap = 0.0
        self._freed_at: float | None = None

    def _left(self, waited: float, admitted: bool, now: float) -> bool:
        self.shedding.waited(waited, admitted, now)
        if self.observe is not None:
            self.observe(waited, "admitted" if admitted else "refused")
        return admitted

    def expected_wait(self, position: int, now: float) -> float:
        """The wait a write at ``position`` in the line (1: the next to get a place) can expect
        at ``now``: 0 when nothing is known of the line."""
        if self._freed_at is None:
            return position * self._gap
        return self._freed_at + position * self._gap - now

    async def enter(self) -> bool:
        """Take a place; ``False`` if none came free within the wait."""
        if self._taken < self.size and not self._waiters:
            # a free place: taken without waiting, so never "late"; a pause of the whole
            # process (GC, CPU) between two lines is not a wait in the line
            self._taken += 1
            self._gap = 0.0  # the line drained: the next one starts unknown
            return self._left(0.0, True, time.perf_counter())
        started = time.perf_counter()
        bound = self.shedding.bound(started)
        if self._gap and self.expected_wait(len(self._waiters) + 1, started) > bound:
            # The places ahead will not come free within the bound at the rate they do:
            # refused at once, which costs the event loop (busy under overload) far less
            # than a wait and a timer, and answers the client sooner.
            return self._left(0.0, False, started)
        handed = asyncio.get_running_loop().create_future()
        self._waiters.append(handed)
        admitted = False
        try:
            try:
                async with asyncio.timeout(bound):
                    await handed
            except TimeoutError:
                pass
            if handed.done() and not handed.cancelled():
                # Given a place (perhaps at the moment the wait ran out). Woken after
                # max_wait_ms (the loop was late, not the line short): the place goes to the next
                # in line. One woken past the target but within max_wait_ms takes it: refusing
                # it would leave the place empty until the next write comes (and on a machine
                # short of CPU the loop wakes most waiters a little late).
                admitted = time.perf_counter() - started <= self.shedding.longest
                if not admitted:
                    self.leave()
        except BaseException:
            if handed.done() and not handed.cancelled():
                self.leave()  # given a place, then cancelled (the client left): hand it on
            raise
        finally:
            if not handed.done():
                handed.cancel()
            if handed in self._waiters:
                self._waiters.remove(handed)
            now = time.perf_counter()
            self._left(now - started, admitted, now)
        return admitted

    def leave(self) -> None:
        """Free a place: to the oldest write still waiting, if any."""
        if self._waiters:
            # Only between places freed to waiting writes: a gap while nobody waited says
            # nothing of how fast the line moves.
            now = time.perf_counter()
            if self._freed_at is not None:
                gap = now - self._freed_at
                self._gap = gap if self._gap == 0.0 else 0.9 * self._gap + 0.1 * gap
            self._freed_at = now
        else:
            self._freed_at = None
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._taken -= 1


def principal_limit(kernel: Kernel) -> Any:
    """A router guard: count the request against its caller, when it carries a valid token.

    A request without a token, or with a bad one, is left to the route (which
    answers 401 when it needs a caller); the per-IP limit counts it anyway.
    """
    settings = kernel.config.http.limits
    if not settings.enabled or not settings.per_principal.strip():
        return None

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if "authorization" not in connection.headers or _unlimited(connection.scope):
            return
        try:
            principal = principal_of(connection)
        except Unauthenticated:
            return
        own = limiter(kernel)
        wait = await own.count("principal", principal.subject, own.per_principal)
        if wait is not None:
            raise RateLimited(
                f"too many requests from {principal.subject}; retry in {wait} s", retry_after=wait
            )

    guard.__qualname__ = PRINCIPAL_LIMIT
    return guard


def traffic_middleware(kernel: Kernel) -> DefineMiddleware | None:
    """The per-IP limit and the write admission line, or ``None`` when both are off."""
    settings = kernel.config.http
    per_ip = settings.limits.enabled and bool(
        settings.limits.per_ip.strip() or settings.limits.per_webhook.strip()
    )
    admit = settings.overload.max_writes_in_flight > 0
    if not per_ip and not admit:
        return None
    # Functions, not objects: Litestar deep-copies a middleware's arguments.
    own = limiter(kernel) if per_ip else None
    admission = Admission(settings.overload, kernel.metrics.admission_waited) if admit else None
    return DefineMiddleware(_traffic, state=lambda: (own, admission))


def _traffic(app: ASGIApp, state: Callable[[], tuple[Limiter | None, Admission | None]]) -> ASGIApp:
    own, admission = state()

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _unlimited(scope):
            await app(scope, receive, send)
            return
        if own is not None:
            found = facts.current()
            ip = found.ip if found is not None else (scope.get("client") or ("",))[0]
            handler = scope.get("route_handler")
            if handler is not None and handler.opt.get(WEBHOOK):
                wait = await own.count("webhook", ip, own.per_webhook)
            else:
                wait = await own.count("ip", ip, own.per_ip)
            if wait is not None:
                await _answer(
                    scope,
                    send,
                    RateLimited(f"too many requests from {ip}; retry in {wait} s", retry_after=wait),
                )
                return
        if admission is None or scope.get("method") not in WRITES:
            await app(scope, receive, send)
            return
        if not await admission.enter():
            wait = admission.shedding.retry_after(time.perf_counter())
            await _answer(
                scope,
                send,
                Overloaded(
                    f"the server is busy; nothing was written, try again in {wait} s", retry_after=wait
                ),
            )
            return
        try:
            await app(scope, receive, send)
        finally:
            admission.leave()

    return middleware
