"""The rules of each campaign type and coupon kind: their shape, their checks, their words.

Amounts are minor units (fen). Percentages are whole percent *off*
(``10`` = 10% off, 打九折) and are applied as ``amount * percent / 100``
rounded to the nearest minor unit, a half going to the customer
(:func:`percent_of`). Every check raises :class:`InvalidInput` (422) with a
stable code before anything is written:

=============================  ====================================================
code                           when
=============================  ====================================================
``campaign_type_unknown``      ``type`` is not one of :data:`TYPES`
``rules_invalid``              ``rules`` do not fit the type (unknown or missing keys)
``amount_invalid``             an amount, quantity or limit is zero or negative
``threshold_below_discount``   a tier's (or coupon's) threshold is not above its discount
``tiers_invalid``              tiers not in rising order of threshold and discount
``percent_invalid``            a percent outside 1..99 (1..100 for the "get" units)
=============================  ====================================================
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from mallcore.kernel import InvalidInput, format_amount

TYPES = ("threshold_off", "percent_off", "flash_sale", "buy_x_get_y", "free_shipping")
# The order campaigns apply in: flash prices first (they replace the list price), then
# other 单品级 (item) offers, then 店铺级 (order) ones; coupons next; free shipping last.
LEVEL = {"flash_sale": 0, "buy_x_get_y": 1, "threshold_off": 2, "percent_off": 2, "free_shipping": 3}


class _Rules(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class Tier(_Rules):
    threshold: int
    off: int


class ThresholdOff(_Rules):
    """满减: the highest tier reached; ``repeat``: 每满 ``threshold`` 减 ``off``, at most ``cap``."""

    tiers: list[Tier]
    repeat: bool = False
    cap: int | None = None


class PercentOff(_Rules):
    """折扣: ``percent`` off the goods in scope, at most ``cap`` per order."""

    percent: int
    cap: int | None = None


class FlashSale(_Rules):
    """限时直降/秒杀: listed SKUs at ``price`` for ``quantity`` promotional units in all,
    ``per_customer`` each (none: no limit); ``beyond`` says what happens to units the
    sale cannot give (sold out, or the customer's limit reached)."""

    price: int
    quantity: int
    per_customer: int | None = None
    beyond: Literal["list_price", "refuse"] = "list_price"


class BuyXGetY(_Rules):
    """第二件半价 / buy X get Y: of every ``buy + get`` units in scope, the ``get``
    cheapest are ``percent_off_get`` percent off (100 = free)."""

    buy: int
    get: int
    percent_off_get: int = 100


class FreeShipping(_Rules):
    """包邮: the freight is waived when the goods in scope reach ``threshold``."""

    threshold: int


Rules = ThresholdOff | PercentOff | FlashSale | BuyXGetY | FreeShipping
RULES: dict[str, type[Rules]] = {
    "threshold_off": ThresholdOff,
    "percent_off": PercentOff,
    "flash_sale": FlashSale,
    "buy_x_get_y": BuyXGetY,
    "free_shipping": FreeShipping,
}


def _positive(value: int | None, what: str) -> None:
    if value is not None and value <= 0:
        raise InvalidInput(
            f"{what} must be positive (got {value})", code="amount_invalid", extra={"field": what}
        )


def _percent(value: int, what: str, top: int = 99) -> None:
    if not 1 <= value <= top:
        raise InvalidInput(
            f"{what} is a whole percent off between 1 and {top} (got {value})",
            code="percent_invalid",
            extra={"field": what},
        )


def parse_rules(kind: str, raw: Any) -> Rules:
    """The typed, checked rules of a campaign of type ``kind``."""
    if kind not in RULES:
        raise InvalidInput(
            f"unknown campaign type {kind!r} (known: {', '.join(TYPES)})", code="campaign_type_unknown"
        )
    try:
        rules = msgspec.convert(raw, RULES[kind])
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"rules of a {kind} campaign: {exc}", code="rules_invalid") from None
    check(rules)
    return rules


def check(rules: Rules) -> None:
    if isinstance(rules, ThresholdOff):
        if not rules.tiers or len(rules.tiers) > 10:
            raise InvalidInput("a threshold_off campaign has 1 to 10 tiers", code="rules_invalid")
        for i, tier in enumerate(rules.tiers):
            _positive(tier.threshold, f"tiers[{i}].threshold")
            _positive(tier.off, f"tiers[{i}].off")
            if tier.threshold <= tier.off:
                raise InvalidInput(
                    f"tier {i}: the threshold {tier.threshold} must be above the discount {tier.off}",
                    code="threshold_below_discount",
                )
        for low, high in zip(rules.tiers, rules.tiers[1:], strict=False):
            if not (high.threshold > low.threshold and high.off > low.off):
                raise InvalidInput(
                    "tiers rise: each threshold and each discount above the previous tier's",
                    code="tiers_invalid",
                )
        if rules.repeat and len(rules.tiers) != 1:
            raise InvalidInput(
                "a repeating threshold_off (每满减) has exactly one tier", code="tiers_invalid"
            )
        _positive(rules.cap, "cap")
        if rules.cap is not None and rules.cap < rules.tiers[0].off:
            raise InvalidInput("the cap is below the first tier's discount", code="rules_invalid")
    elif isinstance(rules, PercentOff):
        _percent(rules.percent, "percent")
        _positive(rules.cap, "cap")
    elif isinstance(rules, FlashSale):
        _positive(rules.price, "price")
        _positive(rules.quantity, "quantity")
        _positive(rules.per_customer, "per_customer")
    elif isinstance(rules, BuyXGetY):
        _positive(rules.buy, "buy")
        _positive(rules.get, "get")
        _percent(rules.percent_off_get, "percent_off_get", top=100)
        if rules.buy + rules.get > 100:
            raise InvalidInput("buy + get is at most 100 units", code="rules_invalid")
    else:
        _positive(rules.threshold, "threshold")


def percent_of(amount: int, percent: int) -> int:
    """``percent`` % of ``amount``, to the nearest minor unit; a half goes to the customer (up)."""
    return (amount * percent + 50) // 100


# -- words -------------------------------------------------------------------------


_DIGITS: dict[str, int] = {}


def money(amount: int, currency: str) -> str:
    """``23800`` -> ``"238.00"`` (the currency's decimals, no symbol)."""
    digits = _DIGITS.get(currency)
    if digits is None:
        # As many decimals as the kernel writes for the currency: "CNY 0.01" -> 2.
        digits = _DIGITS[currency] = len(format_amount(1, currency).partition(".")[2])
    if amount < 0:
        return "-" + money(-amount, currency)
    if digits == 2:
        return f"{amount // 100}.{amount % 100:02d}"
    return format_amount(amount, currency).split(" ", 1)[1]


def short(amount: int, currency: str) -> str:
    """``20000`` -> ``"200"``, ``9990`` -> ``"99.90"``: for rule labels like 满200减30."""
    text = money(amount, currency)
    whole, _, cents = text.partition(".")
    return whole if not cents.strip("0") else text


def tier_label(tier: Tier, currency: str, *, repeat: bool = False) -> str:
    head = "每满" if repeat else "满"
    return f"{head}{short(tier.threshold, currency)}减{short(tier.off, currency)}"


def label(rules: Rules, currency: str) -> str:
    """The rule as shoppers read it: 满200减30, 9折, 秒杀 9.99, 买1送1, 满99包邮."""
    if isinstance(rules, ThresholdOff):
        text = " / ".join(tier_label(t, currency, repeat=rules.repeat) for t in rules.tiers)
        return text + (f" (封顶{short(rules.cap, currency)})" if rules.cap else "")
    if isinstance(rules, PercentOff):
        tenths = 100 - rules.percent
        text = f"{tenths // 10}折" if tenths % 10 == 0 else f"{tenths / 10:g}折"
        return text + (f" (最多减{short(rules.cap, currency)})" if rules.cap else "")
    if isinstance(rules, FlashSale):
        return f"秒杀价 {money(rules.price, currency)}"
    if isinstance(rules, BuyXGetY):
        if rules.percent_off_get == 100:
            return f"买{rules.buy}送{rules.get}"
        if rules.buy == 1 and rules.get == 1 and rules.percent_off_get == 50:
            return "第二件半价"
        return f"买{rules.buy}件, {rules.get}件{(100 - rules.percent_off_get) / 10:g}折"
    return f"满{short(rules.threshold, currency)}包邮"
