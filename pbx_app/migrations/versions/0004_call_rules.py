"""Call rules (issue 13): users <-> extensions, per-extension rules, ring groups, caller ID and
CLIR, opening hours and holiday state of a location

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10 07:00:00

Every lookup a routing decision makes is indexed: rules by (extension_id, position), members by
(group_id, position), groups and extensions by primary key. The indexes on the referencing
columns (target_extension_id, ...) keep deleting an extension or a group from scanning.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _fk(table: str, column: str, referred: str, ondelete: str | None = None) -> sa.Constraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{referred}.id"],
        name=op.f(f"fk_{table}_{column}_{referred}"),
        ondelete=ondelete,
    )


def upgrade() -> None:
    # Plain ADD/DROP COLUMN on both backends (SQLite >= 3.35): a batch copy of extensions
    # would break the kamailio_subscriber view over it.
    op.add_column("customers", sa.Column("default_caller_id", sa.String(length=16)))
    op.add_column("locations", sa.Column("opening_hours", sa.Text()))
    op.add_column("locations", sa.Column("state", sa.String(length=2)))
    op.add_column("extensions", sa.Column("caller_id", sa.String(length=16)))
    op.add_column(
        "extensions", sa.Column("clir", sa.Boolean(), nullable=False, server_default=sa.false())
    )

    op.create_table(
        "user_extensions",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("extension_id", sa.Integer(), nullable=False),
        _fk("user_extensions", "user_id", "users", "CASCADE"),
        _fk("user_extensions", "extension_id", "extensions", "CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "extension_id", name=op.f("pk_user_extensions")),
    )
    op.create_index("ix_user_extensions_extension", "user_extensions", ["extension_id"])

    op.create_table(
        "ring_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("strategy", sa.String(length=12), nullable=False),
        sa.Column("member_timeout_s", sa.Integer(), nullable=False),
        sa.Column("final_kind", sa.String(length=10), nullable=False),
        sa.Column("final_value", sa.String(length=16), nullable=True),
        sa.Column("final_extension_id", sa.Integer(), nullable=True),
        sa.Column("final_group_id", sa.Integer(), nullable=True),
        sa.Column("rr_next", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        _fk("ring_groups", "customer_id", "customers", "CASCADE"),
        _fk("ring_groups", "final_extension_id", "extensions", "SET NULL"),
        _fk("ring_groups", "final_group_id", "ring_groups"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ring_groups")),
        sa.UniqueConstraint("customer_id", "name", name="uq_ring_groups_customer_name"),
    )
    op.create_index("ix_ring_groups_final_extension", "ring_groups", ["final_extension_id"])
    op.create_index("ix_ring_groups_final_group", "ring_groups", ["final_group_id"])

    op.create_table(
        "ring_group_members",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("extension_id", sa.Integer(), nullable=False),
        _fk("ring_group_members", "group_id", "ring_groups", "CASCADE"),
        _fk("ring_group_members", "extension_id", "extensions", "CASCADE"),
        sa.PrimaryKeyConstraint("group_id", "position", name=op.f("pk_ring_group_members")),
        sa.UniqueConstraint(
            "group_id", "extension_id", name="uq_ring_group_members_group_extension"
        ),
    )
    op.create_index("ix_ring_group_members_extension", "ring_group_members", ["extension_id"])

    op.create_table(
        "call_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("extension_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("match", sa.String(length=20), nullable=True),
        sa.Column("timeout_s", sa.Integer(), nullable=True),
        sa.Column("target_kind", sa.String(length=10), nullable=False),
        sa.Column("target_value", sa.String(length=16), nullable=True),
        sa.Column("target_extension_id", sa.Integer(), nullable=True),
        sa.Column("target_group_id", sa.Integer(), nullable=True),
        _fk("call_rules", "extension_id", "extensions", "CASCADE"),
        _fk("call_rules", "target_extension_id", "extensions", "CASCADE"),
        _fk("call_rules", "target_group_id", "ring_groups"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_rules")),
        sa.UniqueConstraint("extension_id", "position", name="uq_call_rules_extension_position"),
    )
    op.create_index("ix_call_rules_target_extension", "call_rules", ["target_extension_id"])
    op.create_index("ix_call_rules_target_group", "call_rules", ["target_group_id"])


def downgrade() -> None:
    op.drop_table("call_rules")
    op.drop_table("ring_group_members")
    op.drop_table("ring_groups")
    op.drop_table("user_extensions")
    for table, column in _ADDED_COLUMNS:
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")


_ADDED_COLUMNS = (
    ("extensions", "clir"),
    ("extensions", "caller_id"),
    ("locations", "state"),
    ("locations", "opening_hours"),
    ("customers", "default_caller_id"),
)
