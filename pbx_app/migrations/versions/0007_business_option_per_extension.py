"""The Business Option booked per extension (extensions.business_option, backfilled from the
customer's former switch); browser phones as devices of one user (devices.kind, user_id); the
kamailio_subscriber view takes the contact limit from the extension and exposes the option

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-12 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Frozen copy of pbx_app.subscriber_view.select_sql at this migration (see its docstring).
_VIEW_SELECT = """
SELECT d.id AS id,
       d.sip_username AS username,
       d.realm AS domain,
       CAST('' AS VARCHAR(64)) AS password,
       d.ha1 AS ha1,
       d.ha1b AS ha1b,
       'c' || CAST(e.customer_id AS VARCHAR(12)) || 'x' || e.number AS aor,
       CASE WHEN e.business_option THEN 3 ELSE 1 END AS max_contacts,
       d.customer_id AS customer_id,
       c.srtp_required AS srtp_required,
       e.business_option AS business_option
FROM devices d
JOIN extensions e ON e.id = d.extension_id
JOIN customers c ON c.id = d.customer_id
WHERE c.trial_ends_at IS NULL OR c.trial_ends_at > {now}
"""
_PREVIOUS_VIEW_SELECT = """
SELECT d.id AS id,
       d.sip_username AS username,
       d.realm AS domain,
       CAST('' AS VARCHAR(64)) AS password,
       d.ha1 AS ha1,
       d.ha1b AS ha1b,
       'c' || CAST(e.customer_id AS VARCHAR(12)) || 'x' || e.number AS aor,
       CASE WHEN c.business_option THEN 3 ELSE 1 END AS max_contacts,
       d.customer_id AS customer_id,
       c.srtp_required AS srtp_required
FROM devices d
JOIN extensions e ON e.id = d.extension_id
JOIN customers c ON c.id = d.customer_id
WHERE c.trial_ends_at IS NULL OR c.trial_ends_at > {now}
"""
_NOW = {
    "postgresql": "(now() AT TIME ZONE 'UTC')",
    "sqlite": "strftime('%Y-%m-%d %H:%M:%f', 'now')",
}
_GRANT_KAMAILIO = """
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'kamailio') THEN
    GRANT SELECT ON kamailio_subscriber TO kamailio;
  END IF;
END
$$;
"""


def view_select(dialect: str) -> str:
    """This migration's view on ``dialect`` (tests/app/test_routing.py compares it with
    pbx_app.subscriber_view.select_sql)."""
    return _VIEW_SELECT.format(now=_NOW.get(dialect, "CURRENT_TIMESTAMP"))


def _recreate_view(select: str) -> None:
    dialect = op.get_bind().dialect.name
    op.execute("DROP VIEW kamailio_subscriber")
    op.execute("CREATE VIEW kamailio_subscriber AS " + select)
    if dialect == "postgresql":
        op.execute(_GRANT_KAMAILIO)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    # Plain ADD COLUMN on both backends: a batch copy would break the view over these tables.
    op.add_column(
        "extensions",
        sa.Column("business_option", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    # A customer that had the option had it for every extension: nobody loses a device.
    op.execute(
        "UPDATE extensions SET business_option = TRUE WHERE customer_id IN "
        "(SELECT id FROM customers WHERE business_option)"
    )
    op.add_column(
        "devices",
        sa.Column("kind", sa.String(length=16), nullable=False, server_default="phone"),
    )
    if dialect == "sqlite":
        # SQLite adds a column with a foreign key only as plain SQL (alembic would want a batch
        # copy of the table, which the view over it forbids).
        op.execute(
            "ALTER TABLE devices ADD COLUMN user_id INTEGER "
            "CONSTRAINT fk_devices_user_id_users REFERENCES users (id) ON DELETE CASCADE"
        )
    else:
        op.add_column("devices", sa.Column("user_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            op.f("fk_devices_user_id_users"),
            "devices",
            "users",
            ["user_id"],
            ["id"],
            ondelete="CASCADE",
        )
    op.create_index(
        "uq_devices_user_extension", "devices", ["user_id", "extension_id"], unique=True
    )
    _recreate_view(view_select(dialect))


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    _recreate_view(_PREVIOUS_VIEW_SELECT.format(now=_NOW.get(dialect, "CURRENT_TIMESTAMP")))
    op.drop_index("uq_devices_user_extension", table_name="devices")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_constraint("fk_devices_user_id_users", type_="foreignkey")
        batch_op.drop_column("user_id")
        batch_op.drop_column("kind")
    op.drop_column("extensions", "business_option")
