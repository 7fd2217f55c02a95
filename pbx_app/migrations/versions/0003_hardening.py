"""Number ownership enforced by the database (no number or block may overlap another), login
throttling shared by all app nodes, the login audit trail, the mail outbox

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# A head number covers every number it is a prefix of (a block of 100 at +4930777 covers
# +493077700..+493077799, and the head itself). Two holdings overlap when one number is a prefix
# of the other; padded to 15 digits (E.164's maximum) a number is a closed range of integers,
# [digits + 0..., digits + 9...], and "one is a prefix of the other" is "the ranges overlap".
# PostgreSQL: an exclusion constraint on that range, race-free across concurrent bookings.
_PG_RANGE_FUNCTION = """
CREATE FUNCTION pbx_number_range(number text) RETURNS int8range
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN int8range(CAST(rpad(substr(number, 2), 15, '0') AS bigint),
                 CAST(rpad(substr(number, 2), 15, '9') AS bigint), '[]')
"""
_PG_EXCLUSION = (
    "ALTER TABLE head_numbers ADD CONSTRAINT ex_head_numbers_number_overlap "
    "EXCLUDE USING gist (pbx_number_range(number) WITH &&)"
)
# SQLite has no exclusion constraints; a trigger does the same (every write transaction there
# holds the database's single write lock, so the check cannot race). Both lookups use the
# unique index on number: the new number's prefixes (8-16 characters: +49 and 5-13 digits),
# then the numbers that start with it (':' sorts right after '9').
_SQLITE_PREFIXES = ", ".join(f"substr(NEW.number, 1, {n})" for n in range(8, 17))
_SQLITE_TRIGGER = """
CREATE TRIGGER {name} BEFORE {event} ON head_numbers
WHEN EXISTS (
  SELECT 1 FROM head_numbers h
  WHERE h.id IS NOT NEW.id
    AND (h.number IN ({prefixes}) OR (h.number > NEW.number AND h.number < NEW.number || ':'))
)
BEGIN
  SELECT RAISE(ABORT, 'ex_head_numbers_number_overlap');
END
"""
_SQLITE_TRIGGERS = {
    "tr_head_numbers_overlap_insert": "INSERT",
    "tr_head_numbers_overlap_update": "UPDATE OF number",
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(_PG_RANGE_FUNCTION)
        op.execute(_PG_EXCLUSION)
    else:
        for name, event in _SQLITE_TRIGGERS.items():
            op.execute(_SQLITE_TRIGGER.format(name=name, event=event, prefixes=_SQLITE_PREFIXES))

    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(), nullable=False),
        sa.Column("blocked_until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_throttle")),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_audit_events_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_audit_events_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_customer_at", "audit_events", ["customer_id", "at"])
    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=False),
        sa.Column("failed_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outbox")),
    )
    op.create_index("ix_mail_outbox_next_attempt_at", "mail_outbox", ["next_attempt_at"])


def downgrade() -> None:
    op.drop_table("mail_outbox")
    op.drop_table("audit_events")
    op.drop_table("login_throttle")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE head_numbers DROP CONSTRAINT ex_head_numbers_number_overlap")
        op.execute("DROP FUNCTION pbx_number_range(text)")
    else:
        for name in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
