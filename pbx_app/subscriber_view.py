"""The ``kamailio_subscriber`` view (Kamailio's auth_db table) rendered from the Python rules.

Kamailio reads a device's credentials and, with them, four product rules: the extension's
address of record (pbx_app.addressing.aor), its contact limit (the device limit,
pbx_app.limits.max_devices_per_extension, R4), whether the extension has the Business Option
(browser registrations over WSS need it, R4) and whether the customer's trial has ended
(pbx_app.services.access.trial_expired, R19: a device of an ended trial has no row). The
trial's end is a column too: a proxy caches a device's row no longer than its trial runs.

``select_sql`` renders the view's SELECT from those definitions. Migrations are frozen history,
so a migration never calls it: the migration that (re)creates the view (today 0008) holds the
SQL as it was written, behind its own ``view_select(dialect)``. tests/app/test_routing.py fails
when the newest such migration and this function disagree (a rule changed: write the next
migration with the SQL the test prints) and when the view of a freshly migrated database
disagrees with the Python rules.
"""

from __future__ import annotations

from pbx_app.addressing import AOR_PREFIX, AOR_SEPARATOR
from pbx_app.limits import max_devices_per_extension

VIEW = "kamailio_subscriber"

# The current time as the tables store it: naive UTC (pbx_app.db.utcnow).
NOW_SQL = {
    "postgresql": "(now() AT TIME ZONE 'UTC')",
    "sqlite": "strftime('%Y-%m-%d %H:%M:%f', 'now')",
}
DIALECTS = tuple(NOW_SQL)


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def aor_sql(customer_id: str, extension_number: str) -> str:
    """pbx_app.addressing.aor as an SQL expression over two columns."""
    return (
        f"{_text(AOR_PREFIX)} || CAST({customer_id} AS VARCHAR(12)) || "
        f"{_text(AOR_SEPARATOR)} || {extension_number}"
    )


def max_contacts_sql(business_option: str) -> str:
    """pbx_app.limits.max_devices_per_extension as an SQL expression over the option column."""
    return (
        f"CASE WHEN {business_option} THEN {max_devices_per_extension(business_option=True)} "
        f"ELSE {max_devices_per_extension(business_option=False)} END"
    )


def trial_running_sql(trial_ends_at: str, now: str) -> str:
    """The negation of pbx_app.services.access.trial_expired: no trial, or it ends after now."""
    return f"{trial_ends_at} IS NULL OR {trial_ends_at} > {now}"


def select_sql(dialect: str) -> str:
    """The view's SELECT on ``dialect`` (postgresql, sqlite)."""
    # S608: every part is this module's own text or a rule's number, never input.
    return f"""
SELECT d.id AS id,
       d.sip_username AS username,
       d.realm AS domain,
       CAST('' AS VARCHAR(64)) AS password,
       d.ha1 AS ha1,
       d.ha1b AS ha1b,
       {aor_sql("e.customer_id", "e.number")} AS aor,
       {max_contacts_sql("e.business_option")} AS max_contacts,
       d.customer_id AS customer_id,
       c.srtp_required AS srtp_required,
       e.business_option AS business_option,
       c.trial_ends_at AS trial_ends_at
FROM devices d
JOIN extensions e ON e.id = d.extension_id
JOIN customers c ON c.id = d.customer_id
WHERE {trial_running_sql("c.trial_ends_at", NOW_SQL[dialect])}
"""  # noqa: S608
