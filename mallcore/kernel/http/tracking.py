"""``GET /track/{order_id}?token=...``: the customer's tracking page (see :mod:`..tracking`).

The kernel serves it whichever centers are on; centers add their sections
through the ``tracking_page`` hook. The page is rendered with the kernel's
own Jinja environment (``templates/track.html`` beside this module), so it
works in a host's app whatever template engine the host configured.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import MediaType, Request, Response, get
from litestar.params import FromPath, FromQuery

from ..errors import NotFound
from ..i18n import SUPPORTED, pick_language
from ..tracking import TrackingPage, delivery_address, price_lines, refund_owners
from ..types import Shop

if TYPE_CHECKING:
    from ..kernel import Kernel

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)

ORDER_STATUS: dict[str, tuple[str, str]] = {
    "awaiting_payment": ("Awaiting payment", "等待付款"),
    "paid": ("Paid, preparing to ship", "已付款,待发货"),
    "dispatched": ("Handed to the warehouse", "仓库处理中"),
    "shipped": ("Shipped", "已发货"),
    "delivered": ("Delivered", "已签收"),
    "completed": ("Completed", "交易成功"),
    "cancelled": ("Cancelled", "已取消"),
    "closed": ("Closed (refunded)", "交易关闭(已退款)"),
}

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Order tracking",
        "order": "Order No.",
        "placed": "Placed",
        "shop": "Shop",
        "deliver_to": "Delivery address",
        "goods": "Items",
        "price": "Price details",
        "history": "Order history",
        "more": "Earlier steps ({n})",
        "times": "Times in {zone}",
        "qty": "x{n}",
    },
    "zh": {
        "title": "订单跟踪",
        "order": "订单编号",
        "placed": "下单时间",
        "shop": "店铺",
        "deliver_to": "收货地址",
        "goods": "商品",
        "price": "价格明细",
        "history": "订单动态",
        "more": "查看更早的 {n} 条",
        "times": "时间为 {zone}",
        "qty": "x{n}",
    },
}


def render_page(kernel: Kernel, order_id: int, lang: str) -> str:
    """The page's HTML: the kernel's part, then every center's (``tracking_page``)."""
    with kernel.db.transaction(write=False) as conn:
        order = kernel.orders.load(conn, order_id)
        if order is None:
            raise NotFound(f"order {order_id} not found", code="order_not_found")
        lines = kernel.orders.load_lines(conn, order_id)
        adjustments = kernel.orders.load_adjustments(conn, order_id)
        shop = kernel.shops.find(conn, order.shop) or Shop(order.shop, order.shop, order.currency)
        page = TrackingPage(
            order=order,
            shop=shop,
            lines=lines,
            lang=lang,
            zone=kernel.config.shop.zone(order.shop),
            timeline=kernel.order_views.timeline_entries(conn, order_id, lang=lang, public_only=True),
            link=kernel.tracking_url,
        )
        kernel.hook.tracking_page(kernel=kernel, conn=conn, order=order, page=page)
        owners = refund_owners(conn, order_id)
    status = ORDER_STATUS.get(order.status)
    words = TEXT[lang]
    context: dict[str, Any] = {
        "lang": lang,
        "w": words,
        "page": page,
        "order": order,
        "shop_name": shop.name,
        "status": page.t(*status) if status else order.status,
        "placed_at": page.time(order.placed_at),
        "address": delivery_address(order.address, lang),
        "goods": [
            {
                "name": line.name or line.sku,
                "sku": line.sku,
                "quantity": line.quantity,
                "price": page.money(line.unit_price or 0),
            }
            for line in lines
        ],
        "price": price_lines(page, adjustments),
        "sections": sorted(page.sections.values(), key=lambda s: s.rank),
        "history": page.history(owners),
        "zone": words["times"].format(zone=page.zone_label()),
    }
    return _TEMPLATES.get_template("track.html").render(context)


def tracking_route(kernel: Kernel) -> Any:
    """The page's route handler, for ``kernel``."""

    @get(
        "/track/{order_id:int}",
        sync_to_thread=True,
        media_type=MediaType.HTML,
        tags=["tracking"],
        summary="The customer's tracking page (signed link, no login)",
        security=[],
    )
    def track(
        order_id: FromPath[int],
        request: Request[Any, Any, Any],
        token: FromQuery[str | None] = None,
        lang: FromQuery[str | None] = None,
    ) -> Response[str]:
        """The order as its customer follows it; a wrong or missing token is 404 ``order_not_found``."""
        # (hmac.compare_digest refuses non-ASCII text: a mangled link is simply not found)
        if not token or not token.isascii() or not kernel.auth.check_tracking_token(order_id, token):
            raise NotFound(f"order {order_id} not found", code="order_not_found")
        language = lang if lang in SUPPORTED else pick_language(request.headers.get("accept-language"))
        return Response(
            render_page(kernel, order_id, language),
            media_type=MediaType.HTML,
            headers={"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"},
        )

    return track
