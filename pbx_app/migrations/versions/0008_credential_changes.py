"""credential_changes: a log of the device usernames whose kamailio_subscriber row changed,
written by PostgreSQL triggers, so the proxies can cache credentials and drop exactly the
changed ones (kamailio.cfg route[CRED_POLL]); the view exposes trial_ends_at, so a proxy caches
a trial customer's device no longer than its trial runs. SELECT on the log for role kamailio.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-20 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
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
       e.business_option AS business_option,
       c.trial_ends_at AS trial_ends_at
FROM devices d
JOIN extensions e ON e.id = d.extension_id
JOIN customers c ON c.id = d.customer_id
WHERE c.trial_ends_at IS NULL OR c.trial_ends_at > {now}
"""
# 0007's view.
_PREVIOUS_VIEW_SELECT = """
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
_NOW = {
    "postgresql": "(now() AT TIME ZONE 'UTC')",
    "sqlite": "strftime('%Y-%m-%d %H:%M:%f', 'now')",
}
_GRANT_KAMAILIO = """
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'kamailio') THEN
    GRANT SELECT ON kamailio_subscriber TO kamailio;
    GRANT SELECT ON credential_changes TO kamailio;
  END IF;
END
$$;
"""
_GRANT_KAMAILIO_VIEW = """
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'kamailio') THEN
    GRANT SELECT ON kamailio_subscriber TO kamailio;
  END IF;
END
$$;
"""

# Every change of a row the view is built from logs the usernames of the devices whose view row
# changed (or went, or came). tx is the writing transaction's id: the proxies poll by it, not
# by seq, because sequence numbers are taken in one order and committed in another (a poller
# that remembered the highest seq it saw would skip a smaller one committed later). Columns
# the view does not read (a device's name, MAC, model; an extension's name...) log nothing.
_TRIGGERS = """
CREATE FUNCTION pbx_credential_changed_device() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    INSERT INTO credential_changes (username) VALUES (OLD.sip_username);
  END IF;
  IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.sip_username <> OLD.sip_username) THEN
    INSERT INTO credential_changes (username) VALUES (NEW.sip_username);
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER credential_changed_device_row
  AFTER INSERT OR DELETE ON devices
  FOR EACH ROW EXECUTE FUNCTION pbx_credential_changed_device();
CREATE TRIGGER credential_changed_device_update
  AFTER UPDATE OF sip_username, realm, ha1, ha1b, customer_id, extension_id ON devices
  FOR EACH ROW
  WHEN ((OLD.sip_username, OLD.realm, OLD.ha1, OLD.ha1b, OLD.customer_id, OLD.extension_id)
        IS DISTINCT FROM
        (NEW.sip_username, NEW.realm, NEW.ha1, NEW.ha1b, NEW.customer_id, NEW.extension_id))
  EXECUTE FUNCTION pbx_credential_changed_device();

CREATE FUNCTION pbx_credential_changed_extension() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO credential_changes (username)
    SELECT d.sip_username FROM devices d WHERE d.extension_id = NEW.id;
  RETURN NULL;
END
$$;
CREATE TRIGGER credential_changed_extension
  AFTER UPDATE OF customer_id, number, business_option ON extensions
  FOR EACH ROW
  WHEN ((OLD.customer_id, OLD.number, OLD.business_option)
        IS DISTINCT FROM (NEW.customer_id, NEW.number, NEW.business_option))
  EXECUTE FUNCTION pbx_credential_changed_extension();

CREATE FUNCTION pbx_credential_changed_customer() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO credential_changes (username)
    SELECT d.sip_username FROM extensions e JOIN devices d ON d.extension_id = e.id
    WHERE e.customer_id = NEW.id;
  RETURN NULL;
END
$$;
CREATE TRIGGER credential_changed_customer
  AFTER UPDATE OF srtp_required, trial_ends_at ON customers
  FOR EACH ROW
  WHEN ((OLD.srtp_required, OLD.trial_ends_at)
        IS DISTINCT FROM (NEW.srtp_required, NEW.trial_ends_at))
  EXECUTE FUNCTION pbx_credential_changed_customer();
"""
_DROP_TRIGGERS = """
DROP TRIGGER credential_changed_customer ON customers;
DROP FUNCTION pbx_credential_changed_customer();
DROP TRIGGER credential_changed_extension ON extensions;
DROP FUNCTION pbx_credential_changed_extension();
DROP TRIGGER credential_changed_device_update ON devices;
DROP TRIGGER credential_changed_device_row ON devices;
DROP FUNCTION pbx_credential_changed_device();
"""


def view_select(dialect: str) -> str:
    """This migration's view on ``dialect`` (tests/app/test_routing.py compares it with
    pbx_app.subscriber_view.select_sql)."""
    return _VIEW_SELECT.format(now=_NOW.get(dialect, "CURRENT_TIMESTAMP"))


def _recreate_view(select: str) -> None:
    op.execute("DROP VIEW kamailio_subscriber")
    op.execute("CREATE VIEW kamailio_subscriber AS " + select)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    postgresql = dialect == "postgresql"
    op.create_table(
        "credential_changes",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("username", sa.String(length=64), nullable=False),
        # The writing transaction (pg_current_xact_id, 64 bits: never wraps).
        sa.Column(
            "tx",
            sa.BigInteger(),
            nullable=False,
            server_default=(
                sa.text("(pg_current_xact_id()::text::bigint)") if postgresql else sa.text("0")
            ),
        ),
        sa.Column(
            "changed_at",
            sa.DateTime(),
            nullable=False,
            server_default=sa.text(_NOW.get(dialect, "CURRENT_TIMESTAMP")),
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_credential_changes")),
    )
    op.create_index("ix_credential_changes_tx", "credential_changes", ["tx"])
    op.create_index("ix_credential_changes_changed_at", "credential_changes", ["changed_at"])
    _recreate_view(view_select(dialect))
    if postgresql:
        op.execute(_TRIGGERS)
        op.execute(_GRANT_KAMAILIO)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(_DROP_TRIGGERS)
    _recreate_view(_PREVIOUS_VIEW_SELECT.format(now=_NOW.get(dialect, "CURRENT_TIMESTAMP")))
    if dialect == "postgresql":
        op.execute(_GRANT_KAMAILIO_VIEW)
    op.drop_index("ix_credential_changes_changed_at", table_name="credential_changes")
    op.drop_index("ix_credential_changes_tx", table_name="credential_changes")
    op.drop_table("credential_changes")
