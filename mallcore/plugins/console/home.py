"""The home page: today's figures, every center's tiles, and 30 days of orders and refunds.

The kernel's figures (orders, paid GMV, refunds, held orders) are read here from
the kernel's tables, limited by ``visible_to``; the other centers' (open
after-sale cases, finance reviews waiting, SLA timers due) come from the tiles
of their ``ConsolePage``. The chart is an inline SVG drawn on the server, so it
reads without JavaScript.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from litestar import Controller, Request, get
from litestar.response import Template

from mallcore.kernel import Caller, Principal, utcnow, visible_to
from mallcore.kernel import tables as kt
from mallcore.kernel.console import ConsolePage, Tile, language, money, render, tr

from .web import Console

if TYPE_CHECKING:
    from . import ConsoleCenter

DAYS = 30


def page() -> ConsolePage:
    return ConsolePage(path="/", label="Home", label_zh="首页", handlers=(), order=0)


class HomePage(Controller):
    path = "/"

    @get("/", sync_to_thread=True)
    def home(self, request: Request[Any, Any, Any], principal: Caller, console: Console) -> Template:
        lang = language(request)
        figures, (days, orders, refunds) = home_figures(console, principal, lang)
        tiles: list[Tile] = []
        for page in console.pages:
            if page.tiles is not None and page.shown_to(principal):
                tiles.extend(page.tiles(principal, lang))
        return render(
            request,
            "console/home.html",
            figures=figures,
            tiles=tiles,
            chart=chart_svg(days, orders, refunds, tr(lang)),
        )


def _today(console: ConsoleCenter) -> tuple[ZoneInfo, datetime, datetime]:
    zone = console.zone
    now = utcnow()
    local = now.astimezone(zone)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return zone, now, start


Chart = tuple[list[str], list[int], list[int]]


def home_figures(console: ConsoleCenter, principal: Principal, lang: str) -> tuple[list[Tile], Chart]:
    """The kernel's figures and the 30-day chart, in one read-only transaction of three
    statements (on PostgreSQL each statement and each transaction is a round trip, and the
    round trips were most of the page's time; the queries themselves take about a
    millisecond each, ``EXPLAIN ANALYZE`` at 100,000 orders):

    - today's orders (count and paid GMV per currency), which is also the chart's last bar;
    - the refunds paid over the 30 days (time, currency, amount): the chart's line and
      today's refund figures;
    - held orders, through ``ix_orders_hold``;

    plus a count for each past day of the chart not yet known (see :func:`chart_days`).
    """
    t = tr(lang)
    zone, _, start = _today(console)
    o, r = kt.orders.c, kt.refunds.c
    seen = visible_to(principal, o.shop)
    local = [start.date() - timedelta(days=DAYS - 1 - i) for i in range(DAYS + 1)]
    bounds = [datetime.combine(day, datetime.min.time(), tzinfo=zone) for day in local]
    with console.kernel.db.transaction(write=False) as conn:
        today = conn.execute(
            sa.select(
                o.currency,
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(sa.case((o.paid > 0, o.total), else_=0)), 0),
            )
            .where(seen, o.placed_at >= start)
            .group_by(o.currency)
        ).all()
        count = sum(row[1] for row in today)
        placed = chart_days(console, conn, principal, local, bounds, count)
        refunds = conn.execute(
            sa.select(r.updated_at, r.currency, r.amount + r.shipping).where(
                visible_to(principal, r.shop), r.status == "refunded", r.updated_at >= bounds[0]
            )
        ).all()
        # Few orders are held: read them through ix_orders_hold and keep those the principal
        # may see (Principal.can_see is visible_to's rule), rather than let the planner walk
        # every order of the shop.
        held = sum(
            principal.can_see(shop)
            for shop in conn.execute(sa.select(o.shop).where(o.hold.is_not(None))).scalars()
        )
    by_day: dict[str, int] = {}
    refunded_today: dict[str, list[int]] = {}
    for at, currency, amount in refunds:
        day = at.astimezone(zone).date().isoformat()
        by_day[day] = by_day.get(day, 0) + 1
        if at >= start:
            figure = refunded_today.setdefault(currency, [0, 0])
            figure[0] += 1
            figure[1] += int(amount)
    paid_back = [by_day.get(day.isoformat(), 0) for day in local[:-1]]
    # (PostgreSQL sums integers as numeric: back to int minor units)
    currency = console.kernel.config.orders.currency
    gmv = ", ".join(money(int(row[2]), row[0]) for row in today) or money(0, currency)
    refund_total = ", ".join(money(v[1], c) for c, v in sorted(refunded_today.items())) or money(0, currency)
    figures = [
        Tile(label="Orders today", label_zh="今日订单", value=str(count), href="/orders"),
        Tile(label="Paid GMV today", label_zh="今日成交额", value=gmv),
        Tile(
            label="Refunds today",
            label_zh="今日退款",
            value=refund_total,
            rows=[(t("refunds", "笔数"), str(sum(v[0] for v in refunded_today.values())))],
        ),
        Tile(
            label="Held orders",
            label_zh="挂起订单",
            value=str(held),
            href="/orders?held=true",
            tone="warn" if held else "",
        ),
    ]
    return figures, ([day.isoformat() for day in local[:-1]], placed, paid_back)


def chart_days(
    console: ConsoleCenter,
    conn: sa.Connection,
    principal: Principal,
    local: list[date],
    bounds: list[datetime],
    today: int,
) -> list[int]:
    """Orders placed per local day, the last 30 days (today's count given).

    One count per day over an index range (``ix_orders_shop_placed`` for a shop's
    staff, ``ix_orders_placed`` platform-wide), with the day's bounds worked out in
    the console's time zone: no per-row date arithmetic, daylight saving included.
    A past day's count never changes (an order's placement time is fixed), so it is
    kept per viewer scope (a shop, or every shop) and day: a request counts none of
    them once they are known.
    """
    o = kt.orders.c
    scope = "*" if principal.is_platform else str(principal.shop)
    zone = str(console.zone)
    placed: list[int] = []
    for day, (lo, hi) in zip(local[:-2], pairwise(bounds), strict=False):
        key = (scope, zone, day)
        count = console.day_counts.get(key)
        if count is None:
            count = conn.execute(
                sa.select(sa.func.count()).where(
                    visible_to(principal, o.shop), o.placed_at >= lo, o.placed_at < hi
                )
            ).scalar_one()
            console.remember_day(key, count)
        placed.append(count)
    return [*placed, today]


def chart_svg(days: list[str], orders: list[int], refunds: list[int], t: Any) -> str:
    """Two series as bars and a line in an SVG that scales with its box (no script)."""
    width, height, left, bottom, top = 720, 220, 40, 24, 12
    peak = max([1, *orders, *refunds])
    step = (width - left - 8) / len(days)
    plot = height - bottom - top

    def y(value: int) -> float:
        return top + plot - plot * value / peak

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{t("Orders and refunds per day, last 30 days", "近 30 天每日订单与退款")}">',
        f'<line x1="{left}" y1="{top + plot}" x2="{width - 4}" y2="{top + plot}" class="axis"/>',
        f'<text x="{left - 6}" y="{top + 8}" class="tick" text-anchor="end">{peak}</text>',
        f'<text x="{left - 6}" y="{top + plot}" class="tick" text-anchor="end">0</text>',
    ]
    for i, (day, n) in enumerate(zip(days, orders, strict=True)):
        x = left + i * step
        parts.append(
            f'<rect class="bar" x="{x + 1:.1f}" y="{y(n):.1f}" width="{step - 2:.1f}" '
            f'height="{top + plot - y(n):.1f}"><title>{day}: {n}</title></rect>'
        )
        if i % 5 == 0 or i == len(days) - 1:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{height - 6}" class="tick" text-anchor="middle">{day[5:]}</text>'
            )
    points = " ".join(f"{left + i * step + step / 2:.1f},{y(n):.1f}" for i, n in enumerate(refunds))
    parts.append(f'<polyline class="line" points="{points}"/>')
    for i, n in enumerate(refunds):
        parts.append(
            f'<circle class="dot" cx="{left + i * step + step / 2:.1f}" cy="{y(n):.1f}" r="2.5">'
            f"<title>{days[i]}: {n}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)
