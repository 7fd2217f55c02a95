"""kamailio_subscriber as rendered from the Python rules (pbx_app.subscriber_view.select_sql)

The SQL below is what pbx_app.subscriber_view.select_sql rendered when this migration was
written (the AOR of pbx_app.addressing, the device limit of pbx_app.limits, the trial rule of
pbx_app.services.access), frozen here like every migration. It equals 0002's view; from here on
tests/app/test_routing.py compares the newest migration's VIEW_SELECT with the function,
so a changed rule fails the tests until a migration recreates the view with the new SQL.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-09 07:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# select_sql(dialect) at the time of writing: the template with the dialect's naive-UTC now.
VIEW_SELECT = """
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
NOW = {
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
    return VIEW_SELECT.format(now=NOW[dialect])


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute("DROP VIEW kamailio_subscriber")
    op.execute("CREATE VIEW kamailio_subscriber AS " + view_select(dialect))
    if dialect == "postgresql":
        op.execute(_GRANT_KAMAILIO)


def downgrade() -> None:
    # 0003's view (created by 0002) is the same SQL: nothing to undo.
    pass
