"""Block, review and allow lists: every kind refuses a placement, writing nothing;
shops' lists apply to their orders only; who sees and manages which list."""

from __future__ import annotations

from tests.helpers import snapshot

from .support import listed, order, risk_kernel, staff

OTHER_ADDRESS = {"name": "Bob", "phone": "13900000000", "region": "110000", "detail": "9 Chang'an Ave"}


KINDS = [
    ("customer", "alice"),
    ("phone", "+86 138-0000-0000"),  # the order's 13800000000, written otherwise
    ("address", "310000|\uff11 West-Lake Rd."),  # a full-width digit, punctuation, case
    ("ip", "203.0.113.9"),
    ("cidr", "203.0.113.0/24"),
    ("device", "dev-bad"),
]


def test_a_listed_customer_phone_address_ip_cidr_or_device_is_refused_and_nothing_is_written(mallcore, peers):
    kernel = risk_kernel(mallcore)
    risk = staff(mallcore, kernel)
    alice = peers.client(kernel, "203.0.113.9", subject="alice", **{"X-Device-Id": "dev-bad"})
    for kind, value in KINDS:
        entry = listed(risk, kind, value)
        before = {name: rows for name, rows in snapshot(kernel).items() if not name.startswith("risk_")}
        refused = alice.post("/orders", json=order())
        assert (refused.status_code, refused.json()["code"]) == (403, "risk_blocked"), kind
        # the customer learns nothing of lists, rules or scores
        assert set(refused.json()) == {"code", "detail"}
        after = {name: rows for name, rows in snapshot(kernel).items() if not name.startswith("risk_")}
        assert before == after, kind  # no order, no line, no reservation, no stock movement
        kernel.centers["risk"].decisions.flush()
        decision = risk.get("/risk/decisions", params={"action": "block"}).json()[0]
        assert (decision["order_id"], decision["lists"][0]["kind"]) == (None, kind)
        assert risk.delete(f"/risk/lists/{entry['id']}").status_code == 200
    assert alice.post("/orders", json=order()).status_code == 201


def test_an_unlisted_customer_on_the_same_lists_places_orders_as_usual(mallcore, peers):
    kernel = risk_kernel(mallcore)
    risk = staff(mallcore, kernel)
    for kind, value in [("customer", "mallory"), ("cidr", "198.51.100.0/24"), ("device", "farm-1")]:
        listed(risk, kind, value)
    bob = peers.client(kernel, "203.0.113.9", subject="bob", **{"X-Device-Id": "phone-7"})
    placed = bob.post("/orders", json=order(address=OTHER_ADDRESS))
    assert placed.status_code == 201, placed.text
    assert placed.json()["hold"] is None


def test_a_review_entry_places_the_order_on_hold(mallcore):
    kernel = risk_kernel(mallcore)
    listed(staff(mallcore, kernel), "phone", "13800000000", action="review")
    placed = mallcore.client(kernel, "customer", "alice").post("/orders", json=order())
    assert (placed.status_code, placed.json()["hold"]) == (201, "risk_review")
    queue = staff(mallcore, kernel).get("/risk/reviews").json()
    assert [(r["order_id"], r["lists"][0]["kind"]) for r in queue] == [(placed.json()["id"], "phone")]


def test_a_shop_s_list_applies_to_that_shop_s_orders_only(mallcore):
    kernel = risk_kernel(mallcore)
    listed(staff(mallcore, kernel, shop="s1", subject="risk-s1"), "customer", "alice", shop="s1")
    alice = mallcore.client(kernel, "customer", "alice")
    assert alice.post("/orders", json=order()).json()["code"] == "risk_blocked"
    assert alice.post("/orders", json=order(shop="s2", sku="OTHER-1")).status_code == 201


def test_the_platform_s_allow_list_beats_a_block_and_a_shop_cannot_lift_the_platform_s_block(mallcore):
    kernel = risk_kernel(mallcore)
    platform = staff(mallcore, kernel)
    shop_staff = staff(mallcore, kernel, shop="s1", subject="risk-s1")
    listed(platform, "customer", "alice")
    listed(shop_staff, "customer", "alice", action="allow", shop="s1")
    alice = mallcore.client(kernel, "customer", "alice")
    assert alice.post("/orders", json=order()).json()["code"] == "risk_blocked"
    listed(platform, "phone", "13800000000", action="allow")
    assert alice.post("/orders", json=order()).status_code == 201


def test_an_expired_or_removed_entry_no_longer_applies(mallcore):
    kernel = risk_kernel(mallcore)
    risk = staff(mallcore, kernel)
    entry = listed(risk, "customer", "alice")
    alice = mallcore.client(kernel, "customer", "alice")
    assert alice.post("/orders", json=order()).status_code == 403
    removed = risk.delete(f"/risk/lists/{entry['id']}")
    assert (removed.status_code, removed.json()["active"], removed.json()["removed_by"]) == (
        200,
        False,
        "risk-1",
    )
    assert alice.post("/orders", json=order()).status_code == 201
    past = risk.post(
        "/risk/lists",
        json={
            "kind": "customer",
            "value": "alice",
            "action": "block",
            "reason": "x",
            "expires_at": "2020-01-01T00:00:00Z",
        },
    )
    assert (past.status_code, past.json()["code"]) == (422, "expires_in_past")


def test_a_list_value_is_stored_normalised_and_a_bad_one_is_refused(mallcore):
    kernel = risk_kernel(mallcore)
    risk = staff(mallcore, kernel)
    phone = listed(risk, "phone", "+86 (138) 0000-0000")
    assert (phone["value"], phone["label"]) == ("13800000000", "+86 (138) 0000-0000")
    cidr = listed(risk, "cidr", "10.1.2.3/8")
    assert cidr["value"] == "10.0.0.0/8"
    again = risk.post(
        "/risk/lists", json={"kind": "phone", "value": "13800000000", "action": "block", "reason": "x"}
    )
    assert (again.status_code, again.json()["code"]) == (409, "list_entry_exists")
    for kind, value in [
        ("ip", "not-an-ip"),
        ("cidr", "10.0.0.0/99"),
        ("address", "no separator"),
        ("phone", "x"),
    ]:
        bad = risk.post("/risk/lists", json={"kind": kind, "value": value, "action": "block", "reason": "x"})
        assert (bad.status_code, bad.json()["code"]) == (422, "list_value_invalid"), (kind, bad.text)


def test_only_risk_staff_and_admins_manage_lists_and_merchants_read_their_shop_s(mallcore):
    kernel = risk_kernel(mallcore)
    platform = staff(mallcore, kernel)
    s1_staff = staff(mallcore, kernel, shop="s1", subject="risk-s1")
    listed(platform, "customer", "mallory")
    listed(s1_staff, "customer", "eve", shop="s1")
    listed(mallcore.client(kernel, "admin", "root"), "customer", "trent", shop="s2")

    def seen(client):
        r = client.get("/risk/lists")
        assert r.status_code == 200, r.text
        return sorted(e["value"] for e in r.json())

    assert seen(platform) == ["eve", "mallory", "trent"]
    assert seen(s1_staff) == ["eve"]
    assert seen(mallcore.client(kernel, "merchant", "m1", shop="s1")) == ["eve"]
    assert seen(mallcore.client(kernel, "merchant", "m2", shop="s2")) == ["trent"]
    for role in ("customer", "warehouse", "finance"):
        refused = mallcore.client(kernel, role, "x", shop="s1").get("/risk/lists")
        assert (refused.status_code, refused.json()["code"]) == (403, "role_required")
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    add = merchant.post(
        "/risk/lists", json={"kind": "customer", "value": "z", "action": "block", "reason": "x"}
    )
    assert add.status_code == 403
    # a shop's risk staff: not the platform's list, not another shop's
    platform_entry = s1_staff.post(
        "/risk/lists", json={"kind": "customer", "value": "z", "action": "block", "reason": "x"}
    )
    assert (platform_entry.status_code, platform_entry.json()["code"]) == (403, "platform_only")
    other_shop = s1_staff.post(
        "/risk/lists", json={"kind": "customer", "value": "z", "action": "block", "reason": "x", "shop": "s2"}
    )
    assert other_shop.status_code == 404
    trent = platform.get("/risk/lists", params={"value": "trent", "kind": "customer"}).json()[0]
    assert s1_staff.get(f"/risk/lists/{trent['id']}").status_code == 404
    assert s1_staff.delete(f"/risk/lists/{trent['id']}").status_code == 404


def test_ten_thousand_entries_are_looked_up_without_scanning_them(mallcore):
    from mallcore.plugins.risk.lists import Entry, ListIndex

    entries = [Entry(i, "ip", f"10.0.{i // 250}.{i % 250}", "block", None, None) for i in range(10_000)]
    entries += [
        Entry(20_000 + i, "cidr", f"172.{16 + i % 16}.{i // 16}.0/24", "block", None, None)
        for i in range(2000)
    ]
    index = ListIndex(entries)
    from mallcore.kernel import utcnow

    now = utcnow()
    assert [e.id for e in index.match({"ip": "10.0.3.7"}, "s1", now)] == [3 * 250 + 7]
    assert [e.id for e in index.match({"ip": "172.17.5.99"}, "s1", now)] == [20_000 + 5 * 16 + 1]
    assert index.match({"ip": "192.0.2.1"}, "s1", now) == []
    # the CIDR entries group by prefix length: one dictionary per length, not one per range
    assert len(index.ranges) == 1
