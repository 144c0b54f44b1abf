"""The test kit's databases: tables made once per process, never a row or a DDL change of an
earlier test (mallcore.testdb)."""

import sqlalchemy as sa

from mallcore.kernel import tables as t
from mallcore.testing import Kit


def _kernel(tmp_path, name):
    kit = Kit(tmp_path / name)
    (tmp_path / name).mkdir()
    return kit, kit.kernel(centers=["catalog", "payment"])


def _place(kit, kernel):
    kit.product(kernel, skus=[("SKU-1", 1000)])
    alice = kit.client(kernel, "customer", "alice")
    reply = alice.post("/orders", json={"shop": "s1", "lines": [{"sku": "SKU-1", "quantity": 1}]})
    assert reply.status_code == 201, reply.text
    return reply.json()


def test_a_later_kernel_sees_none_of_an_earlier_ones_rows_and_ids_start_again(tmp_path):
    for run in ("first", "second", "third"):
        kit, kernel = _kernel(tmp_path, run)
        try:
            with kernel.db.transaction(write=False) as conn:
                assert conn.execute(sa.select(sa.func.count()).select_from(t.orders)).scalar() == 0
            assert _place(kit, kernel)["id"] == 1
        finally:
            kit.close()


def test_a_table_a_test_changed_is_made_afresh_for_the_next(tmp_path):
    kit, kernel = _kernel(tmp_path, "altering")
    try:
        with kernel.db.transaction() as conn:
            conn.execute(sa.text("ALTER TABLE orders ADD COLUMN leftover INTEGER"))
            conn.execute(sa.text("CREATE TABLE stray (x INTEGER)"))
    finally:
        kit.close()
    for run in ("after", "after-again"):
        kit, kernel = _kernel(tmp_path, run)
        try:
            columns = {c["name"] for c in sa.inspect(kernel.db.engine).get_columns("orders")}
            assert "leftover" not in columns
            assert "stray" not in sa.inspect(kernel.db.engine).get_table_names()
            assert _place(kit, kernel)["id"] == 1
        finally:
            kit.close()
