"""Every field a client sends has a bound, and types are strict."""

from __future__ import annotations

from typing import Any

import msgspec.inspect as mi

from tests.helpers import ADDRESS, order_body, snapshot

CENTERS = ["catalog", "payment", "wms", "tms", "refund", "finance", "risk", "promotion", "membership"]


def unbounded(info: Any, where: str, seen: frozenset[type] = frozenset()) -> list[str]:
    """Strings, lists and maps in a body type with no maximum length."""
    out: list[str] = []
    if isinstance(info, mi.StrType):
        if info.max_length is None and info.pattern is None:
            out.append(where)
    elif isinstance(info, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
        if info.max_length is None:
            out.append(where + "[]")
        out += unbounded(info.item_type, where + "[]", seen)
    elif isinstance(info, mi.DictType):
        if info.max_length is None:
            out.append(where + "{}")
        out += unbounded(info.key_type, where + "{key}", seen) + unbounded(
            info.value_type, where + "{}", seen
        )
    elif isinstance(info, mi.UnionType):
        for member in info.types:
            out += unbounded(member, where, seen)
    elif isinstance(info, mi.StructType) and info.cls not in seen:
        for field in info.fields:
            out += unbounded(field.type, f"{info.cls.__name__}.{field.name}", seen | {info.cls})
    return out


def test_every_string_list_and_map_of_every_json_body_has_a_maximum_length(mallcore):
    app = mallcore.app(mallcore.kernel(centers=CENTERS))
    found: list[str] = []
    bodies = 0
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            field = handler.parsed_fn_signature.parameters.get("data")
            if field is not None:
                bodies += 1
                found += [f"{route.path}: {x}" for x in unbounded(mi.type_info(field.raw), "")]
    assert bodies > 40
    assert sorted(set(found)) == []


def test_a_huge_address_is_refused_and_nothing_is_stored(mallcore):
    kernel = mallcore.kernel()
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    alice = mallcore.client(kernel, "customer", "alice")
    before = snapshot(kernel)
    for field in ADDRESS:
        r = alice.post("/orders", json=order_body(address={**ADDRESS, field: "x" * 100_000}))
        assert (r.status_code, r.json()["code"]) == (400, "invalid_request"), (field, r.text)
        assert r.json()["errors"][0]["key"] == f"address.{field}"
    assert snapshot(kernel) == before


def test_numbers_sent_as_strings_are_refused_not_coerced(mallcore):
    kernel = mallcore.kernel()
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    alice = mallcore.client(kernel, "customer", "alice")
    before = snapshot(kernel)
    body = {"shop": "s1", "lines": [{"sku": "SKU-1", "quantity": "1"}], "address": ADDRESS}
    r = alice.post("/orders", json=body)
    assert (r.status_code, r.json()["code"]) == (400, "invalid_request"), r.text
    assert r.json()["errors"][0]["key"] == "lines[0].quantity"
    assert alice.post("/orders", json={**order_body(), "points": "5"}).status_code == 400
    assert snapshot(kernel) == before
    assert alice.post("/orders", json=order_body()).status_code == 201


def test_json_routes_take_json_only(mallcore):
    kernel = mallcore.kernel()
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    alice = mallcore.client(kernel, "customer", "alice")
    body = msgspec_json(order_body())
    before = snapshot(kernel)
    for headers in (
        {"Content-Type": "text/plain"},
        {},
        {"Content-Type": "application/x-www-form-urlencoded"},
    ):
        r = alice.post("/orders", content=body, headers=headers)
        assert (r.status_code, r.json()["code"]) == (415, "unsupported_media_type"), headers
    assert snapshot(kernel) == before
    for media in ("application/json", "application/json; charset=utf-8", "application/vnd.api+json"):
        assert alice.post("/orders", content=body, headers={"Content-Type": media}).status_code == 201
    # a route whose body is optional takes no body and no content type
    order = alice.post("/orders", json=order_body()).json()
    assert alice.post(f"/orders/{order['id']}/cancel").status_code == 200


def msgspec_json(value: Any) -> bytes:
    import msgspec

    return msgspec.json.encode(value)
