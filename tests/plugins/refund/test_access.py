"""Who may do what with a case: each step route's role guard, then the rule of the case itself."""

from __future__ import annotations

from typing import Any

import pytest

from mallcore.plugins.refund.cases.steps import CUSTOMER, STEPS

from .conftest import ADDRESS, Shop


def _requested(shop: Shop) -> int:
    order = shop.delivered_order([("TEE-M", 1)])
    r = shop.open(order, "return_refund", [(order["lines"][0]["id"], 1)])
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


@pytest.mark.parametrize("step", sorted(STEPS))
def test_a_caller_without_the_steps_role_is_refused_before_the_body_is_read(shop: Shop, step: str) -> None:
    case_id = _requested(shop)
    before = shop.case(case_id)
    # someone who can see the case, but holds none of the roles the step needs
    if STEPS[step].who == CUSTOMER:
        outsider = shop.kit.client(shop.kernel, "finance", "f1", shop="s1")
    else:
        outsider = shop.alice
    r = outsider.post(f"/after-sales/{case_id}/{step}", json={"not": "a body"})
    assert (r.status_code, r.json()["code"]) == (403, "role_required")
    assert shop.case(case_id) == before


def test_only_the_customer_who_opened_the_case_takes_the_customers_steps(shop: Shop) -> None:
    case_id = _requested(shop)
    # a customer who is also the shop's merchant sees the case, but it is not theirs
    both = shop.kit.client(shop.kernel, ["customer", "merchant"], "carol", shop="s1")
    r = both.post(f"/after-sales/{case_id}/cancel")
    assert (r.status_code, r.json()["code"]) == (403, "role_required")
    # another customer does not see it at all
    r = shop.bob.post(f"/after-sales/{case_id}/cancel")
    assert (r.status_code, r.json()["code"]) == (404, "case_not_found")
    assert shop.case(case_id)["status"] == "requested"
    r = shop.alice.post(f"/after-sales/{case_id}/cancel")
    assert (r.status_code, r.json()["status"]) == (200, "cancelled")


def test_staff_take_steps_only_on_cases_of_their_shop(shop: Shop) -> None:
    case_id = _requested(shop)
    elsewhere = shop.kit.client(shop.kernel, "merchant", "m2", shop="s2")
    r = elsewhere.post(f"/after-sales/{case_id}/approve")
    assert (r.status_code, r.json()["code"]) == (404, "case_not_found")
    platform = shop.kit.client(shop.kernel, "merchant", "pm", platform=True)
    r = platform.post(f"/after-sales/{case_id}/approve")
    assert (r.status_code, r.json()["status"]) == (200, "awaiting_return")


def test_only_customers_open_cases(shop: Shop) -> None:
    order = shop.delivered_order([("TEE-M", 1)])
    body = {
        "order_id": order["id"],
        "type": "return_refund",
        "lines": [{"line_id": order["lines"][0]["id"], "quantity": 1}],
        "reason": "no_reason",
    }
    for staff in (shop.merchant, shop.warehouse, shop.kit.client(shop.kernel, "merchant", "m2", shop="s2")):
        r = staff.post("/after-sales", json=body)
        assert (r.status_code, r.json()["code"]) == (403, "role_required")
    assert (
        shop.open(order, "return_refund", [(order["lines"][0]["id"], 1)], client=shop.bob).status_code == 404
    )
    assert shop.admin.get("/after-sales").json() == []


def test_the_list_shows_exactly_the_cases_a_caller_may_open_one_by_one(shop: Shop) -> None:
    shop.kit.product(shop.kernel, shop="s2", skus=[("CAP", 2900)])
    mine = _requested(shop)
    r = shop.bob.post(
        "/orders", json={"shop": "s2", "lines": [{"sku": "CAP", "quantity": 1}], "address": ADDRESS}
    )
    order = r.json()
    assert shop.bob.post(f"/orders/{order['id']}/payments", json={"method": "sandbox"}).status_code == 201
    theirs = shop.open(order, "refund_only", [(order["lines"][0]["id"], 1)], client=shop.bob).json()["id"]
    callers: dict[str, Any] = {
        "alice": shop.alice,
        "bob": shop.bob,
        "merchant of s1": shop.merchant,
        "merchant of s2": shop.kit.client(shop.kernel, "merchant", "m2", shop="s2"),
        "platform finance": shop.kit.client(shop.kernel, "finance", "pf", platform=True),
        "alice, also warehouse of s2": shop.kit.client(
            shop.kernel, ["customer", "warehouse"], "alice", shop="s2"
        ),
        "admin": shop.admin,
        "nobody in particular": shop.kit.client(shop.kernel, [], "x"),
    }
    seen = {}
    for name, client in callers.items():
        listed = sorted(c["id"] for c in client.get("/after-sales").json())
        one_by_one = sorted(i for i in (mine, theirs) if client.get(f"/after-sales/{i}").status_code == 200)
        assert listed == one_by_one, name
        seen[name] = listed
    assert seen == {
        "alice": [mine],
        "bob": [theirs],
        "merchant of s1": [mine],
        "merchant of s2": [theirs],
        "platform finance": [mine, theirs],
        "alice, also warehouse of s2": [mine, theirs],
        "admin": [mine, theirs],
        "nobody in particular": [],
    }
