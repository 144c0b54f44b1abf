"""keep why each center holds a refund for review (order_refunds.review_reasons)

Revision ID: 5c0e2d9a7b41
Revises: 9b727344751f
Create Date: 2026-12-03 10:00:00.000000

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

from mallcore.kernel import columns

# revision identifiers, used by Alembic.
revision: str = "5c0e2d9a7b41"
down_revision: Union[str, Sequence[str], None] = "9b727344751f"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("order_refunds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("review_reasons", columns.JSON, nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("order_refunds", schema=None) as batch_op:
        batch_op.drop_column("review_reasons")
