"""api_tokens.platform: staff tokens say where they work (a shop or the platform)

Tokens issued before this migration with staff roles and no shop were
platform-wide by omission; they are marked ``platform`` so they keep working,
now explicitly.

Revision ID: e4b7c2a91d30
Revises: 5c0e2d9a7b41
Create Date: 2026-12-03 08:00:00.000000

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

from mallcore.kernel import columns

# revision identifiers, used by Alembic.
revision: str = "e4b7c2a91d30"
down_revision: Union[str, Sequence[str], None] = "5c0e2d9a7b41"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

STAFF = {"merchant", "warehouse", "finance", "risk"}


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("platform", sa.Boolean(), nullable=False, server_default=sa.false()))
    tokens = sa.table(
        "api_tokens",
        sa.column("token_hash", sa.String),
        sa.column("roles", columns.JSON),
        sa.column("shop", sa.String),
        sa.column("platform", sa.Boolean),
    )
    conn = op.get_bind()
    rows = conn.execute(sa.select(tokens.c.token_hash, tokens.c.roles).where(tokens.c.shop.is_(None))).all()
    platform = [r.token_hash for r in rows if STAFF & set(r.roles or ()) and "admin" not in (r.roles or ())]
    if platform:
        conn.execute(tokens.update().where(tokens.c.token_hash.in_(platform)).values(platform=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("platform")
