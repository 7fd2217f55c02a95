"""eFax: a fax number may have the media relay turn callers' G.711 into T.38 for the gateway.

Revision ID: 0013
Revises: 0012
Create Date: 2027-01-19 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "fax_numbers",
        sa.Column("relay_t38", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("fax_numbers") as batch:
        batch.drop_column("relay_t38")
