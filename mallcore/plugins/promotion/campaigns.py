"""Campaigns (营销活动): create, end, list, read; each change seen by every process's cache.

Checks on creation, each a 422 with its code before anything is written:
the type and its rules (:mod:`.rules`), the window (``window_invalid``),
the scope (:mod:`.owners`), and for a flash sale a listed SKU scope
(``scope_invalid``) and a flash price below every listed SKU's list price
(``flash_price_not_below_list``); buy X get Y needs SKUs or categories.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa

from mallcore.kernel import Conflict, InvalidInput, Principal, utcnow, visible_to

from . import tables as t
from .cache import bump_version, offer_from_row
from .owners import check_scope, currency_of, may_manage, owned_row, window
from .rules import FlashSale, label, parse_rules
from .schemas import CampaignIn, CampaignView

if TYPE_CHECKING:
    from . import PromotionCenter

DEFAULT_GROUP = {"threshold_off": "order", "percent_off": "order", "free_shipping": "shipping"}


def status_of(row: Any, now: datetime) -> str:
    if row.status == "ended" or row.ends_at <= now:
        return "ended"
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
            .where(c.id == campaign_id, c.status == "active")
            .values(status="ended", ended_by=principal.subject, updated_at=now)
        )
        bump_version(conn, row.shop or t.PLATFORM)
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
    if status == "live":
        return sa.and_(sa.not_(ended), c.starts_at <= now)
    if status == "scheduled":
        return sa.and_(sa.not_(ended), c.starts_at > now)
    raise InvalidInput("status is scheduled, live or ended", code="status_unknown")
