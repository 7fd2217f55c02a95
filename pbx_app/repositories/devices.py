"""SQL for devices (SIP credentials as HA1, provisioning data by MAC)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, RowMapping, delete, exists, select, update

from pbx_app.schema import devices, extensions


def insert(conn: Connection, values: dict[str, Any]) -> int:
    return int(conn.execute(devices.insert().values(**values)).inserted_primary_key[0])


def insert_many(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(devices.insert(), rows)


def get(conn: Connection, customer_id: int, device_id: int) -> RowMapping | None:
    q = select(devices).where(devices.c.customer_id == customer_id, devices.c.id == device_id)
    return conn.execute(q).mappings().first()


def get_by_mac(conn: Connection, mac: str) -> RowMapping | None:
    return conn.execute(select(devices).where(devices.c.mac == mac)).mappings().first()


def get_by_sip_username(conn: Connection, username: str) -> RowMapping | None:
    q = select(devices).where(devices.c.sip_username == username)
    return conn.execute(q).mappings().first()


def sip_username_exists(conn: Connection, username: str) -> bool:
    return bool(conn.execute(select(exists().where(devices.c.sip_username == username))).scalar())


def mac_exists(conn: Connection, mac: str) -> bool:
    return bool(conn.execute(select(exists().where(devices.c.mac == mac))).scalar())


def list_for_extension(conn: Connection, customer_id: int, extension_id: int) -> list[RowMapping]:
    q = (
        select(devices)
        .where(devices.c.customer_id == customer_id, devices.c.extension_id == extension_id)
        .order_by(devices.c.id)
    )
    return list(conn.execute(q).mappings())


def list_for_customer_with_extension(conn: Connection, customer_id: int) -> list[RowMapping]:
    q = (
        select(devices, extensions.c.number.label("extension_number"))
        .join(extensions, extensions.c.id == devices.c.extension_id)
        .where(devices.c.customer_id == customer_id)
        .order_by(devices.c.id)
    )
    return list(conn.execute(q).mappings())


def update_fields(conn: Connection, device_id: int, values: dict[str, Any]) -> None:
    conn.execute(update(devices).where(devices.c.id == device_id).values(**values))


def delete_one(conn: Connection, device_id: int) -> None:
    conn.execute(delete(devices).where(devices.c.id == device_id))
