"""物流中心 TMS: freight templates, carriers, shipments, tracking, return parcels, pickups.

Hooks:

- ``order_price``: freight from the shop's templates (运费模板) for the
  address's region, as one ``freight`` adjustment (phase FREIGHT) whose
  reason explains it; a region a template does not deliver to refuses the
  order (422 ``region_not_delivered``). Templates are cached per process:
  pricing usually runs no query at all (see :mod:`.freight`).
- ``freight_quote``: prices a WMS warehouse plan parcel by parcel.
- ``order_dispatch`` (after WMS): one shipment per parcel of ``ctx.parcels``
  (or one with every line), with a waybill from the parcel's carrier.
- ``order_deliver``: starts the auto-complete clock.
- ``order_after_sale``: tracks return waybills, books pickups (see
  :mod:`.returns`).
- ``order_view``: the order's shipments with their events.
- ``tracking_page``: carrier names and the parcels on the customer's
  tracking page (see :mod:`.page`).

Routes under ``/tms``: templates, carriers, shipments and their events, the
carrier webhook (``POST /tms/webhooks/{carrier}``), the sandbox carrier's
advance route and the review of events for unknown waybills.
Jobs: ``tms.auto_complete``, ``tms.stale_returns``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
import sqlalchemy as sa

from mallcore.kernel import (
    Center,
    ConfigError,
    Job,
    Kernel,
    OrderContext,
    Phase,
    Rejected,
    ShipmentView,
    TrackingPage,
    hookimpl,
)
from mallcore.kernel.aftersale import AfterSaleCase
from mallcore.kernel.http import center_router

from . import console
from . import tables as t
from .carriers import SANDBOX, Carrier, CarrierSettings, build
from .freight import NotDelivered, TemplateCache, bump_version, group, quote_parcels, save_template
from .http import CONTROLLERS
from .jobs import auto_complete, start_clock
from .page import add_parcels
from .returns import Returns
from .schemas import TemplateIn
from .tracking import Tracker

_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")
# Orders in these states cannot have shipments yet: their view costs no query.
_NO_SHIPMENTS = frozenset({"awaiting_payment", "paid", "cancelled"})


class TmsSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # [centers.tms.carriers.<code>]: webhook_secret, waybill_prefix, name, pickup.
    # "sandbox" is always there (secret derived from the kernel's secret unless set).
    carriers: dict[str, CarrierSettings] = msgspec.field(default_factory=dict)
    # Carrier of parcels that do not name one.
    default_carrier: str = SANDBOX
    # Webhook signatures older or newer than this are refused.
    webhook_tolerance_seconds: Annotated[int, msgspec.Meta(ge=1)] = 300
    # A delivered order completes by itself this long after delivery (7 days).
    auto_complete_after_hours: Annotated[float, msgspec.Meta(ge=0)] = 168.0
    # A return waybill or pickup with no movement this long is flagged.
    stale_return_after_hours: Annotated[float, msgspec.Meta(gt=0)] = 72.0
    # Other workers' template changes are noticed within this many seconds
    # (0: check the version on every order, one indexed read).
    template_recheck_seconds: Annotated[float, msgspec.Meta(ge=0)] = 5.0
    # How often the jobs run inside ``mallcore serve``.
    job_interval_seconds: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    # The sandbox advance route (POST /tms/sandbox/...): anyone with a merchant token could
    # move parcels with it, so it is off unless turned on (``mallcore demo`` and the test
    # kit turn it on).
    sandbox_routes: bool = False


class TmsCenter(Center):
    name = "tms"
    requires = ()
    after = ("catalog", "wms")
    description = "物流中心 TMS: freight templates, carriers, shipments, tracking, returns, pickups"
    tables = t.metadata
    Settings = TmsSettings

    carriers: dict[str, Carrier]
    freight: TemplateCache

    def __init__(self) -> None:
        super().__init__()
        self.tracker = Tracker(self)
        self.returns = Returns(self)

    def bind(self, kernel: Kernel, settings: Any) -> None:
        super().bind(kernel, settings)
        source = kernel.config.source
        for code in settings.carriers:
            if not _CODE.match(code):
                raise ConfigError(
                    f"{source}: config key 'centers.tms.carriers.{code}': a carrier code is 1-32 "
                    "letters, digits, '_', '.' or '-'"
                )
        self.carriers = build(settings.carriers, lambda: kernel.keyring("webhooks").secrets)
        if settings.default_carrier not in self.carriers:
            raise ConfigError(
                f"{source}: config key 'centers.tms.default_carrier': no carrier named "
                f"'{settings.default_carrier}' (known: {', '.join(sorted(self.carriers))})"
            )
        self.freight = TemplateCache(settings.template_recheck_seconds)

    # -- pricing -------------------------------------------------------------------

    @hookimpl
    def order_price(self, ctx: OrderContext) -> None:
        order = ctx.order
        book = self.freight.get(ctx.conn, order.shop)
        if book.empty:
            return
        region = order.address.region if order.address is not None else None
        items = [(line.sku, line.quantity, line.weight_grams, line.unit_price or 0) for line in ctx.lines]
        quotes = []
        for consignment in group(book, items, None):
            try:
                quotes.append(
                    consignment.template.quote(
                        region,
                        quantity=consignment.quantity,
                        weight=consignment.weight,
                        goods=consignment.goods,
                        currency=order.currency,
                    )
                )
            except NotDelivered as exc:
                skus = sorted({sku for sku, *_ in items if book.template_for(sku, None) is exc.template})
                raise Rejected(
                    f"shop {order.shop} does not deliver to region {region} "
                    f"(freight template {exc.template.name})",
                    code="region_not_delivered",
                    extra={"region": region, "template": exc.template.name, "skus": skus},
                ) from None
        if not quotes:
            return
        total = sum(q.amount for q in quotes)
        order.extra["freight"] = {
            "amount": total,
            "region": region,
            "consignments": [msgspec.to_builtins(q) for q in quotes],
            "en": "; ".join(q.en for q in quotes),
            "zh": ";".join(q.zh for q in quotes),
        }
        if total:
            reason = "Freight: " + "; ".join(q.en for q in quotes)
            if len(reason) > 300:
                reason = reason[:299] + "…"
            ctx.adjust(self.name, reason, total, phase=Phase.FREIGHT, code="freight")

    @hookimpl
    def freight_quote(
        self, kernel: Kernel, conn: sa.Connection, order: Any, lines: Any, parcels: Any
    ) -> int | None:
        book = self.freight.get(conn, order.shop)
        if book.empty:
            for parcel in parcels:
                parcel.freight = 0
            return 0
        region = order.address.region if order.address is not None else None
        by_id = {line.id or 0: (line.sku, line.weight_grams, line.unit_price or 0) for line in lines}
        return quote_parcels(book, region, by_id, parcels, order.currency)

    # -- shipping --------------------------------------------------------------------

    @hookimpl(trylast=True)
    def order_dispatch(self, ctx: OrderContext) -> None:
        self.tracker.ship(ctx)

    @hookimpl
    def order_deliver(self, ctx: OrderContext) -> None:
        start_clock(ctx, self.settings.auto_complete_after_hours)

    @hookimpl
    def order_after_sale(self, ctx: OrderContext, case: AfterSaleCase) -> None:
        self.returns.on_case(ctx, case)

    @hookimpl
    def order_view(self, kernel: Kernel, conn: sa.Connection, order: Any, view: Any) -> None:
        if order.status in _NO_SHIPMENTS:
            return
        s, e = t.shipments.c, t.events.c
        rows: Any = conn.execute(
            sa.select(
                s.id, s.kind, s.case_id, s.carrier, s.tracking_no, s.status, s.warehouse, s.lines, s.stale_at
            )
            .where(s.order_id == order.id)
            .order_by(s.id)
        ).all()
        if not rows:
            return
        events: dict[int, list[dict[str, Any]]] = {}
        for r in conn.execute(
            sa.select(e.shipment_id, e.status, e.occurred_at, e.location, e.description)
            .where(e.order_id == order.id)
            .order_by(e.occurred_at, e.id)
        ):
            events.setdefault(r.shipment_id, []).append(
                {
                    "at": r.occurred_at,
                    "status": r.status,
                    "location": r.location,
                    "description": r.description,
                }
            )
        returns = []
        for r in rows:
            lines = [{"line_id": line_id, "quantity": qty} for line_id, qty in r.lines or []]
            if r.kind == "outbound":
                view.shipments.append(
                    ShipmentView(
                        id=r.id,
                        carrier=r.carrier,
                        tracking_no=r.tracking_no,
                        status=r.status,
                        warehouse=r.warehouse,
                        lines=lines,
                        events=events.get(r.id, []),
                    )
                )
            else:
                returns.append(
                    {
                        "id": r.id,
                        "kind": r.kind,
                        "case_id": r.case_id,
                        "carrier": r.carrier,
                        "tracking_no": r.tracking_no,
                        "status": r.status,
                        "stale": r.stale_at is not None,
                        "events": events.get(r.id, []),
                    }
                )
        if returns:
            view.extra["after_sale_parcels"] = returns

    @hookimpl
    def tracking_page(self, conn: sa.Connection, page: TrackingPage) -> None:
        add_parcels(page, conn, self.carriers)

    # -- what the center brings -----------------------------------------------------------

    @hookimpl
    def console_pages(self, kernel: Kernel) -> list[Any]:
        return console.pages()

    @hookimpl
    def center_routes(self, kernel: Kernel) -> list[Any]:
        return [center_router(self, CONTROLLERS)]

    @hookimpl
    def center_jobs(self, kernel: Kernel) -> list[Job]:
        every = self.settings.job_interval_seconds
        return [
            Job(
                "tms.auto_complete",
                every,
                lambda k: auto_complete(self),
                "complete delivered orders after the configured time",
            ),
            Job(
                "tms.stale_returns",
                every,
                lambda k: self.tracker.flag_stale(self.settings.stale_return_after_hours),
                "flag return waybills and pickups with no movement",
            ),
        ]

    @hookimpl
    def center_startup(self, kernel: Kernel) -> None:
        sandbox = self.carriers[SANDBOX]
        if getattr(sandbox, "default_secret", False):
            self.log.warning(
                "tms.sandbox_default_secret",
                detail="the sandbox carrier signs with a secret derived from the kernel's; set "
                "[centers.tms.carriers.sandbox] webhook_secret in production",
            )

    @hookimpl
    def center_demo(self, kernel: Kernel, demo: Any) -> None:
        tp = t.templates.c
        with kernel.db.transaction() as conn:
            exists = conn.execute(
                sa.select(tp.id).where(tp.shop == demo.shop, tp.name == DEMO_TEMPLATE["name"])
            ).first()
            if exists is None:
                spec = msgspec.convert({**DEMO_TEMPLATE, "shop": demo.shop}, TemplateIn)
                save_template(conn, spec, "demo", None)
                bump_version(conn, demo.shop)
        self.freight.invalidate(demo.shop)
        sandbox = self.carriers[SANDBOX]
        secret = (
            f"{sandbox.secret!r} (derived from the kernel's webhooks key)"
            if getattr(sandbox, "default_secret", False)
            else "your configured secret"
        )
        demo.notes.append(
            "tms: freight template 'Standard 标准快递' (by weight: ¥8 first kg + ¥3 per extra kg, "
            "¥6 + ¥2 to Jiangsu/Zhejiang/Shanghai, ¥20 + ¥10 to Xinjiang/Tibet; free over ¥99, "
            "¥299 to Xinjiang/Tibet; no delivery to Hong Kong/Macau/Taiwan)"
        )
        demo.notes.append(
            f"tms: sandbox carrier signs webhooks with {secret}; set "
            "[centers.tms.carriers.sandbox] webhook_secret to choose it; move a parcel with "
            "POST /tms/sandbox/<tracking_no>/advance"
        )


DEMO_TEMPLATE: dict[str, Any] = {
    "name": "Standard 标准快递",
    "mode": "weight",
    "default": True,
    "default_rule": {"first": 1000, "first_fee": 800, "additional": 1000, "additional_fee": 300},
    "rules": [
        {
            "name": "Jiangsu/Zhejiang/Shanghai 江浙沪",
            "regions": ["31", "32", "33"],
            "first": 1000,
            "first_fee": 600,
            "additional": 1000,
            "additional_fee": 200,
        },
        {
            "name": "Xinjiang/Tibet 新疆西藏",
            "regions": ["65", "54"],
            "first": 1000,
            "first_fee": 2000,
            "additional": 1000,
            "additional_fee": 1000,
        },
    ],
    "free": [
        {"name": "free over ¥99", "min_amount": 9900},
        {"name": "remote: free over ¥299", "regions": ["65", "54"], "min_amount": 29900},
    ],
    "not_delivered": ["71", "81", "82"],
}

__all__ = ["TmsCenter", "TmsSettings"]
