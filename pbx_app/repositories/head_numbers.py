"""SQL for head numbers (Kopfnummern)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, RowMapping, delete, exists, or_, select
from sqlalchemy.exc import IntegrityError

from pbx_app import errors
from pbx_app.schema import extensions, head_numbers

# The database's own guard against overlapping holdings (migration 0003): an exclusion
# constraint on PostgreSQL, a trigger on SQLite. Both name it in their error.
OVERLAP_CONSTRAINT = "ex_head_numbers_number_overlap"
# A German E.164 number has 8 to 16 characters (+49, then 5 to 13 digits).
_SHORTEST_NUMBER = 8


def insert(conn: Connection, values: dict[str, Any]) -> int:
    return int(conn.execute(head_numbers.insert().values(**values)).inserted_primary_key[0])


def insert_many(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Raises errors.NumberInUse when the database finds an overlap the caller's check could not
    see yet (another customer booked it in a concurrent transaction)."""
    if not rows:
        return
    try:
        conn.execute(head_numbers.insert(), rows)
    except IntegrityError as exc:
        if OVERLAP_CONSTRAINT in str(exc.orig) or "uq_head_numbers_number" in str(exc.orig):
            raise errors.NumberInUse("a number of this request was booked meanwhile") from exc
        raise


def overlapping(conn: Connection, number: str) -> RowMapping | None:
    """A held number that overlaps ``number``: one of its prefixes (a block containing it), or
    one it is a prefix of (a number inside the block it would be). Both use the unique index."""
    prefixes = [number[:n] for n in range(_SHORTEST_NUMBER, len(number) + 1)]
    q = (
        select(head_numbers)
        .where(
            or_(
                head_numbers.c.number.in_(prefixes),
                (head_numbers.c.number > number) & (head_numbers.c.number < number + ":"),
            )
        )
        .limit(1)
    )
    return conn.execute(q).mappings().first()


def holding(conn: Connection, customer_id: int, number: str) -> RowMapping | None:
    """The customer's head number whose block holds ``number`` (E.164): the head number itself,
    or head number + as many digits as the block has (unique index on number)."""
    prefixes = [number[:n] for n in range(_SHORTEST_NUMBER, len(number) + 1)]
    q = select(head_numbers).where(
        head_numbers.c.number.in_(prefixes), head_numbers.c.customer_id == customer_id
    )
    for head in conn.execute(q).mappings():
        suffix = len(number) - len(head["number"])
        if suffix == 0 or 10**suffix == head["block_size"]:
            return head
    return None


def get(conn: Connection, customer_id: int, head_number_id: int) -> RowMapping | None:
    q = select(head_numbers).where(
        head_numbers.c.customer_id == customer_id, head_numbers.c.id == head_number_id
    )
    return conn.execute(q).mappings().first()


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
