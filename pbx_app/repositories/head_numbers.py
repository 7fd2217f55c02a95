"""SQL for head numbers (Kopfnummern)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, RowMapping, delete, exists, select

from pbx_app.schema import extensions, head_numbers


def insert(conn: Connection, values: dict[str, Any]) -> int:
    return int(conn.execute(head_numbers.insert().values(**values)).inserted_primary_key[0])


def insert_many(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(head_numbers.insert(), rows)


def get(conn: Connection, customer_id: int, head_number_id: int) -> RowMapping | None:
    q = select(head_numbers).where(
        head_numbers.c.customer_id == customer_id, head_numbers.c.id == head_number_id
    )
    return conn.execute(q).mappings().first()


def number_exists(conn: Connection, number: str) -> bool:
    return bool(conn.execute(select(exists().where(head_numbers.c.number == number))).scalar())


def list_for_customer(
    conn: Connection, customer_id: int, limit: int | None = None, offset: int = 0
) -> list[RowMapping]:
    q = (
        select(head_numbers)
        .where(head_numbers.c.customer_id == customer_id)
        .order_by(head_numbers.c.id)
        .offset(offset)
    )
    if limit is not None:
        q = q.limit(limit)
    return list(conn.execute(q).mappings())


def has_extensions(conn: Connection, head: RowMapping) -> bool:
    q = select(
        exists().where(
            extensions.c.customer_id == head["customer_id"],
            extensions.c.geo_number.startswith(head["number"], autoescape=True),
        )
    )
    return bool(conn.execute(q).scalar())


def delete_one(conn: Connection, head_number_id: int) -> None:
    conn.execute(delete(head_numbers).where(head_numbers.c.id == head_number_id))
