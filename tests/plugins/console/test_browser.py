"""The console in a real headless Chromium (Selenium with Debian's chromium-driver).

A merchant signs in and approves a return; the warehouse finds it by its waybill,
receives and inspects it unit by unit; a finance user approves the refund, and
because it is above the threshold a second finance user must approve it too. Each
step asserts what the page shows, saves a screenshot in the test's folder, and
fails on any error in the browser's console. The pages are read once more with
JavaScript switched off.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from .conftest import serve
from .story import Story

DRIVER = shutil.which("chromedriver")
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (uv sync --group dev)"
)
pytestmark = pytest.mark.skipif(
    DRIVER is None or CHROMIUM is None,
    reason="no chromium / chromedriver (apt-get install -y chromium chromium-driver; .ci/run installs them)",
)

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


class Person:
    """One member of staff in their own browser."""

    def __init__(
        self, base: str, shots: Path, name: str, *, javascript: bool = True, width: int = 1280
    ) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--lang=en-US",
        ):
            options.add_argument(arg)
        options.add_argument(f"--window-size={width},900")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        if not javascript:
            options.add_experimental_option(
                "prefs", {"profile.managed_default_content_settings.javascript": 2}
            )
        self.driver = webdriver.Chrome(
            options=options, service=webdriver.ChromeService(executable_path=DRIVER)
        )
        self.base, self.shots, self.name, self.count = base, shots, name, 0

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)
        self.check()

    def sign_in(self, token: str) -> None:
        self.open("/console/")
        assert "/console/sign-in" in self.driver.current_url
        self.driver.find_element(By.NAME, "token").send_keys(token)
        self.click("form[action='/console/sign-in'] button")

    def click(self, selector: str) -> None:
        self.driver.find_element(By.CSS_SELECTOR, selector).click()
        self.check()

    def click_in_place(self, selector: str, expected: str) -> None:
        """Click a form's button that htmx posts: the page changes in place (no new page is
        loaded: a mark set on this one survives) until it shows ``expected``."""
        self.driver.execute_script("window.mallcoreStayed = true")
        self.driver.find_element(By.CSS_SELECTOR, selector).click()
        WebDriverWait(self.driver, 10).until(lambda d: expected in d.find_element(By.TAG_NAME, "body").text)
        assert self.driver.execute_script("return window.mallcoreStayed === true"), "a new page was loaded"
        self.check()

    def text(self) -> str:
        return str(self.driver.find_element(By.TAG_NAME, "body").text)

    def check(self) -> None:
        """A screenshot of every page seen, and no error in the browser's console."""
        self.count += 1
        self.driver.save_screenshot(str(self.shots / f"{self.name}-{self.count:02d}.png"))
        errors = [e for e in self.driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert errors == [], errors

    def close(self) -> None:
        self.driver.quit()


def test_a_return_through_the_console_merchant_warehouse_two_finance_users(
    running: tuple[Story, str], mallcore: Any, tmp_path: Path
) -> None:
    story, base = running
    kernel = story.kernel
    case = story.return_request(story.delivered_order())
    people: list[Person] = []
    try:
        # the merchant approves the request from the workbench
        merchant = Person(base, tmp_path, "merchant")
        people.append(merchant)
        merchant.sign_in(mallcore.token(kernel, "merchant", "m1", "s1"))
        assert "Orders today" in merchant.text() and "Open after-sale cases" in merchant.text()
        merchant.click("nav.menu a[href='/console/after-sales']")
        assert f"#{case['id']}" in merchant.text() and "Waiting for the merchant" in merchant.text()
        merchant.click(f"a[href='/console/after-sales/{case['id']}']")
        merchant.driver.find_element(By.CSS_SELECTOR, "form[action$='/approve'] input[name=note]").send_keys(
            "ok"
        )
        merchant.click_in_place("#approve", "Request approved.")
        assert "awaiting_return" in merchant.driver.page_source
        assert story.case(case["id"])["status"] == "awaiting_return"

        # the customer sends the goods back; the carrier reports them delivered
        story.ship_back(case, "SF20261203")

        # the warehouse types the waybill, then inspects each unit
        warehouse = Person(base, tmp_path, "warehouse")
        people.append(warehouse)
        warehouse.sign_in(mallcore.token(kernel, "warehouse", "w1", "s1"))
        warehouse.click("nav.menu a[href='/console/receiving']")
        warehouse.driver.find_element(By.NAME, "waybill").send_keys("SF20261203")
        warehouse.click("form[action='/console/receiving'] button")
        assert f"/console/after-sales/{case['id']}" in warehouse.driver.current_url
        assert "SF20261203" in warehouse.text() and "Receive and inspect" in warehouse.text()
        Select(warehouse.driver.find_element(By.NAME, "unit-1-grade")).select_by_visible_text("B")
        Select(warehouse.driver.find_element(By.NAME, "unit-1-disposition")).select_by_visible_text("b_grade")
        warehouse.click("#receive-submit")
        assert "Receipt and inspection recorded." in warehouse.text()
        assert "grade B" in warehouse.text() and "b_grade" in warehouse.text()
        after = story.case(case["id"])
        assert after["status"] == "refund_pending_review" and after["inspections"][0]["grade"] == "B"

        # finance: 79.00 is above 50.00, so one approval is not enough
        first = Person(base, tmp_path, "finance-1")
        people.append(first)
        first.sign_in(mallcore.token(kernel, "finance", "f1", "s1"))
        first.click("nav.menu a[href='/console/finance']")
        refund_id = after["refund_id"]
        assert f"Refund {refund_id}" in first.text() and "0 / 2" in first.text()
        first.click_in_place(f"#refund-{refund_id} button.approve", "a second finance user must approve it")
        assert (
            f"First approval of refund {refund_id} recorded; a second finance user must approve it"
            in first.text()
        )
        assert "You may not approve this refund: f1 already approved" in first.text()
        assert first.driver.find_elements(By.CSS_SELECTOR, f"#refund-{refund_id} button.approve") == []

        second = Person(base, tmp_path, "finance-2", width=420)
        people.append(second)
        second.sign_in(mallcore.token(kernel, "finance", "f2", "s1"))
        second.open("/console/finance")
        assert "1 / 2" in second.text()
        second.click_in_place(
            f"#refund-{refund_id} button.approve", f"Refund {refund_id} approved and paid out."
        )
        assert second.driver.find_elements(By.CSS_SELECTOR, f"#refund-{refund_id}") == []  # left the queue
        assert story.case(case["id"])["status"] == "refunded"
        second.open(f"/console/orders/{case['order_id']}")
        assert "Finance approved the refund" in second.text() and "closed" in second.text()

        # the same pages read with JavaScript switched off
        plain = Person(base, tmp_path, "no-js", javascript=False)
        people.append(plain)
        plain.sign_in(mallcore.token(kernel, "merchant", "m1", "s1"))
        for path, expected in (
            ("/console/", "Orders and refunds per day"),
            (f"/console/orders/{case['order_id']}", "Timeline"),
            (f"/console/after-sales/{case['id']}", "refunded"),
        ):
            plain.open(path)
            assert expected in plain.text(), path
        plain.driver.find_element(By.LINK_TEXT, "中文").click()
        plain.check()
        assert "售后单" in plain.text() and "时间线" in plain.text()
        # and acting works too: a plain form post and a redirect
        other = story.return_request(story.delivered_order())
        plain.open(f"/console/after-sales/{other['id']}")
        plain.click("#approve")
        assert f"/console/after-sales/{other['id']}?done=approve" in plain.driver.current_url
        assert "已同意申请。" in plain.text() and story.case(other["id"])["status"] == "awaiting_return"
    finally:
        for person in people:
            person.close()


def test_risk_staff_use_the_new_forms_in_a_browser(mallcore: Any, tmp_path: Path) -> None:
    """A rule with a typo is refused on its form (in Chinese, the text kept), then saved;
    a list entry is removed in place; the warehouse form at 420 px."""
    kernel = mallcore.kernel(centers=["catalog", "payment", "risk", "console"])
    mallcore.product(kernel, shop="s1", skus=[("TEE", 7900)])
    api = mallcore.client(kernel, "risk", "r0", platform=True)
    entry = {"kind": "phone", "value": "13800000001", "action": "block", "reason": "fraud ring"}
    assert api.post("/risk/lists", json=entry).status_code == 201
    base, server, thread = serve(kernel)
    analyst = Person(base, tmp_path, "risk", width=420)
    try:
        analyst.sign_in(mallcore.token(kernel, "risk", "r1", platform=True))
        analyst.open("/console/lang/zh?next=/console/risk/rules")
        analyst.driver.find_element(By.CSS_SELECTOR, "details summary").click()
        analyst.driver.find_element(By.NAME, "name").send_keys("大额订单")
        analyst.driver.find_element(By.NAME, "condition").send_keys("order.totl > 500000")
        analyst.driver.find_element(By.CSS_SELECTOR, "form[action='/console/risk/rules'] button").click()
        # (a refused form answers 422: the browser logs that response, so no console check here)
        assert "条件引用了不存在的字段" in analyst.text() and "rule_unknown_attribute" in analyst.text()
        analyst.driver.save_screenshot(str(tmp_path / "risk-rule-refused.png"))
        analyst.driver.get_log("browser")
        field = analyst.driver.find_element(By.NAME, "condition")
        assert field.get_attribute("value") == "order.totl > 500000"
        field.clear()
        field.send_keys("order.total > 500000")
        analyst.click("form[action='/console/risk/rules'] button")
        assert "规则已添加。" in analyst.text() and "大额订单" in analyst.text()
        assert [r["name"] for r in api.get("/risk/rules").json()] == ["大额订单"]
        analyst.open("/console/risk/lists")
        (listed,) = api.get("/risk/lists").json()
        analyst.driver.execute_script("window.confirm = () => true")
        analyst.click_in_place(f"#entry-{listed['id']} button", "已移出名单。")
        assert analyst.driver.find_elements(By.CSS_SELECTOR, f"#entry-{listed['id']}") == []
        assert api.get(f"/risk/lists/{listed['id']}").json()["active"] is False
    finally:
        analyst.close()
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.parametrize(("width", "lang"), [(1280, "en"), (420, "zh")])
def test_a_merchant_edits_a_campaign_in_a_browser(
    mallcore: Any, tmp_path: Path, width: int, lang: str
) -> None:
    """The edit page from the promotion list: the campaign's values in its form, a price
    change saved, the list and the API say so."""
    kernel = mallcore.kernel(centers=["catalog", "payment", "promotion", "console"])
    mallcore.product(kernel, shop="s1", skus=[("TEE", 30000)])
    api = mallcore.client(kernel, "merchant", "m0", shop="s1")
    ends = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    tiers = {"tiers": [{"threshold": 20000, "off": 2000}]}
    body = dict(shop="s1", name="双12", type="threshold_off", ends_at=ends, rules=tiers)
    made = api.post("/promotion/campaigns", json=body).json()
    base, server, thread = serve(kernel)
    merchant = Person(base, tmp_path, f"promotion-{width}-{lang}", width=width)
    try:
        merchant.sign_in(mallcore.token(kernel, "merchant", "m1", "s1"))
        merchant.open(f"/console/lang/{lang}?next=/console/promotion")
        merchant.click(f"a[href='/console/promotion/campaigns/{made['id']}/edit']")
        off = merchant.driver.find_element(By.NAME, "tier-0-off")
        assert off.get_attribute("value") == "20.00"
        off.clear()
        off.send_keys("45")
        merchant.click(f"form[action='/console/promotion/campaigns/{made['id']}'] button[type=submit]")
        notice = "已修改" if lang == "zh" else "changed."
        assert notice in merchant.text() and "满200减45" in merchant.text()
        assert api.get(f"/promotion/campaigns/{made['id']}").json()["rules"]["tiers"][0]["off"] == 4500
    finally:
        merchant.close()
        server.should_exit = True
        thread.join(timeout=10)
