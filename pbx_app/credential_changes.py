"""The credential change log (table credential_changes, migration 0008): PostgreSQL triggers
write the username of every device whose kamailio_subscriber row changed; each proxy polls it
every second and drops those devices from its credential cache (kamailio.cfg
route[CRED_POLL]). A proxy needs only the changes since its last poll (a restarted proxy starts
with an empty cache), so an hour is plenty; the porting scheduler's rounds, on every app node,
prune the rest (``prune``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete

from pbx_app.db import Database
from pbx_app.schema import credential_changes

KEEP = timedelta(hours=1)


def prune(db: Database, now: datetime, keep: timedelta = KEEP) -> int:
    """Deletes the changes older than ``keep`` (``now``: naive UTC); returns how many."""
    with db.transaction() as conn:
        result = conn.execute(
            delete(credential_changes).where(credential_changes.c.changed_at < now - keep)
        )
    return int(result.rowcount or 0)
