"""SLA timers and their default outcomes, as a job and as a command; safe with several runners."""

from __future__ import annotations

import threading
from typing import Any

from click.testing import CliRunner

from mallcore.cli import State
from mallcore.plugins.refund import sla

from .conftest import Shop


def _run(shop: Shop) -> int:
    return sla.run(shop.center)


def test_merchant_silent_then_customer_never_ships(shop: Shop) -> None:
    order = shop.delivered_order([("TEE-M", 1)])
    case = shop.open(order, "return_refund", [(order["lines"][0]["id"], 1)]).json()
    assert case["timer"] == "approve"
    shop.later(hours=47)
    assert _run(shop) == 0
    shop.later(hours=2)
    assert _run(shop) == 1
    approved = shop.case(case["id"])
    assert approved["status"] == "awaiting_return" and approved["timer"] == "close"
    zh = shop.alice.get(f"/after-sales/{case['id']}", headers={"Accept-Language": "zh"}).json()
    assert any("系统已自动同意" in e["message"] for e in zh["timeline"])
    shop.later(days=7, minutes=1)
    assert _run(shop) == 1
    closed = shop.case(case["id"])
    assert closed["status"] == "closed" and closed["due_at"] is None
    assert any("not sent back within 7 days" in e["message"] for e in closed["timeline"])
    assert _run(shop) == 0


def test_goods_signed_but_not_inspected_are_refunded(shop: Shop) -> None:
    order = shop.delivered_order([("TEE-M", 2)])
    case = shop.open(order, "return_refund", [(order["lines"][0]["id"], 2)]).json()
    shop.merchant.post(f"/after-sales/{case['id']}/approve")
    shop.alice.post(
        f"/after-sales/{case['id']}/return-shipment",
        json={"carrier": "sandbox", "tracking_no": "SF5550001", "phone": "13800000000"},
    )
    shop.later(days=9)
    assert _run(shop) == 0
    shop.later(days=2)
    assert _run(shop) == 1  # not arrived after transit_days: escalated, re-armed, nothing else
    flagged = shop.case(case["id"])
    assert flagged["status"] == "return_shipped" and flagged["timer"] == "escalate"
    assert any(e["kind"] == "after_sale.overdue" and not e["public"] for e in flagged["timeline"])
    assert flagged["due_at"] > case["due_at"]
    shop.carrier.event(shop.kernel, order["id"], case["id"], "delivered", "SF5550001")
    arrived = shop.case(case["id"])
    assert arrived["status"] == "return_in_transit" and arrived["timer"] == "receive"
    shop.later(days=3, hours=1)
    assert _run(shop) == 1
    done = shop.case(case["id"])
    assert done["status"] == "refunded" and done["refund_amount"] == 2 * 7900
    assert {i["disposition"] for i in done["inspections"]} == {"quarantine"}
    assert done["lines"][0]["received"] == 2


def test_pickup_window_passes_without_a_courier(shop: Shop) -> None:
    shop.carrier.fail_booking = True
    order = shop.delivered_order([("TEE-M", 1)])
    case = shop.open(order, "return_refund", [(order["lines"][0]["id"], 1)]).json()
    shop.merchant.post(f"/after-sales/{case['id']}/approve")
    start = shop.center.clock()
    from datetime import timedelta

    r = shop.alice.post(
        f"/after-sales/{case['id']}/pickup",
        json={
            "window_start": (start + timedelta(hours=1)).isoformat(),
            "window_end": (start + timedelta(hours=3)).isoformat(),
        },
    )
    assert r.json()["timer"] == "pickup_expired"
    shop.later(hours=28)
    assert _run(shop) == 1
    back = shop.case(case["id"])
    assert back["status"] == "awaiting_return" and back["pickup"]["status"] == "failed"


def test_several_runners_fire_each_timer_once(shop: Shop) -> None:
    orders = [shop.delivered_order([("TEE-M", 1)]) for _ in range(4)]
    ids = [shop.open(o, "return_refund", [(o["lines"][0]["id"], 1)]).json()["id"] for o in orders]
    shop.later(hours=49)
    results: list[int] = []
    errors: list[BaseException] = []

    def runner() -> None:
        try:
            results.append(_run(shop))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=runner) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert sum(results) == len(ids)
    for case_id in ids:
        case = shop.case(case_id)
        assert case["status"] == "awaiting_return"
        assert [e["kind"] for e in case["timeline"]].count("after_sale.approved") == 1


def test_job_and_command(shop: Shop) -> None:
    assert "refund.sla" in shop.kernel.jobs.jobs
    order = shop.delivered_order([("TEE-M", 1)])
    first = shop.open(order, "refund_only", [(order["lines"][0]["id"], 1)], reason="missing").json()
    shop.later(hours=49)
    state = State(None)
    state._kernel = shop.kernel
    command: Any = dict(shop.kernel.call_each("center_commands"))["refund"][0]
    out = CliRunner().invoke(command, ["--dry-run"], obj=state)
    assert out.exit_code == 0, out.output
    assert f"case {first['id']}" in out.output and "approve" in out.output
    assert shop.case(first["id"])["status"] == "requested"
    out = CliRunner().invoke(command, [], obj=state)
    assert out.exit_code == 0, out.output
    assert "1 case(s)" in out.output
    assert shop.case(first["id"])["status"] == "refunded"
    assert shop.kernel.jobs.run("refund.sla") == 0
