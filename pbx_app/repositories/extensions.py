"""SQL for extensions, including the bulk path (COPY on PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, RowMapping, delete, exists, func, select, update

from pbx_app.schema import extensions

_COPY_COLUMNS = (
    "customer_id",
    "location_id",
    "number",
    "display_name",
    "geo_number",
    "device_count",
    "created_at",
    "business_option",
)


def insert(conn: Connection, values: dict[str, Any]) -> int:
    return int(conn.execute(extensions.insert().values(**values)).inserted_primary_key[0])


def insert_many(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Writes all rows in the caller's transaction; COPY on PostgreSQL (the 249,000-row path)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        assert raw is not None
        statement = f"COPY extensions ({', '.join(_COPY_COLUMNS)}) FROM STDIN"
        with raw.cursor() as cur, cur.copy(statement) as copy:
            for row in rows:
                copy.write_row(tuple(row[c] for c in _COPY_COLUMNS))
        return
    conn.execute(extensions.insert(), rows)


def get(
    conn: Connection, customer_id: int, extension_id: int, *, for_update: bool = False
) -> RowMapping | None:
    q = select(extensions).where(
        extensions.c.customer_id == customer_id, extensions.c.id == extension_id
    )
    if for_update:
        q = q.with_for_update()
    return conn.execute(q).mappings().first()


def get_by_number(
    conn: Connection, customer_id: int, number: str, *, for_update: bool = False
) -> RowMapping | None:
    q = select(extensions).where(
        extensions.c.customer_id == customer_id, extensions.c.number == number
    )
    if for_update:
        q = q.with_for_update()
    return conn.execute(q).mappings().first()


def number_exists(conn: Connection, customer_id: int, number: str) -> bool:
    q = select(
        exists().where(extensions.c.customer_id == customer_id, extensions.c.number == number)
    )
    return bool(conn.execute(q).scalar())


def geo_number_exists(conn: Connection, geo_number: str) -> bool:
    return bool(
        conn.execute(select(exists().where(extensions.c.geo_number == geo_number))).scalar()
    )


def numbers_of_customer(conn: Connection, customer_id: int) -> set[str]:
    q = select(extensions.c.number).where(extensions.c.customer_id == customer_id)
    return set(conn.execute(q).scalars())


def geo_numbers_of_customer(conn: Connection, customer_id: int) -> set[str]:
    q = select(extensions.c.geo_number).where(
        extensions.c.customer_id == customer_id, extensions.c.geo_number.is_not(None)
    )
    return set(conn.execute(q).scalars())


def clear_geo_numbers_under(conn: Connection, customer_id: int, prefix: str) -> list[str]:
    """Takes the explicit numbers inside a holding (a head number and the block it heads) from
    the customer's extensions; returns the numbers taken, sorted."""
    inside = (extensions.c.customer_id == customer_id) & extensions.c.geo_number.startswith(
        prefix, autoescape=True
    )
    taken = sorted(conn.execute(select(extensions.c.geo_number).where(inside)).scalars())
    if taken:
        conn.execute(update(extensions).where(inside).values(geo_number=None))
    return taken


def list_for_customer(
    conn: Connection, customer_id: int, limit: int, offset: int
) -> list[RowMapping]:
    q = (
        select(extensions)
        .where(extensions.c.customer_id == customer_id)
        .order_by(extensions.c.id)
        .limit(limit)
        .offset(offset)
    )
    return list(conn.execute(q).mappings())


def update_fields(conn: Connection, extension_id: int, values: dict[str, Any]) -> None:
    conn.execute(update(extensions).where(extensions.c.id == extension_id).values(**values))


def add_device_count(conn: Connection, extension_id: int, delta: int) -> None:
    conn.execute(
        update(extensions)
        .where(extensions.c.id == extension_id)
        .values(device_count=extensions.c.device_count + delta)
    )


def set_business_option_all(conn: Connection, customer_id: int, value: bool) -> None:
    conn.execute(
        update(extensions)
        .where(extensions.c.customer_id == customer_id)
        .values(business_option=value)
    )


def max_device_count(conn: Connection, customer_id: int) -> int:
    q = select(func.coalesce(func.max(extensions.c.device_count), 0)).where(
        extensions.c.customer_id == customer_id
    )
    return int(conn.execute(q).scalar_one())


def delete_one(conn: Connection, extension_id: int) -> None:
    conn.execute(delete(extensions).where(extensions.c.id == extension_id))


def id_by_number(conn: Connection, customer_id: int, number: str) -> int:
    q = select(extensions.c.id).where(
        extensions.c.customer_id == customer_id, extensions.c.number == number
    )
    return int(conn.execute(q).scalar_one())
