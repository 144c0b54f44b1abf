"""Campaigns (营销活动): create, change, end, list, read; each change seen by every process's cache.

Checks on creation, each a 422 with its code before anything is written:
the type and its rules (:mod:`.rules`), the window (``window_invalid``),
the scope (:mod:`.owners`), and for a flash sale a listed SKU scope
(``scope_invalid``) and a flash price below every listed SKU's list price
(``flash_price_not_below_list``); buy X get Y needs SKUs or categories.

A change (:meth:`Campaigns.edit`, ``PATCH /promotion/campaigns/{id}``) runs the
same checks on what it changes, and refuses with 409 a campaign that has ended
(``campaign_ended``) and a flash sale's quantity below the units already sold
(``quantity_below_sold``). Orders already placed keep their adjustments: only
orders priced after the commit see the new values. Each change is an outbox
event ``promotion.campaign_changed`` (who, when, each field's old and new
value) written in the changing transaction, and a structured log line.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa
import structlog

from mallcore.kernel import Conflict, Event, InvalidInput, Principal, utcnow, visible_to

from . import tables as t
from .cache import bump_version, offer_from_row
from .owners import check_scope, currency_of, may_manage, owned_row, window
from .rules import FlashSale, label, parse_rules
from .schemas import CampaignIn, CampaignPatch, CampaignView

if TYPE_CHECKING:
    from . import PromotionCenter

log = structlog.get_logger("mallcore").bind(center="promotion")

DEFAULT_GROUP = {"threshold_off": "order", "percent_off": "order", "free_shipping": "shipping"}


def status_of(row: Any, now: datetime) -> str:
    if row.status == "ended" or row.ends_at <= now:
        return "ended"
    if row.status == "paused":
        return "paused"
    return "scheduled" if row.starts_at > now else "live"


def view(row: Any, now: datetime | None = None) -> CampaignView:
    offer = offer_from_row(row)
    flash = isinstance(offer.rules, FlashSale)
    return CampaignView(
        id=row.id,
        shop=row.shop,
        name=row.name,
        type=row.type,
        status=status_of(row, now or utcnow()),
        label=label(offer.rules, row.currency),
        currency=row.currency,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        skus=list(row.skus or ()),
        categories=list(row.categories or ()),
        stacking_group=offer.group,
        priority=row.priority,
        rules=dict(row.rules),
        funded_by=offer.funded_by,
        code=offer.code,
        sold=row.sold if flash else None,
        left=(row.quantity or 0) - row.sold if flash else None,
        created_by=row.created_by,
        created_at=row.created_at,
        ended_by=row.ended_by,
    )


class Campaigns:
    def __init__(self, center: PromotionCenter) -> None:
        self.center = center
        self.kernel = center.kernel

    def create(self, conn: sa.Connection, principal: Principal, data: CampaignIn) -> CampaignView:
        """Insert a campaign in ``conn`` (drop ``view.shop``'s cache entry after the commit)."""
        may_manage(principal, data.shop, "campaigns")
        rules = parse_rules(data.type, data.rules)
        now = utcnow()
        starts = data.starts_at or now
        window(starts, data.ends_at, now)
        currency = currency_of(self.kernel, data.shop)
        skus = list(dict.fromkeys(data.skus))
        categories = list(dict.fromkeys(data.categories))
        if data.type == "flash_sale" and (not skus or categories):
            raise InvalidInput("a flash sale lists its SKUs (and no categories)", code="scope_invalid")
        if data.type == "buy_x_get_y" and not (skus or categories):
            raise InvalidInput("buy X get Y lists its SKUs or categories", code="scope_invalid")
        prices = check_scope(conn, data.shop, skus, categories)
        if isinstance(rules, FlashSale):
            above = [sku for sku in skus if prices[sku] <= rules.price]
            if above:
                raise InvalidInput(
                    f"the flash price must be below the list price of {', '.join(above)}",
                    code="flash_price_not_below_list",
                    extra={"skus": above, "list_prices": {sku: prices[sku] for sku in above}},
                )
        group = (
            "shipping"
            if data.type == "free_shipping"
            else (data.stacking_group or DEFAULT_GROUP.get(data.type, ""))
        )
        campaign_id = conn.execute(
            t.campaigns.insert()
            .values(
                shop=data.shop,
                name=data.name,
                type=data.type,
                status="active",
                currency=currency,
                starts_at=starts,
                ends_at=data.ends_at,
                skus=skus,
                categories=categories,
                stacking_group=group,
                priority=data.priority,
                rules=msgspec.to_builtins(rules),
                quantity=rules.quantity if isinstance(rules, FlashSale) else None,
                sold=0,
                created_by=principal.subject,
                created_at=now,
                updated_at=now,
            )
            .returning(t.campaigns.c.id)
        ).scalar_one()
        bump_version(conn, data.shop or t.PLATFORM)
        return view(self.row(conn, campaign_id), now)

    def row(self, conn: sa.Connection, campaign_id: int) -> Any:
        return owned_row(self.kernel, conn, t.campaigns, campaign_id, "campaign")

    def visible_row(
        self, conn: sa.Connection, principal: Principal, campaign_id: int, *, lock: bool = False
    ) -> Any:
        return owned_row(
            self.kernel, conn, t.campaigns, campaign_id, "campaign", principal=principal, lock=lock
        )

    def end(self, conn: sa.Connection, principal: Principal, campaign_id: int) -> CampaignView:
        row = self.visible_row(conn, principal, campaign_id, lock=True)
        may_manage(principal, row.shop, "campaigns")
        now = utcnow()
        if status_of(row, now) == "ended":
            raise Conflict(f"campaign {campaign_id} has ended already", code="campaign_ended")
        c = t.campaigns.c
        conn.execute(
            t.campaigns.update()
            .where(c.id == campaign_id, c.status != "ended")
            .values(status="ended", ended_by=principal.subject, updated_at=now)
        )
        bump_version(conn, row.shop or t.PLATFORM)
        return view(self.row(conn, campaign_id), now)

    def edit(
        self,
        conn: sa.Connection,
        principal: Principal,
        campaign_id: int,
        data: CampaignPatch,
        events: list[Event],
    ) -> CampaignView:
        """Change a campaign in ``conn`` (drop ``view.shop``'s cache entry after the commit,
        deliver ``events``). Only the fields ``data`` gives change; nothing is written on a refusal."""
        row = self.visible_row(conn, principal, campaign_id, lock=True)
        may_manage(principal, row.shop, "campaigns")
        now = utcnow()
        if status_of(row, now) == "ended":
            raise Conflict(f"campaign {campaign_id} has ended; it cannot be changed", code="campaign_ended")
        values: dict[str, Any] = {}
        if data.name is not None:
            values["name"] = data.name
        if data.priority is not None:
            values["priority"] = data.priority
        if data.starts_at is not None or data.ends_at is not None:
            starts = data.starts_at or row.starts_at
            ends = data.ends_at or row.ends_at
            window(starts, ends, now)
            values["starts_at"], values["ends_at"] = starts, ends
        if data.rules is not None:
            rules = parse_rules(row.type, data.rules)
            if isinstance(rules, FlashSale):
                prices = check_scope(conn, row.shop, list(row.skus or ()), [])
                above = [sku for sku, price in prices.items() if price <= rules.price]
                if above:
                    raise InvalidInput(
                        f"the flash price must be below the list price of {', '.join(above)}",
                        code="flash_price_not_below_list",
                        extra={"skus": above, "list_prices": {sku: prices[sku] for sku in above}},
                    )
                if rules.quantity < row.sold:
                    raise Conflict(
                        f"{row.sold} promotional units are sold already; the quantity cannot go below",
                        code="quantity_below_sold",
                        extra={"sold": row.sold, "quantity": rules.quantity},
                    )
                values["quantity"] = rules.quantity
            values["rules"] = msgspec.to_builtins(rules)
        if data.paused is not None:
            values["status"] = "paused" if data.paused else "active"
        changes = changes_of(row, values)
        if not changes:
            return view(row, now)
        c = t.campaigns.c
        stmt = t.campaigns.update().where(c.id == campaign_id, c.status != "ended")
        if "quantity" in values:  # the sold counter moves without this row's lock
            stmt = stmt.where(c.sold <= values["quantity"])
        if not conn.execute(stmt.values(**values, updated_at=now)).rowcount:
            raise Conflict(
                f"campaign {campaign_id} changed meanwhile (ended, or sold past the quantity)",
                code="quantity_below_sold" if "quantity" in values else "campaign_ended",
            )
        bump_version(conn, row.shop or t.PLATFORM)
        audit(self.kernel, conn, events, "campaign", campaign_id, row.shop, principal, changes, now)
        return view(self.row(conn, campaign_id), now)

    def get(self, principal: Principal, campaign_id: int) -> CampaignView:
        with self.kernel.db.transaction(write=False) as conn:
            return view(self.visible_row(conn, principal, campaign_id))

    def search(
        self,
        principal: Principal,
        *,
        shop: str | None = None,
        platform: bool = False,
        status: str | None = None,
        type: str | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[CampaignView]:
        """Newest first, ``before`` an id (keyset pages); ``status``: scheduled | live | ended."""
        c = t.campaigns.c
        now = utcnow()
        stmt = sa.select(t.campaigns).where(visible_to(principal, c.shop))
        if platform:
            stmt = stmt.where(c.shop.is_(None))
        elif shop:
            stmt = stmt.where(c.shop == shop)
        if type:
            stmt = stmt.where(c.type == type)
        if status is not None:
            stmt = stmt.where(_status_clause(status, now))
        if before:
            stmt = stmt.where(c.id < before)
        with self.kernel.db.transaction(write=False) as conn:
            return [view(r, now) for r in conn.execute(stmt.order_by(c.id.desc()).limit(limit))]

    def live(self, conn: sa.Connection, shop: str) -> list[CampaignView]:
        """What shoppers of ``shop`` see running now: its campaigns and the platform's."""
        c = t.campaigns.c
        now = utcnow()
        currency = currency_of(self.kernel, shop)
        stmt = (
            sa.select(t.campaigns)
            .where(
                sa.or_(c.shop == shop, c.shop.is_(None)), c.currency == currency, _status_clause("live", now)
            )
            .order_by(c.id)
        )
        return [view(r, now) for r in conn.execute(stmt)]


def _status_clause(status: str, now: datetime) -> Any:
    c = t.campaigns.c
    ended = sa.or_(c.status == "ended", c.ends_at <= now)
    if status == "ended":
        return ended
    if status == "paused":
        return sa.and_(sa.not_(ended), c.status == "paused")
    running = sa.and_(sa.not_(ended), c.status == "active")
    if status == "live":
        return sa.and_(running, c.starts_at <= now)
    if status == "scheduled":
        return sa.and_(running, c.starts_at > now)
    raise InvalidInput("status is scheduled, live, paused or ended", code="status_unknown")


def changes_of(row: Any, values: dict[str, Any]) -> dict[str, list[Any]]:
    """Each field ``values`` really changes: ``[old, new]``, as JSON values."""
    out: dict[str, list[Any]] = {}
    for field, new in values.items():
        old = getattr(row, field)
        if old != new:
            out[field] = msgspec.to_builtins([old, new])
    return out


def audit(
    kernel: Any,
    conn: sa.Connection,
    events: list[Event],
    what: str,
    row_id: int,
    shop: str | None,
    principal: Principal,
    changes: dict[str, list[Any]],
    now: datetime,
) -> None:
    """The audit trail of a change: an outbox event ``promotion.<what>_changed`` written in
    ``conn`` (delivered after the commit through ``events``), and a structured log line."""
    event = Event(
        topic=f"promotion.{what}_changed",
        payload={
            "id": row_id,
            "shop": shop,
            "by": principal.subject,
            "at": now.isoformat(),
            "changes": changes,
        },
    )
    kernel.events.write(conn, [event])
    events.append(event)
    log.info(f"promotion.{what}_changed", id=row_id, shop=shop, by=principal.subject, changes=changes)
