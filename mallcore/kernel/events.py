"""Events: a transactional outbox, delivered in process after commit.

``ctx.emit(topic, payload)`` buffers an event; the stage writes all of its
events to the ``outbox`` table in its own transaction (one statement), and
after the commit hands each to the handlers centers subscribed with
``center_subscriptions``. In-process delivery is best effort (a crash between
commit and delivery loses it); relays to outside brokers read the outbox table
itself from a stored position and deliver at least once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from . import fast
from . import tables as t
from .types import Event, utcnow

if TYPE_CHECKING:
    from .db import Database

# A subscriber, called as ``handler(kernel, event)`` (see ``center_subscriptions``).
Handler = Callable[[Any, Event], Any]


class EventBus:
    """Writes events to the outbox and hands them to subscribers.

    ``kernel`` is only passed on: it is each handler's first argument.
    """

    def __init__(
        self, db: Database, subscriptions: Iterable[tuple[str, str, Handler]], *, kernel: Any, log: Any
    ) -> None:
        self.db = db
        self.kernel = kernel
        self.log = log
        self._subs = list(subscriptions)  # (center, pattern, handler)
        self._routes: dict[str, list[tuple[str, Handler]]] = {}
        self._insert = fast.insert(t.outbox, ("topic", "order_id", "payload", "created_at"), db)

    def handlers(self, topic: str) -> list[tuple[str, Handler]]:
        route = self._routes.get(topic)
        if route is None:
            route = [(center, h) for center, pattern, h in self._subs if fnmatchcase(topic, pattern)]
            self._routes[topic] = route
        return route

    def write(self, conn: sa.Connection, events: Sequence[Event]) -> None:
        if events:
            self._insert.execute(
                conn,
                [
                    {"topic": e.topic, "order_id": e.order_id, "payload": e.payload, "created_at": e.at}
                    for e in events
                ],
            )

    def deliver(self, events: Sequence[Event]) -> None:
        for event in events:
            for center, handler in self.handlers(event.topic):
                try:
                    handler(self.kernel, event)
                except Exception:
                    self.log.exception(
                        "event.handler_failed", topic=event.topic, center=center, order_id=event.order_id
                    )

    def outbox_lag(self, expected: Iterable[str] = ()) -> dict[str, float]:
        """Seconds since the oldest event each relay has not delivered (0 when up to date).

        Every relay with a stored position counts, and so do the ``expected``
        ones: one that never ran is as far behind as the oldest event.
        """
        o, c = t.outbox.c, t.outbox_cursors.c
        now = utcnow()
        lag: dict[str, float] = {}
        with self.db.transaction(write=False) as conn:
            positions = {row.relay: int(row.position) for row in conn.execute(sa.select(c.relay, c.position))}
            for relay in expected:
                positions.setdefault(relay, 0)
            for relay, position in positions.items():
                oldest = conn.execute(
                    sa.select(o.created_at).where(o.id > position).order_by(o.id).limit(1)
                ).scalar()
                lag[relay] = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        return lag
