"""tracking_link_revocations: customers' tracking links revoked one by one

Revision ID: f1a2b3c4d5e6
Revises: e4b7c2a91d30
Create Date: 2026-12-03 08:20:00.000000

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

from mallcore.kernel import columns

# revision identifiers, used by Alembic.
revision: str = "f1a2b3c4d5e6"
down_revision: Union[str, Sequence[str], None] = "e4b7c2a91d30"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "tracking_link_revocations",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("order_id", columns.Id, nullable=False),
        sa.Column("revoked_by", sa.String(length=128), nullable=False),
        sa.Column("revoked_at", columns.Time(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("tracking_link_revocations")
