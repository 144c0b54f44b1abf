"""Migrations and table definitions agree, per center, on SQLite and PostgreSQL."""

import json

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from mallcore.kernel.migrate import current
from mallcore.kernel.plugins import default_enabled, installed_centers

ALL = default_enabled(installed_centers())


def diff(kernel):
    combined = sa.MetaData()
    for metadata in kernel.metadatas.values():
        for table in metadata.tables.values():
            table.to_metadata(combined)
    with kernel.db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return [
            change
            for change in compare_metadata(context, combined)
            if not (
                isinstance(change, tuple)
                and change[0] == "remove_table"
                and change[1].name == "alembic_version"
            )
        ]


def test_upgrading_a_fresh_database_builds_exactly_the_declared_tables(mallcore):
    kernel = mallcore.kernel(centers=ALL, migrate=True)
    assert diff(kernel) == []
    declared = {name for md in kernel.metadatas.values() for name in md.tables}
    with kernel.db.engine.connect() as conn:
        present = set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
    assert present == declared


def test_a_disabled_centers_branch_is_not_applied_and_upgrading_twice_is_harmless(mallcore):
    kernel = mallcore.kernel(centers=["catalog", "payment"], migrate=True)
    with kernel.db.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert "catalog_skus" in tables and "orders" in tables
    assert not {t for t in tables if t.startswith(("wms_", "tms_", "refund_", "finance_", "fee_"))}
    heads = current(kernel)
    kernel.upgrade()
    assert current(kernel) == heads


@pytest.mark.parametrize("center", [c for c in ALL if c not in ("catalog", "payment")])
def test_each_center_can_be_added_to_a_running_shop_later(mallcore, center):
    kernel = mallcore.kernel(centers=["catalog", "payment"], migrate=True)
    url = kernel.config.database
    grown = mallcore.kernel(
        centers=list(dict.fromkeys(["catalog", "payment", *kernel_requires(center), center])),
        config={"database": {"url": url.url, "schema": url.schema}},
        migrate=True,
    )
    assert diff(grown) == []


def kernel_requires(center):
    obj = installed_centers()[center].load()
    return list(getattr(obj, "requires", ()))


def test_adjustment_rows_of_earlier_orders_move_onto_their_orders_and_back(mallcore):
    """Revision 7d4e1c2b9a60 keeps an order's adjustments on its row; what was written before
    reads the same after the upgrade (by line id), and a downgrade gives the rows back."""
    from alembic import command

    from mallcore.kernel.migrate import alembic_config

    kernel = mallcore.kernel(centers=["catalog", "payment"], migrate=True)

    def alembic(step, target):
        with kernel.db.engine.connect() as conn:
            step(alembic_config(kernel, conn), target)
            conn.commit()

    alembic(command.downgrade, "7d41c0e9a2f3")
    now = "2026-12-01 10:00:00.000000" if kernel.db.is_sqlite else "2026-12-01 10:00:00+00"
    with kernel.db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO orders (id, shop, customer, status, currency, subtotal, discount, shipping,"
                " fees, total, paid, refunded, points, placed_at, updated_at) VALUES (7, 'demo', 'alice',"
                " 'paid', 'CNY', 3000, 300, 0, 0, 2700, 2700, 0, 0, :now, :now)"
            ),
            {"now": now},
        )
        for line_id, line_no, total in ((41, 1, 1000), (42, 2, 2000)):
            conn.execute(
                sa.text(
                    "INSERT INTO order_lines (id, order_id, line_no, sku, name, quantity, unit_price,"
                    " subtotal, discount, shipping, fees, total, weight_grams) VALUES"
                    " (:id, 7, :no, 'S', 'S', 1, :t, :t, 0, 0, 0, :t, 0)"
                ),
                {"id": line_id, "no": line_no, "t": total},
            )
        conn.execute(
            sa.text(
                "INSERT INTO order_adjustments (order_id, line_id, phase, source, reason, code, amount,"
                " allocation, funded_by) VALUES (7, NULL, 10, 'promotion', 'off', 'campaign:1', -300,"
                " '{\"41\": -100, \"42\": -200}', 'shop'), (7, 42, 10, 'promotion', 'line', NULL, -5,"
                " '{\"42\": -5}', NULL)"
            )
        )
    alembic(command.upgrade, "heads")
    with kernel.db.transaction(write=False) as conn:
        loaded = kernel.orders.load_adjustments(conn, 7)
    assert [(a.code, a.amount, a.line_id, a.line_no, a.funded_by) for a in loaded] == [
        ("campaign:1", -300, None, None, "shop"),
        (None, -5, 42, 2, None),
    ]
    assert [a.allocation for a in loaded] == [{41: -100, 42: -200}, {42: -5}]

    alembic(command.downgrade, "7d41c0e9a2f3")
    with kernel.db.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT line_id, amount, allocation FROM order_adjustments WHERE order_id = 7 ORDER BY id"
            )
        ).all()
    assert [(r[0], r[1]) for r in rows] == [(None, -300), (42, -5)]
    alembic(command.upgrade, "heads")


def test_shopless_staff_tokens_issued_before_the_platform_flag_are_marked_platform_and_back(mallcore):
    """Revision e4b7c2a91d30 adds ``api_tokens.platform``: a staff token issued before it without a
    shop was platform-wide by omission, and is marked ``platform`` (so it keeps working, now
    explicitly); shop staff, admins and customers are not. A downgrade drops the column, keeps
    the tokens."""
    from alembic import command

    from mallcore.kernel.auth import hash_token
    from mallcore.kernel.migrate import alembic_config

    kernel = mallcore.kernel(centers=["catalog"], migrate=True)

    def alembic(step, target):
        with kernel.db.engine.connect() as conn:
            step(alembic_config(kernel, conn), target)
            conn.commit()

    def columns():
        return {c["name"] for c in sa.inspect(kernel.db.engine).get_columns("api_tokens")}

    alembic(command.downgrade, "5c0e2d9a7b41")
    assert "platform" not in columns()
    tokens = {
        "old-merchant": (["merchant"], None),  # staff, no shop: platform-wide by omission
        "old-finance-risk": (["finance", "risk"], None),
        "old-shop-staff": (["warehouse"], "s1"),
        "old-admin": (["admin"], None),
        "old-admin-staff": (["admin", "merchant"], None),
        "old-customer": (["customer"], None),
    }
    now = "2026-11-01 10:00:00.000000" if kernel.db.is_sqlite else "2026-11-01 10:00:00+00"
    with kernel.db.engine.begin() as conn:
        for token, (roles, shop) in tokens.items():
            conn.execute(
                sa.text(
                    "INSERT INTO api_tokens (token_hash, subject, roles, shop, created_at)"
                    " VALUES (:h, :s, :r, :shop, :now)"
                ),
                {"h": hash_token(token), "s": token, "r": json.dumps(roles), "shop": shop, "now": now},
            )
    alembic(command.upgrade, "heads")
    assert "platform" in columns()
    with kernel.db.engine.connect() as conn:
        marked = dict(conn.execute(sa.text("SELECT subject, platform FROM api_tokens")).all())
    assert {subject: bool(flag) for subject, flag in marked.items()} == {
        "old-merchant": True,
        "old-finance-risk": True,
        "old-shop-staff": False,
        "old-admin": False,
        "old-admin-staff": False,
        "old-customer": False,
    }
    # the converted token works, now explicitly platform-wide
    me = mallcore.client(kernel, None).get("/me", headers={"Authorization": "Bearer old-merchant"})
    assert me.status_code == 200, me.text
    assert me.json()["platform"] is True

    alembic(command.downgrade, "5c0e2d9a7b41")
    assert "platform" not in columns()
    with kernel.db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM api_tokens")).scalar() == len(tokens)
    alembic(command.upgrade, "heads")
    assert "platform" in columns()
