"""adjustments say who funds a discount (platform or shop)

Revision ID: 3c1f0a9d2b7e
Revises: 9b727344751f
Create Date: 2026-12-03 04:30:00.000000

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = "3c1f0a9d2b7e"
down_revision: Union[str, Sequence[str], None] = "9b727344751f"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("order_adjustments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("funded_by", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("order_adjustments", schema=None) as batch_op:
        batch_op.drop_column("funded_by")
