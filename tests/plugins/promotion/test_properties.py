"""Properties over random carts, campaigns and coupons (Hypothesis): nothing below zero, every
discount explained to the fen, the best campaign of a group chosen, and preview = placement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mallcore.kernel import Adjustment, Line, Order, Phase
from mallcore.kernel.pricing import price
from mallcore.plugins.promotion.engine import CouponRefused, Pricer, flash_wanted
from mallcore.plugins.promotion.model import Coupon, Item, Offer
from mallcore.plugins.promotion.rules import RULES

from .support import Shop

SKUS = ["S1", "S2", "S3", "S4", "S5"]
NOW = datetime.now(UTC)


@st.composite
def items(draw: Any) -> list[Item]:
    skus = draw(st.lists(st.sampled_from(SKUS), min_size=1, max_size=5, unique=True))
    return [
        Item(
            line_no=i + 1,
            sku=sku,
            quantity=draw(st.integers(1, 4)),
            unit_price=draw(st.integers(0, 30_000)),
        )
        for i, sku in enumerate(skus)
    ]


def _rules(draw: Any, kind: str) -> dict[str, Any]:
    if kind == "threshold_off":
        first = draw(st.integers(1_000, 20_000))
        off = draw(st.integers(1, first - 1))
        tiers = [{"threshold": first, "off": off}]
        if draw(st.booleans()):
            tiers.append(
                {"threshold": first + draw(st.integers(1, 20_000)), "off": off + draw(st.integers(1, 5_000))}
            )
            return {"tiers": tiers}
        return {"tiers": tiers, "repeat": draw(st.booleans())}
    if kind == "percent_off":
        return {
            "percent": draw(st.integers(1, 99)),
            "cap": draw(st.one_of(st.none(), st.integers(1, 10_000))),
        }
    if kind == "flash_sale":
        return {"price": draw(st.integers(1, 20_000)), "quantity": 100}
    if kind == "buy_x_get_y":
        return {
            "buy": draw(st.integers(1, 3)),
            "get": draw(st.integers(1, 2)),
            "percent_off_get": draw(st.integers(1, 100)),
        }
    return {"threshold": draw(st.integers(1, 50_000))}


@st.composite
def offers(draw: Any, kinds: list[str] | None = None, group: str | None = None) -> list[Offer]:
    out = []
    for i in range(draw(st.integers(0 if kinds is None else 2, 5))):
        kind = draw(st.sampled_from(kinds or list(RULES)))
        skus = draw(st.lists(st.sampled_from(SKUS), max_size=3, unique=True))
        if kind in ("flash_sale", "buy_x_get_y") and not skus:
            skus = [SKUS[0]]
        out.append(
            Offer(
                id=i + 1,
                shop=draw(st.sampled_from(["s1", None])),
                name=f"c{i}",
                type=kind,
                rules=msgspec.convert(_rules(draw, kind), RULES[kind]),
                currency="CNY",
                starts_at=NOW - timedelta(days=1),
                ends_at=NOW + timedelta(days=1),
                skus=frozenset(skus),
                group=group or draw(st.sampled_from(["order", "g2", f"#{i + 1}"])),
                priority=draw(st.integers(-2, 2)),
            )
        )
    return out


@st.composite
def coupons(draw: Any) -> list[Coupon]:
    out = []
    for i, shop in enumerate(draw(st.lists(st.sampled_from(["s1", None]), max_size=2, unique=True))):
        kind = draw(st.sampled_from(["amount", "percent"]))
        out.append(
            Coupon(
                id=i + 1,
                code=f"CODE{i}",
                template_id=i + 1,
                name=f"coupon{i}",
                shop=shop,
                customer="alice",
                status="available",
                kind=kind,
                value=draw(st.integers(1, 5_000)) if kind == "amount" else draw(st.integers(1, 99)),
                cap=draw(st.one_of(st.none(), st.integers(1, 5_000))) if kind == "percent" else None,
                min_spend=draw(st.integers(0, 20_000)),
                currency="CNY",
                valid_from=None,
                valid_to=None,
                skus=frozenset(draw(st.lists(st.sampled_from(SKUS), max_size=2, unique=True))),
            )
        )
    return out


def run(
    cart: list[Item], campaigns: list[Offer], tickets: list[Coupon], freight: int
) -> tuple[Any, Order, list[Line], list[Adjustment]]:
    granted = {cid: dict(lines) for cid, lines in flash_wanted(cart, campaigns).items()}
    outcome = Pricer(cart, "CNY").run(campaigns, tickets, freight, granted)
    lines = [Line(sku=i.sku, quantity=i.quantity, unit_price=i.unit_price, line_no=i.line_no) for i in cart]
    adjustments = (
        [Adjustment(source="tms", reason="freight", amount=freight, phase=Phase.FREIGHT)] if freight else []
    )
    for cut in outcome.cuts:
        for line_no, amount in cut.parts:
            adjustments.append(
                Adjustment(
                    source="promotion",
                    reason=cut.reason,
                    amount=-amount,
                    phase=cut.phase,
                    line_no=line_no,
                    code=cut.code,
                )
            )
    order = Order(shop="s1", customer="alice", status="awaiting_payment", currency="CNY")
    applied = price(order, lines, adjustments)
    return outcome, order, lines, applied


@given(items(), offers(), coupons(), st.integers(0, 2_000))
@settings(max_examples=300, deadline=None)
def test_totals_never_go_below_zero_and_every_discount_is_explained_to_the_fen(
    cart, campaigns, tickets, freight
):
    try:
        outcome, order, lines, applied = run(cart, campaigns, tickets, freight)
    except CouponRefused as refused:
        assert refused.code in ("coupon_min_spend", "coupon_not_applicable", "coupon_not_stackable")
        return
    assert order.total >= 0 and all(line.total >= 0 for line in lines)
    assert sum(line.total for line in lines) == order.total
    for adj in applied:
        assert sum((adj.allocation or {}).values()) == adj.amount
    goods = [a for a in applied if a.phase in (Phase.PROMOTION, Phase.COUPON)]
    assert sum(a.amount for a in goods) == -order.discount
    # The engine never asks for more than the kernel lets it take: nothing is clamped.
    asked = sum(cut.amount for cut in outcome.cuts if cut.phase != Phase.SHIPPING_DISCOUNT)
    assert asked == order.discount
    for cut in outcome.cuts:
        assert cut.amount > 0 and sum(p for _, p in cut.parts) == cut.amount
    waived = sum(cut.amount for cut in outcome.cuts if cut.phase == Phase.SHIPPING_DISCOUNT)
    assert order.shipping == freight - waived >= 0


@given(items(), offers(kinds=["threshold_off", "percent_off", "buy_x_get_y", "flash_sale"], group="one"))
@settings(max_examples=300, deadline=None)
def test_of_a_stacking_group_the_campaign_best_for_the_customer_is_the_one_that_fires(cart, campaigns):
    campaigns = [msgspec.structs.replace(c, shop="s1") for c in campaigns]  # one owner: one group
    granted = {cid: dict(lines) for cid, lines in flash_wanted(cart, campaigns).items()}
    fired = Pricer(cart, "CNY").run(campaigns, granted=granted).cuts
    alone = [sum(c.amount for c in Pricer(cart, "CNY").run([m], granted=granted).cuts) for m in campaigns]
    assert len(fired) <= 1
    assert sum(c.amount for c in fired) == max(alone)
    if fired:
        best = [m for m, amount in zip(campaigns, alone, strict=True) if amount == max(alone)]
        # of equals, the higher priority, then the older campaign
        assert fired[0].campaign_id == min(best, key=lambda m: (-m.priority, m.id)).id


class _SharingAtOnce(Pricer):
    """The pricer as it was before order-level cuts waited: each shared over the lines as
    soon as it is taken."""

    def take(self, cut: Any) -> None:
        super().take(cut)
        self.running  # noqa: B018 (reading it shares out what waits)

    def take_clamped(self, line_no: int | None, amount: int) -> None:
        super().take_clamped(line_no, amount)
        self.running  # noqa: B018


@given(
    items(),
    offers(),
    coupons(),
    st.integers(0, 2_000),
    st.lists(st.tuples(st.sampled_from([None, 1, 2, 3]), st.integers(1, 5_000)), max_size=2),
)
@settings(max_examples=300, deadline=None)
def test_order_level_cuts_shared_late_give_exactly_what_sharing_each_at_once_gives(
    cart, campaigns, tickets, freight, others
):
    # Whole-order cuts are shared over the lines only when a later offer needs the lines
    # (a scoped offer, buy X get Y): every cut, reason and line must come out the same.
    granted = {cid: dict(lines) for cid, lines in flash_wanted(cart, campaigns).items()}
    outcomes = []
    for kind in (Pricer, _SharingAtOnce):
        pricer = kind([msgspec.structs.replace(i) for i in cart], "CNY")
        try:
            outcome = pricer.run(campaigns, tickets, freight, granted, others)
        except CouponRefused as refused:
            outcomes.append(("refused", refused.code, refused.detail))
            continue
        outcomes.append((msgspec.to_builtins(outcome), pricer.running, pricer.total))
    assert outcomes[0] == outcomes[1]
    if outcomes[0][0] != "refused":
        assert outcomes[0][2] == sum(outcomes[0][1])


def test_a_preview_prices_exactly_like_the_placement_that_follows(mallcore):
    shop = Shop(mallcore, skus=[(sku, 1000 + 2371 * i) for i, sku in enumerate(SKUS)])
    shop.campaign(
        "threshold_off", {"tiers": [{"threshold": 5000, "off": 700}, {"threshold": 15000, "off": 2500}]}
    )
    shop.campaign("percent_off", {"percent": 12, "cap": 1800}, skus=["S2", "S3"])
    shop.campaign("buy_x_get_y", {"buy": 2, "get": 1, "percent_off_get": 50}, skus=["S1", "S4"])
    shop.campaign("flash_sale", {"price": 999, "quantity": 10_000}, skus=["S5"])
    shop.campaign("threshold_off", {"tiers": [{"threshold": 20000, "off": 3000}]}, by=shop.admin, shop=None)
    codes = [
        shop.coupon(name="shop", min_spend=3000, value=800),
        shop.coupon(by=shop.admin, shop=None, kind="percent", value=5),
    ]
    alice = shop.customer()

    @given(
        st.lists(
            st.tuples(st.sampled_from(SKUS), st.integers(1, 4)),
            min_size=1,
            max_size=5,
            unique_by=lambda x: x[0],
        ),
        st.lists(st.sampled_from(codes), max_size=2, unique=True),
    )
    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    def check(lines: list[tuple[str, int]], chosen: list[str]) -> None:
        body = {"shop": "s1", "lines": [{"sku": s, "quantity": q} for s, q in lines], "coupons": chosen}
        preview = alice.post("/orders/preview", json=body)
        placed = alice.post("/orders", json=body)
        assume(preview.status_code == 200)
        assert placed.status_code == 201, placed.text
        p, o = preview.json(), placed.json()
        assert {k: p[k] for k in ("subtotal", "discount", "shipping", "total")} == {
            k: o[k] for k in ("subtotal", "discount", "shipping", "total")
        }
        assert [(a["code"], a["amount"], a["reason"]) for a in p["adjustments"]] == [
            (a["code"], a["amount"], a["reason"]) for a in o["adjustments"]
        ]
        assert alice.post(f"/orders/{o['id']}/cancel", json={}).status_code == 200  # coupons back

    check()
