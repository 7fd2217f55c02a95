"""SQL for call records: idempotent batch insert, per-customer and platform-wide listings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from pbx_app.db import is_postgresql
from pbx_app.schema import call_records

IDENTITY = ("node", "call_id", "from_tag", "started_at")
CHUNK = 250


@dataclass(frozen=True)
class Window:
    """started_at in [since, until): either end open when None."""

    since: datetime | None = None
    until: datetime | None = None


def insert_new(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Inserts the rows whose identity (node, call_id, from_tag, started_at) is not stored
    yet, in one statement; returns how many were new. A repeated delivery inserts nothing and
    raises nothing (ON CONFLICT DO NOTHING / INSERT OR IGNORE on the unique constraint)."""
    dialect = postgresql if is_postgresql(conn) else sqlite
    inserted = 0
    # Chunked: a statement's bound parameters stay far below either backend's limit.
    for first in range(0, len(rows), CHUNK):
        stmt = dialect.insert(call_records).values(list(rows[first : first + CHUNK]))
        stmt = stmt.on_conflict_do_nothing(index_elements=list(IDENTITY))
        # Counted from RETURNING: rowcount is not reliable for multi-row inserts on every driver.
        inserted += len(conn.execute(stmt.returning(call_records.c.id)).all())
    return inserted


def list_records(
    conn: Connection, customer_id: int | None, window: Window, limit: int, offset: int
) -> list[RowMapping]:
    """Newest first. customer_id: the records of that customer, as the tenant of the call or
    as the called customer; None: every record (operators)."""
    q = select(call_records)
    if customer_id is not None:
        q = q.where(
            or_(
                call_records.c.customer_id == customer_id,
                call_records.c.callee_customer_id == customer_id,
            )
        )
    if window.since is not None:
        q = q.where(call_records.c.started_at >= window.since)
    if window.until is not None:
        q = q.where(call_records.c.started_at < window.until)
    q = (
        q.order_by(call_records.c.started_at.desc(), call_records.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(conn.execute(q).mappings())
