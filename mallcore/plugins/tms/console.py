"""The TMS pages of the staff console: shipments with exceptions first (stuck, wrong warehouse,
failed pickup, carrier problems), door pickups (上门取件) with their status, one shipment with
its carrier events, and the freight templates. Read through the API's own readers
(``shipment_rows``, ``visible_shipment``, ``load_templates``) and rules (404 elsewhere)."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import sqlalchemy as sa
from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Template

from mallcore.kernel import Caller, Principal, visible_to
from mallcore.kernel.console import (
    ConsolePage,
    FormError,
    form_body,
    form_fields,
    minor_units,
    render,
    submit,
)
from mallcore.kernel.http import Reply, roles

from . import tables as t
from .freight import load_templates
from .http.deps import Tms
from .http.shipments import landed_elsewhere, shipment_rows, visible_shipment
from .http.templates import replace_template, template_or_404
from .schemas import EventView, TemplateSpec, TemplateView, view_of

if TYPE_CHECKING:
    from . import TmsCenter

PAGE = 50
# What needs someone's attention: problems the carrier reported, failed pickups, parcels
# with no movement for too long (``stale_at``), returns delivered to the wrong warehouse.
TROUBLE = ("exception", "pickup_failed")
# A pickup's states, for the pickups list's filter.
PICKUP_STATES = ("booked", "picked_up", "in_transit", "delivered", "pickup_failed", "cancelled", "superseded")


def pages() -> list[ConsolePage]:
    return [
        ConsolePage(
            path="/tms",
            label="Shipments",
            label_zh="物流",
            handlers=[ShipmentPages, TemplatePages],
            roles=("merchant", "warehouse", "finance"),
            order=50,
        )
    ]


class ShipmentPages(Controller):
    path = "/tms"
    guards = [roles("merchant", "warehouse", "finance")]

    @get("/", sync_to_thread=True)
    def shipments(
        self,
        request: Request[Any, Any, Any],
        principal: Caller,
        tms: Tms,
        tracking_no: FromQuery[str | None] = None,
        before: FromQuery[int | None] = None,
    ) -> Template:
        """Exceptions first (stuck, failed pickups, carrier problems), then every shipment, newest first."""
        s = t.shipments.c
        seen = visible_to(principal, s.shop, s.customer)
        trouble = sa.or_(s.status.in_(TROUBLE), s.stale_at.is_not(None), landed_elsewhere().is_not(None))
        where = [seen]
        if tracking_no:
            where.append(s.tracking_no == tracking_no.strip())
        if before:
            where.append(s.id < before)
        with tms.kernel.db.transaction(write=False) as conn:
            problems = [] if before else shipment_rows(conn, sa.and_(seen, trouble), PAGE)
            rows = shipment_rows(conn, sa.and_(*where), PAGE + 1)
        more = rows[PAGE - 1].id if len(rows) > PAGE else None
        return render(
            request,
            "tms/console/shipments.html",
            problems=problems,
            rows=rows[:PAGE],
            more=more,
            tracking_no=tracking_no or "",
        )

    @get("/pickups", sync_to_thread=True)
    def pickups(
        self,
        request: Request[Any, Any, Any],
        principal: Caller,
        tms: Tms,
        status: FromQuery[str | None] = None,
        before: FromQuery[int | None] = None,
    ) -> Template:
        """Door pickups (上门取件), newest first, paged by keyset, with their status and window."""
        s = t.shipments.c
        where = [visible_to(principal, s.shop, s.customer), s.kind == "pickup"]
        if status in PICKUP_STATES:
            where.append(s.status == status)
        if before:
            where.append(s.id < before)
        with tms.kernel.db.transaction(write=False) as conn:
            rows = shipment_rows(conn, sa.and_(*where), PAGE + 1)
        more = rows[PAGE - 1].id if len(rows) > PAGE else None
        return render(
            request,
            "tms/console/pickups.html",
            rows=[(r, _window(r.pickup)) for r in rows[:PAGE]],
            more=more,
            chosen=status if status in PICKUP_STATES else "",
            states=PICKUP_STATES,
        )

    @get("/shipments/{shipment_id:int}", sync_to_thread=True)
    def shipment(
        self, request: Request[Any, Any, Any], shipment_id: FromPath[int], principal: Caller, tms: Tms
    ) -> Template:
        e = t.events.c
        with tms.kernel.db.transaction(write=False) as conn:
            shipment = visible_shipment(conn, principal, t.shipments.c.id == shipment_id)
            events = [
                view_of(EventView, r)
                for r in conn.execute(
                    sa.select(t.events)
                    .where(e.shipment_id == shipment_id)
                    .order_by(e.occurred_at.desc(), e.id.desc())
                )
            ]
        return render(request, "tms/console/shipment.html", shipment=shipment, events=events)


# -- freight templates ------------------------------------------------------------------------

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
# Blank rows the edit form offers for new region and free-shipping rules.
SPARE_ROWS = 2
MESSAGES = {
    "shop_forbidden": ("Only the shop's merchants change its templates.", "仅本店商家可修改运费模板。"),
    "invalid_amount": ("An amount is not a number of yuan (e.g. 12.50).", "金额格式有误(例如 12.50)。"),
    "invalid_input": ("Some fields are missing or not valid.", "有字段缺失或填写有误。"),
}


def _words(text: str | None) -> list[str]:
    return [w for w in re.split(r"[\s,,、]+", text or "") if w]


def _charge(fields: dict[str, Any], prefix: str) -> dict[str, Any]:
    out = {
        "first_fee": minor_units(fields.get(f"{prefix}first_fee"), f"{prefix}first_fee"),
        "additional_fee": minor_units(fields.get(f"{prefix}additional_fee"), f"{prefix}additional_fee"),
        "first": fields.get(f"{prefix}first"),
        "additional": fields.get(f"{prefix}additional"),
    }
    return {k: v for k, v in out.items() if v is not None}


def template_body(fields: dict[str, Any]) -> TemplateSpec:
    """The edit form as ``PUT /tms/templates/{id}``'s body: yuan to minor units, rows with
    regions to rules, lists from comma- or space-separated text."""
    rules, free = [], []
    for i in range(200):
        prefix = f"rule-{i}-"
        regions = _words(fields.get(prefix + "regions"))
        if regions:  # a row without regions is no rule (cleared: removed)
            rules.append(
                {"regions": regions, "name": fields.get(prefix + "name", ""), **_charge(fields, prefix)}
            )
    for i in range(50):
        prefix = f"free-{i}-"
        amount = minor_units(fields.get(prefix + "min_amount"), prefix + "min_amount")
        quantity = fields.get(prefix + "min_quantity")
        if amount is not None or quantity is not None:
            free.append(
                {
                    "regions": _words(fields.get(prefix + "regions")),
                    "min_amount": amount,
                    "min_quantity": quantity,
                    "name": fields.get(prefix + "name", ""),
                }
            )
    body = {
        "name": fields.get("name"),
        "mode": fields.get("mode"),
        "default_rule": _charge(fields, "default-"),
        "rules": rules,
        "free": free,
        "not_delivered": _words(fields.get("not_delivered")),
        "origin": fields.get("origin"),
        "split": fields.get("split", "once"),
        "default": fields.get("default", False),
        "skus": _words(fields.get("skus")),
        "active": fields.get("active", False),
    }
    return form_body({k: v for k, v in body.items() if v is not None}, TemplateSpec)


def _yuan(amount: int | None) -> str:
    return "" if amount is None else f"{Decimal(amount) / 100:.2f}"


def template_form(view: TemplateView) -> dict[str, Any]:
    """A template as its edit form's fields (what ``template_body`` reads back)."""
    form: dict[str, Any] = {
        "name": view.name,
        "mode": view.mode,
        "origin": view.origin or "",
        "split": view.split,
        "default": view.default,
        "active": view.active,
        "not_delivered": ", ".join(view.not_delivered),
        "skus": ", ".join(view.skus),
    }

    def charge(prefix: str, c: Any) -> None:
        form[prefix + "first_fee"] = _yuan(c.first_fee)
        form[prefix + "additional_fee"] = _yuan(c.additional_fee)
        form[prefix + "first"] = c.first or ""
        form[prefix + "additional"] = c.additional or ""

    charge("default-", view.default_rule)
    for i, rule in enumerate(view.rules):
        charge(f"rule-{i}-", rule)
        form[f"rule-{i}-regions"] = ", ".join(rule.regions)
        form[f"rule-{i}-name"] = rule.name
    for i, f in enumerate(view.free):
        form[f"free-{i}-regions"] = ", ".join(f.regions)
        form[f"free-{i}-min_amount"] = _yuan(f.min_amount)
        form[f"free-{i}-min_quantity"] = f.min_quantity or ""
        form[f"free-{i}-name"] = f.name
    return form


def _rows(form: dict[str, Any], prefix: str) -> int:
    """How many rows of ``prefix`` the form has filled, plus spare blank ones."""
    used = {int(k.split("-")[1]) for k in form if k.startswith(prefix) and k.split("-")[1].isdigit()}
    return (max(used) + 1 if used else 0) + SPARE_ROWS


class TemplatePages(Controller):
    """Freight templates (运费模板): read by the shop's staff, changed by its merchants through
    ``replace_template``, the work of ``PUT /tms/templates/{id}``."""

    path = "/tms/templates"
    guards = [roles("merchant", "warehouse", "finance")]

    @get("/", sync_to_thread=True)
    def templates(
        self,
        request: Request[Any, Any, Any],
        principal: Caller,
        tms: Tms,
        after: FromQuery[int | None] = None,
    ) -> Template:
        """The templates the user may see, by id (keyset: ``after`` an id)."""
        tp = t.templates.c
        where = [visible_to(principal, tp.shop)]
        if after is not None:
            where.append(tp.id > after)
        with tms.kernel.db.transaction(write=False) as conn:
            views = load_templates(conn, sa.and_(*where), PAGE + 1)
        more = views[PAGE - 1].id if len(views) > PAGE else None
        return render(
            request,
            "tms/console/templates.html",
            templates=views[:PAGE],
            more=more,
            done=request.query_params.get("done"),
        )

    @get("/{template_id:int}", sync_to_thread=True)
    def template(
        self, request: Request[Any, Any, Any], template_id: FromPath[int], principal: Caller, tms: Tms
    ) -> Template:
        return self._edit_page(request, principal, tms, template_id)

    def _edit_page(
        self,
        request: Request[Any, Any, Any],
        principal: Principal,
        tms: TmsCenter,
        template_id: int,
        error: FormError | None = None,
        form: dict[str, Any] | None = None,
    ) -> Template:
        with tms.kernel.db.transaction(write=False) as conn:
            view = template_or_404(conn, principal, template_id)
        form = form or template_form(view)
        return render(
            request,
            "tms/console/template.html",
            tpl=view,
            form=form,
            rule_rows=_rows(form, "rule-"),
            free_rows=_rows(form, "free-"),
            editable=principal.can_act_for_shop(view.shop, "merchant"),
            error=error,
        )

    @post("/{template_id:int}", sync_to_thread=True, guards=[roles("merchant")])
    def save(
        self,
        request: Request[Any, Any, Any],
        template_id: FromPath[int],
        principal: Caller,
        tms: Tms,
        data: Form,
    ) -> Response[Any]:
        fields = form_fields(data, flags=["default", "active"])

        def work() -> str:
            with tms.kernel.db.transaction(write=False) as conn:
                template_or_404(conn, principal, template_id)  # another shop's: 404 before the form is read
            replace_template(tms, principal, template_id, template_body(fields), Reply())
            return f"/tms/templates?done={template_id}"

        return submit(
            request,
            work,
            lambda e: self._edit_page(request, principal, tms, template_id, e, fields),
            MESSAGES,
        )


def _window(pickup: dict[str, Any] | None) -> tuple[datetime | None, datetime | None]:
    """A pickup's booked window (start, end), as stored with its shipment."""
    found = pickup or {}
    start, end = found.get("window_start"), found.get("window_end")
    return (
        datetime.fromisoformat(start) if isinstance(start, str) else None,
        datetime.fromisoformat(end) if isinstance(end, str) else None,
    )
