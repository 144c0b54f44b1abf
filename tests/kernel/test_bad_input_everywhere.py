"""Every JSON write route of the app, every center on, answers bad bodies with a 4xx and a code.

The routes are enumerated from the app itself (every handler taking a JSON
body), so a new route is covered the day it is added. Each bad body is sent
by an admin (guards pass, so the body is read) and by a customer.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.helpers import ADDRESS, order_body, snapshot

CENTERS = ["catalog", "payment", "wms", "tms", "refund", "finance", "risk", "promotion", "membership"]
JSON = {"Content-Type": "application/json"}

DEEP = b'{"a": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
# (name, body, headers, expected status, expected code)
BAD: list[tuple[str, bytes, dict[str, str], int, str]] = [
    # refused as unreadable, or as not the route's type before the depth is reached
    ("deeply nested", DEEP, JSON, 400, "malformed_json|invalid_request"),
    ("invalid utf-8", b'{"name": "\xff\xfe\xfd", "reason": "\xc3\x28"}', JSON, 400, "malformed_json"),
    ("nul character", b'{"name": "a\\u0000b", "note": "\\u0000"}', JSON, 422, "invalid_characters"),
    ("nul in a key", b'{"na\\u0000me": 1}', JSON, 422, "invalid_characters"),
    ("huge integer", b'{"quantity": 99999999999999999999999999, "points": 4294967296}', JSON, 400, "*"),
    ("text/plain", b'{"name": "x"}', {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
    ("no content type", b'{"name": "x"}', {}, 415, "unsupported_media_type"),
    ("not json", b"\x00\x01garbage", JSON, 400, "malformed_json"),
]


def json_write_routes(app: Any) -> list[tuple[str, str]]:
    out = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if "data" not in handler.parsed_fn_signature.parameters:
                continue
            for method in handler.http_methods:
                if method in ("POST", "PUT", "PATCH", "DELETE"):
                    out.append((method, route.path))
    return sorted(set(out))


def fill(path: str) -> str:
    return re.sub(r"\{(\w+):(\w+)\}", lambda m: "1" if m.group(2) == "int" else "x", path)


@pytest.mark.timeout(600)
def test_every_json_write_route_refuses_every_bad_body_with_a_4xx_and_a_code(mallcore):
    kernel = mallcore.kernel(centers=CENTERS)
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    routes = json_write_routes(mallcore.app(kernel))
    assert len(routes) > 40
    callers = [mallcore.client(kernel, "admin", "root"), mallcore.client(kernel, "customer", "alice")]
    before = snapshot(kernel)
    sent, server_errors, wrong = 0, [], []
    for method, path in routes:
        for name, body, headers, status, code in BAD:
            for caller in callers:
                r = caller.request(method, fill(path), content=body, headers=headers)
                sent += 1
                if r.status_code >= 500:
                    server_errors.append(f"{name}: {method} {path} -> {r.status_code} {r.text[:120]}")
                    continue
                got = r.json()
                if r.status_code in (401, 403):
                    continue  # the guard answered before the body was read
                if code != "*" and (r.status_code != status or got.get("code") not in code.split("|")):
                    wrong.append(f"{name}: {method} {path} -> {r.status_code} {got.get('code')}")
                elif code == "*" and not (400 <= r.status_code < 500 and got.get("code")):
                    wrong.append(f"{name}: {method} {path} -> {r.status_code} {got}")
    print(
        f"bad inputs: {sent} requests ({len(BAD)} bodies x {len(routes)} routes x 2 callers), "
        f"{len(server_errors)} answered 5xx"
    )
    assert server_errors == []
    assert wrong == []
    assert snapshot(kernel) == before


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("nul in sku", lambda b: b["lines"][0].update(sku="SKU\u00001")),
        ("nul in address", lambda b: b["address"].update(detail="1 West\u0000Lake Rd")),
        ("nul in note", lambda b: b.update(note="leave at the door\u0000")),
    ],
)
def test_nul_characters_in_an_order_are_refused_and_write_nothing(mallcore, name, change):
    kernel = mallcore.kernel()
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    alice = mallcore.client(kernel, "customer", "alice")
    body = order_body(address=dict(ADDRESS))
    change(body)
    before = snapshot(kernel)
    r = alice.post("/orders", json=body)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_characters"), r.text
    assert snapshot(kernel) == before


@pytest.mark.parametrize("points", [2**31, 2**31 + 5, 2**63, 2**64])
def test_points_beyond_a_32_bit_column_are_refused_not_a_crash(mallcore, points):
    kernel = mallcore.kernel()  # no membership center: nothing checks the figure but the body
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    alice = mallcore.client(kernel, "customer", "alice")
    before = snapshot(kernel)
    r = alice.post("/orders", json={**order_body(), "points": points})
    assert 400 <= r.status_code < 500 and r.json()["code"], r.text
    assert snapshot(kernel) == before


def test_a_precompiled_statement_fails_with_sqlalchemys_errors_so_they_map_to_4xx(mallcore):
    """kernel/fast.py runs statements on the driver's cursor: its errors are wrapped as SQLAlchemy's."""
    import sqlalchemy as sa

    from mallcore.kernel import fast, utcnow
    from mallcore.kernel import tables as t

    kernel = mallcore.kernel()
    insert = fast.insert(t.shops, ("code", "name", "currency", "created_at"), kernel.db)
    row = {"code": "dup", "name": "x", "currency": "CNY", "created_at": utcnow()}
    with kernel.db.transaction() as conn:
        insert.execute(conn, row)
    with pytest.raises(sa.exc.IntegrityError), kernel.db.transaction() as conn:
        insert.execute(conn, row)
    if kernel.db.engine.dialect.name == "postgresql":
        big = fast.statement(
            sa.select(sa.cast(sa.bindparam("v", type_=sa.BigInteger), sa.Integer)),
            kernel.db,
            {"v": sa.BigInteger()},
            returns_rows=True,
        )
        with pytest.raises(sa.exc.DataError), kernel.db.transaction() as conn:
            big.execute(conn, {"v": 2**40})
