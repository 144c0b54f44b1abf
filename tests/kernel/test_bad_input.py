"""Bad input answers 4xx with a stable code and writes nothing."""

import pytest

from tests.helpers import order_body, snapshot


@pytest.fixture
def shop(mallcore):
    kernel = mallcore.kernel()
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    return kernel


CASES = [
    ("unknown sku", order_body(lines=[("NOPE", 1)]), 422, "sku_unknown"),
    ("zero quantity", order_body(lines=[("SKU-1", 0)]), 400, "invalid_request"),
    ("negative quantity", order_body(lines=[("SKU-1", -3)]), 400, "invalid_request"),
    ("no lines", {"shop": "s1", "lines": []}, 400, "invalid_request"),
    ("missing lines", {"shop": "s1"}, 400, "invalid_request"),
    ("missing shop", {"lines": [{"sku": "SKU-1", "quantity": 1}]}, 400, "invalid_request"),
    ("missing sku", {"shop": "s1", "lines": [{"quantity": 1}]}, 400, "invalid_request"),
    (
        "fractional quantity",
        {"shop": "s1", "lines": [{"sku": "SKU-1", "quantity": 1.5}]},
        400,
        "invalid_request",
    ),
    ("unknown field", {**order_body(), "discount": 500}, 400, "invalid_request"),
    ("address missing a field", {**order_body(), "address": {"name": "A"}}, 400, "invalid_request"),
    ("too many units", order_body(lines=[("SKU-1", 10_000)]), 422, "quantity_too_large"),
    ("unknown shop", order_body(shop="ghost"), 422, "shop_unknown"),
    ("negative points", {**order_body(), "points": -1}, 400, "invalid_request"),
]


@pytest.mark.parametrize(("name", "body", "status", "code"), CASES, ids=[c[0] for c in CASES])
def test_bad_orders_are_refused_and_write_nothing(mallcore, shop, name, body, status, code):
    alice = mallcore.client(shop, "customer", "alice")
    before = snapshot(shop)
    r = alice.post("/orders", json=body)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert r.json()["detail"]
    assert snapshot(shop) == before


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b'{"shop": "s1", "lines": [', 400, "malformed_json"),
        (b"not json", 400, "malformed_json"),
        (
            b'{"shop": "s1", "lines": [{"sku": "SKU-1", "quantity": 1}], "note": "'
            + b"x" * 1_100_000
            + b'"}',
            413,
            "body_too_large",
        ),
    ],
    ids=["truncated", "garbage", "oversized"],
)
def test_unreadable_bodies_are_refused_and_write_nothing(mallcore, shop, content, status, code):
    alice = mallcore.client(shop, "customer", "alice")
    before = snapshot(shop)
    r = alice.post("/orders", content=content, headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()["code"]) == (status, code)
    assert snapshot(shop) == before


def test_bad_product_input_is_refused(mallcore, shop):
    merchant = mallcore.client(shop, "merchant", "m1", shop="s1")
    before = snapshot(shop)
    for body, code in [
        ({"name": "x", "shop": "s1", "skus": []}, "invalid_request"),
        ({"name": "x", "shop": "s1", "skus": [{"code": "A", "price": -1}]}, "invalid_request"),
        ({"name": "x", "shop": "s1", "skus": [{"code": "SKU-1", "price": 1}]}, "sku_code_taken"),
        (
            {"name": "x", "shop": "s1", "skus": [{"code": "B", "price": 1}, {"code": "B", "price": 2}]},
            "sku_code_repeated",
        ),
        ({"name": "x", "shop": "s2", "skus": [{"code": "C", "price": 1}]}, "shop_forbidden"),
    ]:
        r = merchant.post("/catalog/products", json=body)
        assert r.json()["code"] == code, (body, r.text)
        assert 400 <= r.status_code < 500
    assert snapshot(shop) == before


def test_unknown_routes_and_methods_answer_json(mallcore, shop):
    client = mallcore.client(shop, "customer", "alice")
    r = client.get("/nowhere")
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    r = client.delete("/orders")
    assert (r.status_code, r.json()["code"]) == (405, "method_not_allowed")


def test_ids_beyond_64_bits_are_bad_input_not_a_crash(mallcore, shop):
    alice = mallcore.client(shop, "customer", "alice")
    for url in (f"/orders/{2**63}", f"/orders/{2**70}/timeline"):
        r = alice.get(url)
        assert 400 <= r.status_code < 500, (url, r.text)
        assert r.json()["code"] in ("invalid_input", "order_not_found")


def test_a_tracking_token_of_any_text_is_checked_without_crashing(mallcore, shop):
    assert shop.auth.check_tracking_token(1, "ünïcode") is False
    assert shop.auth.check_tracking_token(1, shop.auth.tracking_token(1)) is True


def test_a_write_clash_no_check_could_see_answers_409_and_writes_nothing(mallcore):
    """Two requests creating the same thing at once: the loser's stage rolls back whole
    and the client hears 409 ``write_conflict`` (retry), not a 500."""
    import sqlalchemy as sa
    from litestar import post
    from litestar.params import FromPath
    from sqlalchemy.exc import OperationalError

    from mallcore.kernel import Center, hookimpl

    md = sa.MetaData()
    tags = sa.Table(
        "clash_tags",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(20), nullable=False, unique=True),
    )

    class Lost(Exception):
        sqlstate = "40001"  # PostgreSQL: could not serialize access

    class Clash(Center):
        name = "clash"

        @hookimpl
        def center_tables(self):
            return md

        @hookimpl
        def center_routes(self, kernel):
            @post("/clash/{code:str}", sync_to_thread=True)
            def create(code: FromPath[str]) -> dict[str, str]:
                with kernel.db.transaction() as conn:
                    conn.execute(tags.insert().values(code=f"{code}-audit"))
                    conn.execute(tags.insert().values(code=code))  # no check first: a race
                return {"code": code}

            @post("/clash-serialization", sync_to_thread=True)
            def lose() -> None:
                raise OperationalError("UPDATE ...", {}, Lost())

            return [create, lose]

    kernel = mallcore.kernel(extra=[Clash])
    client = mallcore.client(kernel, None)
    assert client.post("/clash/A").status_code == 201
    r = client.post("/clash/A-audit")  # its second insert clashes with the first request's row
    assert (r.status_code, r.json()["code"]) == (409, "write_conflict")
    with kernel.db.transaction(write=False) as conn:
        assert sorted(conn.execute(sa.select(tags.c.code)).scalars()) == ["A", "A-audit"]
    r = client.post("/clash-serialization")
    assert (r.status_code, r.json()["code"]) == (409, "write_conflict")
