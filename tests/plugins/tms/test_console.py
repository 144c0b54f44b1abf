"""TMS's console page: a return delivered to the wrong warehouse is flagged and listed first with
the other exceptions; door pickups (上门取件) have their own list, with status, paged by keyset."""

from __future__ import annotations

import re
from typing import Any

from mallcore.kernel.aftersale import Pickup, ReturnAddress, ReturnParcel

from ..console.conftest import Browser
from .support import signed
from .test_returns import at, delivered_order, step, window

CONSOLE = ("catalog", "payment", "tms", "console")


def _section(html: str, title: str) -> str:
    found = re.search(rf"<h2>{title}.*?</section>", html, re.S)
    assert found is not None, title
    return found.group(0)


def test_a_return_delivered_elsewhere_is_flagged_and_listed_first(mallcore: Any) -> None:
    kernel, view, _ = delivered_order(mallcore, centers=CONSOLE)
    carrier = mallcore.client(kernel, None)
    for case_id, no, landed in ((7, "RET7000001", "BJ"), (8, "RET8000001", "SH")):
        parcel = ReturnParcel(carrier="sandbox", tracking_no=no, phone="13900000000", warehouse="SH")
        step(kernel, view, "return_shipped", case_id=case_id, return_parcel=parcel)
        body = {"tracking_no": no, "status": "delivered", "occurred_at": at(5), "warehouse": landed}
        assert signed(carrier, "sandbox", body).json()["result"] == "applied"
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    flags = {
        s["case_id"]: s["wrong_warehouse"] for s in merchant.get("/tms/shipments").json() if s["case_id"]
    }
    assert flags == {7: "BJ", 8: None}  # 8 landed where it was sent
    page = Browser(mallcore, kernel).sign_in("merchant", "m1", "s1").get("/console/tms").text
    trouble = _section(page, "Needs attention")
    assert "RET7000001" in trouble and "wrong warehouse: BJ" in trouble
    assert "RET8000001" not in trouble
    # another shop's staff see nothing of it
    other = Browser(mallcore, kernel).sign_in("merchant", "m2", "s2").get("/console/tms").text
    assert "RET7000001" not in other and "Needs attention" not in other


def test_pickups_have_their_own_list_with_status_paged_by_keyset(mallcore: Any, monkeypatch: Any) -> None:
    from mallcore.plugins.tms import console

    kernel, view, _ = delivered_order(mallcore, centers=CONSOLE)
    start, end = window()
    address = {"name": "Alice", "phone": "13800000000", "region": "310000", "detail": "1 West Lake Rd"}
    numbers = []
    for case_id in (7, 8, 9):
        case = step(
            kernel,
            view,
            "pickup_requested",
            case_id=case_id,
            pickup=Pickup(window_start=start, window_end=end, address=address),
            return_address=ReturnAddress(warehouse="SH", street="1 Depot Rd"),
        )
        assert case.pickup is not None and case.pickup.tracking_no
        numbers.append(case.pickup.tracking_no)
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    r = merchant.post(f"/tms/sandbox/{numbers[0]}/advance", json={"status": "pickup_failed"})
    assert r.json()["result"] == "applied"
    # the pickup is expected at the return address's warehouse
    assert {s["warehouse"] for s in merchant.get("/tms/shipments").json() if s["kind"] == "pickup"} == {"SH"}

    monkeypatch.setattr(console, "PAGE", 2)
    browser = Browser(mallcore, kernel).sign_in("merchant", "m1", "s1")
    first = browser.get("/console/tms/pickups")
    assert first.status_code == 200
    rows = re.findall(r'<tr data-status="([^"]+)">.*?(SBX\w+)', first.text)
    assert rows == [("booked", numbers[2]), ("booked", numbers[1])]  # newest first, a page of 2
    older = re.search(r'href="(/console/tms/pickups\?before=\d+)"', first.text)
    assert older is not None
    rest = re.findall(r'<tr data-status="([^"]+)">.*?(SBX\w+)', browser.get(older.group(1)).text)
    assert rest == [("pickup_failed", numbers[0])]
    failed = browser.get("/console/tms/pickups", params={"status": "pickup_failed"}).text
    assert numbers[0] in failed and numbers[1] not in failed
    # a failed pickup is also among the shipments that need attention
    assert numbers[0] in _section(browser.get("/console/tms").text, "Needs attention")
    zh = browser.get("/console/tms/pickups", headers={"Accept-Language": "zh-CN"}).text
    assert "上门取件" in zh
