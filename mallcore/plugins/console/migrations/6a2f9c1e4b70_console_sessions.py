"""console sessions

Revision ID: 6a2f9c1e4b70
Revises:
Create Date: 2026-12-03 10:50:00

"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from mallcore.kernel import columns

# revision identifiers, used by Alembic.
revision: str = "6a2f9c1e4b70"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = ("console",)
depends_on: Union[str, Sequence[str], None] = "aaeaf4f9b735"


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("shop", sa.String(length=64), nullable=True),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("created_at", columns.Time(), nullable=False),
        sa.Column("expires_at", columns.Time(), nullable=False),
        sa.Column("ended_at", columns.Time(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_console_sessions_expires", "console_sessions", ["expires_at"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_console_sessions_expires", table_name="console_sessions")
    op.drop_table("console_sessions")
