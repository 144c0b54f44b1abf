"""The promotion center's routes, under ``/promotion``: one controller per resource.

- ``/campaigns``: merchants (their shop's) and admins (the platform's too);
- ``/coupon-templates``: the same, and customers claim from it;
- ``/coupons``: a customer's wallet and redeeming codes; staff see their shop's;
- ``/offers``: what a shopper of a shop can get now (anyone signed in).

Writes honour ``Idempotency-Key``. Anything not visible answers 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

import sqlalchemy as sa
from litestar import Controller, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from mallcore.kernel import Caller, Event
from mallcore.kernel.http import Idempotent, Reply, roles

from .owners import may_manage
from .schemas import (
    CampaignIn,
    CampaignPatch,
    CampaignStats,
    CampaignView,
    CodesIn,
    CodesView,
    CouponView,
    OffersView,
    RedeemIn,
    TemplateIn,
    TemplatePatch,
    TemplateStats,
    TemplateView,
)
from .stats import campaign_stats, template_stats
from .templates import template_view

if TYPE_CHECKING:
    from . import PromotionCenter

Promotion: TypeAlias = NamedDependency["PromotionCenter"]
Limit = Annotated[int, QueryParameter(ge=1, le=200)]


def write(
    promotion: PromotionCenter,
    idempotent: Idempotent,
    data: Any,
    make: Callable[[sa.Connection, list[Event]], Any],
    *,
    status: int = 201,
    changes_offers: bool = False,
) -> Response[Any]:
    """Every write route: ``make(conn, events)`` in one transaction, its view answered with
    ``status`` and stored for the ``Idempotency-Key`` in that transaction; after the commit
    the shop's cached campaigns and templates are dropped (``changes_offers``) and the
    outbox ``events`` it wrote are delivered in process."""

    def work(reply: Reply) -> None:
        apply(promotion, make, reply, status=status, changes_offers=changes_offers)

    return idempotent(data, work)


def apply(
    promotion: PromotionCenter,
    make: Callable[[sa.Connection, list[Event]], Any],
    reply: Reply | None = None,
    *,
    status: int = 201,
    changes_offers: bool = False,
) -> Any:
    """The work of every write (the routes through :func:`write`, the console's forms directly):
    ``make(conn, events)`` in one transaction (its view given to ``reply`` there), then the
    shop's cached offers dropped and the events delivered. Returns the view."""
    events: list[Event] = []
    with promotion.kernel.db.transaction() as conn:
        view = make(conn, events)
        if reply is not None:
            reply(conn, view, status)
    if changes_offers:
        promotion.changed(view.shop)
    if events:
        promotion.kernel.events.deliver(events)
    return view


class CampaignController(Controller):
    path = "/campaigns"
    guards = [roles("merchant")]
    tags = ["promotion"]

    @post("/", status_code=201, sync_to_thread=True, summary="Create a campaign")
    def create(
        self, data: JSONBody[CampaignIn], principal: Caller, promotion: Promotion, idempotent: Idempotent
    ) -> Response[CampaignView]:
        """Create a campaign (merchant for their shop; platform staff for a platform campaign): full
        reduction, discount or gift rules over a period. Honours `Idempotency-Key`.
        """
        return write(
            promotion, idempotent, data, lambda conn, _: promotion.campaigns.create(conn, principal, data),
            changes_offers=True,
        )  # fmt: skip

    @get("/", sync_to_thread=True, summary="Campaigns, newest first")
    def search(
        self,
        principal: Caller,
        promotion: Promotion,
        shop: FromQuery[str | None] = None,
        platform: FromQuery[bool] = False,
        status: FromQuery[str | None] = None,
        type: FromQuery[str | None] = None,
        before: FromQuery[int | None] = None,
        limit: Limit = 50,
    ) -> list[CampaignView]:
        """Campaigns of the caller's shop (platform staff: every shop's and the platform's), newest first."""
        return promotion.campaigns.search(
            principal, shop=shop, platform=platform, status=status, type=type, before=before, limit=limit
        )

    @get("/{campaign_id:int}", sync_to_thread=True)
    def read(self, campaign_id: FromPath[int], principal: Caller, promotion: Promotion) -> CampaignView:
        """One campaign. Another shop's: 404."""
        return promotion.campaigns.get(principal, campaign_id)

    @patch("/{campaign_id:int}", status_code=200, sync_to_thread=True, summary="Change a campaign")
    def edit(
        self,
        campaign_id: FromPath[int],
        data: JSONBody[CampaignPatch],
        principal: Caller,
        promotion: Promotion,
        idempotent: Idempotent,
    ) -> Response[CampaignView]:
        """Change a campaign: name, window, priority, rules (same type), pause or resume. Only the fields
        given change. Orders placed before keep their discounts; later ones are priced by the new values.
        Another shop's: 404; ended: 409 `campaign_ended`; a flash sale's quantity below the units sold:
        409 `quantity_below_sold`; bad values: 422 with the create route's codes. Honours
        `Idempotency-Key`.
        """
        return write(
            promotion, idempotent, data,
            lambda conn, events: promotion.campaigns.edit(conn, principal, campaign_id, data, events),
            status=200, changes_offers=True,
        )  # fmt: skip

    @post("/{campaign_id:int}/end", status_code=200, sync_to_thread=True, summary="Stop a campaign early")
    def end(
        self, campaign_id: FromPath[int], principal: Caller, promotion: Promotion, idempotent: Idempotent
    ) -> Response[CampaignView]:
        """End a campaign now; orders placed after it get no discount. Another shop's: 404; already ended:
        409. Honours `Idempotency-Key`.
        """
        return write(
            promotion, idempotent, None, lambda conn, _: promotion.campaigns.end(conn, principal, campaign_id),
            status=200, changes_offers=True,
        )  # fmt: skip

    @get("/{campaign_id:int}/stats", sync_to_thread=True, summary="Orders, discount given, GMV")
    def stats(self, campaign_id: FromPath[int], principal: Caller, promotion: Promotion) -> CampaignStats:
        """A campaign's orders, discount given and GMV. Another shop's: 404."""
        with promotion.kernel.db.transaction(write=False) as conn:
            return campaign_stats(conn, promotion.campaigns.visible_row(conn, principal, campaign_id))


class TemplateController(Controller):
    path = "/coupon-templates"
    guards = [roles("merchant", "customer")]
    tags = ["promotion"]

    @post(
        "/",
        status_code=201,
        sync_to_thread=True,
        guards=[roles("merchant")],
        summary="Create a coupon template",
    )
    def create(
        self, data: JSONBody[TemplateIn], principal: Caller, promotion: Promotion, idempotent: Idempotent
    ) -> Response[TemplateView]:
        """Create a coupon template (merchant for their shop; platform staff for the platform): value,
        threshold, stock and validity of the coupons it issues. Honours `Idempotency-Key`.
        """
        return write(
            promotion, idempotent, data, lambda conn, _: promotion.coupon_templates.create(conn, principal, data),
            changes_offers=True,
        )  # fmt: skip

    @get("/", sync_to_thread=True, guards=[roles("merchant")], summary="Coupon templates, newest first")
    def search(
        self,
        principal: Caller,
        promotion: Promotion,
        shop: FromQuery[str | None] = None,
        platform: FromQuery[bool] = False,
        status: FromQuery[str | None] = None,
        before: FromQuery[int | None] = None,
        limit: Limit = 50,
    ) -> list[TemplateView]:
        """Coupon templates of the caller's shop (platform staff: all), newest first."""
        return promotion.coupon_templates.search(
            principal, shop=shop, platform=platform, status=status, before=before, limit=limit
        )

    @get("/{template_id:int}", sync_to_thread=True, guards=[roles("merchant")])
    def read(self, template_id: FromPath[int], principal: Caller, promotion: Promotion) -> TemplateView:
        """One coupon template. Another shop's: 404."""
        return promotion.coupon_templates.get(principal, template_id)

    @patch(
        "/{template_id:int}",
        status_code=200,
        sync_to_thread=True,
        guards=[roles("merchant")],
        summary="Change a coupon template",
    )
    def edit(
        self,
        template_id: FromPath[int],
        data: JSONBody[TemplatePatch],
        principal: Caller,
        promotion: Promotion,
        idempotent: Idempotent,
    ) -> Response[TemplateView]:
        """Change a coupon template: name, total, per-customer limit, validity, claimable, pause or resume.
        Coupons already issued keep their value and window. Another shop's: 404; ended: 409
        `template_ended`; a total below the coupons issued: 409 `total_below_issued`. Honours
        `Idempotency-Key`.
        """
        return write(
            promotion, idempotent, data,
            lambda conn, events: promotion.coupon_templates.edit(conn, principal, template_id, data, events),
            status=200, changes_offers=True,
        )  # fmt: skip

    @post("/{template_id:int}/end", status_code=200, sync_to_thread=True, guards=[roles("merchant")])
    def end(
        self, template_id: FromPath[int], principal: Caller, promotion: Promotion, idempotent: Idempotent
    ) -> Response[TemplateView]:
        """Stop issuing coupons from a template; coupons already held stay usable. Another shop's: 404.
        Honours `Idempotency-Key`.
        """
        return write(
            promotion, idempotent, None, lambda conn, _: promotion.coupon_templates.end(conn, principal, template_id),
            status=200, changes_offers=True,
        )  # fmt: skip

    @get("/{template_id:int}/stats", sync_to_thread=True, guards=[roles("merchant")])
    def stats(self, template_id: FromPath[int], principal: Caller, promotion: Promotion) -> TemplateStats:
        """A template's coupons issued, used and discount given. Another shop's: 404."""
        with promotion.kernel.db.transaction(write=False) as conn:
            return template_stats(conn, promotion.coupon_templates.visible_row(conn, principal, template_id))

    @post(
        "/{template_id:int}/codes",
        status_code=201,
        sync_to_thread=True,
        guards=[roles("merchant")],
        summary="Issue batch codes customers redeem",
    )
    def codes(
        self,
        template_id: FromPath[int],
        data: JSONBody[CodesIn],
        principal: Caller,
        promotion: Promotion,
        idempotent: Idempotent,
    ) -> Response[CodesView]:
        """Issue a batch of codes customers redeem for a coupon of this template. Another shop's: 404.
        Honours `Idempotency-Key`.
        """

        def make(conn: sa.Connection, events: list[Event]) -> CodesView:
            template = promotion.coupon_templates.visible_row(conn, principal, template_id)
            may_manage(principal, template.shop, "coupon templates")
            codes = promotion.coupons.batch(conn, template, data.count, principal.subject, events)
            after = template_view(promotion.coupon_templates.row(conn, template_id))
            return CodesView(template_id=template_id, codes=codes, issued=after.issued, left=after.left)

        return write(promotion, idempotent, data, make)

    @get("/{template_id:int}/coupons", sync_to_thread=True, guards=[roles("merchant")])
    def coupons(
        self,
        template_id: FromPath[int],
        principal: Caller,
        promotion: Promotion,
        status: FromQuery[str | None] = None,
        before: FromQuery[int | None] = None,
        limit: Limit = 50,
    ) -> list[CouponView]:
        """The coupons issued from a template, newest first. Another shop's: 404."""
        promotion.coupon_templates.get(principal, template_id)  # 404 unless visible
        return promotion.coupons.search(
            principal, template_id=template_id, status=status, before=before, limit=limit
        )

    @post(
        "/{template_id:int}/claim",
        status_code=201,
        sync_to_thread=True,
        guards=[roles("customer")],
        summary="Claim a coupon (领券)",
    )
    def claim(
        self, template_id: FromPath[int], principal: Caller, promotion: Promotion, idempotent: Idempotent
    ) -> Response[CouponView]:
        """Claim a coupon from a template (customer): 409 when none are left or the caller's limit is
        reached. Honours `Idempotency-Key`.
        """
        return write(
            promotion,
            idempotent,
            None,
            lambda conn, events: promotion.coupons.claim(conn, principal, template_id, events),
        )


class CouponController(Controller):
    path = "/coupons"
    guards = [roles("customer", "merchant")]
    tags = ["promotion"]

    @get("/", sync_to_thread=True, summary="A customer's wallet (staff: their shop's coupons)")
    def wallet(
        self,
        principal: Caller,
        promotion: Promotion,
        status: FromQuery[str | None] = None,
        customer: FromQuery[str | None] = None,
        before: FromQuery[int | None] = None,
        limit: Limit = 50,
    ) -> list[CouponView]:
        """Coupons: a customer's own wallet; a shop's staff the coupons of their shop's templates."""
        return promotion.coupons.search(
            principal, status=status, customer=customer, before=before, limit=limit
        )

    @get("/{code:str}", sync_to_thread=True)
    def read(self, code: FromPath[str], principal: Caller, promotion: Promotion) -> CouponView:
        """One coupon by code: a customer's own, or one of the staff's shop. Anything else: 404."""
        with promotion.kernel.db.transaction(write=False) as conn:
            return promotion.coupons.coupon(conn, principal, code)

    @post(
        "/redeem", status_code=201, sync_to_thread=True, guards=[roles("customer")], summary="Redeem a code"
    )
    def redeem(
        self, data: JSONBody[RedeemIn], principal: Caller, promotion: Promotion, idempotent: Idempotent
    ) -> Response[CouponView]:
        """Redeem a code (customer) for a coupon in the caller's wallet; an unknown or used code answers
        404 or 409. Honours `Idempotency-Key`.
        """
        code = data.code.strip().upper()
        return write(
            promotion,
            idempotent,
            data,
            lambda conn, events: promotion.coupons.redeem(conn, principal, code, events),
        )


class OfferController(Controller):
    path = "/offers"
    tags = ["promotion"]

    @get("/", sync_to_thread=True, summary="Live campaigns and coupons to claim in a shop")
    def offers(self, shop: FromQuery[str], principal: Caller, promotion: Promotion) -> OffersView:
        """The live campaigns and claimable coupon templates of a shop, for its storefront."""
        with promotion.kernel.db.transaction(write=False) as conn:
            return OffersView(
                shop=shop,
                campaigns=promotion.campaigns.live(conn, shop),
                coupon_templates=promotion.coupon_templates.claimable(conn, shop),
            )


CONTROLLERS: list[Any] = [CampaignController, TemplateController, CouponController, OfferController]
