"""fee tables

Revision ID: 2b7d4e9f1a6c
Revises:
Create Date: 2026-12-03 12:00:00.000000

The first revision of the fee center's own branch (branch label "fee"),
depending on the kernel's first revision like every center's. Made with
``mallcore db revision fee -m "fee tables"`` (see docs/writing-a-center.md).
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = "2b7d4e9f1a6c"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = ("fee",)
depends_on: Union[str, Sequence[str], None] = "aaeaf4f9b735"


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "fee_charges",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("shop", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("fee_charges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fee_charges_order_id"), ["order_id"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("fee_charges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fee_charges_order_id"))
    op.drop_table("fee_charges")
