"""What a stage offers centers beyond the order: the request's facts, preview
hints, who funds a discount."""

from __future__ import annotations

import msgspec
import pytest

from mallcore.kernel import Center, ConfigError, Phase, Principal, hookimpl
from mallcore.kernel.facts import FactsReader, parse_networks
from mallcore.kernel.schemas import PlaceOrder
from tests.helpers import order_body


class Recorder(Center):
    name = "recorder"
    after = ("catalog",)

    def __init__(self) -> None:
        super().__init__()
        self.seen: list = []

    @hookimpl
    def order_pre_validate(self, ctx):
        self.seen.append((ctx.stage, ctx.request))

    @hookimpl
    def order_price(self, ctx):
        subtotal = sum((line.unit_price or 0) * line.quantity for line in ctx.lines)
        if subtotal >= 2000:
            ctx.adjust(self.name, "满20减2", -200, phase=Phase.PROMOTION, code="c-1", funded_by="shop")
        else:
            ctx.hint(
                self.name,
                f"add {(2000 - subtotal) / 100:.2f} more for 满20减2",
                zh=f"再买 {(2000 - subtotal) / 100:.2f} 元可享满20减2",
                code="c-1",
            )


def test_a_placement_sees_the_client_ip_device_and_user_agent(mallcore):
    kernel = mallcore.kernel(extra=[Recorder])
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    alice = mallcore.client(kernel, "customer", "alice")
    headers = {"X-Device-Id": "dev-42", "User-Agent": "shop-app/3.1", "X-Forwarded-For": "203.0.113.9"}
    assert alice.post("/orders", json=order_body(), headers=headers).status_code == 201
    stage, facts = kernel.centers["recorder"].seen[-1]
    assert stage == "place"
    # the test client is no trusted proxy: its X-Forwarded-For is not believed
    assert (facts.ip, facts.device_id, facts.user_agent) == ("testclient", "dev-42", "shop-app/3.1")
    assert facts.forwarded_for == ("203.0.113.9",)


def test_only_a_trusted_proxy_s_forwarded_for_names_the_client():
    reader = FactsReader(parse_networks(["10.0.0.0/8", "192.0.2.1"], "http.trusted_proxies"), "X-Device-Id")

    def ip(peer: str, forwarded: str) -> str:
        scope = {"client": (peer, 5000), "headers": [(b"x-forwarded-for", forwarded.encode())]}
        return reader.read(scope).ip

    # client, then two proxies: the rightmost address that is no trusted proxy is the client
    assert ip("192.0.2.1", "198.51.100.7, 203.0.113.9, 10.1.2.3") == "203.0.113.9"
    # a client cannot name itself: an untrusted peer is the client whatever it sends
    assert ip("198.51.100.7", "1.2.3.4") == "198.51.100.7"
    # a chain of trusted proxies only: the first hop is the client
    assert ip("10.0.0.1", "10.9.9.9, 10.0.0.2") == "10.9.9.9"


def test_a_trusted_proxy_that_is_not_an_address_stops_start_up(mallcore):
    with pytest.raises(ConfigError, match="http.trusted_proxies"):
        mallcore.kernel(config={"http": {"trusted_proxies": ["proxy.local"]}})


def test_stages_without_a_request_have_no_facts(mallcore):
    kernel = mallcore.kernel(extra=[Recorder])
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    req = msgspec.convert({"shop": "s1", "lines": [{"sku": "SKU-1", "quantity": 1}]}, PlaceOrder)
    kernel.orders.place(Principal("bob", frozenset({"customer"})), req)
    assert kernel.centers["recorder"].seen[-1] == ("place", None)


def test_a_preview_lists_what_the_customer_could_still_unlock_in_their_language(mallcore):
    kernel = mallcore.kernel(extra=[Recorder])
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    alice = mallcore.client(kernel, "customer", "alice")
    english = alice.post("/orders/preview", json=order_body()).json()
    assert [(h["source"], h["message"], h["code"]) for h in english["hints"]] == [
        ("recorder", "add 10.00 more for 满20减2", "c-1")
    ]
    chinese = alice.post("/orders/preview", json=order_body(), headers={"Accept-Language": "zh-CN"}).json()
    assert chinese["hints"][0]["message"] == "再买 10.00 元可享满20减2"
    unlocked = alice.post("/orders/preview", json=order_body(lines=[("SKU-1", 2)])).json()
    assert unlocked["hints"] == []


def test_a_discount_says_who_funds_it_and_keeps_saying_it(mallcore):
    kernel = mallcore.kernel(extra=[Recorder])
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    alice = mallcore.client(kernel, "customer", "alice")
    placed = alice.post("/orders", json=order_body(lines=[("SKU-1", 2)])).json()
    [adjustment] = placed["adjustments"]
    assert (adjustment["code"], adjustment["funded_by"], adjustment["amount"]) == ("c-1", "shop", -200)
    again = alice.get(f"/orders/{placed['id']}").json()
    assert again["adjustments"][0]["funded_by"] == "shop"
