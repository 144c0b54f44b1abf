import csv
import io
import time
from datetime import UTC, datetime, timedelta

import msgspec

from mallcore.kernel.signing import sign
from tests.helpers import count, order_body

SECRET = "test-webhook-secret"


def shop(mallcore):
    kernel = mallcore.kernel(settings={"payment": {"webhook_secrets": {"sandbox": SECRET}}})
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    return kernel, mallcore.client(kernel, "customer", "alice")


def webhook(client, event, *, secret=SECRET, at=None):
    body = msgspec.json.encode(event)
    return client.post(
        "/payment/webhooks/sandbox",
        content=body,
        headers={"X-Mallcore-Signature": sign(secret, body, at), "Content-Type": "application/json"},
    )


def pending_payment(customer):
    """An order and its payment the sandbox leaves pending (a webhook captures it)."""
    order = customer.post("/orders", json=order_body()).json()
    pending = customer.post(
        f"/orders/{order['id']}/payments", json={"method": "sandbox", "data": {"simulate": "pending"}}
    ).json()
    return order, pending


def test_a_pending_payment_completes_through_a_signed_webhook_exactly_once(mallcore):
    kernel, alice = shop(mallcore)
    order, pending = pending_payment(alice)
    assert (pending["status"], pending["order_status"]) == ("pending", "awaiting_payment")
    carrier = mallcore.client(kernel, None)
    event = {"id": "evt-1", "type": "payment.captured", "reference": pending["reference"]}
    # forged and stale signatures change nothing
    assert webhook(carrier, event, secret="wrong").json()["code"] == "signature_invalid"
    assert webhook(carrier, event, at=int(time.time()) - 301).json()["code"] == "signature_expired"
    assert alice.get(f"/orders/{order['id']}").json()["status"] == "awaiting_payment"
    assert webhook(carrier, event).json() == {"status": "applied"}
    assert webhook(carrier, event).json() == {"status": "duplicate"}
    assert webhook(carrier, {**event, "id": "evt-2"}).json() == {"status": "ignored"}
    got = alice.get(f"/orders/{order['id']}").json()
    assert (got["status"], got["paid"]) == ("paid", 1000)
    assert [e["kind"] for e in alice.get(f"/orders/{order['id']}/timeline").json()] == [
        "order.placed",
        "payment.pending",
        "order.paid",
    ]
    assert count(kernel, "payment_webhook_events") == 2


def test_a_capture_that_lost_a_write_race_is_resent_not_reported_duplicate(mallcore):
    from sqlalchemy.exc import IntegrityError

    from mallcore.kernel import Center, hookimpl

    class Flaky(Center):
        """Its payment bookkeeping hits a unique-key clash once (a racing writer)."""

        name = "flaky"
        failures = 1

        @hookimpl
        def order_pay(self, ctx, payment):
            if payment.status == "captured" and self.failures:
                self.failures -= 1
                raise IntegrityError("INSERT INTO flaky_ledger ...", {}, Exception("unique constraint"))

    kernel = mallcore.kernel(settings={"payment": {"webhook_secrets": {"sandbox": SECRET}}}, extra=[Flaky])
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    alice = mallcore.client(kernel, "customer", "alice")
    order = alice.post("/orders", json=order_body()).json()
    pending = alice.post(
        f"/orders/{order['id']}/payments", json={"method": "sandbox", "data": {"simulate": "pending"}}
    ).json()
    provider = mallcore.client(kernel, None)
    event = {"id": "evt-1", "type": "payment.captured", "reference": pending["reference"]}
    r = webhook(provider, event)
    # nothing was recorded: the provider hears a failure it resends on (a 5xx)
    assert (r.status_code, r.json()["code"]) == (503, "retry_later")
    assert count(kernel, "payment_webhook_events") == 0
    assert alice.get(f"/orders/{order['id']}").json()["status"] == "awaiting_payment"
    assert webhook(provider, event).json() == {"status": "applied"}
    assert alice.get(f"/orders/{order['id']}").json()["status"] == "paid"
    assert webhook(provider, event).json() == {"status": "duplicate"}


def test_unknown_provider_or_reference(mallcore):
    kernel, alice = shop(mallcore)
    carrier = mallcore.client(kernel, None)
    body = msgspec.json.encode({"id": "e", "type": "payment.captured", "reference": "nope"})
    r = carrier.post(
        "/payment/webhooks/paypal", content=body, headers={"X-Mallcore-Signature": sign(SECRET, body)}
    )
    assert r.json()["code"] == "provider_unknown"
    # an event older than the wait (a day by default) for a reference nobody has: 404, never resent
    old = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    event = {"id": "e", "type": "payment.captured", "reference": "nope", "occurred_at": old.isoformat()}
    r = webhook(carrier, event)
    assert (r.status_code, r.json()["code"]) == (404, "payment_not_found")
    assert count(kernel, "payment_webhook_events") == 0


def test_a_capture_for_a_payment_not_committed_yet_is_resent_then_applied(mallcore):
    """The provider may call back before the transaction recording the payment commits: the
    event answers 503 with Retry-After (providers resend on 5xx, drop on 4xx) and records
    nothing; the resend, once the payment is there, is applied."""
    kernel, alice = shop(mallcore)
    order, pending = pending_payment(alice)
    provider = mallcore.client(kernel, None)
    payments = kernel.metadatas["payment"].tables["payment_payments"]
    hidden = "not-committed-yet"
    # the payment's row is not visible yet: its reference is not in the table
    with kernel.db.transaction() as conn:
        conn.execute(
            payments.update().values(reference=hidden).where(payments.c.reference == pending["reference"])
        )
    event = {"id": "evt-early", "type": "payment.captured", "reference": pending["reference"]}
    for at in (None, datetime.now(UTC).isoformat()):
        r = webhook(provider, {**event, **({"occurred_at": at} if at else {})})
        assert (r.status_code, r.json()["code"]) == (503, "payment_not_recorded"), r.text
        assert r.headers["Retry-After"] == "30"
    assert count(kernel, "payment_webhook_events") == 0
    assert alice.get(f"/orders/{order['id']}").json()["status"] == "awaiting_payment"
    with kernel.db.transaction() as conn:
        conn.execute(
            payments.update().values(reference=pending["reference"]).where(payments.c.reference == hidden)
        )
    assert webhook(provider, event).json() == {"status": "applied"}
    assert alice.get(f"/orders/{order['id']}").json()["status"] == "paid"


def test_a_webhook_body_that_is_json_but_no_event_is_invalid_event_not_malformed_json(mallcore):
    kernel, alice = shop(mallcore)
    provider = mallcore.client(kernel, None)
    before = count(kernel, "payment_webhook_events")
    for event in ({"id": "e"}, {"id": 5, "type": "payment.captured", "reference": "r"}, [1, 2]):
        r = webhook(provider, event)
        assert (r.status_code, r.json()["code"]) == (422, "invalid_event"), r.text
    body = b'{"id": "e", "type": "payment.captured", "reference": '
    r = provider.post(
        "/payment/webhooks/sandbox", content=body, headers={"X-Mallcore-Signature": sign(SECRET, body)}
    )
    assert (r.status_code, r.json()["code"]) == (400, "malformed_json")
    assert count(kernel, "payment_webhook_events") == before


def test_payments_are_listed_per_customer_and_shop(mallcore):
    kernel, alice = shop(mallcore)
    order = alice.post("/orders", json=order_body()).json()
    alice.post(f"/orders/{order['id']}/payments", json={"method": "sandbox"})
    assert [p["order_id"] for p in alice.get("/payment/payments").json()] == [order["id"]]
    assert mallcore.client(kernel, "customer", "bob").get("/payment/payments").json() == []
    assert len(mallcore.client(kernel, "finance", "f", shop="s1").get("/payment/payments").json()) == 1
    assert mallcore.client(kernel, "finance", "f", shop="s2").get("/payment/payments").json() == []


def test_the_sandbox_statement_lists_charges_and_refunds_of_the_day(mallcore):
    kernel, alice = shop(mallcore)
    order = alice.post("/orders", json=order_body()).json()
    paid = alice.post(f"/orders/{order['id']}/payments", json={"method": "sandbox"}).json()
    alice.post(f"/orders/{order['id']}/cancel", json={"reason": "x"})
    declined = alice.post("/orders", json=order_body()).json()
    alice.post(
        f"/orders/{declined['id']}/payments", json={"method": "sandbox", "data": {"simulate": "decline"}}
    )
    finance = mallcore.client(kernel, "finance", "f", platform=True)
    today = datetime.now(UTC).date().isoformat()
    r = finance.get(f"/payment/statements/sandbox?date={today}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["type"], x["amount"]) for x in rows] == [("charge", "1000"), ("refund", "1000")]
    assert rows[0]["reference"] == paid["reference"] and rows[1]["original_reference"] == paid["reference"]
    assert finance.get("/payment/statements/sandbox?date=2001-01-01").text.count("\n") == 1
    assert alice.get(f"/payment/statements/sandbox?date={today}").status_code == 403


def test_a_shops_finance_user_reads_only_their_shops_lines_of_a_statement(mallcore):
    kernel, alice = shop(mallcore)
    mallcore.product(kernel, shop="s2", skus=[("SKU-2", 500)])
    mine = alice.post("/orders", json=order_body()).json()
    theirs = alice.post("/orders", json=order_body(shop="s2", lines=[("SKU-2", 1)])).json()
    paid = alice.post(f"/orders/{mine['id']}/payments", json={"method": "sandbox"}).json()
    other = alice.post(f"/orders/{theirs['id']}/payments", json={"method": "sandbox"}).json()
    alice.post(f"/orders/{theirs['id']}/cancel", json={"reason": "x"})
    today = datetime.now(UTC).date().isoformat()

    def references(client):
        r = client.get(f"/payment/statements/sandbox?date={today}")
        assert r.status_code == 200, r.text
        return sorted(
            (x["type"], x["original_reference"] or x["reference"])
            for x in csv.DictReader(io.StringIO(r.text))
        )

    s1 = mallcore.client(kernel, "finance", "f1", shop="s1")
    s2 = mallcore.client(kernel, "finance", "f2", shop="s2")
    assert references(s1) == [("charge", paid["reference"])]
    assert references(s2) == sorted([("charge", other["reference"]), ("refund", other["reference"])])
    everything = sorted(
        [("charge", paid["reference"]), ("charge", other["reference"]), ("refund", other["reference"])]
    )
    assert references(mallcore.client(kernel, "finance", "platform-f", platform=True)) == everything
    assert references(mallcore.client(kernel, "admin", "root")) == everything


def test_a_signature_header_of_any_text_is_refused_not_a_crash(mallcore):
    kernel, alice = shop(mallcore)
    body = b'{"id": "e", "type": "payment.captured", "reference": "x"}'
    r = mallcore.client(kernel, None).post(
        "/payment/webhooks/sandbox", content=body, headers={"X-Mallcore-Signature": "t=1,v1=ünïcode".encode()}
    )
    assert (r.status_code, r.json()["code"]) == (401, "signature_invalid")


def test_platform_staff_and_admins_see_every_shops_payments_and_shop_staff_their_own(mallcore):
    kernel, alice = shop(mallcore)
    mallcore.product(kernel, shop="s2", skus=[("SKU-2", 500)])
    mine = alice.post("/orders", json=order_body()).json()
    theirs = alice.post("/orders", json=order_body(shop="s2", lines=[("SKU-2", 1)])).json()
    for order in (mine, theirs):
        assert alice.post(f"/orders/{order['id']}/payments", json={"method": "sandbox"}).status_code == 201

    def seen(roles, subject, shop=None):
        staff = roles in ("merchant", "warehouse", "finance", "risk")
        client = mallcore.client(kernel, roles, subject, shop=shop, platform=staff and shop is None)
        listed = client.get("/payment/payments").json()
        return sorted(p["order_id"] for p in listed)

    both = sorted([mine["id"], theirs["id"]])
    assert both == seen("admin", "root")
    assert both == seen("merchant", "platform-merchant")
    assert both == seen("finance", "platform-finance")
    assert [mine["id"]] == seen("warehouse", "w1", "s1")
    assert [theirs["id"]] == seen("merchant", "m2", "s2")
    assert both == seen("customer", "alice")


def test_only_an_admin_captures_a_sandbox_payment_by_hand(mallcore):
    kernel, alice = shop(mallcore)
    order, pending = pending_payment(alice)
    path = f"/payment/sandbox/{pending['reference']}/capture"
    for roles in ("customer", "merchant", "finance"):
        r = mallcore.client(kernel, roles, "someone", shop=None if roles == "customer" else "s1").post(path)
        assert (r.status_code, r.json()["code"]) == (403, "role_required"), roles
    assert mallcore.client(kernel, None).post(path).status_code == 401
    assert alice.get(f"/orders/{order['id']}").json()["status"] == "awaiting_payment"
    assert mallcore.client(kernel, "admin", "root").post(path).json() == {"status": "applied"}
    assert alice.get(f"/orders/{order['id']}").json()["status"] == "paid"


def test_a_second_payment_while_one_is_pending_is_refused_until_the_first_fails(mallcore):
    kernel, alice = shop(mallcore)
    order, pending = pending_payment(alice)
    again = alice.post(f"/orders/{order['id']}/payments", json={"method": "sandbox"})
    assert (again.status_code, again.json()["code"]) == (409, "payment_pending")
    assert again.json()["payment_id"] == pending["id"]
    assert count(kernel, "payment_payments") == 1
    provider = mallcore.client(kernel, None)
    failed = webhook(provider, {"id": "evt-f", "type": "payment.failed", "reference": pending["reference"]})
    assert failed.json() == {"status": "applied"}
    paid = alice.post(f"/orders/{order['id']}/payments", json={"method": "sandbox"})
    assert paid.status_code == 201, paid.text
    assert alice.get(f"/orders/{order['id']}").json()["status"] == "paid"
    assert [p["status"] for p in alice.get(f"/payment/payments?order_id={order['id']}").json()] == [
        "captured",
        "failed",
    ]


def _returned(kernel, admin, alice, order, pending):
    payments = alice.get(f"/payment/payments?order_id={order['id']}").json()
    assert [(p["status"], p["refunded"]) for p in payments] == [("refunded", pending["amount"])]
    assert count(kernel, "payment_refunds", payment_id=pending["id"]) == 1
    kinds = [e["kind"] for e in alice.get(f"/orders/{order['id']}/timeline").json()]
    assert kinds.count("payment.returned") == 1
    today = datetime.now(UTC).date().isoformat()
    lines = list(csv.DictReader(io.StringIO(admin.get(f"/payment/statements/sandbox?date={today}").text)))
    assert [(x["type"], x["original_reference"] or x["reference"]) for x in lines][-2:] == [
        ("charge", pending["reference"]),
        ("refund", pending["reference"]),
    ]


def test_hook_order_payment_returned_a_capture_for_a_cancelled_order_is_refunded_and_booked(mallcore):
    kernel = mallcore.kernel(
        centers=["catalog", "payment", "finance"],
        settings={"payment": {"webhook_secrets": {"sandbox": SECRET}}},
    )
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    alice = mallcore.client(kernel, "customer", "alice")
    order, pending = pending_payment(alice)
    assert alice.post(f"/orders/{order['id']}/cancel", json={"reason": "changed my mind"}).status_code == 200
    provider = mallcore.client(kernel, None)
    event = {"id": "evt-late", "type": "payment.captured", "reference": pending["reference"]}
    r = webhook(provider, event)
    assert (r.status_code, r.json()) == (200, {"status": "applied"})
    assert webhook(provider, event).json() == {"status": "duplicate"}
    assert alice.get(f"/orders/{order['id']}").json()["status"] == "cancelled"
    admin = mallcore.client(kernel, "admin", "root")
    _returned(kernel, admin, alice, order, pending)
    entries = [
        e
        for e in admin.get(f"/finance/entries?order_id={order['id']}").json()
        if e["kind"] == "payment_returned"
    ]
    assert len(entries) == 1 and entries[0]["amount"] == pending["amount"]


def test_a_capture_a_center_refuses_is_refunded_not_answered_4xx(mallcore):
    from mallcore.kernel import Center, Conflict, hookimpl

    class NoStockAtPayment(Center):
        name = "nostock"

        @hookimpl
        def order_pay(self, ctx, payment):
            if payment.status == "captured":
                raise Conflict("sold out meanwhile", code="out_of_stock")

    kernel = mallcore.kernel(
        settings={"payment": {"webhook_secrets": {"sandbox": SECRET}}}, extra=[NoStockAtPayment]
    )
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    alice = mallcore.client(kernel, "customer", "alice")
    order, pending = pending_payment(alice)
    provider = mallcore.client(kernel, None)
    r = webhook(provider, {"id": "evt-1", "type": "payment.captured", "reference": pending["reference"]})
    assert (r.status_code, r.json()) == (200, {"status": "applied"})
    assert alice.get(f"/orders/{order['id']}").json()["status"] == "awaiting_payment"
    _returned(kernel, mallcore.client(kernel, "admin", "root"), alice, order, pending)
