"""warehouses get a return address (contact, phone, province/city/district, street)

Revision ID: 5b1e0c7d2a94
Revises: 737a6726df57
Create Date: 2026-12-03 08:20:00

"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = "5b1e0c7d2a94"
down_revision: Union[str, Sequence[str], None] = "737a6726df57"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

COLUMNS = [("contact", 100), ("phone", 32), ("province", 64), ("city", 64), ("district", 64), ("street", 300)]


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("wms_warehouses", schema=None) as batch_op:
        for name, length in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.String(length=length), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("wms_warehouses", schema=None) as batch_op:
        for name, _ in reversed(COLUMNS):
            batch_op.drop_column(name)
