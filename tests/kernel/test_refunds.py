"""The refund ledger: never more than was paid, per line and per order."""

from concurrent.futures import ThreadPoolExecutor

import msgspec
import pytest
from litestar import post
from litestar.params import FromPath, JSONBody

from mallcore.kernel import SYSTEM, Caller, Center, Phase, RefundItem, hookimpl
from mallcore.testing import test_database_url
from tests.helpers import order_body


class Ask(msgspec.Struct):
    items: list[tuple[int, int]]
    shipping: str = "none"
    deductions: dict[str, int] = {}


class Asker(Center):
    """A stand-in for the after-sale center: asks for refunds over HTTP; ships at 600."""

    name = "asker"

    @hookimpl
    def order_price(self, ctx):
        ctx.adjust(self.name, "freight", 600, phase=Phase.FREIGHT)
        ctx.adjust(self.name, "coupon", -700, phase=Phase.COUPON)

    @hookimpl
    def center_routes(self, kernel):
        @post("/asker/{order_id:int}", status_code=201, sync_to_thread=True)
        def ask(order_id: FromPath[int], data: JSONBody[Ask], principal: Caller) -> dict:
            with kernel.orders.stage("test_refund", order_id, principal) as ctx:
                items = [RefundItem(l, q, data.deductions.get(str(l), 0)) for l, q in data.items]
                refund = kernel.refunds.request(
                    ctx, items, reason="test", source=self.name, shipping=data.shipping
                )
            return {
                "id": refund.id,
                "amount": refund.amount,
                "status": refund.status,
                "shipping": refund.shipping,
            }

        return [ask]


def paid_order(mallcore, lines=(("SKU-1", 3), ("SKU-2", 1))):
    kernel = mallcore.kernel(extra=[Asker])
    mallcore.product(kernel, skus=[("SKU-1", 1000), ("SKU-2", 2000)])
    alice = mallcore.client(kernel, "customer", "alice")
    order = alice.post("/orders", json=order_body(lines=list(lines))).json()
    assert alice.post(f"/orders/{order['id']}/payments", json={"method": "sandbox"}).status_code == 201
    return kernel, alice, alice.get(f"/orders/{order['id']}").json()


def test_partial_refunds_follow_the_allocation_and_add_up_to_the_line(mallcore):
    kernel, alice, order = paid_order(mallcore)
    tee, mug = order["lines"]
    # 5000 of goods, a 700 coupon shared 420/280, freight 600 shared 360/240
    assert (tee["total"], tee["shipping"], mug["total"], mug["shipping"]) == (2940, 360, 1960, 240)
    amounts = [
        alice.post(f"/asker/{order['id']}", json={"items": [[tee["id"], 1]]}).json()["amount"]
        for _ in range(3)
    ]
    assert amounts == [860, 860, 860]  # 2580 of goods over 3 units
    assert sum(amounts) == tee["total"] - tee["shipping"]
    r = alice.post(f"/asker/{order['id']}", json={"items": [[tee["id"], 1]]})
    assert (r.status_code, r.json()["code"], r.json()["refundable_quantity"]) == (
        409,
        "refund_exceeds_quantity",
        0,
    )


def test_freight_policies_and_deductions(mallcore):
    kernel, alice, order = paid_order(mallcore)
    tee, mug = order["lines"]
    proportional = alice.post(
        f"/asker/{order['id']}", json={"items": [[tee["id"], 1]], "shipping": "proportional"}
    ).json()
    assert (proportional["amount"], proportional["shipping"]) == (860 + 120, 120)
    fee = alice.post(
        f"/asker/{order['id']}", json={"items": [[mug["id"], 1]], "deductions": {str(mug["id"]): 100}}
    ).json()
    assert fee["amount"] == 1720 - 100
    rest = alice.post(
        f"/asker/{order['id']}", json={"items": [[tee["id"], 2]], "shipping": "remaining"}
    ).json()
    assert (rest["amount"], rest["shipping"]) == (1720 + 240, 240)
    bad = alice.post(
        f"/asker/{order['id']}", json={"items": [[mug["id"], 0]], "deductions": {str(mug["id"]): 5000}}
    )
    assert bad.status_code == 422


def test_the_order_closes_when_every_unit_is_refunded(mallcore):
    kernel, alice, order = paid_order(mallcore)
    tee, mug = order["lines"]
    alice.post(f"/asker/{order['id']}", json={"items": [[tee["id"], 3]]})
    assert alice.get(f"/orders/{order['id']}").json()["status"] == "paid"
    alice.post(f"/asker/{order['id']}", json={"items": [[mug["id"], 1]], "shipping": "remaining"})
    got = alice.get(f"/orders/{order['id']}").json()
    assert (got["status"], got["refunded"]) == ("closed", 2580 + 1720 + 240)
    assert got["refunded"] == got["paid"] - tee["shipping"]


def test_refunds_on_an_unpaid_order_or_someone_elses_are_refused(mallcore):
    kernel = mallcore.kernel(extra=[Asker])
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    alice = mallcore.client(kernel, "customer", "alice")
    order = alice.post("/orders", json=order_body()).json()
    r = alice.post(f"/asker/{order['id']}", json={"items": [[order["lines"][0]["id"], 1]]})
    assert (r.status_code, r.json()["code"]) == (409, "order_not_refundable")
    bob = mallcore.client(kernel, "customer", "bob")
    assert (
        bob.post(f"/asker/{order['id']}", json={"items": [[order["lines"][0]["id"], 1]]}).status_code == 404
    )


def test_a_refund_held_for_review_can_be_rejected_and_its_units_asked_again(mallcore):
    class Reviewer(Center):
        name = "reviewer"

        @hookimpl
        def order_refund(self, ctx, refund):
            if refund.status == "requested":
                refund.require_review(self.name, "photos of the damage are needed")

    kernel = mallcore.kernel(extra=[Asker, Reviewer])
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    alice = mallcore.client(kernel, "customer", "alice")
    order = alice.post("/orders", json=order_body()).json()
    alice.post(f"/orders/{order['id']}/payments", json={"method": "sandbox"})
    line = order["lines"][0]["id"]
    held = alice.post(f"/asker/{order['id']}", json={"items": [[line, 1]]}).json()
    assert held["status"] == "pending_review"
    # why it is held is kept with the refund and shown where the review is listed
    why = {"reviewer": "photos of the damage are needed"}
    pending = [
        e for e in alice.get(f"/orders/{order['id']}/timeline").json() if e["kind"] == "refund.pending_review"
    ]
    assert [e["data"]["review_reasons"] for e in pending] == [why]
    with kernel.db.transaction(write=False) as conn:
        assert kernel.refunds.load(conn, held["id"]).review_reasons == why
    assert (
        alice.post(f"/asker/{order['id']}", json={"items": [[line, 1]]}).json()["code"]
        == "refund_exceeds_quantity"
    )
    with kernel.orders.stage("review", order["id"], SYSTEM) as ctx:
        kernel.refunds.reject(ctx, held["id"], "finance-1", "photos unclear")
    again = alice.post(f"/asker/{order['id']}", json={"items": [[line, 1]]})
    assert again.json()["status"] == "pending_review"
    timeline = alice.get(f"/orders/{order['id']}/timeline").json()
    assert "refund.rejected" in [e["kind"] for e in timeline]


@pytest.mark.skipif(
    not test_database_url(),
    reason="needs PostgreSQL (set MALLCORE_TEST_DATABASE_URL): SQLite serialises writers anyway",
)
def test_concurrent_refund_requests_never_exceed_what_was_paid(mallcore):
    kernel, alice, order = paid_order(mallcore, lines=(("SKU-1", 5),))
    line = order["lines"][0]["id"]

    def ask(_):
        return alice.post(f"/asker/{order['id']}", json={"items": [[line, 2]]})

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(ask, range(24)))
    ok = [r for r in results if r.status_code == 201]
    assert len(ok) == 2  # 2 + 2 units; the fifth unit cannot be asked as two
    assert {r.json()["code"] for r in results if r.status_code != 201} == {"refund_exceeds_quantity"}
    got = alice.get(f"/orders/{order['id']}").json()
    assert got["refunded"] == sum(r.json()["amount"] for r in ok) <= got["paid"]
