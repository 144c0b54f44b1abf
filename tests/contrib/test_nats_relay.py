"""The outbox reaches NATS JetStream once per event, across relay restarts."""

import asyncio
import socket
import uuid

import msgspec
import pytest
import sqlalchemy as sa

from mallcore.contrib.nats_relay import NatsRelay
from mallcore.kernel import tables as t
from tests.helpers import order_body

NATS = ("127.0.0.1", 4222)


def nats_up() -> bool:
    try:
        with socket.create_connection(NATS, timeout=0.5):
            return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not nats_up(), reason="needs a NATS server with JetStream on 127.0.0.1:4222")


async def read_all(stream: str, subject: str) -> list[dict]:
    import nats

    nc = await nats.connect("nats://127.0.0.1:4222")
    js = nc.jetstream()
    sub = await js.pull_subscribe(subject, durable=f"d{uuid.uuid4().hex[:8]}", stream=stream)
    out = []
    while True:
        try:
            msgs = await sub.fetch(100, timeout=1)
        except Exception:
            break
        for msg in msgs:
            out.append(msgspec.json.decode(msg.data))
            await msg.ack()
    await js.delete_stream(stream)
    await nc.close()
    return out


def test_events_are_relayed_once_even_when_a_relay_restarts_from_scratch(mallcore):
    kernel = mallcore.kernel()
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    alice = mallcore.client(kernel, "customer", "alice")
    ids = [alice.post("/orders", json=order_body()).json()["id"] for _ in range(3)]
    alice.post(f"/orders/{ids[0]}/payments", json={"method": "sandbox"})
    stream, prefix = f"T{uuid.uuid4().hex[:8].upper()}", f"t{uuid.uuid4().hex[:8]}"

    async def scenario() -> list[dict]:
        relay = NatsRelay(kernel, stream=stream, prefix=prefix, settle_seconds=0)
        first = await relay.relay_once()
        assert first == 5  # three placements, one payment captured, one order paid
        assert await relay.relay_once() == 0
        await relay.close()
        # a relay that lost its position publishes again; JetStream drops the duplicates
        with kernel.db.transaction() as conn:
            conn.execute(t.outbox_cursors.update().values(position=0))
        again = NatsRelay(kernel, stream=stream, prefix=prefix, settle_seconds=0)
        assert await again.relay_once() == 5
        await again.close()
        return await read_all(stream, f"{prefix}.>")

    events = asyncio.run(scenario())
    assert [e["topic"] for e in events] == ["order.placed"] * 3 + ["payment.captured", "order.paid"]
    assert [e["order_id"] for e in events[:3]] == ids
    with kernel.db.transaction(write=False) as conn:
        assert conn.execute(sa.select(t.outbox_cursors.c.position)).scalar() == max(e["id"] for e in events)


def test_young_events_wait_for_the_settle_time(mallcore):
    kernel = mallcore.kernel()
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    mallcore.client(kernel, "customer", "alice").post("/orders", json=order_body())

    async def scenario() -> int:
        relay = NatsRelay(
            kernel,
            stream=f"T{uuid.uuid4().hex[:8].upper()}",
            prefix=f"t{uuid.uuid4().hex[:8]}",
            settle_seconds=3600,
        )
        n = await relay.relay_once()
        await relay._js.delete_stream(relay.stream)
        await relay.close()
        return n

    assert asyncio.run(scenario()) == 0
