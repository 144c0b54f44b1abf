"""The customer's tracking page, served by a real server and opened in headless Chromium."""

from __future__ import annotations

import re
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import uvicorn

from mallcore.kernel import Kernel, hookimpl
from mallcore.kernel.http.app import create_app
from mallcore.kernel.schemas import ShipmentView

from .conftest import Shop, StandInCarrier, make_shop

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium installed (apt-get install -y chromium); .ci/run installs it"
)


class ParcelsCarrier(StandInCarrier):
    """Also plays TMS's ``order_view``: the order's outbound parcel with its events."""

    @hookimpl
    def order_view(self, kernel: Kernel, conn: Any, order: Any, view: Any) -> None:
        if order.status in ("awaiting_payment", "paid"):
            return
        view.shipments.append(
            ShipmentView(
                id=1,
                carrier="sandbox",
                tracking_no=f"SB{order.id:08d}",
                status="delivered",
                warehouse="HZ-1",
                lines=[{"line_id": line.id, "quantity": line.quantity} for line in view.lines],
                events=[
                    {"status": "picked_up", "occurred_at": "2026-11-20T09:00:00+00:00", "location": "杭州"},
                    {
                        "status": "delivered",
                        "occurred_at": "2026-11-21T15:30:00+00:00",
                        "description": "本人签收",
                    },
                ],
            )
        )


@pytest.fixture
def story(mallcore: Any) -> Iterator[tuple[Shop, dict[str, Any], list[int]]]:
    shop = make_shop(mallcore)
    kernel = shop.kernel
    # swap the stand-in for one that also renders parcels
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


def test_tracking_page_over_http(story: tuple[Shop, dict[str, Any], list[int]]) -> None:
    shop, order, (ret_id, exchange_id) = story
    path, token = _url(order)
    assert path == f"/track/{order['id']}"
    nobody = shop.kit.client(shop.kernel, None)
    r = nobody.get(path, params={"token": token}, headers={"Accept-Language": "en-US,en;q=0.9"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "Order tracking" in html and "Goods received and inspected, awaiting processing" in html
    assert "SF8888888" in html and f"SB{order['id']:08d}" in html
    assert f'id="case-{ret_id}"' in html and f'id="case-{exchange_id}"' in html
    # internal notes never reach the public page
    assert "Inspection by" not in html and "w1" not in html
    zh = nobody.get(path, params={"token": token}, headers={"Accept-Language": "zh-CN,zh;q=0.9"}).text
    assert "订单跟踪" in zh and "商品已经收到且登记检测完毕,等待处理" in zh and "退款成功" in zh
    other = _url({"tracking_url": shop.kernel.tracking_url(order["id"] + 1)})[1]
    for bad in ("", "nope", other, "é" * 22, token[:-1] + "é"):
        assert nobody.get(path, params={"token": bad}).status_code == 404
    assert nobody.get(path).status_code == 404


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


def _chromium(tmp_path: Path, url: str, *args: str) -> str:
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=390,844",
        *args,
        url,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@needs_chromium
def test_tracking_page_in_headless_chromium(
    story: tuple[Shop, dict[str, Any], list[int]], tmp_path: Path
) -> None:
    shop, order, (ret_id, exchange_id) = story
    path, token = _url(order)
    base, server, thread = _serve(shop.kernel)
    try:
        url = f"{base}{path}?token={token}"
        # Chinese, chosen by the browser's Accept-Language
        dom = _chromium(tmp_path, url, "--lang=zh-CN", "--accept-lang=zh-CN,zh", "--dump-dom")
        assert 'data-fits="true"' in dom, "the page needs sideways scrolling on a phone"
        assert '<html lang="zh-CN"' in dom
        assert f'<span id="order-id">{order["id"]}</span>' in dom
        assert "订单跟踪" in dom and "<h2>商品</h2>" in dom
        # the outbound parcel with its events
        assert f"SB{order['id']:08d}" in dom and "本人签收" in dom and "已签收" in dom
        # the return case: waybill, carrier steps, inspection, refund
        case_html = re.search(rf'<div class="card case" id="case-{ret_id}".*?</ul>', dom, re.S)
        assert case_html is not None
        text = case_html.group(0)
        assert "退货退款" in text and "SF8888888" in text
        for phrase in (
            "买家已寄出",
            "退货包裹已揽收",
            "退货包裹已签收",
            "商品已经收到且登记检测完毕",
            "退款成功",
        ):
            assert phrase in text, phrase
        assert "CNY 79.00" in text
        # the exchange still waits for the merchant
        assert re.search(rf'id="case-{exchange_id}" data-status="requested"', dom)
        assert "换货" in dom and "等待商家处理" in dom
        assert "Inspection by" not in dom
        # English for an English browser
        dom_en = _chromium(tmp_path, url, "--lang=en-US", "--accept-lang=en-US,en", "--dump-dom")
        assert "Order tracking" in dom_en and "<h2>Items</h2>" in dom_en
        assert "Goods received and inspected" in dom_en
        # what a phone shows: a 390 x 844 screenshot with something drawn on it
        shot = tmp_path / "track.png"
        _chromium(tmp_path, url, f"--screenshot={shot}", "--hide-scrollbars")
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", data[16:24]) == (390, 844)
        assert len(data) > 10_000
        # a forged link shows nothing
        forged = _chromium(tmp_path, f"{base}{path}?token=forged", "--dump-dom")
        assert "order_not_found" in forged and "SF8888888" not in forged
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _refund_line(html: str, case_id: int) -> str | None:
    """The case card's refund line (amount and state), if the page shows one."""
    card = re.search(rf'<div class="card case" id="case-{case_id}".*?<ul class="timeline">', html, re.S)
    assert card is not None
    found = re.search(r'<p class="kv refund"[^>]*>(.*?)</p>', card.group(0), re.S)
    return None if found is None else " ".join(found.group(1).split())


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

    assert _refund_line(page("en"), case["id"]) == "Refund: CNY 39.00 · Awaiting finance review"
    assert _refund_line(page("zh-CN,zh;q=0.9"), case["id"]) == "退款: CNY 39.00 · 等待财务审核"
    # finance says no: the case waits for the merchant, and no refund is on its way
    review(shop, pending["refund_id"], approve=False, note="photo evidence missing")
    assert shop.case(case["id"])["refund_status"] == "rejected"
    for lang in ("en", "zh"):
        html = page(lang)
        assert _refund_line(html, case["id"]) is None, lang
        assert "CNY 39.00" not in html.split(f'id="case-{case["id"]}"')[1].split('<ul class="timeline">')[0]
    # resubmitted and paid
    again = shop.merchant.post(f"/after-sales/{case['id']}/approve").json()
    assert _refund_line(page("en"), case["id"]) == "Refund: CNY 39.00 · Awaiting finance review"
    review(shop, again["refund_id"], approve=True)
    assert _refund_line(page("en"), case["id"]) == "Refund: CNY 39.00 · Refunded"
    assert _refund_line(page("zh"), case["id"]) == "退款: CNY 39.00 · 退款成功"
