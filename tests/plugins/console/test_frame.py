"""The console's frame: sign-in and out, the session cookie, CSRF, language, the page hook."""

from __future__ import annotations

import time
from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template

from mallcore.kernel import Caller, Center, hookimpl
from mallcore.kernel.console import ConsolePage, Tile, keyset, render
from mallcore.kernel.http import roles
from mallcore.plugins.console.session import derive

from .conftest import Browser

CENTERS = ["catalog", "payment", "console"]


def test_pages_need_a_session_and_sign_in_takes_a_staff_token(mallcore: Any) -> None:
    kernel = mallcore.kernel(centers=CENTERS)
    browser = Browser(mallcore, kernel)
    r = browser.get("/console/orders?status=paid")
    assert (
        r.status_code == 303
        and r.headers["location"] == "/console/sign-in?next=/console/orders%3Fstatus%3Dpaid"
    )
    assert browser.post("/console/sign-in", {"token": "nope"}).status_code == 401
    customer = mallcore.token(kernel, "customer", "alice")
    refused = browser.post("/console/sign-in", {"token": customer})
    assert refused.status_code == 403 and "The console is for staff." in refused.text
    assert "set-cookie" not in refused.headers or "mallcore_console=" not in refused.headers["set-cookie"]
    merchant = mallcore.token(kernel, "merchant", "m1", "s1")
    r = browser.post("/console/sign-in", {"token": merchant, "next": "/console/orders?status=paid"})
    assert r.status_code == 303 and r.headers["location"] == "/console/orders?status=paid"
    cookie = r.headers["set-cookie"]
    assert "mallcore_console=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Max-Age=28800" in cookie and "Path=/console" in cookie
    home = browser.get("/console/")
    assert home.status_code == 200 and "m1 · s1" in home.text and "Orders today" in home.text
    # sign-out is a form with its token; afterwards the pages ask to sign in again
    assert browser.post("/console/sign-out").status_code == 303
    assert browser.get("/console/").status_code == 303


def test_next_never_leaves_the_console(mallcore: Any) -> None:
    kernel = mallcore.kernel(centers=CENTERS)
    browser = Browser(mallcore, kernel)
    token = mallcore.token(kernel, "merchant", "m1", "s1")
    for target in ("https://evil.example/", "//evil.example/console/", "/schema", "/console/\\evil"):
        r = browser.post("/console/sign-in", {"token": token, "next": target})
        assert r.headers["location"] == "/console/", target


def test_a_form_without_its_csrf_token_is_refused(mallcore: Any) -> None:
    kernel = mallcore.kernel(centers=CENTERS)
    browser = Browser(mallcore, kernel).sign_in("merchant", "m1", "s1")
    r = browser.post("/console/sign-out", csrf=False)
    assert r.status_code == 403 and "csrf_failed" in r.text
    assert browser.post("/console/sign-out", {"_csrf_token": "0" * 128}, csrf=False).status_code == 403
    assert browser.get("/console/").status_code == 200  # still signed in


def test_a_session_cookie_altered_by_one_byte_or_expired_is_refused(mallcore: Any) -> None:
    kernel = mallcore.kernel(centers=CENTERS)
    browser = Browser(mallcore, kernel).sign_in("merchant", "m1", "s1")
    value = browser.client.cookies["mallcore_console"]
    for i in (0, len(value) // 2, value.index(".") + 1, len(value) - 1):
        forged = value[:i] + ("A" if value[i] != "A" else "B") + value[i + 1 :]
        browser.client.cookies.set("mallcore_console", forged, path="/console")
        assert browser.get("/console/").status_code == 303, i
    sessions = kernel.centers["console"].sessions
    token = mallcore.token(kernel, "merchant", "m1", "s1")
    browser.client.cookies.set(
        "mallcore_console",
        sessions.issue(token, kernel.auth.resolve(token), time.time() - 28801),
        path="/console",
    )
    assert browser.get("/console/").status_code == 303


def test_signing_out_ends_the_session_on_the_server_and_a_replayed_cookie_is_refused(mallcore: Any) -> None:
    kernel = mallcore.kernel(centers=CENTERS)
    browser = Browser(mallcore, kernel).sign_in("merchant", "m1", "s1")
    stolen = browser.client.cookies["mallcore_console"]
    other = Browser(mallcore, kernel)  # a copy of the cookie in another browser
    other.client.cookies.set("mallcore_console", stolen, path="/console")
    assert other.get("/console/").status_code == 200
    assert browser.post("/console/sign-out").status_code == 303
    assert browser.get("/console/").status_code == 303
    assert other.get("/console/").status_code == 303  # at once in this worker (its cache is dropped)
    browser.client.cookies.set("mallcore_console", stolen, path="/console")
    assert browser.get("/console/").status_code == 303


def test_revoking_the_token_ends_its_console_sessions_within_a_second(mallcore: Any) -> None:
    import sqlalchemy as sa

    from mallcore.kernel import tables

    kernel = mallcore.kernel(centers=CENTERS)
    token = kernel.auth.issue_token("m1", ["merchant"], "s1")
    browser = Browser(mallcore, kernel)
    assert browser.post("/console/sign-in", {"token": token}).status_code == 303
    assert browser.get("/console/").status_code == 200
    with kernel.db.transaction() as conn:
        conn.execute(
            tables.api_tokens.update()
            .where(tables.api_tokens.c.subject == "m1")
            .values(revoked_at=sa.func.current_timestamp())
        )
    time.sleep(kernel.config.auth.token_cache_seconds + 0.1)  # the API's own bound: the token cache
    assert browser.get("/console/").status_code == 303
    # and the session stays over, even if the token came back
    with kernel.db.transaction() as conn:
        conn.execute(tables.api_tokens.update().values(revoked_at=None))
    assert browser.get("/console/").status_code == 303


def test_the_host_identity_saying_no_ends_the_session_and_roles_follow_the_token(mallcore: Any) -> None:
    kernel = mallcore.kernel(centers=CENTERS)
    token = mallcore.token(kernel, "merchant", "m1", "s1")
    browser = Browser(mallcore, kernel)
    assert browser.post("/console/sign-in", {"token": token}).status_code == 303
    assert "m1 · s1" in browser.get("/console/").text
    # the identity now answers with the customer role only: no console
    kernel.auth.static[token] = kernel.auth.static[token].__class__("m1", frozenset({"customer"}), None)
    assert browser.get("/console/").status_code == 303
    kernel.auth.static.pop(token)  # and then not at all
    assert browser.get("/console/").status_code == 303


def test_session_keys_rotate_the_first_signs_every_one_verifies(mallcore: Any) -> None:
    old, new = "old" * 12, "new" * 12
    before = mallcore.kernel(centers=CENTERS, config={"secrets": {"sessions": [old]}})
    browser = Browser(mallcore, before).sign_in("merchant", "m1", "s1")
    cookie = browser.client.cookies["mallcore_console"]
    sessions = before.centers["console"].sessions
    # the same sessions, read by a worker configured with the new key first and the old one after
    rotated = before.centers["console"].sessions.__class__(
        before.db, before.auth, [derive(new, "session"), derive(old, "session")], 8
    )
    assert rotated.read(cookie) is not None and rotated.read(cookie).subject == "m1"  # type: ignore[union-attr]
    token = mallcore.token(before, "merchant", "m2", "s1")
    fresh = rotated.issue(token, before.auth.resolve(token))
    assert sessions.read(fresh) is None  # signed with the new key: the old-only worker refuses it
    dropped = sessions.__class__(before.db, before.auth, [derive(new, "session")], 8)
    assert dropped.read(cookie) is None and dropped.read(fresh) is not None


def test_a_cookie_signed_under_another_secret_is_refused(mallcore: Any) -> None:
    one = mallcore.kernel(centers=CENTERS, settings={"console": {"secret": "one" * 12}})
    two = mallcore.kernel(centers=CENTERS, settings={"console": {"secret": "two" * 12}})
    browser = Browser(mallcore, one).sign_in("merchant", "m1", "s1")
    other = Browser(mallcore, two)
    other.client.cookies.set("mallcore_console", browser.client.cookies["mallcore_console"], path="/console")
    assert other.get("/console/").status_code == 303


def test_the_language_switch_is_on_every_page_and_remembered(mallcore: Any) -> None:
    kernel = mallcore.kernel(centers=CENTERS)
    browser = Browser(mallcore, kernel).sign_in("merchant", "m1", "s1")
    page = browser.get("/console/orders")
    assert 'href="/console/lang/zh?next=/console/orders"' in page.text and "Orders" in page.text
    r = browser.get("/console/lang/zh?next=/console/orders")
    assert r.status_code == 303 and r.headers["location"] == "/console/orders"
    assert "mallcore_lang=zh" in r.headers["set-cookie"]
    assert "订单号或买家" in browser.get("/console/orders").text
    assert "今日订单" in browser.get("/console/").text
    assert (
        "登录后台"
        in Browser(mallcore, kernel).get("/console/sign-in", headers={"Accept-Language": "zh-CN"}).text
    )


class Fees(Center):
    """A third-party center's page: a menu entry, a page behind a role, a home tile."""

    name = "fees"

    @hookimpl
    def console_pages(self, kernel: Any) -> list[ConsolePage]:
        class FeePages(Controller):
            path = "/fees"
            guards = [roles("finance")]

            @get("/", sync_to_thread=True)
            def fees(self, request: Request[Any, Any, Any], principal: Caller) -> Template:
                return render(
                    request, "console/error.html", status=200, code="fees", detail=principal.subject
                )

        def tiles(principal: Any, lang: str) -> list[Tile]:
            return [Tile(label="Fees waiting", label_zh="待收费用", value="7")]

        return [
            ConsolePage(
                path="/fees",
                label="Fees",
                label_zh="费用",
                handlers=[FeePages],
                roles=("finance",),
                tiles=tiles,
            )
        ]


def test_hook_console_pages_adds_a_centers_menu_entry_page_and_tile(mallcore: Any) -> None:
    kernel = mallcore.kernel(centers=CENTERS, extra=[Fees])
    finance = Browser(mallcore, kernel).sign_in("finance", "f1", "s1")
    home = finance.get("/console/")
    assert '<a href="/console/fees"' in home.text and "Fees waiting" in home.text
    page = finance.get("/console/fees")
    assert page.status_code == 200 and "f1" in page.text
    merchant = Browser(mallcore, kernel).sign_in("merchant", "m1", "s1")
    home = merchant.get("/console/")
    assert '<a href="/console/fees"' not in home.text and "Fees waiting" not in home.text
    refused = merchant.get("/console/fees")
    assert refused.status_code == 403 and "role_required" in refused.text


def test_keyset_pages_without_offset(mallcore: Any) -> None:
    import sqlalchemy as sa

    from mallcore.kernel import tables as kt

    kernel = mallcore.kernel(centers=CENTERS)
    mallcore.product(kernel, shop="s1", skus=[("TEE", 1999)])
    alice = mallcore.client(kernel, "customer", "alice")
    for _ in range(5):
        assert (
            alice.post("/orders", json={"shop": "s1", "lines": [{"sku": "TEE", "quantity": 1}]}).status_code
            == 201
        )
    seen: list[int] = []
    before = None
    with kernel.db.transaction(write=False) as conn:
        while True:
            stmt = sa.select(kt.orders.c.id)
            assert "OFFSET" not in str(stmt)
            rows, before = keyset(conn, stmt, kt.orders.c.id, before, limit=2)
            seen += [r.id for r in rows]
            if before is None:
                break
    assert seen == [5, 4, 3, 2, 1]
