import sqlalchemy as sa
import structlog

from mallcore.kernel import Center, hookimpl
from mallcore.kernel import tables as t
from tests.helpers import order_body


class Listener(Center):
    name = "listener"

    def __init__(self):
        super().__init__()
        self.seen = []

    @hookimpl
    def center_subscriptions(self, kernel):
        return [
            ("order.*", self.on_order),
            ("payment.captured", self.on_payment),
            ("order.placed", self.boom),
        ]

    def on_order(self, kernel, event):
        # After commit: the order is already visible to a new transaction.
        with kernel.db.transaction(write=False) as conn:
            status = conn.execute(
                sa.select(t.orders.c.status).where(t.orders.c.id == event.order_id)
            ).scalar()
        self.seen.append((event.topic, event.order_id, status))

    def on_payment(self, kernel, event):
        self.seen.append((event.topic, event.order_id, event.payload["amount"]))

    def boom(self, kernel, event):
        raise RuntimeError("a broken subscriber")


def test_hook_center_subscriptions_get_events_after_commit_and_a_failing_one_harms_nothing(mallcore):
    kernel = mallcore.kernel(extra=[Listener])
    listener = kernel.centers["listener"]
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    alice = mallcore.client(kernel, "customer", "alice")
    with structlog.testing.capture_logs() as logs:
        order = alice.post("/orders", json=order_body())
    assert order.status_code == 201
    oid = order.json()["id"]
    assert any(e["event"] == "event.handler_failed" and e["center"] == "listener" for e in logs)
    alice.post(f"/orders/{oid}/payments", json={"method": "sandbox"})
    assert listener.seen == [
        ("order.placed", oid, "awaiting_payment"),
        ("payment.captured", oid, 1000),
        ("order.paid", oid, "paid"),
    ]
    with kernel.db.transaction(write=False) as conn:
        topics = (
            conn.execute(
                sa.select(t.outbox.c.topic).where(t.outbox.c.order_id == oid).order_by(t.outbox.c.id)
            )
            .scalars()
            .all()
        )
    assert topics == ["order.placed", "payment.captured", "order.paid"]


def test_a_rolled_back_stage_delivers_no_event(mallcore):
    kernel = mallcore.kernel(extra=[Listener])
    listener = kernel.centers["listener"]
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    alice = mallcore.client(kernel, "customer", "alice")
    assert alice.post("/orders", json=order_body(lines=[("NOPE", 1)])).status_code == 422
    assert listener.seen == []
    with kernel.db.transaction(write=False) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.outbox)).scalar() == 0
