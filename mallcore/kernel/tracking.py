"""The customer's tracking page: an order as a shopper reads it, and what centers add.

``GET /track/{order_id}?token=...`` (:mod:`.http.tracking`) needs no login:
the link the customer gets (``kernel.tracking_url``) is signed. It shows only
what the customer may see: public timeline entries, no internal notes, no
staff names. The kernel draws the order (shop, delivery address with the
phone masked, goods, price breakdown, the order's own history); each center
adds its sections through the ``tracking_page`` hook (TMS its parcels, the
after-sale center its cases, WMS fills in return addresses through the case).

A center builds :class:`Card` objects from :class:`TrackingPage`'s helpers,
so that every center writes times, amounts and texts alike: times in the
shop's time zone (``[shop] timezone``), amounts as ``¥158.00``, one language.

One entry per event: a timeline entry a center shows in its own card is
*claimed* (:meth:`TrackingPage.claim`) and left out of the order history; a
refund made for an object (``Refund.ref``, e.g. an after-sale case) follows
that object; and an entry another center wrote on the same object that
caused the owner's step, or was caused by it, is an echo of it and is folded
into it (``finance.refund_approved`` that paid ``refund.refunded``; the
carrier scan that moved a case; the waybill TMS registered when the customer
filed it). Causes are links the writing centers record
(:meth:`~mallcore.kernel.context.OrderContext.because`), never closeness in
time: a genuine carrier scan half a second after a case step is shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import msgspec
import sqlalchemy as sa

from . import tables as t
from .i18n import text
from .money import format_amount
from .regions import region_name

if TYPE_CHECKING:
    from .schemas import TimelineView
    from .types import Address, Adjustment, Line, Order, Shop


class Step(msgspec.Struct, kw_only=True):
    """One entry of a card's history: when (already in the shop's time zone) and what."""

    at: str
    text: str


class Fact(msgspec.Struct, kw_only=True):
    """A labelled line of a card: ``label: value``.

    ``kind`` names it for styling and tests (``class="fact <kind>"``); ``href``
    makes the value a link; ``lines`` are shown one under another (an address).
    """

    label: str
    value: str = ""
    kind: str = ""
    href: str | None = None
    lines: list[str] = msgspec.field(default_factory=list)


class Card(msgspec.Struct, kw_only=True):
    """One thing the customer follows (a parcel, an after-sale case), with its history.

    ``key`` is the card's HTML id, ``status`` a stable code (``data-status``),
    ``badge`` the status as the customer reads it, ``note`` a muted line
    under the title, ``steps`` newest first.
    """

    key: str
    title: str
    badge: str = ""
    status: str = ""
    note: str = ""
    facts: list[Fact] = msgspec.field(default_factory=list)
    steps: list[Step] = msgspec.field(default_factory=list)


class Section(msgspec.Struct, kw_only=True):
    """A block of the page: parcels, after-sale cases... ``rank`` orders them (lower first)."""

    key: str
    title: str
    rank: int = 50
    empty: str = ""
    cards: list[Card] = msgspec.field(default_factory=list)


def mask_phone(phone: str) -> str:
    """``13812341234`` -> ``138****1234``: what a page shows of a phone number."""
    digits = phone.strip()
    if len(digits) >= 7:
        return f"{digits[:3]}****{digits[-4:]}"
    return "*" * len(digits)


def _link(entry: TimelineView, name: str) -> str | None:
    value = (entry.data or {}).get(name)
    return value if isinstance(value, str) else None


def fold_echoes(entries: Sequence[TimelineView], ref: str | None) -> list[TimelineView]:
    """Entries of one object with the echoes folded away (see the module docstring).

    The object's owner is named by its ref (``"after_sale:3"`` -> kinds
    ``after_sale.*``); an entry of another kind is dropped when it caused one
    of the owner's entries or was caused by one (``data["entry"]`` and
    ``data["cause"]``, written by :meth:`OrderContext.because`). The owner's
    entries, unlinked entries and entries of no object are kept as they are.
    """
    if not ref or ":" not in ref:
        return list(entries)
    owner = ref.partition(":")[0] + "."
    mine = [e for e in entries if e.kind.startswith(owner)]
    keys = {k for e in mine if (k := _link(e, "entry"))}
    causes = {c for e in mine if (c := _link(e, "cause"))}
    return [
        e
        for e in entries
        if e.kind.startswith(owner) or not (_link(e, "cause") in keys or _link(e, "entry") in causes)
    ]


class TrackingPage:
    """The page being built for one order: what the ``tracking_page`` hook receives.

    Read ``order``, ``shop``, ``lines``, ``lang``; add to a :meth:`section`;
    take an object's public timeline with :meth:`entries` (which claims it)
    and turn it into steps with :meth:`steps`; write values with :meth:`t`,
    :meth:`time` and :meth:`money`.
    """

    def __init__(
        self,
        *,
        order: Order,
        shop: Shop,
        lines: Sequence[Line],
        lang: str,
        zone: ZoneInfo,
        timeline: Sequence[TimelineView],
        link: Callable[[int], str],
    ) -> None:
        self.order = order
        self.shop = shop
        self.lines = list(lines)
        self.lang = lang
        self.zone = zone
        self.sections: dict[str, Section] = {}
        # Carrier code -> name in the page's language: filled by the center that knows
        # carriers (TMS); a center listing it in ``after`` reads it through :meth:`carrier`.
        self.carriers: dict[str, str] = {}
        self._timeline = list(timeline)
        self._claimed: set[str] = set()
        self._link = link

    # -- writing values ----------------------------------------------------------------

    def t(self, en: str, zh: str) -> str:
        """The page's language of two wordings."""
        return text(self.lang, en, zh)

    def time(self, value: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        """A moment in the shop's time zone (naive values are UTC)."""
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(self.zone).strftime(fmt)

    def money(self, amount: int) -> str:
        """An amount of the order's currency as shoppers read it (``¥158.00``)."""
        return format_amount(amount, self.order.currency)

    def line_name(self, line_id: int, fallback: str = "") -> str:
        """The name of the order's line ``line_id`` (its SKU when it has no name)."""
        for line in self.lines:
            if line.id == line_id:
                return line.name or line.sku
        return fallback

    def carrier(self, code: str) -> str:
        """A carrier's name in the page's language (its code when no center named it)."""
        return self.carriers.get(code, code)

    def link(self, order_id: int) -> str:
        """The signed tracking link of another order (a replacement order)."""
        return self._link(order_id)

    # -- building ----------------------------------------------------------------------

    def section(self, key: str, title: str, *, rank: int = 50, empty: str = "") -> Section:
        """The section ``key``, created on first use (later calls may add cards)."""
        found = self.sections.get(key)
        if found is None:
            found = self.sections[key] = Section(key=key, title=title, rank=rank, empty=empty)
        return found

    def claim(self, ref: str) -> None:
        """Say that a card shows the entries of ``ref``: the order history leaves them out."""
        self._claimed.add(ref)

    def entries(self, ref: str, *, kinds: Iterable[str] | None = None) -> list[TimelineView]:
        """The public entries of ``ref``, oldest first, echoes folded; claims ``ref``.

        ``kinds``: keep only entries whose kind starts with one of these prefixes.
        """
        self.claim(ref)
        found = [e for e in self._timeline if e.ref == ref]
        if kinds is not None:
            prefixes = tuple(kinds)
            found = [e for e in found if e.kind.startswith(prefixes)]
        return fold_echoes(found, ref)

    def steps(self, entries: Iterable[TimelineView]) -> list[Step]:
        """Entries as a card's steps, newest first."""
        ordered = sorted(entries, key=lambda e: e.at, reverse=True)
        return [Step(at=self.time(e.at), text=e.message) for e in ordered]

    # -- what the kernel draws ---------------------------------------------------------

    def history(self, refunds: dict[str, str | None]) -> list[Step]:
        """The order's own history: entries no card claimed, one per event, newest first.

        ``refunds`` maps ``"refund:<id>"`` to the object the refund was made for
        (``Refund.ref``): a refund of a claimed object is shown by that object's card.
        """
        claimed = self._claimed | {ref for ref, owner in refunds.items() if owner in self._claimed}
        by_ref: dict[str | None, list[TimelineView]] = {}
        for e in self._timeline:
            if e.ref not in claimed:
                by_ref.setdefault(e.ref, []).append(e)
        kept = [e for ref, group in by_ref.items() for e in fold_echoes(group, ref)]
        return self.steps(kept)

    def zone_label(self) -> str:
        """The time zone the page's times are in, for its legend: ``Asia/Shanghai (UTC+08:00)``."""
        offset = datetime.now(self.zone).strftime("%z")
        return f"{self.zone.key} (UTC{offset[:3]}:{offset[3:]})"


def delivery_address(address: Address | None, lang: str = "zh") -> dict[str, str] | None:
    """The delivery address as the page shows it: the phone masked (``138****1234``), the
    region code as place names (``440300`` -> 广东省 深圳市, :func:`.regions.region_name`)."""
    if address is None:
        return None
    return {
        "name": address.name,
        "phone": mask_phone(address.phone),
        "region": region_name(address.region, lang),
        "detail": address.detail,
    }


def price_lines(page: TrackingPage, adjustments: Sequence[Adjustment]) -> list[Fact]:
    """The price breakdown: goods, freight, each discount (summed over lines), fees, paid."""
    order = page.order
    facts = [
        Fact(label=page.t("Goods", "商品总价"), value=page.money(order.subtotal), kind="goods"),
        Fact(label=page.t("Freight", "运费"), value=page.money(order.shipping), kind="freight"),
    ]
    discounts: dict[tuple[str, str | None, str], int] = {}
    for a in adjustments:
        if a.amount < 0:
            key = (a.source, a.code, a.reason or a.source)
            discounts[key] = discounts.get(key, 0) + a.amount
    for (_, _, reason), amount in discounts.items():
        facts.append(Fact(label=reason, value=page.money(amount), kind="discount"))
    if order.fees:
        facts.append(Fact(label=page.t("Fees", "服务费"), value=page.money(order.fees), kind="fees"))
    if order.paid:
        facts.append(Fact(label=page.t("Paid", "实付款"), value=page.money(order.paid), kind="paid"))
    else:
        facts.append(Fact(label=page.t("To pay", "应付款"), value=page.money(order.total), kind="paid"))
    if order.refunded:
        facts.append(
            Fact(label=page.t("Refunded", "已退款"), value=page.money(order.refunded), kind="refunded")
        )
    return facts


def refund_owners(conn: sa.Connection, order_id: int) -> dict[str, str | None]:
    """``"refund:<id>"`` -> the object each refund of the order was made for."""
    r = t.refunds.c
    return {
        f"refund:{row.id}": row.ref
        for row in conn.execute(sa.select(r.id, r.ref).where(r.order_id == order_id))
    }
