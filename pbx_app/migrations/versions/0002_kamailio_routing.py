"""customers.srtp_required; kamailio_subscriber with aor, max_contacts, customer_id,
srtp_required (active devices of non-expired customers only); SELECT for role kamailio

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen copies of the rules at the time of this migration (pbx_app.limits, R4): the contact
# limit Kamailio enforces equals the device limit of an extension.
_VIEW_SELECT = """
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
# Timestamps are naive UTC in every table (pbx_app.db.utcnow).
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

_OLD_VIEW = (
    "CREATE VIEW kamailio_subscriber AS SELECT d.id AS id, d.sip_username AS username, "
    "d.realm AS domain, '' AS password, d.ha1 AS ha1, d.ha1b AS ha1b FROM devices d"
)


def view_select(dialect: str) -> str:
    """This migration's view on ``dialect``; tests/app/test_routing.py compares it with what
    pbx_app.subscriber_view renders from the rules today (a later migration that recreates the
    view defines its own view_select)."""
    return _VIEW_SELECT.format(now=_NOW.get(dialect, "CURRENT_TIMESTAMP"))


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("srtp_required", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute("DROP VIEW kamailio_subscriber")
    op.execute("CREATE VIEW kamailio_subscriber AS " + view_select(dialect))
    if dialect == "postgresql":
        op.execute(_GRANT_KAMAILIO)


def downgrade() -> None:
    op.execute("DROP VIEW kamailio_subscriber")
    op.execute(_OLD_VIEW)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_GRANT_KAMAILIO)
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("srtp_required")
