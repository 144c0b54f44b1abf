"""Combined placements (group commit): each client gets its own answer, as if placed alone.

A batch is made deterministic with a gate: the first order stops in its
``order_pre_validate`` while it leads the writer, the others queue behind it
(checked on the combiner's queue), and once the gate opens they are placed
together as one batch.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mallcore.kernel import Center, Principal, Rejected, hookimpl
from mallcore.kernel import tables as kt
from mallcore.kernel.schemas import LineIn, PlaceOrder
from tests.plugins.wms.helpers import Shop, address, check_invariants, live_by_order

md = sa.MetaData()
marks = sa.Table(
    "tester_marks",
    md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("order_id", sa.Integer),
    sa.Column("note", sa.String(40)),
)


class Gate(Center):
    """Holds the order whose note is ``gate`` in order_pre_validate until opened."""

    name = "gate"
    after = ("catalog",)

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.open = threading.Event()

    @hookimpl
    def order_pre_validate(self, ctx: Any) -> None:
        if ctx.order.extra.get("note") == "gate":
            self.entered.set()
            assert self.open.wait(20)


class PerOrderCenter(Center):
    """A third-party center written for per-order placement: writes a row for every
    order in order_reserve, then refuses or raises by the order's note."""

    name = "tester"
    after = ("catalog", "payment")
    tables = md

    @hookimpl
    def order_pre_validate(self, ctx: Any) -> None:
        if ctx.order.extra.get("note") == "blocked":
            raise Rejected("customer is blocked", code="customer_blocked")

    @hookimpl
    def order_reserve(self, ctx: Any) -> None:
        note = ctx.order.extra.get("note", "")
        ctx.conn.execute(marks.insert().values(order_id=ctx.order.id, note=note))
        ctx.timeline("tester.reserved", "reserved", zh="已预留")
        ctx.emit("tester.reserved", {})
        if note == "no-coupon":
            raise Rejected("the coupon is used up", code="coupon_unavailable")
        if note == "boom":
            raise RuntimeError("tester fails for this order")


class Counting(Center):
    """Counts its order_reserve calls per customer outside the database, as a counter in
    Redis would: a call that is rolled back and made again counts twice."""

    name = "counting"
    after = ("catalog",)

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()

    @hookimpl
    def order_reserve(self, ctx: Any) -> None:
        with self.lock:
            self.calls[ctx.order.customer] += 1


def gated_shop(
    mallcore: Any, units: int = 100, extra: tuple[Any, ...] = (), writer: str = "caller"
) -> tuple[Shop, Gate]:
    gate = Gate()
    shop = Shop(
        mallcore,
        skus=[("HOT", 500, 0), ("TEE", 1999, 0)],
        warehouses=[("SH", "310000")],
        extra=(gate, *extra),
        config={"orders": {"combine": {"writer": writer}}},
    )
    shop.inbound("SH", "HOT", units)
    shop.inbound("SH", "TEE", 1000)
    return shop, gate


def body(lines: dict[str, int], note: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {
        "shop": "s1",
        "lines": [{"sku": s, "quantity": q} for s, q in lines.items()],
        "address": address(),
    }
    if note:
        out["note"] = note
    return out


def in_one_batch(
    shop: Shop, gate: Gate, requests: list[tuple[Any, dict[str, Any], dict[str, str]]]
) -> list[Any]:
    """Place ``requests`` (client, body, headers) as one batch, in this order of arrival."""
    combiner = shop.kernel.combiner
    assert combiner is not None
    gate.entered.clear()
    gate.open.clear()
    first = threading.Thread(target=lambda: shop.alice.post("/orders", json=body({"TEE": 1}, "gate")))
    first.start()
    assert gate.entered.wait(20)
    replies: list[Any] = [None] * len(requests)

    def send(i: int, client: Any, data: dict[str, Any], headers: dict[str, str]) -> None:
        replies[i] = client.post("/orders", json=data, headers=headers)

    threads = []
    for i, (client, data, headers) in enumerate(requests):
        th = threading.Thread(target=send, args=(i, client, data, headers))
        th.start()
        threads.append(th)
        deadline = time.monotonic() + 20
        while len(combiner._queue) < i + 1:
            assert time.monotonic() < deadline, "the request never reached the writer's queue"
            time.sleep(0.002)
    batches = combiner.batches
    gate.open.set()
    first.join()
    for th in threads:
        th.join()
    assert combiner.batches == batches + 1, "the waiting requests were not placed as one batch"
    return replies


def statements(kernel: Any, fn: Any) -> list[str]:
    with kernel.db.count_statements(keep=True) as counter:
        fn()
    return counter.statements


def test_hook_order_reserve_batch_takes_a_batchs_stock_in_one_update_per_sku(mallcore):
    shop, gate = gated_shop(mallcore)
    buyers = [mallcore.client(shop.kernel, "customer", f"b{i}") for i in range(6)]
    seen: list[str] = []
    replies = []
    seen = statements(
        shop.kernel,
        lambda: replies.extend(
            in_one_batch(shop, gate, [(c, body({"HOT": 2, "TEE": 1}), {}) for c in buyers])
        ),
    )
    assert [r.status_code for r in replies] == [201] * 6
    # The batch: one multi-row INSERT of orders, one of lines, one conditional UPDATE per SKU.
    batch = seen[seen.index(next(s for s in seen if s.startswith("SAVEPOINT mc_batch"))) :]
    assert sum(s.startswith("INSERT INTO orders") for s in batch) == 1
    assert sum(s.startswith("INSERT INTO order_lines") for s in batch) == 1
    assert sum(s.startswith("UPDATE wms_stock") for s in batch) == 1  # an executemany over the two SKUs
    assert shop.stock()[("HOT", "SH")]["reserved"] == 12
    for r in replies:
        held = shop.wms_order(r.json()["id"])
        assert held["reservations"] and {x["sku"] for x in held["reservations"]} == {"HOT", "TEE"}
    check_invariants(shop.kernel)


def test_a_batch_that_outgrows_the_stock_serves_the_earliest_arrivals(mallcore):
    shop, gate = gated_shop(mallcore, units=5)
    buyers = [mallcore.client(shop.kernel, "customer", f"b{i}") for i in range(5)]
    wants = [2, 2, 2, 1, 1]  # 5 units: 2 + 2 fit, the third (2) does not, then 1 fits, the last does not
    replies = in_one_batch(
        shop, gate, [(c, body({"HOT": q}), {}) for c, q in zip(buyers, wants, strict=True)]
    )
    assert [r.status_code for r in replies] == [201, 201, 409, 201, 409]
    refused = replies[2].json()
    assert refused["code"] == "out_of_stock" and "wanted 2, available 1" in refused["detail"]
    assert replies[4].json()["code"] == "out_of_stock"
    assert shop.stock()[("HOT", "SH")] == {
        "on_hand": 5,
        "reserved": 5,
        "available": 0,
        "b_grade": 0,
        "quarantine": 0,
    }
    placed = {r.json()["id"] for r in replies if r.status_code == 201}
    held = {order_id for order_id, _ in live_by_order(shop.kernel).items()}
    assert placed <= held and len(held) == len(placed) + 1  # and the gate's order
    check_invariants(shop.kernel)


@pytest.mark.parametrize("writer", ["caller", "thread", "async"])
def test_a_mixed_batch_commits_exactly_the_orders_that_succeed(mallcore, writer):
    """Success, a pre-validate refusal, out of stock, a coupon refusal in order_reserve and a
    center that raises for one order mid-batch: each client gets its own answer, and
    nothing of a refused order is written."""
    # The requests' own threads, one writer thread, or that thread with POST /orders on the event loop.
    shop, gate = gated_shop(mallcore, units=3, extra=(PerOrderCenter,), writer=writer)
    c = [mallcore.client(shop.kernel, "customer", f"b{i}") for i in range(8)]
    replies = in_one_batch(
        shop,
        gate,
        [
            (c[0], body({"HOT": 1}), {}),
            (c[1], body({"HOT": 1}, "blocked"), {}),
            (c[2], body({"NOPE": 1}), {}),
            (c[3], body({"HOT": 1}, "no-coupon"), {}),
            (c[4], body({"HOT": 1}, "boom"), {}),
            (c[5], body({"HOT": 2}), {}),  # 2 left after c[0]: fits
            (c[6], body({"HOT": 1}), {}),  # none left
            (c[7], body({"TEE": 3}), {}),
        ],
    )
    codes = [(r.status_code, r.json().get("code") if r.status_code != 201 else None) for r in replies]
    assert codes == [
        (201, None),
        (422, "customer_blocked"),
        (422, "sku_unknown"),
        (422, "coupon_unavailable"),
        (500, codes[4][1]),
        (201, None),
        (409, "out_of_stock"),
        (201, None),
    ]
    placed = [r.json()["id"] for r in replies if r.status_code == 201]
    with shop.kernel.db.transaction(write=False) as conn:
        rows = conn.execute(sa.select(kt.orders.c.id, kt.orders.c.extra)).all()
        batch_orders = {oid for oid, extra in rows if not extra}
        assert set(placed) <= batch_orders
        assert not any(extra and extra.get("note") in ("blocked", "no-coupon", "boom") for _, extra in rows)
        marked = set(conn.execute(sa.select(marks.c.order_id).where(marks.c.note == "")).scalars())
        assert set(placed) <= marked
        assert not conn.execute(sa.select(marks.c.id).where(marks.c.note.in_(["no-coupon", "boom"]))).first()
        events = conn.execute(sa.select(kt.outbox.c.order_id, kt.outbox.c.topic)).all()
        placed_events = {oid for oid, topic in events if topic == "order.placed"}
        assert set(placed) <= placed_events
        known = set(conn.execute(sa.select(kt.orders.c.id)).scalars())
        assert {oid for oid, _ in events} <= known
        lines_of = conn.execute(sa.select(kt.order_lines.c.order_id)).scalars().all()
        assert set(lines_of) == known
        timeline = (
            conn.execute(
                sa.select(kt.order_timeline.c.order_id).where(kt.order_timeline.c.kind == "tester.reserved")
            )
            .scalars()
            .all()
        )
        # One entry per placed order: the re-run after a refusal dropped the first round's.
        assert sorted(t for t in timeline if t in placed) == sorted(placed)
    for r in replies:
        if r.status_code == 201:
            order = shop.order(r.json()["id"])
            assert order["total"] == r.json()["total"] and order["lines"] == r.json()["lines"]
    assert shop.stock()[("HOT", "SH")]["reserved"] == 3
    assert set(live_by_order(shop.kernel)) >= set(placed)
    check_invariants(shop.kernel)


def test_order_reserve_runs_once_for_each_order_the_batch_hook_lets_through(mallcore):
    """WMS refuses some orders of a batch (out of stock): the others' order_reserve is not
    called again (a center counting outside the database counts each order once)."""
    counting = Counting()
    shop, gate = gated_shop(mallcore, units=5, extra=(counting, PerOrderCenter))
    buyers = [mallcore.client(shop.kernel, "customer", f"b{i}") for i in range(7)]
    wants = [{"HOT": 2}, {"HOT": 2}, {"HOT": 2}, {"HOT": 1}, {"HOT": 1}, {"TEE": 1}, {"HOT": 1, "TEE": 1}]
    replies = in_one_batch(shop, gate, [(c, body(w), {}) for c, w in zip(buyers, wants, strict=True)])
    assert [r.status_code for r in replies] == [201, 201, 409, 201, 409, 201, 409]
    placed = {f"b{i}" for i, r in enumerate(replies) if r.status_code == 201}
    assert {who: counting.calls[who] for who in placed} == dict.fromkeys(placed, 1)
    assert all(counting.calls[f"b{i}"] <= 1 for i in range(7))
    assert shop.kernel.combiner.redone == 0
    with shop.kernel.db.transaction(write=False) as conn:
        marked = Counter(conn.execute(sa.select(marks.c.order_id)).scalars())
        customers = dict(conn.execute(sa.select(kt.orders.c.id, kt.orders.c.customer)).all())
    ids = {r.json()["id"] for r in replies if r.status_code == 201}
    assert {oid: marked[oid] for oid in ids} == dict.fromkeys(ids, 1)
    assert not {customers.get(oid) for oid in marked} & {"b2", "b4", "b6"}
    assert shop.stock()[("HOT", "SH")]["reserved"] == 5
    check_invariants(shop.kernel)


def test_an_order_failing_in_order_reserve_leaves_its_stock_to_the_refused(mallcore):
    """An order that fails in order_reserve takes no stock: an order the batch hook first
    refused is tried again and gets it; every order_reserve still runs at most once."""
    counting = Counting()
    shop, gate = gated_shop(mallcore, units=3, extra=(counting, PerOrderCenter))
    buyers = [mallcore.client(shop.kernel, "customer", f"b{i}") for i in range(4)]
    replies = in_one_batch(
        shop,
        gate,
        [
            (buyers[0], body({"HOT": 1}), {}),
            (buyers[1], body({"HOT": 2}, "no-coupon"), {}),  # fails in order_reserve
            (buyers[2], body({"HOT": 2}), {}),  # refused by the trial, fits once b1 failed
            (buyers[3], body({"TEE": 1}), {}),
        ],
    )
    assert [r.status_code for r in replies] == [201, 422, 201, 201]
    assert replies[1].json()["code"] == "coupon_unavailable"
    assert counting.calls == Counter({"alice": 1, "b0": 1, "b1": 1, "b2": 1, "b3": 1})  # alice: the gate's
    assert shop.stock()[("HOT", "SH")]["reserved"] == 3
    check_invariants(shop.kernel)


@pytest.mark.parametrize("writer", ["caller", "async"])
def test_a_key_stored_by_another_request_meanwhile_takes_out_its_order_alone(mallcore, writer):
    """Two requests with one Idempotency-Key both pass the look-up; the first commits in one
    batch, the second's clash is seen only at the INSERT in the next batch: one order,
    both answer it, and the other order of that batch is placed, its hooks run once."""
    counting = Counting()
    shop, gate = gated_shop(mallcore, extra=(counting,), writer=writer)
    combiner = shop.kernel.combiner
    combiner.max_batch = 2  # the queue below: [alice, bob] then [alice again, carol]
    key = {"Idempotency-Key": "flash-1"}
    bob = mallcore.client(shop.kernel, "customer", "bob")
    carol = mallcore.client(shop.kernel, "customer", "carol")
    gate.entered.clear()
    gate.open.clear()
    first = threading.Thread(target=lambda: shop.alice.post("/orders", json=body({"TEE": 1}, "gate")))
    first.start()
    assert gate.entered.wait(20)
    requests = [(shop.alice, key), (bob, {}), (shop.alice, key), (carol, {})]
    replies: list[Any] = [None] * len(requests)

    def send(i: int, client: Any, headers: dict[str, str]) -> None:
        replies[i] = client.post("/orders", json=body({"HOT": 1}), headers=headers)

    threads = []
    for i, (client, headers) in enumerate(requests):
        th = threading.Thread(target=send, args=(i, client, headers))
        th.start()
        threads.append(th)
        deadline = time.monotonic() + 20
        while len(combiner._queue) < i + 1:
            assert time.monotonic() < deadline, "the request never reached the writer's queue"
            time.sleep(0.002)
    gate.open.set()
    first.join()
    for th in threads:
        th.join()
    assert combiner.batches == 2 and combiner.redone == 0
    assert [r.status_code for r in replies] == [201, 201, 201, 201]
    assert replies[2].json() == replies[0].json()
    assert replies[2].headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in replies[0].headers
    assert replies[3].json()["customer"] == "carol"
    assert counting.calls == Counter({"alice": 2, "bob": 1, "carol": 1})  # alice: the gate's order and hers
    with shop.kernel.db.transaction(write=False) as conn:
        customers = conn.execute(sa.select(kt.orders.c.customer)).scalars()
        assert sorted(customers) == ["alice", "alice", "bob", "carol"]  # the gate's, one of alice's
        stored = conn.execute(
            sa.select(kt.idempotency_keys.c.status_code, kt.idempotency_keys.c.response)
        ).all()
    assert len(stored) == 1 and stored[0][0] == 201 and stored[0][1] == replies[0].content
    assert shop.stock()[("HOT", "SH")]["reserved"] == 3
    check_invariants(shop.kernel)


@pytest.mark.parametrize("writer", ["caller", "async"])
def test_two_identical_idempotency_keys_in_one_batch_make_one_order(mallcore, writer):
    shop, gate = gated_shop(mallcore, writer=writer)
    key = {"Idempotency-Key": "same-key"}
    other = mallcore.client(shop.kernel, "customer", "bob")
    replies = in_one_batch(
        shop,
        gate,
        [
            (shop.alice, body({"HOT": 1}), key),
            (other, body({"HOT": 1}), {}),
            (shop.alice, body({"HOT": 1}), key),
        ],
    )
    assert [r.status_code for r in replies] == [201, 201, 201]
    assert replies[0].json() == replies[2].json()
    assert replies[2].headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in replies[0].headers
    with shop.kernel.db.transaction(write=False) as conn:
        extras = conn.execute(sa.select(kt.orders.c.extra).where(kt.orders.c.customer == "alice")).scalars()
        alice = sum(1 for extra in extras if not extra)
    assert alice == 1
    assert shop.stock()[("HOT", "SH")]["reserved"] == 2


def test_the_example_center_works_unchanged_with_combining(mallcore):
    from mallcore_fee import FeeCenter, charges

    shop, gate = gated_shop(mallcore, extra=(FeeCenter,))
    buyers = [mallcore.client(shop.kernel, "customer", f"b{i}") for i in range(4)]
    replies = in_one_batch(shop, gate, [(c, body({"TEE": 1}), {}) for c in buyers])
    assert [r.status_code for r in replies] == [201] * 4
    fee = shop.kernel.centers["fee"].settings.amount
    assert all(r.json()["total"] == 1999 + fee for r in replies)
    with shop.kernel.db.transaction(write=False) as conn:
        charged = set(conn.execute(sa.select(charges.c.order_id)).scalars())
    assert {r.json()["id"] for r in replies} <= charged


class Sharing(Center):
    """Notes, per order (by note), which ``ctx.shared`` dict its placement saw."""

    name = "sharing"
    after = ("catalog",)

    def __init__(self) -> None:
        self.seen: dict[str, dict[Any, Any]] = {}

    @hookimpl
    def order_price(self, ctx: Any) -> None:
        self.seen[ctx.order.extra.get("note", "")] = ctx.shared


def test_a_batchs_orders_share_their_reads_and_make_each_sku_lookup_once(mallcore):
    sharing = Sharing()
    shop, gate = gated_shop(mallcore, extra=(sharing,))
    buyers = [mallcore.client(shop.kernel, "customer", f"b{i}") for i in range(4)]
    wants = [{"HOT": 1}, {"HOT": 1, "TEE": 1}, {"TEE": 2}, {"HOT": 1, "NOPE": 1}]
    replies: list[Any] = []
    seen = statements(
        shop.kernel,
        lambda: replies.extend(
            in_one_batch(
                shop,
                gate,
                [(c, body(w, f"o{i}"), {}) for i, (c, w) in enumerate(zip(buyers, wants, strict=True))],
            )
        ),
    )
    assert [r.status_code for r in replies] == [201, 201, 201, 422]
    assert replies[3].json()["code"] == "sku_unknown"
    assert [r.json()["total"] for r in replies[:3]] == [500, 2499, 3998]
    # The gate's order alone (one lookup), then the batch: HOT, then TEE (HOT is known),
    # nothing for the third order, NOPE for the fourth (unknown SKUs are never taken as known).
    lookups = [s for s in seen if "FROM catalog_skus" in s]
    assert len(lookups) == 4
    batch = sharing.seen["o0"]
    assert all(sharing.seen[f"o{i}"] is batch for i in range(3))  # o3 is refused before pricing
    assert sharing.seen["gate"] is not batch
    # Placed alone later: a ctx.shared of its own.
    shop.placed({"TEE": 1})
    assert sharing.seen[""] is not batch and sharing.seen[""] is not sharing.seen["gate"]
    text = shop.kernel.metrics.render().decode()
    assert 'mallcore_placement_batch_orders_bucket{le="4.0"} 3.0' in text  # two alone, one of four
    assert "mallcore_placement_batch_orders_count 3.0" in text


def test_combining_is_on_by_default_and_config_turns_it_off(mallcore):
    on = mallcore.kernel()
    assert on.combiner is not None and on.combining()["enabled"] is True
    assert on.combining()["max_batch"] == 32
    off = mallcore.kernel(config={"orders": {"combine": {"enabled": False}}})
    assert off.combiner is None and off.orders.combined is None
    assert off.combining()["enabled"] is False
    shop = Shop(mallcore, skus=[("HOT", 500, 0)], warehouses=[("SH", "310000")])
    assert shop.kernel.combining()["batch_hook"] == ["wms"]


def test_a_lone_order_is_placed_at_once_without_a_savepoint(mallcore):
    shop, _ = gated_shop(mallcore)
    seen = statements(shop.kernel, lambda: shop.placed({"HOT": 1}))
    assert not any(s.startswith("SAVEPOINT") for s in seen)
    assert shop.kernel.combiner.batches == 0


# -- combined and one by one give the same result ---------------------------------------

STOCK = {"HOT": 6, "TEE": 9, "CAP": 3}
order_lines = st.dictionaries(
    st.sampled_from(["HOT", "TEE", "CAP", "NOPE"]), st.integers(1, 4), min_size=1, max_size=3
)
placements = st.lists(st.tuples(st.sampled_from(["ann", "bob", "cy"]), order_lines), min_size=1, max_size=12)


class Picky(Center):
    """A per-order center refusing, in order_reserve, cy's orders of more than one CAP (as a
    coupon check would): deterministic, so one by one and combined refuse the same orders.
    After WMS: an order out of stock too is refused for its stock first, one by one as when
    combined (where the batch hook's trial refuses it before any order_reserve runs)."""

    name = "picky"
    after = ("catalog", "wms")

    @hookimpl
    def order_reserve(self, ctx: Any) -> None:
        if ctx.order.customer == "cy" and any(line.sku == "CAP" and line.quantity > 1 for line in ctx.lines):
            raise Rejected("cy's coupon does not cover this", code="coupon_unavailable")


def stocked(mallcore: Any, stock: dict[str, int] | None = None) -> Shop:
    from mallcore_fee import FeeCenter

    shop = Shop(
        mallcore,
        skus=[("HOT", 500, 0), ("TEE", 1999, 0), ("CAP", 2500, 0)],
        warehouses=[("SH", "310000")],
        extra=(FeeCenter, Picky),
    )
    for sku, units in (stock or STOCK).items():
        shop.inbound("SH", sku, units)
    return shop


def one_by_one_and_combined(
    mallcore: Any, wanted: list[tuple[str, dict[str, int]]], stock: Any = None
) -> None:
    """Place ``wanted`` (customer, lines) one by one in one shop and as one batch in another:
    the same answers, orders, totals and stock."""
    requests = [
        (
            Principal(customer, frozenset({"customer"})),
            PlaceOrder(shop="s1", lines=[LineIn(sku=s, quantity=q) for s, q in lines.items()]),
        )
        for customer, lines in wanted
    ]
    alone, combined = stocked(mallcore, stock), stocked(mallcore, stock)
    one_by_one = []
    for principal, req in requests:
        try:
            one_by_one.append(alone.kernel.orders.place(principal, req))
        except Exception as exc:
            one_by_one.append(exc)
    assert combined.kernel.combiner is not None
    together = combined.kernel.combiner.together(requests)
    assert [outcome(a) for a in together] == [outcome(a) for a in one_by_one]
    assert combined.stock() == alone.stock()
    check_invariants(combined.kernel)
    placed = [a[0].id for a in together if not isinstance(a, BaseException)]
    assert set(live_by_order(combined.kernel)) == set(placed)


def outcome(answer: Any) -> Any:
    if isinstance(answer, BaseException):
        return (getattr(answer, "status", 500), getattr(answer, "code", type(answer).__name__))
    view = answer[0]
    lines = [(line.sku, line.quantity, line.unit_price, line.total) for line in view.lines]
    adjustments = [(a.source, a.amount, a.code) for a in view.adjustments]
    return (201, view.customer, view.total, lines, adjustments)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(placements)
def test_placing_combined_or_one_by_one_gives_the_same_orders_totals_and_stock(mallcore, wanted):
    one_by_one_and_combined(mallcore, wanted)


def test_stock_an_order_failing_in_order_reserve_leaves_goes_to_the_earliest_arrival(mallcore):
    """First come, first served, as one by one: cy's order takes no stock (refused in
    order_reserve), so bob's order of 3, which arrived before ann's of 1, gets the three CAPs
    and ann's is out of stock. (The batch hook's trial had given two to cy and one to ann, and
    refused bob.)"""
    one_by_one_and_combined(
        mallcore, [("cy", {"CAP": 2}), ("bob", {"CAP": 3}), ("ann", {"CAP": 1})], stock={"CAP": 3}
    )
    # every order the trial let through fails: the refused ones have all the stock again
    one_by_one_and_combined(mallcore, [("cy", {"CAP": 3}), ("cy", {"CAP": 3})], stock={"CAP": 3})


def test_the_async_place_route_keeps_auth_errors_request_ids_and_the_order_view(mallcore):
    """writer = "async" (the default on SQLite): POST /orders runs on the event loop and
    the writer thread places; auth, validation, request ids and the answer are as before."""
    shop = Shop(
        mallcore,
        skus=[("HOT", 500, 0)],
        warehouses=[("SH", "310000")],
        config={"orders": {"combine": {"writer": "async"}}},
    )
    assert shop.kernel.combining()["writer"] == "async"
    shop.inbound("SH", "HOT", 1)
    anonymous = mallcore.client(shop.kernel, None)
    r = anonymous.post("/orders", json=body({"HOT": 1}))
    assert r.status_code == 401 and r.json()["code"] == "unauthenticated"
    r = shop.alice.post("/orders", json={"shop": "s1", "lines": []})
    assert r.status_code in (400, 422) and r.json()["code"]
    r = shop.alice.post("/orders", json=body({"HOT": 1}), headers={"X-Request-ID": "req-async-1"})
    assert r.status_code == 201 and r.headers["x-request-id"] == "req-async-1"
    assert shop.order(r.json()["id"])["total"] == r.json()["total"] == 500
    again = shop.alice.post("/orders", json=body({"HOT": 1}))
    assert again.status_code == 409 and again.json()["code"] == "out_of_stock"
    with shop.kernel.db.transaction(write=False) as conn:
        placed = conn.execute(
            sa.select(kt.outbox.c.order_id).where(kt.outbox.c.topic == "order.placed")
        ).all()
    assert [oid for (oid,) in placed] == [r.json()["id"]]
    check_invariants(shop.kernel)


class ChangingStock(Center):
    """A batch hook whose answer changes between the trial and the hold, as when another
    transaction takes the stock in between: from its second call on, it refuses the
    order whose note is ``late``."""

    name = "changing"
    after = ("catalog",)

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def order_reserve_batch(self, conn: Any, intents: Any) -> None:
        if not any(i.order.extra.get("note") == "gate" for i in intents):
            self.calls += 1
        for intent in intents:
            if self.calls > 1 and intent.order.extra.get("note") == "late":
                intent.refuse(Rejected("sold meanwhile", code="sold_meanwhile"))


def test_a_hold_refusing_what_the_trial_accepted_redoes_the_batch_for_the_others(mallcore):
    """The one case where order_reserve runs twice (documented): the others are placed,
    the refused order answers its error and nothing of it is written."""
    counting, changing = Counting(), ChangingStock()
    shop, gate = gated_shop(mallcore, extra=(counting, changing))
    buyers = [mallcore.client(shop.kernel, "customer", f"b{i}") for i in range(3)]
    replies = in_one_batch(
        shop,
        gate,
        [
            (buyers[0], body({"HOT": 1}), {}),
            (buyers[1], body({"HOT": 1}, "late"), {}),
            (buyers[2], body({"TEE": 1}), {}),
        ],
    )
    assert [r.status_code for r in replies] == [201, 422, 201]
    assert replies[1].json()["code"] == "sold_meanwhile"
    assert shop.kernel.combiner.redone == 1
    assert counting.calls["b0"] == counting.calls["b2"] == 2 and counting.calls["b1"] == 1
    with shop.kernel.db.transaction(write=False) as conn:
        customers = sorted(conn.execute(sa.select(kt.orders.c.customer)).scalars())
    assert customers == ["alice", "b0", "b2"]
    assert shop.stock()[("HOT", "SH")]["reserved"] == 1
    check_invariants(shop.kernel)
