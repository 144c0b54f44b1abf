"""The console and the customer's tracking page in a real headless Firefox.

Debian ships ``firefox-esr`` but no geckodriver, and the geckodriver packages on PyPI
and npm download it from GitHub. So Firefox is driven through its own remote
protocol, Marionette, with Mozilla's ``marionette_driver`` (PyPI, dev group): the
driver starts ``firefox-esr --marionette`` headless on a free 127.0.0.1 port with a
throwaway profile, no geckodriver involved.

A merchant signs in, sees the home page and the after-sale workbench, approves a
return in place (htmx), and the customer opens the order's tracking page. Each page
is captured at 1280 px and 420 px into the test's folder, and the test fails on
any JavaScript error the page raises (uncaught exceptions, CSP refusals and failed
loads reported by Firefox's console service, and ``console.error`` calls made after
the page loaded, which is when htmx reports its failures).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from .story import Story

FIREFOX = next((shutil.which(n) for n in ("firefox-esr", "firefox") if shutil.which(n)), None)
marionette = pytest.importorskip(
    "marionette_driver.marionette", reason="marionette_driver is not installed (uv sync --group dev)"
)
pytestmark = [
    pytest.mark.skipif(
        FIREFOX is None,
        reason="no Firefox (apt-get install -y firefox-esr; .ci/run installs it)",
    ),
    pytest.mark.timeout(120),
]

from marionette_driver.by import By  # noqa: E402
from marionette_driver.wait import Wait  # noqa: E402

WAIT = 10  # seconds, for every wait on the page
NARROW = 420
# Firefox will not make a window narrower than 500 pixels; a 504-pixel window with the
# page zoomed to 120 % (as Ctrl + does) holds a 420 CSS-pixel viewport, so the page's
# layout and media queries are those of a 420-pixel screen.
NARROW_ZOOM = 1.2

# the page's console.error calls, kept where the test can read them
KEEP_ERRORS = """
if (!window.mallcoreErrors) {
  window.mallcoreErrors = [];
  const original = console.error.bind(console);
  console.error = (...args) => { window.mallcoreErrors.push(args.map(String).join(' ')); original(...args); };
  window.addEventListener('error', (e) => window.mallcoreErrors.push(String(e.message)));
}
"""
# elements sticking out past the right edge of the window (a page must not scroll sideways;
# wide tables scroll inside their own box)
STICKING_OUT = """
const width = document.documentElement.clientWidth;
if (document.documentElement.scrollWidth <= width) return [];
return [...document.querySelectorAll('body *')]
  .filter((e) => e.getBoundingClientRect().right > width + 0.5 && !e.closest('.scroll'))
  .map((e) => `${e.tagName.toLowerCase()}.${e.className} ${Math.round(e.getBoundingClientRect().right)}px`);
"""
# errors Firefox's console service recorded for pages of this origin
SCRIPT_ERRORS = """
const base = arguments[0];
return Services.console.getMessageArray()
  .filter((m) => m instanceof Ci.nsIScriptError && !(m.flags & Ci.nsIScriptError.warningFlag)
                 && !(m.flags & Ci.nsIScriptError.infoFlag) && (m.sourceName || '').startsWith(base))
  .map((m) => `${m.category}: ${m.errorMessage} (${m.sourceName}:${m.lineNumber})`);
"""


class Firefox:
    """One headless Firefox, driven through Marionette."""

    def __init__(self, base: str, shots: Path) -> None:
        profile = shots / "firefox"
        profile.mkdir()
        self.m = marionette.Marionette(
            bin=FIREFOX,
            port=0,  # a free port
            headless=True,
            workspace=str(profile),
            gecko_log=str(shots / "gecko.log"),
            startup_timeout=30,
            socket_timeout=30,
            prefs={"intl.accept_languages": "en-US, en", "browser.shell.checkDefaultBrowser": False},
        )
        self.m.start_session()
        self.m.timeout.page_load = WAIT * 2
        self.m.timeout.implicit = 0
        self.base, self.shots, self.count = base, shots, 0

    def resize(self, width: int) -> None:
        zoom = NARROW_ZOOM if width < 500 else 1.0
        self.m.set_window_rect(width=round(width * zoom), height=900)
        with self.m.using_context(self.m.CONTEXT_CHROME):
            self.m.execute_script("gBrowser.selectedBrowser.fullZoom = arguments[0]", script_args=[zoom])
        Wait(self.m, timeout=WAIT).until(lambda m: m.execute_script("return window.innerWidth") == width)

    def js(self, script: str) -> Any:
        """Run a script in the page itself (not in Marionette's sandbox, whose globals the
        page does not see)."""
        return self.m.execute_script(script, sandbox=None, new_sandbox=False)

    def open(self, path: str) -> None:
        self.m.navigate(self.base + path)
        self.check()

    def click(self, selector: str) -> None:
        self.m.find_element(By.CSS_SELECTOR, selector).click()
        self.check()

    def click_in_place(self, selector: str, expected: str) -> None:
        """Click a button htmx posts: the page changes in place (a mark set on this page
        survives, so no new page was loaded) until it shows ``expected``."""
        self.js("window.mallcoreStayed = true")
        self.m.find_element(By.CSS_SELECTOR, selector).click()
        Wait(self.m, timeout=WAIT).until(lambda m: expected in self.text())
        assert self.js("return window.mallcoreStayed === true"), "a new page was loaded"
        self.check()

    def text(self) -> str:
        return str(self.m.find_element(By.TAG_NAME, "body").text)

    def shot(self, name: str) -> Path:
        path = self.shots / f"firefox-{self.count:02d}-{name}.png"
        path.write_bytes(self.m.screenshot(format="binary", full=True))
        return path

    def check(self) -> None:
        """A screenshot of every page seen, and no JavaScript error."""
        self.count += 1
        width = self.m.execute_script("return window.innerWidth")
        self.shot(f"{width}px")
        with self.m.using_context(self.m.CONTEXT_CHROME):
            errors = list(self.m.execute_script(SCRIPT_ERRORS, script_args=[self.base]))
        errors += self.js("return window.mallcoreErrors || []")
        assert errors == [], errors
        assert self.js(STICKING_OUT) == [], f"wider than the {width} px window: {self.m.get_url()}"
        self.js(KEEP_ERRORS)

    def both_widths(self) -> None:
        """The page as it is now, once more at 420 px, then back to 1280 px."""
        self.resize(NARROW)
        self.check()
        self.resize(1280)

    def close(self) -> None:
        try:
            self.m.quit()
        finally:
            self.m.cleanup()


def test_a_merchant_approves_a_return_and_the_customer_tracks_it_in_firefox(
    running: tuple[Story, str], mallcore: Any, tmp_path: Path
) -> None:
    story, base = running
    order = story.delivered_order()
    case = story.return_request(order)
    browser = Firefox(base, tmp_path)
    try:
        version = browser.m.session_capabilities["browserVersion"]
        browser.resize(1280)
        # sign in as the merchant
        browser.open("/console/")
        assert "/console/sign-in" in browser.m.get_url()
        browser.m.find_element(By.NAME, "token").send_keys(
            mallcore.token(story.kernel, "merchant", "m1", "s1")
        )
        browser.click("form[action='/console/sign-in'] button")
        assert "Orders today" in browser.text() and "Open after-sale cases" in browser.text(), version
        browser.both_widths()

        # the after-sale workbench lists the request
        browser.click("nav.menu a[href='/console/after-sales']")
        assert f"#{case['id']}" in browser.text() and "Waiting for the merchant" in browser.text()
        browser.both_widths()

        # approve it on its page: htmx swaps the answer in place
        browser.click(f"a[href='/console/after-sales/{case['id']}']")
        browser.m.find_element(By.CSS_SELECTOR, "form[action$='/approve'] input[name=note]").send_keys("ok")
        browser.click_in_place("#approve", "Request approved.")
        assert "awaiting_return" in browser.m.page_source
        assert story.case(case["id"])["status"] == "awaiting_return"
        browser.both_widths()

        # the customer's tracking page for the order
        tracking = story.alice.get(f"/orders/{order['id']}").json()["tracking_url"]
        browser.open(urlsplit(tracking)._replace(scheme="", netloc="").geturl())
        text = browser.text()
        assert f"#{case['id']}" in text or str(case["id"]) in text, text
        browser.both_widths()
    finally:
        browser.close()
