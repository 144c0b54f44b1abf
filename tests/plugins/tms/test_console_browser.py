"""TMS's console pages in a real headless Chromium: the shipments that need attention (a return
delivered to the wrong warehouse, a failed pickup) and the pickups list, at 1280 and 420 px,
screenshots in the test's folder, no error in the browser's console."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from mallcore.kernel.aftersale import Pickup, ReturnAddress, ReturnParcel

from .support import signed
from .test_console import CONSOLE
from .test_returns import at, delivered_order, step, window

pytestmark = pytest.mark.skipif(
    shutil.which("chromedriver") is None
    or not any(shutil.which(n) for n in ("chromium", "chromium-browser")),
    reason="no chromium / chromedriver (apt-get install -y chromium chromium-driver; .ci/run installs them)",
)


def test_the_tms_pages_as_staff_see_them(mallcore: Any, tmp_path: Path) -> None:
    from ..console.test_browser import Person, serve

    kernel, view, _ = delivered_order(mallcore, centers=CONSOLE)
    parcel = ReturnParcel(carrier="sandbox", tracking_no="RET7000001", phone="13900000000", warehouse="SH")
    step(kernel, view, "return_shipped", case_id=7, return_parcel=parcel)
    body = {"tracking_no": "RET7000001", "status": "delivered", "occurred_at": at(5), "warehouse": "BJ"}
    assert signed(mallcore.client(kernel, None), "sandbox", body).json()["result"] == "applied"
    start, end = window()
    address = {"name": "Alice", "phone": "13800000000", "region": "310000", "detail": "1 West Lake Rd"}
    booked = []
    for case_id in (8, 9):
        case = step(
            kernel,
            view,
            "pickup_requested",
            case_id=case_id,
            pickup=Pickup(window_start=start, window_end=end, address=address),
            return_address=ReturnAddress(warehouse="SH", street="1 Depot Rd"),
        )
        assert case.pickup is not None
        booked.append(case.pickup.tracking_no)
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    merchant.post(f"/tms/sandbox/{booked[0]}/advance", json={"status": "pickup_failed"})

    base, server, thread = serve(kernel)
    people = []
    try:
        for width in (1280, 420):
            person = Person(base, tmp_path, f"tms-{width}", width=width)
            people.append(person)
            person.sign_in(mallcore.token(kernel, "merchant", "m1", "s1"))
            person.open("/console/tms")
            text = person.text()
            assert "Needs attention" in text and "wrong warehouse: BJ" in text and booked[0] in text
            person.open("/console/tms/pickups")
            text = person.text()
            assert booked[0] in text and booked[1] in text and "pickup_failed" in text
    finally:
        for person in people:
            person.close()
        server.should_exit = True
        thread.join(timeout=10)
