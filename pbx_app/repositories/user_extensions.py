"""SQL for the users <-> extensions links (which extensions' call rules a user manages)."""

from __future__ import annotations

from sqlalchemy import Connection, delete, exists, select

from pbx_app.schema import extensions, user_extensions


def extension_ids(conn: Connection, user_id: int) -> list[int]:
    q = (
        select(user_extensions.c.extension_id)
        .where(user_extensions.c.user_id == user_id)
        .order_by(user_extensions.c.extension_id)
    )
    return [int(i) for i in conn.execute(q).scalars()]


def replace(conn: Connection, user_id: int, extension_ids: list[int]) -> None:
    conn.execute(delete(user_extensions).where(user_extensions.c.user_id == user_id))
    if extension_ids:
        rows = [{"user_id": user_id, "extension_id": e} for e in extension_ids]
        conn.execute(user_extensions.insert(), rows)


def linked(conn: Connection, user_id: int, extension_id: int) -> bool:
    q = select(
        exists().where(
            user_extensions.c.user_id == user_id, user_extensions.c.extension_id == extension_id
        )
    )
    return bool(conn.execute(q).scalar())


def existing_extensions(conn: Connection, customer_id: int, ids: list[int]) -> set[int]:
    """Those of ``ids`` that are extensions of the customer (primary key lookups)."""
    if not ids:
        return set()
    q = select(extensions.c.id).where(
        extensions.c.id.in_(ids), extensions.c.customer_id == customer_id
    )
    return {int(i) for i in conn.execute(q).scalars()}
