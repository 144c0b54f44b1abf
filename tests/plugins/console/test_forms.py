"""The console's forms that create and change things: each the API's own service call, behind
the API's guards, with the API's error code and a message in the page's language on the page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .conftest import Browser
from .story import Story


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from mallcore.testing import Kit

    kit = Kit(tmp_path_factory.mktemp("console-forms"))
    story = Story(kit, full=True)
    yield kit, story
    kit.close()


def zh(browser: Browser) -> Browser:
    browser.client.cookies.set("mallcore_lang", "zh", path="/")
    return browser


def test_platform_finance_creates_and_pays_a_settlement_and_a_shops_finance_may_not(world: Any) -> None:
    kit, story = world
    kernel = story.kernel
    platform = Browser(kit, kernel).sign_in("finance", "pf1")
    shop_finance = Browser(kit, kernel).sign_in("finance", "f1", "s1")
    day = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
    today = datetime.now(UTC).date().isoformat()

    # a shop's finance user: the API's 403 platform_only, nothing made, no form offered
    assert (
        'action="/console/finance/settlements"' not in shop_finance.get("/console/finance/settlements").text
    )
    r = shop_finance.post("/console/finance/settlements", {"shop": "s1", "start": day, "end": day})
    assert r.status_code == 403 and "platform_only" in r.text
    assert story.kit.client(kernel, "finance", "pf", platform=True).get("/finance/settlements").json() == []

    # a period not over yet: the API's 422 period_not_closed, on the form's page, in Chinese
    r = zh(platform).post("/console/finance/settlements", {"shop": "s1", "start": today, "end": today})
    assert r.status_code == 422 and "period_not_closed" in r.text and "只能结算已结束的周期" in r.text
    assert f'value="{today}"' in r.text  # what was typed is kept
    platform.client.cookies.set("mallcore_lang", "en", path="/")
    r = platform.post("/console/finance/settlements", {"shop": "nope", "start": day, "end": day})
    assert r.status_code == 422 and "shop_unknown" in r.text and "No such shop." in r.text

    r = platform.post("/console/finance/settlements", {"shop": "s1", "start": day, "end": day})
    assert r.status_code == 303, r.text
    api = story.kit.client(kernel, "finance", "pf", platform=True)
    (made,) = api.get("/finance/settlements").json()
    assert (made["shop"], made["status"], made["created_by"]) == ("s1", "open", "pf1")
    assert r.headers["location"] == f"/console/finance/settlements?done=created:{made['id']}"
    assert f"Settlement {made['id']} created." in platform.get(r.headers["location"]).text
    # the same period again: the API's 409
    r = platform.post("/console/finance/settlements", {"shop": "s1", "start": day, "end": day})
    assert r.status_code == 409 and "settlement_overlaps" in r.text

    pay = f"/console/finance/settlements/{made['id']}/pay"
    assert shop_finance.post(pay, {"reference": "B1"}).status_code == 403
    assert api.get(f"/finance/settlements/{made['id']}").json()["status"] == "open"
    assert platform.post(pay, {"reference": "BANK-7"}).status_code == 303
    paid = api.get(f"/finance/settlements/{made['id']}").json()
    assert (paid["status"], paid["paid_by"], paid["payout_reference"]) == ("paid", "pf1", "BANK-7")
    r = platform.post(pay, {"reference": "again"})
    assert (
        r.status_code == 409 and "settlement_paid" in r.text and "This settlement is already paid." in r.text
    )


def test_a_mismatch_is_resolved_from_its_run_and_the_run_pages_its_mismatches(world: Any) -> None:
    kit, story = world
    kernel = story.kernel
    api = kit.client(kernel, "finance", "pf", platform=True)
    day = datetime.now(UTC).date().isoformat()
    header = api.get("/payment/statements/sandbox", params={"date": day}).text.splitlines()[0]
    rows = [f"{day}T01:00:00Z,charge,sbx_not_ours_{i},,{100 + i},CNY" for i in range(53)]
    r = api.post(
        "/finance/reconciliations", content="\n".join([header, *rows]), headers={"content-type": "text/csv"}
    )
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["mismatches"] == 53
    platform = Browser(kit, kernel).sign_in("finance", "pf1")
    first = platform.get(f"/console/finance/reconciliations/{run['id']}")
    ids = [m["id"] for m in run["items"]]
    assert f'id="mismatch-{ids[49]}"' in first.text and f'id="mismatch-{ids[50]}"' not in first.text
    assert f"after={ids[49]}" in first.text
    second = platform.get(f"/console/finance/reconciliations/{run['id']}?after={ids[49]}")
    assert f'id="mismatch-{ids[52]}"' in second.text and f'id="mismatch-{ids[0]}"' not in second.text

    target = f"/console/finance/mismatches/{ids[0]}/resolve"
    # another shop's finance user: 404, as the API (the mismatch is the platform's)
    other = Browser(kit, kernel).sign_in("finance", "f2", "s2")
    assert other.post(target, {"note": "x", "run": run["id"]}).status_code == 404
    r = platform.post(target, {"note": "", "run": run["id"]})
    assert r.status_code == 422 and "invalid_input" in r.text
    r = platform.post(target, {"note": "not ours: test traffic", "run": run["id"]})
    assert r.status_code == 303 and r.headers["location"].endswith(
        f"/reconciliations/{run['id']}?done={ids[0]}"
    )
    (m,) = [m for m in api.get(f"/finance/reconciliations/{run['id']}").json()["items"] if m["id"] == ids[0]]
    assert (m["status"], m["resolved_by"], m["note"]) == ("resolved", "pf1", "not ours: test traffic")
    r = platform.post(target, {"note": "again", "run": run["id"]})
    assert r.status_code == 409 and "mismatch_resolved" in r.text


def test_risk_staff_manage_lists_and_rules_and_a_bad_condition_is_shown_on_the_form(mallcore: Any) -> None:
    kernel = mallcore.kernel(centers=["catalog", "payment", "risk", "console"])
    mallcore.product(kernel, shop="s1", skus=[("TEE", 7900)])
    mallcore.product(kernel, shop="s2", skus=[("CUP", 1900)])
    api = mallcore.client(kernel, "risk", "r0", platform=True)
    platform = Browser(mallcore, kernel).sign_in("risk", "r1", platform=True)
    shop_risk = Browser(mallcore, kernel).sign_in("risk", "r2", "s1")

    # lists: the platform's list, a shop's list, removal
    r = platform.post(
        "/console/risk/lists",
        {"kind": "phone", "value": "13800000001", "action": "block", "reason": "fraud ring"},
    )
    assert r.status_code == 303, r.text
    (entry,) = api.get("/risk/lists").json()
    assert (entry["kind"], entry["shop"], entry["created_by"]) == ("phone", None, "r1")
    r = platform.post(
        "/console/risk/lists", {"kind": "phone", "value": "13800000001", "action": "block", "reason": "again"}
    )
    assert r.status_code == 409 and "list_entry_exists" in r.text and "13800000001" in r.text
    r = platform.post(
        "/console/risk/lists", {"kind": "ip", "value": "not an ip", "action": "block", "reason": "x"}
    )
    assert r.status_code == 422 and "list_value_invalid" in r.text
    # a shop's risk staff add to their shop's list only, and may not remove the platform's entry
    r = shop_risk.post(
        "/console/risk/lists",
        {"kind": "customer", "value": "mallory", "action": "review", "reason": "x", "shop": ""},
    )
    assert r.status_code == 303, r.text
    assert {e["shop"] for e in api.get("/risk/lists").json()} == {None, "s1"}
    r = shop_risk.post(f"/console/risk/lists/{entry['id']}/remove")
    assert r.status_code == 404  # the platform's list is not theirs to see, as in the API
    assert api.get(f"/risk/lists/{entry['id']}").json()["active"] is True
    assert platform.post(f"/console/risk/lists/{entry['id']}/remove").status_code == 303
    assert api.get(f"/risk/lists/{entry['id']}").json()["active"] is False
    other = Browser(mallcore, kernel).sign_in("risk", "r3", "s2")
    (mine,) = [e for e in api.get("/risk/lists").json() if e["shop"] == "s1"]
    assert other.post(f"/console/risk/lists/{mine['id']}/remove").status_code == 404
    assert "mallory" not in other.get("/console/risk/lists").text

    # rules: a bad condition is the API's 422 with its code, in Chinese, the text kept
    zh(platform)
    bad = {
        "name": "typo",
        "condition": "order.totl > 1",
        "action": "review",
        "stages": "place",
        "score": "5",
        "enabled": "1",
    }
    r = platform.post("/console/risk/rules", bad)
    assert r.status_code == 422 and "rule_unknown_attribute" in r.text and "条件引用了不存在的字段" in r.text
    assert "order.totl &gt; 1" in r.text and api.get("/risk/rules").json() == []
    r = platform.post("/console/risk/rules", {**bad, "condition": "order.total >"})
    assert r.status_code == 422 and "rule_syntax_error" in r.text
    good = {**bad, "name": "big basket", "condition": "order.total > 500000", "stages": ["place", "pay"]}
    assert platform.post("/console/risk/rules", good).status_code == 303
    (rule,) = api.get("/risk/rules").json()
    assert (rule["name"], rule["stages"], rule["score"], rule["enabled"]) == (
        "big basket",
        ["place", "pay"],
        5,
        True,
    )
    page = platform.get(f"/console/risk/rules/{rule['id']}")
    assert page.status_code == 200 and "order.total &gt; 500000" in page.text
    # edit: a bad change keeps the rule as it was; unticking "enabled" disables it
    target = f"/console/risk/rules/{rule['id']}"
    r = platform.post(
        target, {"name": "big basket", "condition": "order.nope", "action": "block", "stages": "place"}
    )
    assert r.status_code == 422 and "rule_unknown_attribute" in r.text
    assert api.get(f"/risk/rules/{rule['id']}").json()["condition"] == "order.total > 500000"
    r = platform.post(
        target,
        {
            "name": "big basket",
            "condition": "order.total > 100000",
            "action": "block",
            "stages": "place",
            "score": "9",
        },
    )
    assert r.status_code == 303, r.text
    changed = api.get(f"/risk/rules/{rule['id']}").json()
    assert (changed["condition"], changed["action"], changed["enabled"], changed["updated_by"]) == (
        "order.total > 100000",
        "block",
        False,
        "r1",
    )
    assert other.get(target).status_code == 404
    assert other.post(target, {"name": "x", "condition": "true", "stages": "place"}).status_code == 404
    assert (
        Browser(mallcore, kernel).sign_in("merchant", "m1", "s1").get("/console/risk/rules").status_code
        == 403
    )


def test_platform_warehouse_staff_create_and_edit_a_warehouse_with_its_return_address(world: Any) -> None:
    kit, story = world
    kernel = story.kernel
    api = kit.client(kernel, "warehouse", "wp", platform=True)
    platform = Browser(kit, kernel).sign_in("warehouse", "wp1")
    shop_staff = Browser(kit, kernel).sign_in("warehouse", "w1", "s1")
    new = {
        "code": "GZ",
        "name": "广州仓",
        "region": "440100",
        "priority": "2",
        "active": "1",
        "contact": "王五",
        "phone": "020-12345678",
        "province": "广东省",
        "city": "广州市",
        "district": "白云区",
        "street": "机场路 1 号",
    }
    before = api.get("/wms/warehouses?include_inactive=true").json()
    r = shop_staff.post("/console/wms/warehouses", new)
    assert r.status_code == 403 and "platform_only" in r.text
    assert 'action="/console/wms/warehouses"' not in shop_staff.get("/console/wms/warehouses").text
    assert api.get("/wms/warehouses?include_inactive=true").json() == before
    r = platform.post("/console/wms/warehouses", {**new, "code": "SH"})
    assert (
        r.status_code == 409
        and "warehouse_exists" in r.text
        and "A warehouse with this code exists." in r.text
    )
    assert 'value="机场路 1 号"' in r.text
    assert platform.post("/console/wms/warehouses", new).status_code == 303
    (made,) = [w for w in api.get("/wms/warehouses").json() if w["code"] == "GZ"]
    assert (made["name"], made["priority"], made["city"], made["street"]) == (
        "广州仓",
        2,
        "广州市",
        "机场路 1 号",
    )

    page = platform.get("/console/wms/warehouses/GZ")
    assert page.status_code == 200 and 'value="白云区"' in page.text
    r = platform.post("/console/wms/warehouses/GZ", {**new, "street": "机场路 2 号", "priority": "x"})
    assert r.status_code == 422 and "invalid_input" in r.text
    r = platform.post("/console/wms/warehouses/GZ", {**new, "street": "机场路 2 号", "active": ""})
    assert r.status_code == 303, r.text
    (changed,) = [w for w in api.get("/wms/warehouses?include_inactive=true").json() if w["code"] == "GZ"]
    assert (changed["street"], changed["active"]) == ("机场路 2 号", False)
    assert shop_staff.post("/console/wms/warehouses/GZ", {"name": "mine"}).status_code == 403
    merchant = Browser(kit, kernel).sign_in("merchant", "m1", "s1")
    read = merchant.get("/console/wms/warehouses/GZ")
    assert (
        read.status_code == 200
        and "机场路 2 号" in read.text
        and '<form method="post" action="/console/wms/warehouses/GZ"' not in read.text
    )
    assert platform.get("/console/wms/warehouses/NOPE").status_code == 404


def form_values(html: str) -> dict[str, Any]:
    """What a browser would post from the page's form as it stands (inputs, selects, ticked boxes)."""
    import html as htmllib
    import re

    out: dict[str, Any] = {}
    for tag in re.findall(r"<input [^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        if not name or name.group(1) == "_csrf_token":
            continue
        value = re.search(r'value="([^"]*)"', tag)
        if 'type="checkbox"' in tag and "checked" not in tag:
            continue
        out[name.group(1)] = htmllib.unescape(value.group(1)) if value else ""
    for name, body in re.findall(r'<select name="([^"]+)">(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        out[name] = chosen.group(1) if chosen else re.search(r'<option value="([^"]*)"', body).group(1)
    return out


def test_a_merchant_edits_a_freight_template_and_the_list_pages(world: Any) -> None:
    from tests.plugins.tms.support import WEIGHT_TEMPLATE

    kit, story = world
    kernel = story.kernel
    api = story.merchant
    r = api.post("/tms/templates", json={"shop": "s1", **WEIGHT_TEMPLATE})
    assert r.status_code == 201, r.text
    made = r.json()
    merchant = Browser(kit, kernel).sign_in("merchant", "m1", "s1")
    page = merchant.get(f"/console/tms/templates/{made['id']}")
    assert page.status_code == 200 and 'value="8.00"' in page.text
    values = form_values(page.text)
    assert values["rule-0-regions"] == "33" and values["free-2-regions"] == "54, 65"
    # saved as shown: the template does not change (a round trip through the form is exact)
    assert merchant.post(f"/console/tms/templates/{made['id']}", values).status_code == 303
    again = api.get(f"/tms/templates/{made['id']}").json()
    same = (
        "name",
        "mode",
        "default_rule",
        "rules",
        "free",
        "not_delivered",
        "split",
        "default",
        "skus",
        "active",
    )
    assert {k: again[k] for k in same} == {k: made[k] for k in same}
    # a change: Zhejiang ¥6.50, Remote removed, a new Beijing row; free over ¥99 → ¥88
    changed = {
        **values,
        "rule-0-first_fee": "6.50",
        "rule-2-regions": "",
        "rule-2-first_fee": "",
        "rule-2-additional_fee": "",
    }
    changed.update(
        {"rule-3-regions": "11", "rule-3-name": "Beijing", "rule-3-first_fee": "7", "free-0-min_amount": "88"}
    )
    r = merchant.post(f"/console/tms/templates/{made['id']}", changed)
    assert r.status_code == 303 and r.headers["location"] == f"/console/tms/templates?done={made['id']}", (
        __import__("re").findall(r"<div class=.error.*?</div>", r.text, __import__("re").S)
    )
    now = api.get(f"/tms/templates/{made['id']}").json()
    assert [(x["name"], x["regions"], x["first_fee"]) for x in now["rules"]] == [
        ("Zhejiang", ["33"], 650),
        ("Hangzhou", ["3301"], 500),
        ("Beijing", ["11"], 700),
    ]
    assert now["free"][0]["min_amount"] == 8800
    # bad amounts and bad regions: the API's codes, on the page, nothing changed
    r = merchant.post(f"/console/tms/templates/{made['id']}", {**changed, "default-first_fee": "abc"})
    assert r.status_code == 422 and "invalid_amount" in r.text and 'value="abc"' in r.text
    r = merchant.post(f"/console/tms/templates/{made['id']}", {**changed, "rule-0-regions": "浙江"})
    assert r.status_code == 422 and "invalid_input" in r.text
    assert api.get(f"/tms/templates/{made['id']}").json() == now
    # another shop's merchant: 404; the shop's warehouse staff read it but may not save
    stranger = Browser(kit, kernel).sign_in("merchant", "m2", "s2")
    assert stranger.get(f"/console/tms/templates/{made['id']}").status_code == 404
    assert stranger.post(f"/console/tms/templates/{made['id']}", changed).status_code == 404
    warehouse = Browser(kit, kernel).sign_in("warehouse", "w1", "s1")
    read = warehouse.get(f"/console/tms/templates/{made['id']}")
    assert read.status_code == 200 and "<fieldset disabled" in read.text
    assert warehouse.post(f"/console/tms/templates/{made['id']}", changed).status_code == 403
    assert api.get(f"/tms/templates/{made['id']}").json() == now

    # the list pages by id
    for i in range(51):
        body = {"shop": "s1", "name": f"T{i}", "mode": "piece", "default_rule": {"first_fee": 100 + i}}
        assert api.post("/tms/templates", json=body).status_code == 201
    first = merchant.get("/console/tms/templates")
    ids = [int(x) for x in __import__("re").findall(r'id="template-(\d+)"', first.text)]
    assert len(ids) == 50 and ids == sorted(ids) and f"after={ids[-1]}" in first.text
    rest = merchant.get(f"/console/tms/templates?after={ids[-1]}")
    more = [int(x) for x in __import__("re").findall(r'id="template-(\d+)"', rest.text)]
    assert len(more) == 2 and min(more) > ids[-1] and "after=" not in rest.text
    assert 'id="template-' not in stranger.get("/console/tms/templates").text


def test_a_merchant_creates_and_ends_campaigns_and_coupons(world: Any) -> None:
    kit, story = world
    kernel = story.kernel
    api = story.merchant
    merchant = Browser(kit, kernel).sign_in("merchant", "m1", "s1")
    stranger = Browser(kit, kernel).sign_in("merchant", "m2", "s2")
    ends = (datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M")
    before = api.get("/promotion/campaigns").json()
    form = merchant.get("/console/promotion/campaigns/new?type=flash_sale")
    assert form.status_code == 200 and '<option value="flash_sale" selected>' in form.text
    # 满减 with two tiers; fields of other types are ignored
    r = merchant.post(
        "/console/promotion/campaigns",
        {
            "name": "Double 12",
            "type": "threshold_off",
            "ends_at": ends,
            "tier-0-threshold": "200",
            "tier-0-off": "30",
            "tier-1-threshold": "300",
            "tier-1-off": "50",
            "percent": "10",
        },
    )
    assert r.status_code == 303, r.text
    (made,) = [c for c in api.get("/promotion/campaigns").json() if c not in before]
    assert (made["type"], made["shop"], made["status"]) == ("threshold_off", "s1", "live")
    assert made["rules"]["tiers"] == [{"threshold": 20000, "off": 3000}, {"threshold": 30000, "off": 5000}]
    assert r.headers["location"] == f"/console/promotion?done=campaign:{made['id']}"
    # the API's refusals on the form, what was typed kept
    zh(merchant)
    r = merchant.post(
        "/console/promotion/campaigns",
        {
            "name": "Flash",
            "type": "flash_sale",
            "ends_at": ends,
            "skus": "TEE-M",
            "price": "99",
            "quantity": "5",
        },
    )
    assert r.status_code == 422 and "flash_price_not_below_list" in r.text and "秒杀价须低于原价" in r.text
    assert 'value="Flash"' in r.text
    r = merchant.post(
        "/console/promotion/campaigns",
        {
            "name": "Bad",
            "type": "threshold_off",
            "ends_at": ends,
            "tier-0-threshold": "abc",
            "tier-0-off": "1",
        },
    )
    assert r.status_code == 422 and "invalid_amount" in r.text
    r = merchant.post(
        "/console/promotion/campaigns",
        {
            "name": "Other",
            "type": "flash_sale",
            "ends_at": ends,
            "skus": "CUP",
            "price": "1",
            "quantity": "5",
        },
    )
    assert r.status_code == 422 and "sku_not_in_shop" in r.text
    merchant.client.cookies.set("mallcore_lang", "en", path="/")
    r = merchant.post(
        "/console/promotion/campaigns",
        {
            "name": "Flash",
            "type": "flash_sale",
            "ends_at": ends,
            "skus": "TEE-M",
            "price": "59.90",
            "quantity": "5",
            "flash_per_customer": "1",
        },
    )
    assert r.status_code == 303, r.text
    flash = api.get("/promotion/campaigns?type=flash_sale").json()[0]
    assert flash["rules"] == {"price": 5990, "quantity": 5, "per_customer": 1, "beyond": "list_price"}

    # ending: another shop's merchant 404; the shop's merchant ends it; twice is the API's 409
    end = f"/console/promotion/campaigns/{made['id']}/end"
    assert stranger.post(end).status_code == 404
    assert api.get(f"/promotion/campaigns/{made['id']}").json()["status"] == "live"
    assert merchant.post(end).status_code == 303
    assert api.get(f"/promotion/campaigns/{made['id']}").json()["status"] == "ended"
    r = merchant.post(end)
    assert r.status_code == 409 and "campaign_ended" in r.text

    # a coupon template: 9折 up to ¥20 from ¥100, 100 of them
    r = merchant.post(
        "/console/promotion/coupon-templates",
        {
            "name": "9折券",
            "kind": "percent",
            "value": "10",
            "cap": "20",
            "min_spend": "100",
            "total": "100",
            "per_customer": "1",
            "valid_days": "7",
            "claimable": "1",
        },
    )
    assert r.status_code == 303, r.text
    coupon = api.get("/promotion/coupon-templates").json()[0]
    assert (
        coupon["kind"],
        coupon["value"],
        coupon["cap"],
        coupon["min_spend"],
        coupon["total"],
        coupon["shop"],
    ) == ("percent", 10, 2000, 10000, 100, "s1")
    r = merchant.post(
        "/console/promotion/coupon-templates", {"name": "x", "kind": "percent", "value": "150", "total": "1"}
    )
    assert r.status_code == 422 and "percent_invalid" in r.text
    end = f"/console/promotion/coupon-templates/{coupon['id']}/end"
    assert stranger.post(end).status_code == 404
    assert merchant.post(end).status_code == 303
    assert api.get(f"/promotion/coupon-templates/{coupon['id']}").json()["status"] == "ended"
    page = merchant.get("/console/promotion")
    assert "Double 12" in page.text and "9折券" in page.text


def test_a_merchant_edits_a_campaign_and_a_coupon_and_outsiders_get_404(world: Any) -> None:
    kit, story = world
    kernel = story.kernel
    api = story.merchant
    merchant = Browser(kit, kernel).sign_in("merchant", "m1", "s1")
    stranger = Browser(kit, kernel).sign_in("merchant", "m2", "s2")
    ends = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    made = api.post(
        "/promotion/campaigns",
        json={
            "shop": "s1",
            "name": "Edit me",
            "type": "threshold_off",
            "ends_at": ends,
            "rules": {"tiers": [{"threshold": 20000, "off": 2000}]},
        },
    ).json()
    edit = f"/console/promotion/campaigns/{made['id']}/edit"
    assert f'href="{edit}"' in merchant.get("/console/promotion").text
    page = merchant.get(edit)
    assert page.status_code == 200
    shown = form_values(page.text)
    assert (shown["name"], shown["tier-0-threshold"], shown["tier-0-off"]) == ("Edit me", "200.00", "20.00")
    assert "type" not in shown and "percent" not in shown  # the type is fixed, its own fields only

    # without the form's CSRF token: refused, nothing changed
    r = merchant.post(f"/console/promotion/campaigns/{made['id']}", {**shown, "name": "x"}, csrf=False)
    assert r.status_code == 403
    assert api.get(f"/promotion/campaigns/{made['id']}").json() == made
    # posted unchanged: nothing changes, nothing on the audit trail
    assert merchant.post(f"/console/promotion/campaigns/{made['id']}", shown).status_code == 303
    assert api.get(f"/promotion/campaigns/{made['id']}").json() == made

    # another shop's merchant: 404 for the page and the post; nothing changed
    assert stranger.get(edit).status_code == 404
    assert (
        stranger.post(f"/console/promotion/campaigns/{made['id']}", {**shown, "name": "x"}).status_code == 404
    )
    assert api.get(f"/promotion/campaigns/{made['id']}").json()["name"] == "Edit me"

    later = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    r = merchant.post(
        f"/console/promotion/campaigns/{made['id']}",
        {**shown, "name": "Edited", "ends_at": later, "tier-0-off": "35", "priority": "4", "paused": "1"},
    )
    assert r.status_code == 303 and r.headers["location"] == f"/console/promotion?done=edited:{made['id']}"
    now = api.get(f"/promotion/campaigns/{made['id']}").json()
    assert (now["name"], now["priority"], now["status"]) == ("Edited", 4, "paused")
    assert now["rules"]["tiers"] == [{"threshold": 20000, "off": 3500}]
    assert now["ends_at"] != made["ends_at"] and now["starts_at"] == made["starts_at"]
    # a refusal of the API on the form, what was typed kept
    zh(merchant)
    r = merchant.post(
        f"/console/promotion/campaigns/{made['id']}", {**shown, "name": "Typed", "tier-0-off": "300"}
    )
    assert r.status_code == 422 and "threshold_below_discount" in r.text and 'value="Typed"' in r.text
    merchant.client.cookies.set("mallcore_lang", "en", path="/")

    # a coupon template: total not below what is issued
    coupon = api.post(
        "/promotion/coupon-templates",
        json={
            "shop": "s1",
            "name": "Edit coupon",
            "kind": "amount",
            "value": 500,
            "total": 3,
            "valid_days": 7,
        },
    ).json()
    claim = kit.client(kernel, "customer", "edit-buyer").post(
        f"/promotion/coupon-templates/{coupon['id']}/claim"
    )
    assert claim.status_code == 201
    edit = f"/console/promotion/coupon-templates/{coupon['id']}/edit"
    page = merchant.get(edit)
    shown = form_values(page.text)
    assert (shown["name"], shown["total"], shown["per_customer"]) == ("Edit coupon", "3", "1")
    assert stranger.get(edit).status_code == 404
    r = merchant.post(f"/console/promotion/coupon-templates/{coupon['id']}", {**shown, "total": "0"})
    assert r.status_code == 422
    r = merchant.post(
        f"/console/promotion/coupon-templates/{coupon['id']}", {**shown, "total": "5", "paused": "1"}
    )
    assert r.status_code == 303, r.text
    now = api.get(f"/promotion/coupon-templates/{coupon['id']}").json()
    assert (now["total"], now["status"], now["issued"]) == (5, "paused", 1)


def test_submit_redirects_to_the_page_the_work_names_or_returns_its_own_response() -> None:
    """A form's work names the console page to go to (a 303 under the console's path), or answers
    itself (a center written before, a download); a refusal re-renders the form with its status."""
    from litestar.response import Response, Template

    from mallcore.kernel import Conflict
    from mallcore.kernel.console import STATE_KEY, submit

    class Connection:
        scope = {"state": {STATE_KEY: {"base": "/staff"}}}
        headers: dict[str, str] = {}
        cookies: dict[str, str] = {}

    def again(error: Any) -> Template:
        return Template(template_name="x.html", context={"error": error})

    done = submit(Connection(), lambda: "/risk/rules?done=added", again)  # type: ignore[arg-type]
    assert (done.status_code, done.url) == (303, "/staff/risk/rules?done=added")
    own = Response(content=b"csv", status_code=200)
    assert submit(Connection(), lambda: own, again) is own  # type: ignore[arg-type]

    def refused() -> str:
        raise Conflict("taken", code="rule_name_taken")

    page = submit(Connection(), refused, again, {"rule_name_taken": ("Taken.", "已占用。")})  # type: ignore[arg-type]
    assert page.status_code == 409 and page.context["error"].code == "rule_name_taken"
