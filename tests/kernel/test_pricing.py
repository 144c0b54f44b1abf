import random

from hypothesis import given, settings
from hypothesis import strategies as st

from mallcore.kernel import Adjustment, Line, Order, Phase
from mallcore.kernel.pricing import price

PHASES = [int(p) for p in Phase]


@st.composite
def carts(draw):
    n = draw(st.integers(min_value=1, max_value=8))
    lines = [
        Line(
            sku=f"S{i}",
            quantity=draw(st.integers(min_value=1, max_value=20)),
            unit_price=draw(st.integers(min_value=0, max_value=100_000)),
            line_no=i + 1,
        )
        for i in range(n)
    ]
    adjustments = []
    for _ in range(draw(st.integers(min_value=0, max_value=8))):
        phase = draw(st.sampled_from(PHASES))
        amount = draw(st.integers(min_value=-500_000, max_value=50_000))
        adjustments.append(
            Adjustment(
                source=draw(st.sampled_from(["promotion", "membership", "tms", "fee"])),
                reason="r",
                # a freight waiver is a negative amount by definition
                amount=-abs(amount) if phase == Phase.SHIPPING_DISCOUNT else amount,
                phase=phase,
                line_no=draw(st.one_of(st.none(), st.integers(min_value=1, max_value=n))),
            )
        )
    return lines, adjustments


def _order():
    return Order(shop="s1", customer="c", status="awaiting_payment", currency="CNY")


@given(carts())
@settings(max_examples=300)
def test_lines_always_sum_to_the_order_and_never_go_negative(cart):
    lines, adjustments = cart
    order = _order()
    applied = price(order, lines, adjustments)
    assert sum(line.total for line in lines) == order.total
    for line in lines:
        assert line.total >= 0
        assert line.shipping >= 0
        assert line.total == line.subtotal - line.discount + line.shipping + line.fees
    assert order.total == order.subtotal - order.discount + order.shipping + order.fees
    # Every applied adjustment is fully explained by its allocation to lines.
    for adj in applied:
        assert sum(adj.allocation.values()) == adj.amount
    assert order.subtotal + sum(a.amount for a in applied) == order.total


@given(carts(), st.randoms(use_true_random=False))
@settings(max_examples=200)
def test_money_does_not_depend_on_the_order_centers_were_called(cart, rnd: random.Random):
    lines, adjustments = cart
    # Centers are called in plugin order; reorder whole groups of one center
    # and phase (within a center, its own order is its business).
    groups: dict = {}
    for a in adjustments:
        groups.setdefault((a.phase, a.source), []).append(a)
    keys = list(groups)
    rnd.shuffle(keys)
    reordered = [a for k in keys for a in groups[k]]
    lines_a = [l.__copy__() for l in lines]
    lines_b = [l.__copy__() for l in lines]
    order_a, order_b = _order(), _order()
    price(order_a, lines_a, [a.__copy__() for a in adjustments])
    price(order_b, lines_b, reordered)
    assert order_a.total == order_b.total
    assert [l.total for l in lines_a] == [l.total for l in lines_b]


def test_an_order_level_discount_is_shared_by_line_value():
    lines = [
        Line(sku="A", quantity=1, unit_price=3000, line_no=1),
        Line(sku="B", quantity=1, unit_price=1000, line_no=2),
    ]
    order = _order()
    price(
        order,
        lines,
        [Adjustment(source="promotion", reason="spend 40 save 10", amount=-1000, phase=Phase.PROMOTION)],
    )
    assert [line.discount for line in lines] == [750, 250]
    assert order.total == 3000


def test_a_discount_larger_than_the_order_is_clamped_to_zero():
    lines = [Line(sku="A", quantity=2, unit_price=500, line_no=1)]
    order = _order()
    applied = price(
        order, lines, [Adjustment(source="promotion", reason="x", amount=-5000, phase=Phase.PROMOTION)]
    )
    assert order.total == 0
    assert applied[0].amount == -1000


def test_freight_is_booked_as_shipping_and_fees_as_fees():
    lines = [
        Line(sku="A", quantity=1, unit_price=1000, line_no=1),
        Line(sku="B", quantity=3, unit_price=1000, line_no=2),
    ]
    order = _order()
    price(
        order,
        lines,
        [
            Adjustment(source="tms", reason="freight", amount=800, phase=Phase.FREIGHT),
            Adjustment(source="fee", reason="wrap", amount=100, phase=Phase.FEE, line_no=1),
        ],
    )
    assert (order.shipping, order.fees, order.total) == (800, 100, 4900)
    assert [line.shipping for line in lines] == [200, 600]


def test_a_freight_waiver_cancels_shipping_and_leaves_the_goods_value_alone():
    lines = [
        Line(sku="A", quantity=1, unit_price=6000, line_no=1),
        Line(sku="B", quantity=1, unit_price=4000, line_no=2),
    ]
    order = _order()
    applied = price(
        order,
        lines,
        [
            Adjustment(source="promotion", reason="满100减10", amount=-1000, phase=Phase.PROMOTION),
            Adjustment(source="tms", reason="freight", amount=1000, phase=Phase.FREIGHT),
            # more than the freight: only the freight is waived
            Adjustment(source="promotion", reason="包邮", amount=-5000, phase=Phase.SHIPPING_DISCOUNT),
        ],
    )
    assert (order.shipping, order.discount, order.total) == (0, 1000, 9000)
    assert [line.shipping for line in lines] == [0, 0]
    # what a refund of the goods gives back (total less shipping) is the discounted goods
    assert [line.total - line.shipping for line in lines] == [5400, 3600]
    assert applied[-1].amount == -1000
    # shared as the freight was: 600 and 400
    assert applied[-1].allocation == {1: -600, 2: -400}


def test_a_freight_waiver_with_no_freight_waives_nothing():
    lines = [Line(sku="A", quantity=1, unit_price=6000, line_no=1)]
    order = _order()
    applied = price(
        order,
        lines,
        [Adjustment(source="promotion", reason="包邮", amount=-800, phase=Phase.SHIPPING_DISCOUNT)],
    )
    assert (order.total, applied) == (6000, [])


def test_a_freight_waiver_after_a_negative_freight_adjustment_never_takes_a_line_below_zero():
    # found by Hypothesis: freight +1, a freight-phase -1 (booked as a discount), then a waiver
    lines = [Line(sku="A", quantity=1, unit_price=0, line_no=1)]
    order = _order()
    price(
        order,
        lines,
        [
            Adjustment(source="membership", reason="freight", amount=1, phase=Phase.FREIGHT),
            Adjustment(source="promotion", reason="freight rebate", amount=-1, phase=Phase.FREIGHT),
            Adjustment(source="promotion", reason="包邮", amount=-1, phase=Phase.SHIPPING_DISCOUNT),
            Adjustment(source="fee", reason="wrap", amount=0, phase=Phase.FEE),
        ],
    )
    assert order.total == 0
    assert lines[0].total >= 0
