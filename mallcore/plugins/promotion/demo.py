"""``mallcore demo``: a 满减 campaign, a flash sale and a coupon to claim in the demo shop."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa

from mallcore.kernel import SYSTEM, utcnow

from . import tables as t
from .schemas import CampaignIn, TemplateIn

if TYPE_CHECKING:
    from . import PromotionCenter

THRESHOLD = "满200减30 / 满300减50"
FLASH = "Earbuds flash sale 耳机秒杀"
COUPON = "满100减10 shop coupon 店铺券"
FLASH_SKU = "EARBUDS-1"


def seed(center: PromotionCenter, demo: Any) -> None:
    kernel = center.kernel
    now = utcnow()
    month = now + timedelta(days=30)
    c, tp = t.campaigns.c, t.templates.c
    with kernel.db.transaction() as conn:
        names = set(conn.execute(sa.select(c.name).where(c.shop == demo.shop)).scalars())
        if THRESHOLD not in names:
            spec = {
                "shop": demo.shop,
                "name": THRESHOLD,
                "type": "threshold_off",
                "ends_at": month,
                "rules": {"tiers": [{"threshold": 20000, "off": 3000}, {"threshold": 30000, "off": 5000}]},
            }
            center.campaigns.create(conn, SYSTEM, msgspec.convert(spec, CampaignIn, strict=False))
        if FLASH not in names and FLASH_SKU in demo.skus:
            spec = {
                "shop": demo.shop,
                "name": FLASH,
                "type": "flash_sale",
                "ends_at": now + timedelta(days=7),
                "skus": [FLASH_SKU],
                "rules": {"price": 19900, "quantity": 100, "per_customer": 1},
            }
            center.campaigns.create(conn, SYSTEM, msgspec.convert(spec, CampaignIn, strict=False))
        template_id = conn.execute(sa.select(tp.id).where(tp.shop == demo.shop, tp.name == COUPON)).scalar()
        if template_id is None:
            spec = {
                "shop": demo.shop,
                "name": COUPON,
                "kind": "amount",
                "value": 1000,
                "min_spend": 10000,
                "total": 1000,
                "per_customer": 1,
                "valid_days": 7,
                "valid_to": month,
            }
            template_id = center.coupon_templates.create(
                conn, SYSTEM, msgspec.convert(spec, TemplateIn, strict=False)
            ).id
    center.changed(demo.shop)
    demo.notes.append(
        f"promotion: 满200减30 / 满300减50 on the whole shop, a flash sale of {FLASH_SKU} at ¥199 "
        f"(100 units, 1 per customer), and a 满100减10 coupon to claim: "
        f"POST /promotion/coupon-templates/{template_id}/claim (then GET /promotion/coupons)"
    )
