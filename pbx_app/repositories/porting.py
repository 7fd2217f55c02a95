"""SQL for porting requests (R12) and their audit trail."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, RowMapping, select, update

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
