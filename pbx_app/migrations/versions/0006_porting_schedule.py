"""Porting completes on its date: what each ported number becomes (porting_requests.targets),
the scheduler's retry after a failed completion (next_attempt_at, last_error), and ported
numbers in the audit trail (audit_events.detail)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-09 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("porting_requests", schema=None) as batch_op:
        # JSON: number -> {"extension": str | null, "block_size": int, "donor": int | null}
        # (pbx_app.services.porting.Target). Requests made before this migration have "{}": each
        # number is then a single number from another carrier, rung by no extension.
        batch_op.add_column(
            sa.Column("targets", sa.Text(), nullable=False, server_default=sa.text("'{}'"))
        )
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "last_error", sa.String(length=300), nullable=False, server_default=sa.text("''")
            )
        )
    # The scheduler's question on every node, every poll: confirmed requests that are due.
    op.create_index(
        "ix_porting_requests_state_requested_date",
        "porting_requests",
        ["state", "requested_date"],
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("detail", sa.String(length=500), nullable=False, server_default=sa.text("''"))
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_column("detail")
    op.drop_index("ix_porting_requests_state_requested_date", table_name="porting_requests")
    with op.batch_alter_table("porting_requests", schema=None) as batch_op:
        batch_op.drop_column("last_error")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("targets")
