"""The promotion pages of the staff console: campaigns and coupon templates with their figures
(orders, discount given, GMV; coupons issued, claimed, used), read through the API's services
(``campaigns.search``, ``coupon_templates.search``, ``campaign_stats``, ``template_stats``);
forms to create, change and end a campaign (with its type's own fields) and a coupon template,
through ``campaigns.create`` / ``edit`` / ``end`` and ``coupon_templates.create`` / ``edit`` /
``end`` run by :func:`.routes.apply`, the work of ``POST /promotion/campaigns`` and
``/promotion/coupon-templates``, their ``PATCH /{id}`` and their ``end``.

An edit form shows the campaign's (template's) current values; a time left as shown is not
sent (the form shows minutes, the campaign keeps its seconds), and a value unchanged is no
change (nothing on the audit trail).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Template

from mallcore.kernel import Caller, Event, InvalidInput, Principal
from mallcore.kernel.console import (
    STATE_KEY,
    ConsolePage,
    FormError,
    form_body,
    form_fields,
    local_time,
    minor_units,
    render,
    submit,
)
from mallcore.kernel.http import roles

from .routes import Promotion, apply
from .rules import TYPES
from .schemas import CampaignIn, CampaignPatch, CampaignView, TemplateIn, TemplatePatch, TemplateView
from .stats import campaign_stats, template_stats

if TYPE_CHECKING:
    import sqlalchemy as sa

    from . import PromotionCenter

PAGE = 20
TIERS = 3  # threshold rows the campaign form offers
Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
# What a person reads for the API's codes on these forms (English, Chinese).
MESSAGES = {
    "campaign_type_unknown": ("Pick a campaign type.", "请选择活动类型。"),
    "rules_invalid": ("The campaign's rule is incomplete or not valid.", "活动规则不完整或有误。"),
    "tiers_invalid": (
        "The tiers are not valid (each higher threshold gives more off).",
        "满减档位有误(门槛越高优惠越多)。",
    ),
    "threshold_below_discount": ("A discount is larger than its threshold.", "优惠金额大于门槛金额。"),
    "percent_invalid": ("A percent must be a whole number in range.", "折扣百分比须为范围内的整数。"),
    "amount_invalid": ("An amount must be positive.", "金额须大于零。"),
    "invalid_amount": ("An amount is not a number of yuan (e.g. 12.50).", "金额格式有误(例如 12.50)。"),
    "window_invalid": ("The start and end times do not make a valid period.", "开始和结束时间有误。"),
    "scope_invalid": ("The SKUs or categories are not valid for this type.", "商品范围不适用于该类型。"),
    "sku_unknown": ("A SKU does not exist.", "有 SKU 不存在。"),
    "sku_not_in_shop": ("A SKU is not your shop's.", "有 SKU 不属于本店。"),
    "category_unknown": ("A category does not exist.", "有类目不存在。"),
    "flash_price_not_below_list": ("The flash price must be below the list price.", "秒杀价须低于原价。"),
    "coupon_kind_unknown": ("Pick amount off or percent off.", "请选择满减券或折扣券。"),
    "campaign_ended": ("The campaign has already ended.", "活动已结束。"),
    "template_ended": ("The coupon has already ended.", "优惠券已停止发放。"),
    "quantity_below_sold": (
        "The units for sale cannot go below the units already sold.",
        "秒杀库存不能低于已售数量。",
    ),
    "total_below_issued": (
        "The total cannot go below the coupons already issued.",
        "发放总量不能低于已发放数量。",
    ),
    "platform_only": ("Only the platform may do this.", "仅平台可执行此操作。"),
    "invalid_input": ("Some fields are missing or not valid.", "有字段缺失或填写有误。"),
}


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


def _int(fields: dict[str, Any], name: str) -> int | None:
    value = fields.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"{name}: '{str(value)[:20]}' is not a whole number", code="invalid_input"
        ) from None


def _list(text: Any) -> list[str]:
    return [w for w in str(text or "").replace(",", " ").replace(",", " ").split() if w]


def campaign_rules(kind: str | None, fields: dict[str, Any]) -> dict[str, Any]:
    """The type's own fields of the campaign form as the API's ``rules`` (amounts in minor units)."""
    money = minor_units
    if kind == "threshold_off":
        tiers = []
        for i in range(TIERS):
            threshold = money(fields.get(f"tier-{i}-threshold"), f"tier {i + 1} threshold")
            off = money(fields.get(f"tier-{i}-off"), f"tier {i + 1} off")
            if threshold is not None or off is not None:
                tiers.append({"threshold": threshold, "off": off})
        out: dict[str, Any] = {
            "tiers": tiers,
            "repeat": bool(fields.get("repeat")),
            "cap": money(fields.get("cap"), "cap"),
        }
    elif kind == "percent_off":
        out = {"percent": _int(fields, "percent"), "cap": money(fields.get("percent_cap"), "cap")}
    elif kind == "flash_sale":
        out = {
            "price": money(fields.get("price"), "price"),
            "quantity": _int(fields, "quantity"),
            "per_customer": _int(fields, "flash_per_customer"),
            "beyond": fields.get("beyond", "list_price"),
        }
    elif kind == "buy_x_get_y":
        out = {
            "buy": _int(fields, "buy"),
            "get": _int(fields, "get"),
            "percent_off_get": _int(fields, "percent_off_get"),
        }
    elif kind == "free_shipping":
        out = {"threshold": money(fields.get("shipping_threshold"), "threshold")}
    else:
        out = {}
    return {k: v for k, v in out.items() if v is not None}


def _yuan(amount: int | None) -> str:
    """Minor units as staff type them back into a form: ``1250`` -> ``"12.50"``."""
    return "" if amount is None else f"{amount // 100}.{amount % 100:02d}"


def _local(moment: datetime | None, zone: tzinfo) -> str:
    """A time as a ``datetime-local`` field shows it, in the staff's zone, to the minute."""
    return "" if moment is None else moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def campaign_fields(campaign: CampaignView, zone: tzinfo) -> dict[str, Any]:
    """A campaign as its edit form's fields (the inverse of :func:`campaign_rules`)."""
    rules = campaign.rules
    form: dict[str, Any] = {
        "name": campaign.name,
        "type": campaign.type,
        "priority": campaign.priority,
        "starts_at": _local(campaign.starts_at, zone),
        "ends_at": _local(campaign.ends_at, zone),
        "paused": campaign.status == "paused",
    }
    if campaign.type == "threshold_off":
        for i, tier in enumerate(rules.get("tiers", [])[:TIERS]):
            form[f"tier-{i}-threshold"] = _yuan(tier["threshold"])
            form[f"tier-{i}-off"] = _yuan(tier["off"])
        form["repeat"] = bool(rules.get("repeat"))
        form["cap"] = _yuan(rules.get("cap"))
    elif campaign.type == "percent_off":
        form["percent"] = rules.get("percent")
        form["percent_cap"] = _yuan(rules.get("cap"))
    elif campaign.type == "flash_sale":
        form["price"] = _yuan(rules.get("price"))
        form["quantity"] = rules.get("quantity")
        form["flash_per_customer"] = rules.get("per_customer")
        form["beyond"] = rules.get("beyond", "list_price")
    elif campaign.type == "buy_x_get_y":
        form.update({k: rules.get(k) for k in ("buy", "get", "percent_off_get")})
    elif campaign.type == "free_shipping":
        form["shipping_threshold"] = _yuan(rules.get("threshold"))
    return form


def template_fields(template: TemplateView, zone: tzinfo) -> dict[str, Any]:
    """A coupon template as its edit form's fields."""
    return {
        "name": template.name,
        "total": template.total,
        "per_customer": template.per_customer,
        "valid_from": _local(template.valid_from, zone),
        "valid_to": _local(template.valid_to, zone),
        "claimable": template.claimable,
        "paused": template.status == "paused",
    }


def _write(promotion: PromotionCenter, make: Callable[[sa.Connection, list[Event]], Any]) -> Any:
    """A form's write: the API's own work (:func:`apply`: ``make`` in one transaction, then its
    events), and the shop's cached offers dropped, as every form here changes them."""
    return apply(promotion, make, changes_offers=True)


def _changed_time(fields: dict[str, Any], shown: dict[str, Any], name: str, zone: tzinfo) -> str | None:
    """The field's time when the user changed it from what the form showed, else None (unchanged)."""
    value = fields.get(name)
    return None if value == shown.get(name) else local_time(value, zone)


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
        return self._overview(request, principal, promotion, before, coupons_before)

    def _overview(
        self,
        request: Request[Any, Any, Any],
        principal: Principal,
        promotion: PromotionCenter,
        before: int | None = None,
        coupons_before: int | None = None,
        error: FormError | None = None,
        failed: str | None = None,
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
            error=error,
            failed=failed,
            done=request.query_params.get("done"),
        )

    # -- campaigns ------------------------------------------------------------------------

    @get("/campaigns/new", sync_to_thread=True)
    def new_campaign(self, request: Request[Any, Any, Any], type: FromQuery[str | None] = None) -> Template:
        return self._campaign_form(request, {"type": type if type in TYPES else "threshold_off"})

    def _campaign_form(
        self, request: Request[Any, Any, Any], form: dict[str, Any], error: FormError | None = None
    ) -> Template:
        return render(
            request, "promotion/console/campaign.html", form=form, types=TYPES, tiers=TIERS, error=error
        )

    @post("/campaigns", sync_to_thread=True)
    def create_campaign(
        self, request: Request[Any, Any, Any], principal: Caller, promotion: Promotion, data: Form
    ) -> Response[Any]:
        """``campaigns.create``, the work of ``POST /promotion/campaigns``, for the user's shop."""
        fields = form_fields(data, flags=["repeat"])

        def work() -> str:
            zone = request.scope["state"][STATE_KEY]["zone"]
            body = form_body(
                {
                    "name": fields.get("name"),
                    "type": fields.get("type", ""),
                    "shop": principal.shop,
                    "starts_at": local_time(fields.get("starts_at"), zone),
                    "ends_at": local_time(fields.get("ends_at"), zone),
                    "skus": _list(fields.get("skus")),
                    "priority": _int(fields, "priority") or 0,
                    "rules": campaign_rules(fields.get("type"), fields),
                },
                CampaignIn,
            )
            view = _write(promotion, lambda conn, _: promotion.campaigns.create(conn, principal, body))
            return f"/promotion?done=campaign:{view.id}"

        return submit(request, work, lambda e: self._campaign_form(request, fields, e), MESSAGES)

    @get("/campaigns/{campaign_id:int}/edit", sync_to_thread=True)
    def edit_campaign_form(
        self,
        request: Request[Any, Any, Any],
        campaign_id: FromPath[int],
        principal: Caller,
        promotion: Promotion,
    ) -> Template:
        campaign = promotion.campaigns.get(principal, campaign_id)  # another shop's: 404
        zone = request.scope["state"][STATE_KEY]["zone"]
        return self._campaign_edit(request, campaign, campaign_fields(campaign, zone))

    def _campaign_edit(
        self,
        request: Request[Any, Any, Any],
        campaign: CampaignView,
        form: dict[str, Any],
        error: FormError | None = None,
    ) -> Template:
        return render(
            request,
            "promotion/console/campaign.html",
            form={**form, "type": campaign.type},
            types=TYPES,
            tiers=TIERS,
            error=error,
            campaign=campaign,
        )

    @post("/campaigns/{campaign_id:int}", sync_to_thread=True)
    def edit_campaign(
        self,
        request: Request[Any, Any, Any],
        campaign_id: FromPath[int],
        principal: Caller,
        promotion: Promotion,
        data: Form,
    ) -> Response[Any]:
        """``campaigns.edit``, the work of ``PATCH /promotion/campaigns/{id}``."""
        campaign = promotion.campaigns.get(principal, campaign_id)  # another shop's: 404
        fields = form_fields(data, flags=["repeat", "paused"])
        zone = request.scope["state"][STATE_KEY]["zone"]
        shown = campaign_fields(campaign, zone)

        def work() -> str:
            body = form_body(
                {
                    "name": fields.get("name"),
                    "priority": _int(fields, "priority"),
                    "starts_at": _changed_time(fields, shown, "starts_at", zone),
                    "ends_at": _changed_time(fields, shown, "ends_at", zone),
                    "rules": campaign_rules(campaign.type, fields),
                    "paused": fields.get("paused", False),
                },
                CampaignPatch,
            )
            _write(
                promotion,
                lambda conn, events: promotion.campaigns.edit(conn, principal, campaign_id, body, events),
            )
            return f"/promotion?done=edited:{campaign_id}"

        return submit(request, work, lambda e: self._campaign_edit(request, campaign, fields, e), MESSAGES)

    @post("/campaigns/{campaign_id:int}/end", sync_to_thread=True)
    def end_campaign(
        self,
        request: Request[Any, Any, Any],
        campaign_id: FromPath[int],
        principal: Caller,
        promotion: Promotion,
    ) -> Response[Any]:
        """``campaigns.end``, the work of ``POST /promotion/campaigns/{id}/end``."""

        def work() -> str:
            _write(promotion, lambda conn, _: promotion.campaigns.end(conn, principal, campaign_id))
            return f"/promotion?done=ended:{campaign_id}"

        return submit(
            request,
            work,
            lambda e: self._overview(
                request, principal, promotion, error=e, failed=f"campaign-{campaign_id}"
            ),
            MESSAGES,
        )

    # -- coupon templates -------------------------------------------------------------------

    @get("/coupons/new", sync_to_thread=True)
    def new_coupon(self, request: Request[Any, Any, Any]) -> Template:
        return self._coupon_form(request, {"kind": "amount", "per_customer": 1, "claimable": True})

    def _coupon_form(
        self, request: Request[Any, Any, Any], form: dict[str, Any], error: FormError | None = None
    ) -> Template:
        return render(request, "promotion/console/coupon.html", form=form, error=error)

    @post("/coupon-templates", sync_to_thread=True)
    def create_coupon(
        self, request: Request[Any, Any, Any], principal: Caller, promotion: Promotion, data: Form
    ) -> Response[Any]:
        """``coupon_templates.create``, the work of ``POST /promotion/coupon-templates``."""
        fields = form_fields(data, flags=["claimable"])

        def work() -> str:
            zone = request.scope["state"][STATE_KEY]["zone"]
            kind = fields.get("kind", "")
            value = minor_units(fields.get("value"), "value") if kind == "amount" else _int(fields, "value")
            body = form_body(
                {
                    "name": fields.get("name"),
                    "kind": kind,
                    "value": value,
                    "total": _int(fields, "total"),
                    "shop": principal.shop,
                    "cap": minor_units(fields.get("cap"), "cap") if kind == "percent" else None,
                    "min_spend": minor_units(fields.get("min_spend"), "min_spend") or 0,
                    "per_customer": _int(fields, "per_customer") or 1,
                    "valid_from": local_time(fields.get("valid_from"), zone),
                    "valid_to": local_time(fields.get("valid_to"), zone),
                    "valid_days": _int(fields, "valid_days"),
                    "skus": _list(fields.get("skus")),
                    "claimable": fields.get("claimable", False),
                },
                TemplateIn,
            )
            view = _write(promotion, lambda conn, _: promotion.coupon_templates.create(conn, principal, body))
            return f"/promotion?done=coupon:{view.id}"

        return submit(request, work, lambda e: self._coupon_form(request, fields, e), MESSAGES)

    @get("/coupon-templates/{template_id:int}/edit", sync_to_thread=True)
    def edit_coupon_form(
        self,
        request: Request[Any, Any, Any],
        template_id: FromPath[int],
        principal: Caller,
        promotion: Promotion,
    ) -> Template:
        template = promotion.coupon_templates.get(principal, template_id)  # another shop's: 404
        zone = request.scope["state"][STATE_KEY]["zone"]
        return self._coupon_edit(request, template, template_fields(template, zone))

    def _coupon_edit(
        self,
        request: Request[Any, Any, Any],
        template: TemplateView,
        form: dict[str, Any],
        error: FormError | None = None,
    ) -> Template:
        return render(request, "promotion/console/coupon.html", form=form, error=error, coupon=template)

    @post("/coupon-templates/{template_id:int}", sync_to_thread=True)
    def edit_coupon(
        self,
        request: Request[Any, Any, Any],
        template_id: FromPath[int],
        principal: Caller,
        promotion: Promotion,
        data: Form,
    ) -> Response[Any]:
        """``coupon_templates.edit``, the work of ``PATCH /promotion/coupon-templates/{id}``."""
        template = promotion.coupon_templates.get(principal, template_id)  # another shop's: 404
        fields = form_fields(data, flags=["claimable", "paused"])
        zone = request.scope["state"][STATE_KEY]["zone"]
        shown = template_fields(template, zone)

        def work() -> str:
            body = form_body(
                {
                    "name": fields.get("name"),
                    "total": _int(fields, "total"),
                    "per_customer": _int(fields, "per_customer"),
                    "valid_from": _changed_time(fields, shown, "valid_from", zone),
                    "valid_to": _changed_time(fields, shown, "valid_to", zone),
                    "claimable": fields.get("claimable", False),
                    "paused": fields.get("paused", False),
                },
                TemplatePatch,
            )
            _write(
                promotion,
                lambda conn, events: promotion.coupon_templates.edit(
                    conn, principal, template_id, body, events
                ),
            )
            return f"/promotion?done=coupon_edited:{template_id}"

        return submit(request, work, lambda e: self._coupon_edit(request, template, fields, e), MESSAGES)

    @post("/coupon-templates/{template_id:int}/end", sync_to_thread=True)
    def end_coupon(
        self,
        request: Request[Any, Any, Any],
        template_id: FromPath[int],
        principal: Caller,
        promotion: Promotion,
    ) -> Response[Any]:
        """``coupon_templates.end``, the work of ``POST /promotion/coupon-templates/{id}/end``."""

        def work() -> str:
            _write(promotion, lambda conn, _: promotion.coupon_templates.end(conn, principal, template_id))
            return f"/promotion?done=coupon_ended:{template_id}"

        return submit(
            request,
            work,
            lambda e: self._overview(request, principal, promotion, error=e, failed=f"coupon-{template_id}"),
            MESSAGES,
        )
