"""Call records (CDRs): one row per call, written by the proxy where the call entered the
platform and delivered by its node's spool shipper; idempotent on (node, call_id, from_tag,
started_at)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-09 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "call_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("call_id", sa.String(length=255), nullable=False),
        sa.Column("from_tag", sa.String(length=128), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("callee_customer_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("caller", sa.String(length=128), nullable=False),
        sa.Column("caller_id", sa.String(length=64), nullable=False),
        sa.Column("dialled", sa.String(length=128), nullable=False),
        sa.Column("resolved", sa.String(length=512), nullable=False),
        sa.Column("answered_by", sa.String(length=256), nullable=False),
        sa.Column("diversions", sa.Integer(), nullable=False),
        sa.Column("relay", sa.String(length=64), nullable=False),
        sa.Column("sip_code", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=128), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_records")),
        sa.UniqueConstraint(
            "node", "call_id", "from_tag", "started_at", name="uq_call_records_identity"
        ),
    )
    op.create_index(
        "ix_call_records_customer_started", "call_records", ["customer_id", "started_at"]
    )
    op.create_index(
        "ix_call_records_callee_customer_started",
        "call_records",
        ["callee_customer_id", "started_at"],
    )
    op.create_index("ix_call_records_started", "call_records", ["started_at"])


def downgrade() -> None:
    op.drop_table("call_records")
