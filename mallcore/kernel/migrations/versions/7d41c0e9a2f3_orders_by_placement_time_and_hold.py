"""orders by placement time (per shop and platform-wide) and held orders, for the staff console

Revision ID: 7d41c0e9a2f3
Revises: 3c1f0a9d2b7e, 5c0e2d9a7b41
Create Date: 2026-12-03 08:25:00.000000

"""

from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = "7d41c0e9a2f3"
down_revision: Union[str, Sequence[str], None] = ("3c1f0a9d2b7e", "5c0e2d9a7b41")
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_shop_placed", ["shop", "placed_at"], unique=False)
        batch_op.create_index("ix_orders_placed", ["placed_at"], unique=False)
        batch_op.create_index("ix_orders_hold", ["hold"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_hold")
        batch_op.drop_index("ix_orders_placed")
        batch_op.drop_index("ix_orders_shop_placed")
