"""The customer's tracking page is the kernel's: served whichever centers are on,
centers add their sections through ``tracking_page`` (mallcore/kernel/tracking.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest

from mallcore.kernel import (
    Center,
    ConfigError,
    Phase,
    TrackingCard,
    TrackingFact,
    format_amount,
    hookimpl,
    load_config,
    mask_phone,
    region_name,
)
from mallcore.kernel.tracking import fold_echoes

from ..helpers import order_body


def _page(client, order, lang="en"):
    r = client.get(order["tracking_url"], headers={"Accept-Language": lang})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    return r.text


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_hook_tracking_page_adds_a_centers_section_and_the_page_works_without_the_refund_center(mallcore):
    class Points(Center):
        name = "points"

        @hookimpl
        def tracking_page(self, conn, order, page):
            card = TrackingCard(key="points-card", title=page.t("Points earned", "获得积分"), badge="+12")
            card.facts.append(
                TrackingFact(label=page.t("Worth", "价值"), value=page.money(120), kind="worth")
            )
            page.section("points", page.t("Points", "积分"), rank=80).cards.append(card)

    kernel = mallcore.kernel(["catalog", "payment"], extra=[Points()])
    assert "refund" not in kernel.centers
    mallcore.product(kernel, skus=[("SKU-1", 15800)], name="Linen shirt")
    alice = mallcore.client(kernel, "customer", "alice")
    order = alice.post("/orders", json=order_body()).json()
    alice.post(f"/orders/{order['id']}/payments", json={"method": "sandbox"})
    nobody = mallcore.client(kernel, None)
    html = _page(nobody, order)
    text = _text(html)
    assert 'id="points-card"' in html and "Points earned" in text and "Worth ¥1.20" in text
    # the shop, the delivery address with its phone masked, the price breakdown in ¥
    assert re.search(r'<h2 id="shop-name">s1</h2>', html)
    assert "138****0000" in text and "13800000000" not in html
    assert "Alice 138****0000 Shanghai 1 West Lake Rd" in text and "310000" not in text
    assert "Goods ¥158.00" in text and "Freight ¥0.00" in text and "Paid ¥158.00" in text
    assert "CNY" not in text
    # history newest first, in Shanghai time, with the zone said
    assert "Times in Asia/Shanghai (UTC+08:00)" in text
    latest = re.search(
        r'<ol class="timeline" id="history-steps">\s*<li class="step latest"><div class="text">([^<]*)', html
    )
    assert latest is not None and latest.group(1) == "Payment received"
    at = datetime.fromisoformat(order["placed_at"].replace("Z", "+00:00")).astimezone(UTC) + timedelta(
        hours=8
    )
    assert at.strftime("%Y-%m-%d %H:%M") in text
    # one language per page
    zh = _text(_page(nobody, order, "zh-CN,zh;q=0.9"))
    assert "获得积分" in zh and "实付款 ¥158.00" in zh and "Points earned" not in zh
    assert "时间为 Asia/Shanghai (UTC+08:00)" in zh and "上海市 1 West Lake Rd" in zh


def test_a_wrong_token_finds_nothing(mallcore):
    kernel = mallcore.kernel(["catalog", "payment"])
    mallcore.product(kernel)
    alice = mallcore.client(kernel, "customer", "alice")
    order = alice.post("/orders", json=order_body()).json()
    path = urlsplit(order["tracking_url"]).path
    nobody = mallcore.client(kernel, None)
    other = urlsplit(kernel.tracking_url(order["id"] + 1)).query.partition("=")[2]
    for bad in ("", "nope", other, "é" * 22):
        r = nobody.get(path, params={"token": bad})
        assert r.status_code == 404 and r.json()["code"] == "order_not_found"
    assert nobody.get(path).status_code == 404


def test_the_shops_time_zone_is_configurable_per_shop(mallcore):
    kernel = mallcore.kernel(
        ["catalog", "payment"],
        config={"shop": {"timezone": "Asia/Shanghai", "timezones": {"s1": "Europe/London"}}},
    )
    mallcore.product(kernel)
    alice = mallcore.client(kernel, "customer", "alice")
    order = alice.post("/orders", json=order_body()).json()
    assert "Times in Europe/London" in _text(_page(mallcore.client(kernel, None), order))


def test_an_unknown_time_zone_is_a_config_error():
    with pytest.raises(ConfigError, match=r"shop.timezones.s1.*Mars/Olympus"):
        load_config(overrides={"shop": {"timezones": {"s1": "Mars/Olympus"}}}, env={})
    with pytest.raises(ConfigError, match=r"'shop.timezone'"):
        load_config(overrides={"shop": {"timezone": "nowhere"}}, env={})


def test_tracking_url_is_absolute_when_base_url_is_set(mallcore):
    kernel = mallcore.kernel(
        ["catalog", "payment"], config={"http": {"base_url": "https://shop.example.com/"}}
    )
    mallcore.product(kernel)
    order = mallcore.client(kernel, "customer", "alice").post("/orders", json=order_body()).json()
    url = urlsplit(order["tracking_url"])
    assert (url.scheme, url.netloc, url.path) == ("https", "shop.example.com", f"/track/{order['id']}")
    relative = mallcore.kernel(["catalog", "payment"])
    assert relative.tracking_url(1).startswith("/track/1?token=")


def test_amounts_and_phones_read_as_shoppers_expect():
    assert format_amount(15800, "CNY") == "¥158.00"
    assert mask_phone("13812341234") == "138****1234"
    assert mask_phone("12") == "**"


def test_a_region_code_reads_as_place_names():
    assert region_name("310000") == "上海市" and region_name("310000", "en") == "Shanghai"
    # a district of a municipality reads as the municipality
    assert region_name("310115", "en") == "Shanghai"
    assert region_name("440300") == "广东省 深圳市" and region_name("440300", "en") == "Shenzhen, Guangdong"
    # a county-level code reads as its city
    assert region_name("440305") == "广东省 深圳市"
    assert region_name("532900", "en") == "Dali Prefecture, Yunnan"
    assert region_name("440000", "en") == "Guangdong"
    # anything else is shown as given
    for given in ("999999", "449900", "上海 浦东", "", "31000"):
        assert region_name(given) == given
    assert region_name(None) == ""


def test_an_echo_of_a_step_is_folded_by_its_link_never_by_time():
    t0 = datetime(2026, 12, 1, tzinfo=UTC)

    def entry(kind, seconds, **links):
        return SimpleNamespace(kind=kind, at=t0 + timedelta(seconds=seconds), data=links or None)

    scan = entry("shipment.picked_up", 0, entry="k1")
    step = entry("after_sale.return_in_transit", 0.01, cause="k1")
    # a genuine scan half a second after the step: no link, shown
    genuine = entry("shipment.in_transit", 0.5)
    assert fold_echoes([scan, step, genuine], "after_sale:1") == [step, genuine]
    # what a center wrote because of the owner's step is folded too, however late
    filed = entry("after_sale.return_shipped", 0, entry="k2")
    registered = entry("shipment.return_filed", 30, cause="k2")
    assert fold_echoes([filed, registered], "after_sale:1") == [filed]
    approved = entry("finance.refund_approved", 0, entry="k3")
    refunded = entry("refund.refunded", 0.02, cause="k3")
    assert fold_echoes([approved, refunded], "refund:4") == [refunded]
    # the same moment without a link tells two events
    assert fold_echoes([entry("finance.x", 0), entry("refund.y", 0)], "refund:4") == [
        entry("finance.x", 0),
        entry("refund.y", 0),
    ]
    # entries of no object are never folded
    assert fold_echoes([approved, refunded], None) == [approved, refunded]


def test_because_links_what_reacting_centers_write_to_its_cause(mallcore):
    class Echo(Center):
        name = "echo"

        @hookimpl
        def order_pay(self, ctx, payment):
            cause = ctx.timeline("echo.cause", "Owner-step", ref="echo:1")
            with ctx.because(cause):
                ctx.timeline("other.effect", "Echo-entry", ref="echo:1", data={"n": 1})
            ctx.timeline("other.after", "Later-scan", ref="echo:1")

    kernel = mallcore.kernel(["catalog", "payment"], extra=[Echo()])
    mallcore.product(kernel)
    alice = mallcore.client(kernel, "customer", "alice")
    order = alice.post("/orders", json=order_body()).json()
    alice.post(f"/orders/{order['id']}/payments", json={"method": "sandbox"})
    entries = {e["kind"]: e for e in alice.get(f"/orders/{order['id']}/timeline").json()}
    key = entries["echo.cause"]["data"]["entry"]
    assert isinstance(key, str) and len(key) >= 8
    assert entries["other.effect"]["data"] == {"n": 1, "cause": key}
    assert entries["other.after"]["data"] is None
    # the page: the owner's entry stays, its echo is folded, the later entry is shown
    text = _text(_page(mallcore.client(kernel, None), order))
    assert "Owner-step" in text and "Echo-entry" not in text and "Later-scan" in text


def test_the_price_breakdown_names_each_discount_once(mallcore):
    class Promo(Center):
        name = "promo"

        @hookimpl
        def order_price(self, ctx):
            # one discount shared over the lines, one on a line: each shown once, summed
            ctx.adjust(self.name, "Welcome offer", -500, phase=Phase.PROMOTION, code="welcome")
            ctx.adjust(self.name, "Mug day", -300, phase=Phase.PROMOTION, line=ctx.lines[1], code="mug")

    kernel = mallcore.kernel(["catalog", "payment"], extra=[Promo()])
    mallcore.product(kernel, skus=[("SKU-1", 15800), ("SKU-2", 3000)])
    alice = mallcore.client(kernel, "customer", "alice")
    order = alice.post("/orders", json=order_body(lines=[("SKU-1", 1), ("SKU-2", 1)])).json()
    assert order["total"] == 15800 + 3000 - 800
    text = _text(_page(mallcore.client(kernel, None), order))
    assert "Goods ¥188.00 Freight ¥0.00 Welcome offer -¥5.00 Mug day -¥3.00 To pay ¥180.00" in text
