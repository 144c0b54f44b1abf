"""Relay the outbox to NATS JetStream: at least once, deduplicated by the broker.

Every stage writes its events to the ``outbox`` table in its own
transaction. This relay reads them in id order from a stored position
(``outbox_cursors``), publishes each to ``<prefix>.<topic>`` with the header
``Nats-Msg-Id: mallcore-<outbox id>`` and advances the position only after
JetStream acknowledged the batch. A crash between publishing and storing the
position re-publishes the batch, which JetStream drops as duplicates inside
its duplicate window, so consumers see each event once.

Ids are handed out before transactions commit, so a slow transaction can
commit an id lower than one already relayed. The relay therefore only takes
rows older than ``settle_seconds`` (default 5 s, far longer than any stage's
transaction) and never skips past a gap younger than that.

Run it with ``mallcore outbox relay --nats nats://127.0.0.1:4222``; several
relays may run: the position row is locked while a batch is published. A
NATS outage is waited out (the batch rolls back and is published again when
NATS is back); a relay killed mid-batch publishes the batch again when it
restarts, and JetStream drops the ids it has seen within the stream's
duplicate window (15 minutes for a stream the relay creates): restart a
killed relay within that window and consumers still see each event once.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa
import structlog

from mallcore.kernel import tables as t
from mallcore.kernel import utcnow

if TYPE_CHECKING:
    from mallcore.kernel import Kernel

RELAY = "nats"
log = structlog.get_logger("mallcore.relay")


class NatsRelay:
    def __init__(
        self,
        kernel: Kernel,
        url: str = "nats://127.0.0.1:4222",
        *,
        stream: str = "MALLCORE",
        prefix: str = "mallcore",
        batch: int = 500,
        settle_seconds: float = 5.0,
        duplicate_window: float = 900.0,
    ) -> None:
        self.kernel = kernel
        self.url = url
        self.stream = stream
        self.prefix = prefix
        self.batch = batch
        self.settle = timedelta(seconds=settle_seconds)
        # How long JetStream remembers message ids: a relay killed mid-batch must be back within it.
        self.duplicate_window = duplicate_window
        self._nc: Any = None
        self._js: Any = None

    async def connect(self) -> None:
        import nats

        self._nc = await nats.connect(self.url, connect_timeout=5, max_reconnect_attempts=3)
        log.info("outbox.relay_connected", url=self.url, stream=self.stream)
        self._js = self._nc.jetstream()
        try:
            await self._js.stream_info(self.stream)
        except Exception:
            await self._js.add_stream(
                name=self.stream, subjects=[f"{self.prefix}.>"], duplicate_window=self.duplicate_window
            )

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.drain()
            self._nc = None

    def _position(self, conn: sa.Connection) -> int:
        c = t.outbox_cursors.c
        stmt = self.kernel.db.lock_clause(sa.select(c.position).where(c.relay == RELAY))
        position = conn.execute(stmt).scalar()
        if position is None:
            conn.execute(t.outbox_cursors.insert().values(relay=RELAY, position=0, updated_at=utcnow()))
            return 0
        return int(position)

    async def relay_once(self) -> int:
        """Publish the next batch; returns how many events were published."""
        if self._js is None:
            await self.connect()
        o = t.outbox.c
        with self.kernel.db.transaction() as conn:
            position = self._position(conn)
            rows = conn.execute(
                sa.select(o.id, o.topic, o.order_id, o.payload, o.created_at)
                .where(o.id > position, o.created_at < utcnow() - self.settle)
                .order_by(o.id)
                .limit(self.batch)
            ).all()
            if not rows:
                return 0
            for row in rows:
                body = msgspec.json.encode(
                    {
                        "id": row.id,
                        "topic": row.topic,
                        "order_id": row.order_id,
                        "payload": row.payload,
                        "at": row.created_at,
                    }
                )
                await self._js.publish(
                    f"{self.prefix}.{row.topic}", body, headers={"Nats-Msg-Id": f"mallcore-{row.id}"}
                )
            conn.execute(
                t.outbox_cursors.update()
                .where(t.outbox_cursors.c.relay == RELAY)
                .values(position=rows[-1].id, updated_at=utcnow())
            )
        return len(rows)

    async def run(self, *, poll_seconds: float = 1.0, stop: asyncio.Event | None = None) -> None:
        """Relay until ``stop`` is set; a NATS (or database) outage is waited out, not fatal.

        A batch that failed half-way rolled back the position: it is published
        again once NATS is back, and JetStream drops what it already has.
        """
        failures = 0
        try:
            while stop is None or not stop.is_set():
                try:
                    relayed = await self.relay_once()
                    failures = 0
                except Exception as exc:
                    failures += 1
                    log.warning("outbox.relay_failed", error=repr(exc), attempt=failures)
                    await self._drop()
                    await asyncio.sleep(min(30.0, 0.5 * 2 ** min(failures, 6)))
                    continue
                if relayed == 0:
                    await asyncio.sleep(poll_seconds)
        finally:
            await self.close()

    async def _drop(self) -> None:
        """Forget a broken connection (the next batch connects again)."""
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None:
            try:
                await nc.close()
            except Exception:
                pass
