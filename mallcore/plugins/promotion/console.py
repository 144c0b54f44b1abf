"""The promotion page of the staff console: campaigns and coupon templates with their figures
(orders, discount given, GMV; coupons issued, claimed, used), read through the API's services
(``campaigns.search``, ``coupon_templates.search``, ``campaign_stats``, ``template_stats``)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.params import FromQuery
from litestar.response import Template

from mallcore.kernel import Caller
from mallcore.kernel.console import ConsolePage, render
from mallcore.kernel.http import roles

from .routes import Promotion
from .stats import campaign_stats, template_stats

PAGE = 20


def pages() -> list[ConsolePage]:
    return [
        ConsolePage(
            path="/promotion",
            label="Promotion",
            label_zh="促销",
            handlers=[PromotionPages],
            roles=("merchant",),
            order=70,
        )
    ]


class PromotionPages(Controller):
    path = "/promotion"
    guards = [roles("merchant")]

    @get("/", sync_to_thread=True)
    def overview(
        self,
        request: Request[Any, Any, Any],
        principal: Caller,
        promotion: Promotion,
        before: FromQuery[int | None] = None,
        coupons_before: FromQuery[int | None] = None,
    ) -> Template:
        campaigns = promotion.campaigns.search(
            principal, shop=None, platform=False, status=None, type=None, before=before, limit=PAGE + 1
        )
        templates = promotion.coupon_templates.search(
            principal, shop=None, platform=False, status=None, before=coupons_before, limit=PAGE + 1
        )
        with promotion.kernel.db.transaction(write=False) as conn:
            campaign_rows = [
                (c, campaign_stats(conn, promotion.campaigns.visible_row(conn, principal, c.id)))
                for c in campaigns[:PAGE]
            ]
            template_rows = [
                (tp, template_stats(conn, promotion.coupon_templates.visible_row(conn, principal, tp.id)))
                for tp in templates[:PAGE]
            ]
        return render(
            request,
            "promotion/console/overview.html",
            campaigns=campaign_rows,
            templates=template_rows,
            more_campaigns=campaigns[PAGE - 1].id if len(campaigns) > PAGE else None,
            more_templates=templates[PAGE - 1].id if len(templates) > PAGE else None,
        )
