"""SQL for locations."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, RowMapping, delete, exists, select, update

from pbx_app.schema import extensions, head_numbers, locations, porting_requests


def insert(conn: Connection, values: dict[str, Any]) -> int:
    return int(conn.execute(locations.insert().values(**values)).inserted_primary_key[0])


def get(conn: Connection, customer_id: int, location_id: int) -> RowMapping | None:
    q = select(locations).where(
        locations.c.customer_id == customer_id, locations.c.id == location_id
    )
    return conn.execute(q).mappings().first()


def get_by_name(conn: Connection, customer_id: int, name: str) -> RowMapping | None:
    q = select(locations).where(locations.c.customer_id == customer_id, locations.c.name == name)
    return conn.execute(q).mappings().first()


def list_for_customer(conn: Connection, customer_id: int) -> list[RowMapping]:
    q = select(locations).where(locations.c.customer_id == customer_id).order_by(locations.c.id)
    return list(conn.execute(q).mappings())


def update_fields(conn: Connection, location_id: int, values: dict[str, Any]) -> None:
    conn.execute(update(locations).where(locations.c.id == location_id).values(**values))


def is_referenced(conn: Connection, location_id: int) -> bool:
    q = select(
        exists().where(extensions.c.location_id == location_id)
        | exists().where(head_numbers.c.location_id == location_id)
        | exists().where(porting_requests.c.location_id == location_id)
    )
    return bool(conn.execute(q).scalar())


def delete_one(conn: Connection, location_id: int) -> None:
    conn.execute(delete(locations).where(locations.c.id == location_id))
