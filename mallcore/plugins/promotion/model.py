"""Plain data the promotion center works with: offers, coupons, lines, cuts. Touches no database."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from .rules import LEVEL, Rules, ThresholdOff, tier_label


def label_title(name: str, label: str) -> str:
    """A reason's head: the campaign's name and the rule that fired, "Double 11 (满200减30)"."""
    return name if label in name else f"{name} ({label})"


class Item(msgspec.Struct, kw_only=True):
    """An order line as pricing sees it."""

    line_no: int
    sku: str
    quantity: int
    unit_price: int
    # the catalog category of the line's product and every category above it
    categories: frozenset[int] = frozenset()


class _Scoped(msgspec.Struct, frozen=True, kw_only=True):
    skus: frozenset[str] = frozenset()
    categories: frozenset[int] = frozenset()

    @property
    def whole(self) -> bool:
        return not self.skus and not self.categories

    def covers(self, item: Item) -> bool:
        """Whole shop, or the item's SKU is listed, or one of its categories is."""
        if self.whole:
            return True
        return item.sku in self.skus or not self.categories.isdisjoint(item.categories)


class Offer(_Scoped, frozen=True, kw_only=True):
    """A campaign as cached per process.

    What pricing asks of it on every order (its code, funder, level, group,
    the words of its tiers) is worked out once, when it is built.
    """

    id: int
    shop: str | None  # None: the platform's
    name: str
    type: str
    rules: Rules
    currency: str
    starts_at: datetime
    ends_at: datetime
    group: str
    priority: int = 0
    # "name (rule)" as reasons start, worked out once when cached
    title: str = ""
    # -- derived in __post_init__ (never given) --
    code: str = ""
    funded_by: str = ""
    level: int = 0
    # Groups are per owner: a platform campaign never shuts out a shop's of the same name.
    group_key: tuple[str, str] = ("", "")
    # the order pricing takes campaigns in: level, then higher priority, then older
    rank: tuple[int, int, int] = (0, 0, 0)
    # threshold_off: per tier, its label (满200减30) and the reason's head "name (label)"
    tier_words: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        level = LEVEL[self.type]
        derived: dict[str, Any] = {
            "code": f"campaign:{self.id}",
            "funded_by": "platform" if self.shop is None else "shop",
            "level": level,
            "group_key": (self.shop or "*", self.group),
            "rank": (level, -self.priority, self.id),
        }
        rules = self.rules
        if isinstance(rules, ThresholdOff):
            words = []
            for tier in rules.tiers:
                label = tier_label(tier, self.currency, repeat=rules.repeat)
                words.append((label, label_title(self.name, label)))
            derived["tier_words"] = tuple(words)
        for key, value in derived.items():
            msgspec.structs.force_setattr(self, key, value)

    def live(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at


class Terms(_Scoped, frozen=True, kw_only=True):
    """A coupon template's terms, as cached per process."""

    id: int
    shop: str | None  # None: a platform coupon
    name: str
    kind: str  # amount | percent
    value: int
    cap: int | None
    min_spend: int
    currency: str


class Coupon(_Scoped, frozen=True, kw_only=True):
    """A coupon named by an order, with its template's terms."""

    id: int
    code: str
    template_id: int
    name: str
    shop: str | None  # None: a platform coupon
    customer: str | None
    status: str
    kind: str  # amount | percent
    value: int
    cap: int | None
    min_spend: int
    currency: str
    valid_from: datetime | None
    valid_to: datetime | None
    order_id: int | None = None

    @property
    def adjustment_code(self) -> str:
        return f"coupon:{self.code}"

    @property
    def funded_by(self) -> str:
        return "platform" if self.shop is None else "shop"


class Cut(msgspec.Struct, kw_only=True):
    """A discount decided: ``amount`` off (positive), split into ``parts``.

    ``parts`` are ``(line_no, amount)``; a ``None`` line is one order-level
    adjustment the kernel allocates over every line.
    """

    code: str
    reason: str
    amount: int
    phase: int
    funded_by: str
    parts: list[tuple[int | None, int]]
    campaign_id: int | None = None
    template_id: int | None = None
    coupon_id: int | None = None
    units: int = 0


class Hint(msgspec.Struct, kw_only=True):
    en: str
    zh: str
    code: str
    data: dict[str, Any]


class Outcome(msgspec.Struct, kw_only=True):
    cuts: list[Cut] = msgspec.field(default_factory=list)
    hints: list[Hint] = msgspec.field(default_factory=list)
    # flash-sale units each campaign gave this order
    flash: dict[int, int] = msgspec.field(default_factory=dict)
