"""SQL for browser phones: the one device (kind "browser") of a user on an extension."""

from __future__ import annotations

from sqlalchemy import Connection, RowMapping, delete, select

from pbx_app.schema import devices

BROWSER = "browser"


def get(conn: Connection, user_id: int, extension_id: int) -> RowMapping | None:
    q = select(devices).where(
        devices.c.user_id == user_id,
        devices.c.extension_id == extension_id,
        devices.c.kind == BROWSER,
    )
    return conn.execute(q).mappings().first()


def extension_ids_of_user(conn: Connection, user_id: int) -> list[int]:
    q = select(devices.c.extension_id).where(
        devices.c.user_id == user_id, devices.c.kind == BROWSER
    )
    return list(conn.execute(q).scalars())


def delete_of_user(conn: Connection, user_id: int, extension_ids: list[int]) -> None:
    conn.execute(
        delete(devices).where(
            devices.c.user_id == user_id,
            devices.c.kind == BROWSER,
            devices.c.extension_id.in_(extension_ids),
        )
    )
