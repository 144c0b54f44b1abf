"""The after-sale center's part of the customer's tracking page: over HTTP, and in a real
headless Chromium (Selenium with Debian's chromium and chromium-driver) through a whole
return, with WMS, TMS and finance on."""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import uvicorn

from mallcore.kernel import Kernel, TrackingCard, TrackingStep, hookimpl
from mallcore.kernel.http.app import create_app

from .conftest import Shop, StandInCarrier, make_shop
from .test_full_stack import Stack

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
)
CHROMEDRIVER = shutil.which("chromedriver")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="no Chromium with chromedriver (apt-get install -y chromium chromium-driver); .ci/run installs them",
)


class ParcelsCarrier(StandInCarrier):
    """Also plays TMS's ``tracking_page``: the order's outbound parcel with its events."""

    @hookimpl
    def tracking_page(self, conn: Any, order: Any, page: Any) -> None:
        page.carriers["sandbox"] = page.t("Sandbox Express", "沙盒快递")
        if order.status in ("awaiting_payment", "paid"):
            return
        card = TrackingCard(
            key="parcel-1", title=page.carrier("sandbox"), badge=page.t("Delivered", "已签收")
        )
        card.steps = [
            TrackingStep(at=page.time("2026-11-21T15:30:00+00:00"), text=page.t("Delivered", "已签收")),
            TrackingStep(at=page.time("2026-11-20T09:00:00+00:00"), text=page.t("Picked up", "已揽收")),
        ]
        page.section("parcels", page.t("Parcels", "包裹"), rank=20).cards.append(card)


@pytest.fixture
def story(mallcore: Any) -> Iterator[tuple[Shop, dict[str, Any], list[int]]]:
    shop = make_shop(mallcore)
    kernel = shop.kernel
    carrier = ParcelsCarrier()
    kernel.pm.unregister(shop.carrier)
    kernel.pm.register(carrier, name="standin")
    shop.carrier = carrier
    order = shop.delivered_order([("TEE-M", 1), ("MUG", 1)])
    tee, mug = order["lines"][0]["id"], order["lines"][1]["id"]
    ret = shop.open(order, "return_refund", [(tee, 1)], reason="wrong_size").json()
    shop.merchant.post(f"/after-sales/{ret['id']}/approve")
    shop.alice.post(
        f"/after-sales/{ret['id']}/return-shipment",
        json={"carrier": "sandbox", "tracking_no": "SF8888888", "phone": "13800000000"},
    )
    carrier.event(kernel, order["id"], ret["id"], "picked_up", "SF8888888")
    carrier.event(kernel, order["id"], ret["id"], "delivered", "SF8888888")
    r = shop.warehouse.post(f"/after-sales/{ret['id']}/receive", json={"passed": True})
    assert r.json()["status"] == "refunded"
    exchange = shop.open(order, "exchange", [(mug, 1)], reason="damaged").json()
    yield shop, shop.alice.get(f"/orders/{order['id']}").json(), [ret["id"], exchange["id"]]


def _url(order: dict[str, Any]) -> tuple[str, str]:
    parts = urlsplit(order["tracking_url"])
    return parts.path, parse_qs(parts.query)["token"][0]


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def _card(html: str, key: str) -> str:
    found = re.search(rf'<div class="card" id="{key}".*?(?=<div class="card" id=|</section>)', html, re.S)
    assert found is not None, key
    return found.group(0)


def test_tracking_page_over_http(story: tuple[Shop, dict[str, Any], list[int]]) -> None:
    shop, order, (ret_id, exchange_id) = story
    path, token = _url(order)
    assert path == f"/track/{order['id']}"
    nobody = shop.kit.client(shop.kernel, None)
    r = nobody.get(path, params={"token": token}, headers={"Accept-Language": "en-US,en;q=0.9"})
    assert r.status_code == 200, r.text
    html = r.text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "Order tracking" in html and "Goods received and inspected, awaiting processing" in html
    # the return waybill with the carrier's name, never its code
    returned = _text(_card(html, f"case-{ret_id}"))
    assert "Sandbox Express SF8888888" in returned and "sandbox" not in returned
    assert f'id="case-{exchange_id}"' in html
    # internal notes never reach the public page
    assert "Inspection by" not in html and "w1" not in html
    zh = nobody.get(path, params={"token": token}, headers={"Accept-Language": "zh-CN,zh;q=0.9"}).text
    assert "订单跟踪" in zh and "商品已经收到且登记检测完毕,等待处理" in zh and "退款成功" in zh
    assert "Sandbox Express" not in zh and "沙盒快递 SF8888888" in _text(zh)
    # the case's steps are not repeated in the order history, nor its refund's
    history = zh.split('<section id="history">')[1]
    assert "退货" not in history and "退款" not in history
    # one entry per event: the refund shows once on its case, not as refund.* + after_sale.* twins
    case = _text(_card(zh, f"case-{ret_id}"))
    assert case.count("¥79.00") == 2, case  # the refund line and the one step that paid it


def _serve(kernel: Kernel) -> tuple[str, uvicorn.Server, threading.Thread]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(kernel, lifecycle=False), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


class Browser:
    """A headless Chromium through Selenium, reading the page in one language."""

    def __init__(self, tmp_path: Path, accept_language: str) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service

        options = Options()
        options.binary_location = CHROMIUM or ""
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
        ):
            options.add_argument(arg)
        options.add_argument(f"--user-data-dir={tmp_path / f'profile-{accept_language[:2]}'}")
        options.add_argument(f"--lang={accept_language.split(',')[0]}")
        options.add_experimental_option("prefs", {"intl.accept_languages": accept_language})
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.tmp_path = tmp_path

    def open(self, url: str, width: int = 420) -> str:
        """Load ``url`` at ``width`` px; fail on any JavaScript error in the console."""
        self.driver.set_window_size(width, 900)
        self.driver.get(url)
        errors = [e for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
        return str(self.driver.page_source)

    def height(self) -> int:
        return int(self.driver.execute_script("return document.documentElement.scrollHeight"))

    def fits(self) -> bool:
        return bool(
            self.driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        )

    def text(self, css: str) -> str:
        from selenium.webdriver.common.by import By

        return str(self.driver.find_element(By.CSS_SELECTOR, css).text)

    def click(self, css: str) -> None:
        from selenium.webdriver.common.by import By

        self.driver.find_element(By.CSS_SELECTOR, css).click()

    def screenshot(self, name: str, width: int) -> Path:
        """The whole page, ``width`` px wide, as ``<tmp_path>/<name>.png``."""
        # (a phone's scrollbar does not take width; headless Chromium's would)
        self.driver.execute_script("document.documentElement.style.overflow = 'hidden'")
        self.driver.set_window_size(width, min(self.height() + 140, 6000))
        shot = self.tmp_path / f"{name}.png"
        assert self.driver.save_screenshot(str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        return shot

    def close(self) -> None:
        self.driver.quit()


def _open_case(stack: Stack, order: dict[str, Any], type_: str, line: dict[str, Any], **extra: Any) -> Any:
    body = {
        "order_id": order["id"],
        "type": type_,
        "lines": [{"line_id": line["id"], "quantity": 1}],
        "reason": "no_reason",
        **extra,
    }
    r = stack.alice.post("/after-sales", json=body)
    assert r.status_code == 201, r.text
    return r.json()


@needs_chromium
def test_a_return_step_by_step_in_headless_chromium(mallcore: Any, tmp_path: Path) -> None:
    stack = Stack(mallcore)
    r = stack.admin.patch(
        "/wms/warehouses/SH",
        json={
            "contact": "售后组 张三",
            "phone": "021-60001234",
            "province": "上海市",
            "city": "上海市",
            "district": "青浦区",
            "street": "华新镇华腾路 1288 号 3 号库",
        },
    )
    assert r.status_code == 200, r.text
    order = stack.delivered_order([("TEE-M", 1), ("MUG", 1)])
    tee, mug = order["lines"]
    case = _open_case(stack, order, "return_refund", tee)
    approved = stack.merchant.post(f"/after-sales/{case['id']}/approve").json()
    assert approved["status"] == "awaiting_return"
    # the case reply says where to send the goods, and by when
    assert approved["return_address"]["warehouse"] == "SH"
    assert approved["return_address"]["street"] == "华新镇华腾路 1288 号 3 号库"
    assert approved["return_by"] == approved["due_at"] and approved["return_by"] is not None

    base, server, thread = _serve(stack.kernel)
    zh = Browser(tmp_path, "zh-CN,zh")
    en = Browser(tmp_path, "en-US,en")
    url = base + order["tracking_url"]
    card = f"#case-{case['id']}"

    def shoot(stage: str) -> None:
        """The page at this stage in both languages, at a phone's and a desktop's width."""
        for browser, lang in ((zh, "zh"), (en, "en")):
            for width in (420, 1280):
                browser.open(url, width)
                assert browser.fits(), (stage, lang, width)
                browser.screenshot(f"{stage}-{lang}-{width}", width)

    try:
        # 1. approved: where to send the goods, and the deadline
        zh.open(url)
        assert "请在 7 天内寄回商品" in zh.text(f"{card} .step.latest")
        address = zh.text(f"{card} .fact.return-address")
        assert "寄回地址" in address and "售后组 张三 021-60001234" in address
        assert "上海市 青浦区" in address and "上海市 上海市" not in address
        assert "华新镇华腾路 1288 号 3 号库" in address
        assert zh.text(f"{card} .fact.ship-back-by").startswith("请在此前寄出")
        # the return parcel is expected from now on: waiting for the waybill
        assert "待寄出,寄出后请填写运单号" in zh.text(f"{card} .fact.return-parcel.expected")
        shoot("1-approved")
        assert "Send to" in en.text(f"{card} .fact.return-address")
        assert "Ship back by" in en.text(f"{card} .fact.ship-back-by")
        assert "Waiting for you to ship it" in en.text(f"{card} .fact.return-parcel")

        # 2. shipped back: the waybill with the carrier's name; no more address to send to
        r = stack.alice.post(
            f"/after-sales/{case['id']}/return-shipment",
            json={"carrier": "sandbox", "tracking_no": "SFRET0001", "phone": "13800000000"},
        )
        assert r.status_code == 200, r.text
        zh.open(url)
        assert "买家已寄出,运单号 SFRET0001" in zh.text(f"{card} .step.latest")
        assert "沙盒快递 SFRET0001" in zh.text(f"{card} .fact.return-parcel")
        assert "return-address" not in zh.driver.find_element("css selector", card).get_attribute("innerHTML")
        shoot("2-shipped")

        # 3. in transit: the carrier's scans follow the waybill
        for status in ("picked_up", "in_transit"):
            r = stack.warehouse.post("/tms/sandbox/SFRET0001/advance", json={"status": status})
            assert r.status_code == 200, r.text
        zh.open(url)
        assert "运输中" in zh.text(f"{card} .fact.return-parcel")
        assert "SFRET0001" in zh.text(f"{card} .step.latest")  # the in-transit scan, newest
        shoot("3-in-transit")

        # 4. received at the warehouse (the carrier delivers it; the warehouse inspects)
        r = stack.warehouse.post(
            "/tms/sandbox/SFRET0001/advance", json={"status": "delivered", "warehouse": "SH"}
        )
        assert r.status_code == 200, r.text
        pending = stack.warehouse.post(f"/after-sales/{case['id']}/receive", json={"passed": True}).json()
        assert pending["status"] == "refund_pending_review"
        zh.open(url)
        assert "等待财务审核" in zh.text(f"{card} .step.latest")
        assert "¥79.00 · 等待财务审核" in zh.text(f"{card} .fact.refund")
        # the earlier steps are folded; opened (no script needed), each step shows once
        assert "商品已经收到" not in zh.text(card)
        zh.click(f"{card} details.earlier summary")
        earlier = zh.text(f"{card} details.earlier")
        for phrase in (
            "商家已同意",
            "请在 7 天内寄回商品",
            "买家已寄出",
            "退货包裹已签收",
            "商品已经收到且登记检测完毕",
        ):
            assert earlier.count(phrase) == 1, (phrase, earlier)
        zh.screenshot("4-received-zh-420-opened", 420)
        shoot("4-received")

        # 5. refunded
        r = stack.finance.post(f"/finance/refunds/{pending['refund_id']}/approve")
        assert r.status_code == 200, r.text
        zh.open(url)
        assert "退款成功" in zh.text(f"{card} .step.latest") and "¥79.00" in zh.text(f"{card} .step.latest")
        assert "¥79.00 · 退款成功" in zh.text(f"{card} .fact.refund")
        # the sandbox carrier speaks the page's language only
        page = zh.driver.page_source
        assert "Sandbox" not in page and "Collected" not in page
        shoot("5-refunded")
        # a second case: the page stays short (older steps folded, nothing repeated)
        _open_case(stack, order, "exchange", mug, replacement_skus={str(mug["id"]): "MUG"})
        for browser, lang in ((zh, "zh"), (en, "en")):
            for width in (420, 1280):
                html = browser.open(url, width)
                assert browser.fits(), (lang, width)
                assert html.count('<div class="card" id="case-') == 2
                # about 1,200 px today at either width: folded steps, nothing repeated
                assert browser.height() < (1800 if width == 420 else 1500), (lang, width, browser.height())
                browser.screenshot(f"6-two-cases-{lang}-{width}", width)
        en_page = en.driver.page_source
        assert "¥79.00 · Refunded" in en.text(f"{card} .fact.refund")
        assert "沙盒" not in en_page and "CNY" not in en_page
        assert "Times in Asia/Shanghai (UTC+08:00)" in en.text("#time-zone")
        assert "138****0000" in en.text("#address") and "13800000000" not in en_page
        # a forged link shows nothing
        zh.driver.get(f"{base}/track/{order['id']}?token=forged")
        assert "order_not_found" in zh.driver.page_source and "SFRET0001" not in zh.driver.page_source
    finally:
        zh.close()
        en.close()
        server.should_exit = True
        thread.join(timeout=10)


def _refund_line(html: str, case_id: int) -> str | None:
    """The case card's refund line (amount and state), if the page shows one."""
    found = re.search(r'<div class="fact refund">(.*?)</div>', _card(html, f"case-{case_id}"), re.S)
    return None if found is None else _text(found.group(1))


def test_the_page_shows_a_refund_only_while_money_is_coming(mallcore: Any) -> None:
    from .test_review import _shop, review

    shop = _shop(mallcore)
    order = shop.delivered_order([("TEE-M", 1), ("MUG", 1)])
    case = shop.open(order, "refund_only", [(order["lines"][1]["id"], 1)], reason="missing").json()
    pending = shop.merchant.post(f"/after-sales/{case['id']}/approve").json()
    assert pending["refund_status"] == "pending_review"
    path, token = _url(shop.alice.get(f"/orders/{order['id']}").json())
    nobody = shop.kit.client(shop.kernel, None)

    def page(lang: str) -> str:
        r = nobody.get(path, params={"token": token}, headers={"Accept-Language": lang})
        assert r.status_code == 200, r.text
        return r.text

    assert _refund_line(page("en"), case["id"]) == "Refund ¥39.00 · Awaiting finance review"
    assert _refund_line(page("zh-CN,zh;q=0.9"), case["id"]) == "退款 ¥39.00 · 等待财务审核"
    # finance says no: the case waits for the merchant, and no refund is on its way
    review(shop, pending["refund_id"], approve=False, note="photo evidence missing")
    assert shop.case(case["id"])["refund_status"] == "rejected"
    for lang in ("en", "zh"):
        assert _refund_line(page(lang), case["id"]) is None, lang
    # resubmitted and paid
    again = shop.merchant.post(f"/after-sales/{case['id']}/approve").json()
    assert _refund_line(page("en"), case["id"]) == "Refund ¥39.00 · Awaiting finance review"
    review(shop, again["refund_id"], approve=True)
    assert _refund_line(page("en"), case["id"]) == "Refund ¥39.00 · Refunded"
    assert _refund_line(page("zh"), case["id"]) == "退款 ¥39.00 · 退款成功"


def test_the_return_waybill_is_expected_where_the_customer_was_told_to_send_it(mallcore: Any) -> None:
    stack = Stack(mallcore)
    order = stack.delivered_order([("TEE-M", 1)])  # left from SH, which has no address
    r = stack.admin.post(
        "/wms/warehouses",
        json={
            "code": "BJ",
            "name": "Beijing returns",
            "region": "110000",
            "contact": "售后组 王五",
            "phone": "010-60001234",
            "province": "北京市",
            "city": "北京市",
            "district": "大兴区",
            "street": "京南物流基地 7 号库",
        },
    )
    assert r.status_code == 201, r.text
    case = _open_case(stack, order, "return_refund", order["lines"][0])
    assert case["return_parcel"] is None  # nothing is to come back before the merchant agrees
    approved = stack.merchant.post(f"/after-sales/{case['id']}/approve").json()
    assert approved["return_address"]["warehouse"] == "BJ"
    # from approval on the return parcel is expected: where, by when, waiting for the waybill
    expected = {
        "status": "awaiting_waybill",
        "warehouse": "BJ",
        "carrier": None,
        "tracking_no": None,
        "phone": "",
        "return_by": approved["return_by"],
    }
    assert approved["return_by"] is not None and approved["return_parcel"] == expected
    assert stack.alice.get(f"/after-sales/{case['id']}").json()["return_parcel"] == expected
    listed = stack.alice.get(f"/orders/{order['id']}").json()["extra"]["after_sales"]
    assert [c["return_parcel"] for c in listed] == [expected]
    path, token = _url(stack.alice.get(f"/orders/{order['id']}").json())
    nobody = stack.kit.client(stack.kernel, None)
    for lang, words in (("en", "Return parcel Waiting for you to ship it"), ("zh", "退货包裹 待寄出")):
        html = nobody.get(path, params={"token": token}, headers={"Accept-Language": lang}).text
        assert words in _text(_card(html, f"case-{case['id']}")), lang
    r = stack.alice.post(
        f"/after-sales/{case['id']}/return-shipment",
        json={"carrier": "sandbox", "tracking_no": "SFRET0002", "phone": "13800000000"},
    )
    assert r.status_code == 200, r.text
    shipped = r.json()
    assert shipped["return_parcel"] == {
        "status": "filed",
        "warehouse": "BJ",
        "carrier": "sandbox",
        "tracking_no": "SFRET0002",
        "phone": "13800000000",
        "return_by": None,
    }
    # then the carrier's events follow it, on the case and in the order
    stack.carrier_event("SFRET0002", "picked_up")
    stack.carrier_event("SFRET0002", "in_transit", description="Left the Daxing hub")
    moving = stack.alice.get(f"/after-sales/{case['id']}").json()["return_parcel"]
    assert (moving["status"], moving["tracking_no"]) == ("in_transit", "SFRET0002")
    parcels = stack.alice.get(f"/orders/{order['id']}").json()["extra"]["after_sale_parcels"]
    assert [e["status"] for e in parcels[0]["events"]] == ["picked_up", "in_transit"]
    html = nobody.get(path, params={"token": token}).text
    card = _text(_card(html, f"case-{case['id']}"))
    assert "Return parcel Sandbox Express SFRET0002 · In transit" in card and "Left the Daxing hub" in card
    # the address stays on the case; the deadline goes once the goods are on their way
    assert shipped["return_address"]["street"] == "京南物流基地 7 号库" and shipped["return_by"] is None


def test_a_pickup_window_reads_in_the_shops_time_zone(mallcore: Any) -> None:
    shop = make_shop(mallcore, config={"shop": {"timezone": "Asia/Shanghai"}})
    order = shop.delivered_order([("TEE-M", 1)])
    case = shop.open(order, "return_refund", [(order["lines"][0]["id"], 1)]).json()
    shop.merchant.post(f"/after-sales/{case['id']}/approve")
    start = (datetime.now(UTC) + timedelta(days=2)).replace(hour=2, minute=0, second=0, microsecond=0)
    r = shop.alice.post(
        f"/after-sales/{case['id']}/pickup",
        json={"window_start": start.isoformat(), "window_end": (start + timedelta(hours=2)).isoformat()},
    )
    assert r.status_code == 200, r.text
    local = (start + timedelta(hours=8)).strftime("%Y-%m-%d")
    assert any(e["message"] == f"Pickup requested for {local} 10:00-12:00" for e in r.json()["timeline"])
    path, token = _url(shop.alice.get(f"/orders/{order['id']}").json())
    html = shop.kit.client(shop.kernel, None).get(path, params={"token": token}).text
    pickup = _text(_card(html, f"case-{case['id']}"))
    assert f"Pickup {local} 10:00 - 12:00" in pickup and "UTC" not in pickup


def test_a_carrier_scan_just_after_a_case_step_is_shown_and_its_echoes_are_not(mallcore: Any) -> None:
    stack = Stack(mallcore)
    order = stack.delivered_order([("TEE-M", 1)])
    case = _open_case(stack, order, "return_refund", order["lines"][0])
    stack.merchant.post(f"/after-sales/{case['id']}/approve")
    path, token = _url(stack.alice.get(f"/orders/{order['id']}").json())
    nobody = stack.kit.client(stack.kernel, None)
    # SH has no address yet: the expected parcel at least names the warehouse it goes to
    card = _text(_card(nobody.get(path, params={"token": token}).text, f"case-{case['id']}"))
    assert "Return parcel Waiting for you to ship it and enter the waybill · to warehouse SH" in card
    r = stack.alice.post(
        f"/after-sales/{case['id']}/return-shipment",
        json={"carrier": "sandbox", "tracking_no": "SFRET0003", "phone": "13800000000"},
    )
    assert r.status_code == 200, r.text
    # the pickup scan moves the case (one event); the next scan lands well within 2 s of that step
    stack.carrier_event("SFRET0003", "picked_up", description="Collected by courier Li")
    started = time.monotonic()
    stack.carrier_event("SFRET0003", "in_transit", description="Left the Qingpu hub")
    assert time.monotonic() - started < 2
    html = nobody.get(path, params={"token": token}).text
    steps = re.findall(r'<div class="text">([^<]*)</div>', _card(html, f"case-{case['id']}"))
    # the genuine scan shows, newest first; the scan that moved the case and the waybill TMS
    # registered when the customer filed it are echoes of the case's steps: folded
    assert "Left the Qingpu hub" in steps[0], steps
    assert "The return parcel is on its way to the warehouse" in steps[1], steps
    assert not any("Collected by courier Li" in s or "is being tracked" in s for s in steps), steps
    assert sum("SFRET0003" in s for s in steps) == 2, steps  # the waybill step and the scan
