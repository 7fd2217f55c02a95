"""SQL for the audit trail (logins and failed logins, per customer)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, RowMapping, select

from pbx_app.schema import audit_events


def insert(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(audit_events.insert().values(**values))


def list_for_customer(
    conn: Connection, customer_id: int | None, limit: int, offset: int
) -> list[RowMapping]:
    """Newest first; customer_id None: the events of no customer (operators, unknown e-mails)."""
    where = (
        audit_events.c.customer_id.is_(None)
        if customer_id is None
        else audit_events.c.customer_id == customer_id
    )
    q = (
        select(audit_events)
        .where(where)
        .order_by(audit_events.c.at.desc(), audit_events.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(conn.execute(q).mappings())
