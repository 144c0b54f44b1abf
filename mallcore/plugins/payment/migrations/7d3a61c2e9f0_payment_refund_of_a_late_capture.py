"""payment refund of a late capture: payment_refunds.refund_id may be empty

Revision ID: 7d3a61c2e9f0
Revises: 58f8e1fb1e3b
Create Date: 2026-12-03 07:45:00.000000

"""

from typing import Sequence, Union

from alembic import op
from mallcore.kernel import columns


# revision identifiers, used by Alembic.
revision: str = "7d3a61c2e9f0"
down_revision: Union[str, Sequence[str], None] = "58f8e1fb1e3b"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("payment_refunds", schema=None) as batch_op:
        batch_op.alter_column("refund_id", existing_type=columns.Id, nullable=True)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("payment_refunds", schema=None) as batch_op:
        batch_op.alter_column("refund_id", existing_type=columns.Id, nullable=False)
