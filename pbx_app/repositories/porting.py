"""SQL for porting requests (R12) and their audit trail."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, or_, select, update

from pbx_app.db import is_postgresql
from pbx_app.schema import porting_events, porting_requests


def insert(conn: Connection, values: dict[str, Any]) -> int:
    return int(conn.execute(porting_requests.insert().values(**values)).inserted_primary_key[0])


def get(
    conn: Connection, customer_id: int, request_id: int, *, for_update: bool = False
) -> RowMapping | None:
    q = select(porting_requests).where(
        porting_requests.c.customer_id == customer_id, porting_requests.c.id == request_id
    )
    if for_update:
        q = q.with_for_update()
    return conn.execute(q).mappings().first()


def get_any(conn: Connection, request_id: int, *, for_update: bool = False) -> RowMapping | None:
    q = select(porting_requests).where(porting_requests.c.id == request_id)
    if for_update:
        q = q.with_for_update()
    return conn.execute(q).mappings().first()


def next_due(conn: Connection, today: date, now: datetime) -> RowMapping | None:
    """The oldest confirmed request whose date is ``today`` or earlier and that does not wait
    for a retry, locked; on PostgreSQL a request another node is completing is skipped, never
    waited for (SQLite: the caller's transaction holds the write lock already)."""
    q = (
        select(porting_requests)
        .where(
            porting_requests.c.state == "confirmed",
            porting_requests.c.requested_date <= today,
            or_(
                porting_requests.c.next_attempt_at.is_(None),
                porting_requests.c.next_attempt_at <= now,
            ),
        )
        .order_by(porting_requests.c.requested_date, porting_requests.c.id)
        .limit(1)
    )
    if is_postgresql(conn):
        q = q.with_for_update(skip_locked=True)
    return conn.execute(q).mappings().first()


def update_state(
    conn: Connection, request_id: int, from_state: str, values: dict[str, Any]
) -> bool:
    """Changes the request only if it is still in ``from_state``; whether it did."""
    result = conn.execute(
        update(porting_requests)
        .where(porting_requests.c.id == request_id, porting_requests.c.state == from_state)
        .values(**values)
    )
    return result.rowcount == 1


def list_for_customer(conn: Connection, customer_id: int) -> list[RowMapping]:
    q = (
        select(porting_requests)
        .where(porting_requests.c.customer_id == customer_id)
        .order_by(porting_requests.c.id)
    )
    return list(conn.execute(q).mappings())


def update_fields(conn: Connection, request_id: int, values: dict[str, Any]) -> None:
    conn.execute(
        update(porting_requests).where(porting_requests.c.id == request_id).values(**values)
    )


def insert_event(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(porting_events.insert().values(**values))


def events(conn: Connection, request_id: int) -> list[RowMapping]:
    q = (
        select(porting_events)
        .where(porting_events.c.porting_request_id == request_id)
        .order_by(porting_events.c.id)
    )
    return list(conn.execute(q).mappings())
