"""Which campaigns and coupons fire on a cart, for how much, and why: pure, no database.

The stacking rule (Taobao/JD), in one place:

1. Campaigns apply before coupons, in levels: flash-sale prices, then other
   item offers (buy X get Y), then order offers (满减, 折扣). Each works on
   what the lines stand at after the levels before it, so 满200减30 counts
   the flash price, not the list price.
2. A stacking group (per owner: a shop's groups and the platform's are
   apart) gives at most one campaign. All of a group's live campaigns in
   scope are priced on the same basis and the one taking most off for the
   customer wins (ties: higher priority, then the older campaign). Groups
   are taken by level, then priority (higher first), then age.
3. Then at most one shop coupon and one platform coupon, the shop's first,
   each on what the goods stand at after the campaigns (its minimum spend
   too).
4. Last, free shipping: one waiver of the whole freight when the goods in a
   free-shipping campaign's scope reach its threshold after every discount.
5. Nothing goes below zero: a cut never exceeds what its lines stand at.

A discount on every line of the order is one order-level adjustment (the
kernel shares it over the lines); one on some lines only is split over
those lines here (largest remainder, by what each stands at) so that a
line outside the scope never carries any of it, and a refund of a line
gives back exactly its share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import attrgetter

from mallcore.kernel import Phase, allocate

from .model import Coupon, Cut, Hint, Item, Offer, Outcome, label_title
from .rules import LEVEL, BuyXGetY, FlashSale, FreeShipping, PercentOff, ThresholdOff, money, percent_of
from .rules import label as rule_label

Parts = list[tuple[int | None, int]]
X = "\u00d7"  # the multiplication sign, as in "2 x 199.00"


class CouponRefused(Exception):
    """A coupon the order names cannot be used on it; ``code`` says why."""

    def __init__(self, coupon: Coupon, code: str, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.coupon = coupon
        self.code = code
        self.detail = detail
        self.extra = extra


def flash_offer_for(item: Item, offers: Sequence[Offer]) -> Offer | None:
    """The flash sale pricing a line: the lowest flash price covering its SKU (older first)."""
    best: Offer | None = None
    for offer in offers:
        if offer.type != "flash_sale" or not offer.covers(item):
            continue
        rules = offer.rules
        assert isinstance(rules, FlashSale)
        if rules.price >= item.unit_price:
            continue  # never sells above the list price
        if best is None or rules.price < best.rules.price:  # type: ignore[union-attr]
            best = offer
    return best


def flash_wanted(items: Sequence[Item], offers: Sequence[Offer]) -> dict[int, list[tuple[int, int]]]:
    """Per flash campaign, the ``(line_no, units)`` asking for its price, in line order."""
    out: dict[int, list[tuple[int, int]]] = {}
    for item in items:
        offer = flash_offer_for(item, offers)
        if offer is not None:
            out.setdefault(offer.id, []).append((item.line_no, item.quantity))
    return out


class Pricer:
    """Prices one cart: ``Pricer(items, currency).run(offers, coupons, freight, granted)``."""

    def __init__(self, items: Sequence[Item], currency: str, *, hints: bool = True) -> None:
        self.items = list(items)
        self.currency = currency
        # What could still be unlocked is worded for previews only.
        self.hints = hints
        self.index = {item.line_no: i for i, item in enumerate(self.items)}
        # What each line stands at. Order-level cuts wait in ``_pending`` until something
        # needs the lines (a scoped offer, a buy-X-get-Y): a cart whose discounts are all
        # on the whole order never shares them out here (the kernel does, once).
        self._running = [item.unit_price * item.quantity for item in self.items]
        self._pending: list[int] = []
        self.total = sum(self._running)
        self.every = list(range(len(self.items)))

    @property
    def running(self) -> list[int]:
        """Each line's value now, order-level cuts shared out in the order they were taken."""
        if self._pending:
            running = self._running
            for amount in self._pending:
                running = [r - part for r, part in zip(running, allocate(amount, running), strict=True)]
            self._running = running
            self._pending.clear()
        return self._running

    def base(self, eligible: list[int]) -> int:
        """What the ``eligible`` lines stand at together."""
        if len(eligible) == len(self.items):
            return self.total
        running = self.running
        return sum(running[i] for i in eligible)

    # -- the run ---------------------------------------------------------------------

    def run(
        self,
        offers: Sequence[Offer],
        coupons: Sequence[Coupon] = (),
        freight: int = 0,
        granted: Mapping[int, Mapping[int, int]] | None = None,
        others: Sequence[tuple[int | None, int]] = (),
    ) -> Outcome:
        """``granted``: per flash campaign, promotional units per line number it gave;
        ``others``: discounts other centers give between campaigns and coupons (member
        prices), as ``(line_no or None, amount off)``, so coupons see what is left."""
        out = Outcome()
        granted = granted or {}
        groups: dict[tuple[str, str], list[Offer]] = {}
        shipping: list[Offer] = []
        for offer in sorted(offers, key=_RANK):
            if offer.level == _SHIPPING_LEVEL:
                shipping.append(offer)
            else:
                groups.setdefault(offer.group_key, []).append(offer)
        no_units: Mapping[int, int] = {}
        for members in groups.values():
            if len(members) == 1:  # the usual case: nothing to choose between
                offer = members[0]
                best = self.price_offer(offer, granted.get(offer.id, no_units), out.hints)
                if best is None or best.amount <= 0:
                    continue
            else:
                priced = []
                for offer in members:
                    cut = self.price_offer(offer, granted.get(offer.id, no_units), out.hints)
                    if cut is not None and cut.amount > 0:
                        priced.append((cut.amount, offer.priority, -offer.id, cut))
                if not priced:
                    continue
                # the most off; of equals, the higher priority, then the older campaign
                best = max(priced, key=lambda p: p[:3])[3]
            self.take(best)
            out.cuts.append(best)
            if best.units:
                out.flash[best.campaign_id or 0] = best.units
        for line_no, amount in others:
            self.take_clamped(line_no, amount)
        shop_coupons = [c for c in coupons if c.shop is not None]
        platform_coupons = [c for c in coupons if c.shop is None]
        for group in (shop_coupons, platform_coupons):
            if len(group) > 1:
                raise CouponRefused(
                    group[1],
                    "coupon_not_stackable",
                    f"one {'shop' if group[1].shop else 'platform'} coupon per order",
                )
        for coupon in shop_coupons + platform_coupons:
            cut = self.price_coupon(coupon)
            self.take(cut)
            out.cuts.append(cut)
        self.waive_freight(shipping, freight, out)
        return out

    def take(self, cut: Cut) -> None:
        for line_no, amount in cut.parts:
            self.total -= amount
            if line_no is None:
                self._pending.append(amount)
            else:
                self.running[self.index[line_no]] -= amount

    def take_clamped(self, line_no: int | None, amount: int) -> None:
        if line_no is None:
            amount = min(amount, self.total)
            self.total -= amount
            self._pending.append(amount)
        elif line_no in self.index:
            running = self.running
            i = self.index[line_no]
            amount = min(amount, running[i])
            running[i] -= amount
            self.total -= amount

    # -- campaigns ---------------------------------------------------------------------

    def scope(self, scoped: Offer | Coupon) -> list[int]:
        skus, categories = scoped.skus, scoped.categories
        if not skus and not categories:
            return self.every
        if not categories:
            return [i for i, item in enumerate(self.items) if item.sku in skus]
        return [
            i
            for i, item in enumerate(self.items)
            if item.sku in skus or not categories.isdisjoint(item.categories)
        ]

    def split(self, amount: int, eligible: list[int]) -> Parts:
        """One order-level part when every line is eligible, else a part per eligible line."""
        if len(eligible) == len(self.items):
            return [(None, amount)]
        shares = allocate(amount, [self.running[i] for i in eligible])
        return [(self.items[i].line_no, part) for i, part in zip(eligible, shares, strict=True) if part]

    def price_offer(self, offer: Offer, granted: Mapping[int, int], hints: list[Hint]) -> Cut | None:
        rules = offer.rules
        eligible = self.scope(offer)
        if not eligible:
            return None
        base = self.base(eligible)
        cur = self.currency
        parts: Parts
        if isinstance(rules, FlashSale):
            parts, units, worded = [], 0, []
            for i in eligible:
                item = self.items[i]
                n = granted.get(item.line_no, 0)
                cut = min(self.running[i], max(0, item.unit_price - rules.price) * n)
                if cut > 0:
                    parts.append((item.line_no, cut))
                    units += n
                    worded.append(
                        f"{item.sku} {n} {X} {money(rules.price, cur)} (list {money(item.unit_price, cur)})"
                    )
            if not parts:
                return None
            return self._cut(offer, f"flash price: {', '.join(worded)}", parts, units=units)
        if isinstance(rules, BuyXGetY):
            units_at: list[tuple[int, int, int]] = []  # (value, position, index)
            for i in eligible:
                for value in _unit_values(self.running[i], self.items[i].quantity):
                    units_at.append((value, i, len(units_at)))
            size = rules.buy + rules.get
            free = (len(units_at) // size) * rules.get
            if not free:
                return None
            by_line: dict[int, int] = {}
            for value, i, _ in sorted(units_at)[:free]:
                by_line[i] = by_line.get(i, 0) + percent_of(value, rules.percent_off_get)
            parts = [(self.items[i].line_no, amount) for i, amount in sorted(by_line.items()) if amount]
            if not parts:
                return None
            why = f"{len(units_at)} units in scope, {free} at {rules.percent_off_get}% off"
            return self._cut(offer, why, parts)
        if isinstance(rules, ThresholdOff):
            return self._threshold(offer, rules, base, eligible, hints)
        if isinstance(rules, PercentOff):
            amount = min(percent_of(base, rules.percent), base)
            why = f"{rules.percent}% off {money(base, cur)}"
            if rules.cap is not None and amount > rules.cap:
                amount = rules.cap
                why += f", capped at {money(rules.cap, cur)}"
            if amount <= 0:
                return None
            return self._cut(offer, why, self.split(amount, eligible))
        return None

    def _threshold(
        self, offer: Offer, rules: ThresholdOff, base: int, eligible: list[int], hints: list[Hint]
    ) -> Cut | None:
        cur = self.currency
        tiers = rules.tiers
        reached = 0  # tiers rise
        while reached < len(tiers) and base >= tiers[reached].threshold:
            reached += 1
        if reached < len(tiers) and not rules.repeat and self.hints:
            nxt = tiers[reached]
            self._hint(hints, offer, nxt.threshold - base, offer.tier_words[reached][0], nxt.threshold)
        if rules.repeat:
            tier = tiers[0]
            times = base // tier.threshold
            if times < 1:
                if self.hints:
                    self._hint(hints, offer, tier.threshold - base, offer.tier_words[0][0], tier.threshold)
                return None
            amount = times * tier.off
            why = f"subtotal {money(base, cur)} ≥ {money(tier.threshold, cur)} {X} {times}"
            if rules.cap is not None and amount > rules.cap:
                amount = rules.cap
                why += f", capped at {money(rules.cap, cur)}"
            head = offer.tier_words[0][1]
        else:
            if not reached:
                return None
            tier = tiers[reached - 1]
            amount = tier.off
            why = f"subtotal {money(base, cur)} ≥ {money(tier.threshold, cur)}"
            head = offer.tier_words[reached - 1][1]
        amount = min(amount, base)
        return self._cut(offer, why, self.split(amount, eligible), head=head)

    def _cut(self, offer: Offer, why: str, parts: Parts, *, units: int = 0, head: str | None = None) -> Cut:
        return Cut(
            code=offer.code,
            reason=_clip(f"{head or self._head(offer)}: {why}"),
            amount=parts[0][1] if len(parts) == 1 else sum(p for _, p in parts),
            phase=Phase.PROMOTION,
            funded_by=offer.funded_by,
            parts=parts,
            campaign_id=offer.id,
            units=units,
        )

    def _head(self, offer: Offer) -> str:
        """The campaign's name and its rule: "Double 11 (9折)"."""
        return offer.title or title(offer.name, rule_label(offer.rules, self.currency))

    def _hint(self, hints: list[Hint], offer: Offer, short_by: int, label: str, threshold: int) -> None:
        if not self.hints:
            return
        amount = money(short_by, self.currency)
        hints.append(
            Hint(
                en=f"add {amount} more for {label}",
                zh=f"再买 {amount} 元可享{label}",
                code=offer.code,
                data={"campaign_id": offer.id, "short_by": short_by, "threshold": threshold, "rule": label},
            )
        )

    # -- coupons -------------------------------------------------------------------------

    def price_coupon(self, coupon: Coupon) -> Cut:
        cur = self.currency
        eligible = self.scope(coupon)
        base = self.base(eligible)
        if not eligible:
            raise CouponRefused(
                coupon, "coupon_not_applicable", "no goods of this order are in the coupon's scope"
            )
        if base < coupon.min_spend:
            raise CouponRefused(
                coupon,
                "coupon_min_spend",
                f"the coupon needs {money(coupon.min_spend, cur)} of goods in its scope; "
                f"this order has {money(base, cur)}",
                min_spend=coupon.min_spend,
                short_by=coupon.min_spend - base,
            )
        if coupon.kind == "percent":
            amount = percent_of(base, coupon.value)
            why = f"{coupon.value}% off {money(base, cur)}"
            if coupon.cap is not None and amount > coupon.cap:
                amount = coupon.cap
                why += f", capped at {money(coupon.cap, cur)}"
        else:
            amount = coupon.value
            why = f"{money(coupon.value, cur)} off"
        if coupon.min_spend:
            why += f", goods {money(base, cur)} ≥ {money(coupon.min_spend, cur)}"
        amount = min(amount, base)
        if amount <= 0:
            raise CouponRefused(
                coupon, "coupon_not_applicable", "the goods in the coupon's scope cost nothing already"
            )
        return Cut(
            code=coupon.adjustment_code,
            reason=_clip(f"coupon {coupon.name}: {why}"),
            amount=amount,
            phase=Phase.COUPON,
            funded_by=coupon.funded_by,
            parts=self.split(amount, eligible),
            template_id=coupon.template_id,
            coupon_id=coupon.id,
        )

    # -- free shipping ---------------------------------------------------------------------

    def waive_freight(self, offers: Sequence[Offer], freight: int, out: Outcome) -> None:
        if freight <= 0 or not offers:
            return
        cur = self.currency
        closest: tuple[int, Offer] | None = None
        # The shop's own promise first, then by priority and age.
        for offer in sorted(offers, key=lambda o: (o.shop is None, -o.priority, o.id)):
            rules = offer.rules
            assert isinstance(rules, FreeShipping)
            eligible = self.scope(offer)
            if not eligible:
                continue
            base = self.base(eligible)
            if base >= rules.threshold:
                why = f"goods {money(base, cur)} ≥ {money(rules.threshold, cur)}, freight {money(freight, cur)} waived"
                out.cuts.append(
                    Cut(
                        code=offer.code,
                        reason=_clip(f"{self._head(offer)}: {why}"),
                        amount=freight,
                        phase=Phase.SHIPPING_DISCOUNT,
                        funded_by=offer.funded_by,
                        parts=[(None, freight)],
                        campaign_id=offer.id,
                    )
                )
                return
            if closest is None or rules.threshold - base < closest[0]:
                closest = (rules.threshold - base, offer)
        if closest is not None and self.hints:
            short_by, offer = closest
            amount = money(short_by, cur)
            threshold = offer.rules.threshold  # type: ignore[union-attr]
            out.hints.append(
                Hint(
                    en=f"add {amount} more for free shipping",
                    zh=f"再买 {amount} 元可享包邮",
                    code=offer.code,
                    data={
                        "campaign_id": offer.id,
                        "short_by": short_by,
                        "threshold": threshold,
                        "rule": "包邮",
                    },
                )
            )


def _unit_values(amount: int, quantity: int) -> list[int]:
    """What each of ``quantity`` equal units of a line standing at ``amount`` is worth:
    ``allocate(amount, [1] * quantity)`` (the first units carry the remainder), without
    the general rule's work."""
    if quantity < 1 or amount < 0:
        return allocate(amount, [1] * quantity)
    each, extra = divmod(amount, quantity)
    return [each + 1] * extra + [each] * (quantity - extra)


title = label_title  # "name (rule)"
_RANK = attrgetter("rank")
_SHIPPING_LEVEL = LEVEL["free_shipping"]


def _clip(reason: str) -> str:
    return reason if len(reason) <= 300 else reason[:299] + "…"
