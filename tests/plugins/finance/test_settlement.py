"""结算: statements from the journal, settlements of closed periods, payouts, CSV, daily reports."""

from __future__ import annotations

import csv
import io

from .kit import Shop, approve_all


def trade(shop: Shop) -> None:
    """Day 1 (2030-01-10): two s1 sales delivered, one refunded in part after delivery; one s2 sale."""
    a = shop.paid_order([("TEE", 2)])  # 3998
    b = shop.paid_order([("MUG", 1)])  # 3900
    c = shop.paid_order([("CAP", 1)], shop="s2")  # 2500
    for order in (a, b):
        shop.deliver(order["id"])
    shop.deliver(c["id"], shop="s2")
    shop.refund(a["id"], [(a["lines"][0]["id"], 1)])  # 1999 after the sale
    approve_all(shop)


def test_a_statement_sums_the_shops_payable_by_what_it_is_for(mallcore):
    shop = Shop(mallcore)
    trade(shop)
    st = shop.fin1.get("/finance/statements", params={"shop": "s1", "from": "2030-01-10", "to": "2030-01-10"})
    assert st.status_code == 200, st.text
    st = st.json()
    # commission: 200 on 3998 and 195 on 3900; the refund gives back 100 (1999 left -> 100)
    assert (st["gross_sales"], st["refunds"], st["commission"], st["adjustments"]) == (7898, 1999, 295, 0)
    assert st["net_payable"] == 7898 - 1999 - 295 == -shop.balance("shop_payable:s1")
    assert st["entries"] == 3
    empty = shop.fin1.get(
        "/finance/statements", params={"shop": "s1", "from": "2030-01-11", "to": "2030-01-12"}
    )
    assert empty.json()["net_payable"] == 0
    assert (
        shop.fin1.get(
            "/finance/statements", params={"shop": "s2", "from": "2030-01-10", "to": "2030-01-10"}
        ).status_code
        == 404
    )


def test_settling_a_closed_period_and_paying_it_clears_the_shops_payable(mallcore):
    shop = Shop(mallcore)
    trade(shop)
    body = {"shop": "s1", "start": "2030-01-10", "end": "2030-01-10"}
    r = shop.platform.post("/finance/settlements", json=body)
    assert r.status_code == 422 and r.json()["code"] == "period_not_closed"
    shop.clock.next_day()
    r = shop.fin1.post("/finance/settlements", json=body)
    assert r.status_code == 403 and r.json()["code"] == "platform_only"
    r = shop.platform.post("/finance/settlements", json=body)
    assert r.status_code == 201, r.text
    settlement = r.json()
    assert (settlement["status"], settlement["net_payable"]) == ("open", 5604)
    clash = shop.platform.post(
        "/finance/settlements", json={"shop": "s1", "start": "2030-01-09", "end": "2030-01-10"}
    )
    assert clash.status_code == 409 and clash.json()["code"] == "settlement_overlaps"

    # Trade on day 2 stays out of day 1's settlement.
    d = shop.paid_order([("TEE", 1)])
    shop.deliver(d["id"])
    assert shop.fin1.post(f"/finance/settlements/{settlement['id']}/pay").status_code == 403
    r = shop.platform.post(f"/finance/settlements/{settlement['id']}/pay", json={"reference": "BANK-001"})
    assert r.status_code == 200, r.text
    paid = r.json()
    assert (paid["status"], paid["paid_by"], paid["payout_reference"]) == ("paid", "fin-platform", "BANK-001")
    payout = shop.platform.get(f"/finance/entries/{paid['payout_entry_id']}").json()
    assert payout["kind"] == "payout" and payout["settlement_id"] == settlement["id"]
    assert sorted((p["account"], p["amount"]) for p in payout["postings"]) == [
        ("bank", -5604),
        ("shop_payable:s1", 5604),
    ]
    # What is still owed is exactly day 2's sale, less its commission.
    assert shop.balance("shop_payable:s1") == -(1999 - 100)
    again = shop.platform.post(f"/finance/settlements/{settlement['id']}/pay")
    assert again.status_code == 409 and again.json()["code"] == "settlement_paid"
    # The payout is not sales: the period's statement is unchanged.
    st = shop.fin1.get(
        "/finance/statements", params={"shop": "s1", "from": "2030-01-10", "to": "2030-01-10"}
    ).json()
    assert st["net_payable"] == 5604

    assert [s["id"] for s in shop.fin1.get("/finance/settlements").json()] == [settlement["id"]]
    assert shop.fin2.get("/finance/settlements").json() == []
    assert shop.fin2.get(f"/finance/settlements/{settlement['id']}").status_code == 404


def test_a_settlement_exports_as_csv(mallcore):
    shop = Shop(mallcore)
    trade(shop)
    shop.clock.next_day()
    settlement = shop.platform.post(
        "/finance/settlements", json={"shop": "s1", "start": "2030-01-10", "end": "2030-01-10"}
    ).json()
    r = shop.fin1.get(f"/finance/settlements/{settlement['id']}/csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    lines = [row for row in rows if row["kind"] != "total"]
    totals = {row["role"]: int(row["amount"]) for row in rows if row["kind"] == "total"}
    assert sum(int(row["amount"]) for row in lines) == totals["net_payable"] == 5604
    assert totals == {
        "gross_sales": 7898,
        "refunds": -1999,
        "commission": -295,
        "adjustments": 0,
        "net_payable": 5604,
    }
    assert {row["role"] for row in lines} == {"sale", "commission", "refund"}
    assert shop.fin2.get(f"/finance/settlements/{settlement['id']}/csv").status_code == 404


def test_a_correction_to_the_payable_shows_as_an_adjustment(mallcore):
    shop = Shop(mallcore)
    trade(shop)
    r = shop.platform.post(
        "/finance/entries",
        json={
            "memo": "compensation for a lost parcel",
            "currency": "CNY",
            "postings": [
                {"account": "suspense", "amount": 300},
                {"account": "shop_payable:s1", "amount": -300},
            ],
        },
    )
    assert r.status_code == 201
    st = shop.fin1.get(
        "/finance/statements", params={"shop": "s1", "from": "2030-01-10", "to": "2030-01-10"}
    ).json()
    assert st["adjustments"] == 300 and st["net_payable"] == 5604 + 300


def test_daily_report_of_sales_refunds_and_net_per_shop(mallcore):
    shop = Shop(mallcore)
    trade(shop)
    shop.clock.next_day()
    shop.paid_order([("TEE", 1)])
    rows = shop.platform.get(
        "/finance/reports/daily", params={"from": "2030-01-10", "to": "2030-01-11"}
    ).json()
    assert [(r["day"], r["shop"], r["sales"], r["refunds"], r["net"]) for r in rows] == [
        ("2030-01-10", "s1", 7898, 1999, 5899),
        ("2030-01-10", "s2", 2500, 0, 2500),
        ("2030-01-11", "s1", 1999, 0, 1999),
    ]
    mine = shop.fin2.get("/finance/reports/daily", params={"from": "2030-01-10", "to": "2030-01-11"}).json()
    assert [r["shop"] for r in mine] == ["s2"]
    bad = shop.platform.get("/finance/reports/daily", params={"from": "2030-01-11", "to": "2030-01-10"})
    assert bad.status_code == 422 and bad.json()["code"] == "period_invalid"


def test_paying_a_settlement_twice_with_one_key_posts_one_payout(mallcore):
    shop = Shop(mallcore)
    trade(shop)
    shop.clock.next_day()
    key = {"Idempotency-Key": "settle-s1-0110"}
    body = {"shop": "s1", "start": "2030-01-10", "end": "2030-01-10"}
    created = shop.platform.post("/finance/settlements", json=body, headers=key)
    replay = shop.platform.post("/finance/settlements", json=body, headers=key)
    assert created.status_code == replay.status_code == 201 and replay.json() == created.json()
    sid = created.json()["id"]
    pay = {"Idempotency-Key": "pay-s1-0110"}
    first = shop.platform.post(f"/finance/settlements/{sid}/pay", json={"reference": "B1"}, headers=pay)
    again = shop.platform.post(f"/finance/settlements/{sid}/pay", json={"reference": "B1"}, headers=pay)
    assert first.status_code == again.status_code == 200 and again.json() == first.json()
    assert len(shop.platform.get("/finance/entries", params={"kind": "payout"}).json()) == 1
