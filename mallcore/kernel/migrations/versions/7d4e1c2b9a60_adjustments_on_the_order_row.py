"""an order's adjustments live on its row (a JSON list by line number), not in rows of their own

Placement then writes no statement, table page or index page for them. Existing
adjustment rows are moved onto their orders (line ids become line numbers) and
the order_adjustments table is dropped; a downgrade moves them back.

Revision ID: 7d4e1c2b9a60
Revises: 3c1f0a9d2b7e
Create Date: 2026-12-03 08:00:00.000000

"""

from collections import defaultdict
from typing import Any, Sequence, Union

import sqlalchemy as sa
from alembic import op

from mallcore.kernel import columns

# revision identifiers, used by Alembic.
revision: str = "7d4e1c2b9a60"
down_revision: Union[str, Sequence[str], None] = "3c1f0a9d2b7e"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

orders = sa.table("orders", sa.column("id", columns.Id), sa.column("adjustments", columns.JSON))
lines = sa.table(
    "order_lines", sa.column("id", columns.Id), sa.column("order_id", columns.Id), sa.column("line_no")
)
adjustments = sa.table(
    "order_adjustments",
    sa.column("id", columns.Id),
    sa.column("order_id", columns.Id),
    sa.column("line_id", columns.Id),
    sa.column("phase"),
    sa.column("source"),
    sa.column("reason"),
    sa.column("code"),
    sa.column("amount"),
    sa.column("allocation", columns.JSON),
    sa.column("funded_by"),
)


def _line_numbers(conn: Any) -> dict[int, int]:
    return {line_id: line_no for line_id, line_no in conn.execute(sa.select(lines.c.id, lines.c.line_no))}


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("adjustments", columns.JSON, nullable=True))
    conn = op.get_bind()
    numbers = _line_numbers(conn)
    by_order: dict[int, list[dict[str, Any]]] = defaultdict(list)
    a = adjustments.c
    for row in conn.execute(sa.select(adjustments).order_by(a.order_id, a.id)):
        by_order[row.order_id].append(
            {
                "source": row.source,
                "reason": row.reason,
                "amount": row.amount,
                "phase": row.phase,
                "line_no": None if row.line_id is None else numbers[row.line_id],
                "code": row.code,
                "funded_by": row.funded_by,
                "allocation": {numbers[int(k)]: v for k, v in (row.allocation or {}).items()} or None,
            }
        )
    if by_order:
        conn.execute(
            orders.update().where(orders.c.id == sa.bindparam("order_id")),
            [{"order_id": order_id, "adjustments": rows} for order_id, rows in by_order.items()],
        )
    with op.batch_alter_table("order_adjustments", schema=None) as batch_op:
        batch_op.drop_index("ix_order_adjustments_order")
    op.drop_table("order_adjustments")


def downgrade() -> None:
    op.create_table(
        "order_adjustments",
        sa.Column("id", columns.Id, autoincrement=True, nullable=False),
        sa.Column("order_id", columns.Id, nullable=False),
        sa.Column("line_id", columns.Id, nullable=True),
        sa.Column("phase", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("allocation", columns.JSON, nullable=True),
        sa.Column("funded_by", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("order_adjustments", schema=None) as batch_op:
        batch_op.create_index("ix_order_adjustments_order", ["order_id"], unique=False)
    conn = op.get_bind()
    ids = {
        (order_id, line_no): line_id
        for line_id, order_id, line_no in conn.execute(
            sa.select(lines.c.id, lines.c.order_id, lines.c.line_no)
        )
    }
    rows = []
    for order_id, stored in conn.execute(
        sa.select(orders.c.id, orders.c.adjustments)
        .where(orders.c.adjustments.is_not(None))
        .order_by(orders.c.id)
    ):
        for adj in stored or ():
            line_no = adj["line_no"]
            allocation = {str(ids[(order_id, int(k))]): v for k, v in (adj["allocation"] or {}).items()}
            rows.append(
                {
                    "order_id": order_id,
                    "line_id": None if line_no is None else ids[(order_id, line_no)],
                    "phase": adj["phase"],
                    "source": adj["source"],
                    "reason": adj["reason"],
                    "code": adj["code"],
                    "amount": adj["amount"],
                    "allocation": allocation or None,
                    "funded_by": adj["funded_by"],
                }
            )
    if rows:
        conn.execute(adjustments.insert(), rows)
    # Not in batch mode: on SQLite that copies the orders table, which the lines' foreign
    # key refuses; SQLite drops a plain column in place (3.35 and later).
    op.drop_column("orders", "adjustments")
