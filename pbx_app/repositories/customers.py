"""SQL for customers."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, func, select, update

from pbx_app.schema import billing_events, customers, licence_bookings, plan_changes


def insert(conn: Connection, values: dict[str, Any]) -> int:
    return int(conn.execute(customers.insert().values(**values)).inserted_primary_key[0])


def get(conn: Connection, customer_id: int, *, for_update: bool = False) -> RowMapping | None:
    q = select(customers).where(customers.c.id == customer_id)
    if for_update:
        # Serialises every limit-relevant write of one customer (R4, R13-R15) on PostgreSQL.
        q = q.with_for_update()
    return conn.execute(q).mappings().first()


def get_by_name(conn: Connection, name: str) -> RowMapping | None:
    return conn.execute(select(customers).where(customers.c.name == name)).mappings().first()


def list_all(conn: Connection, limit: int, offset: int) -> list[RowMapping]:
    q = select(customers).order_by(customers.c.id).limit(limit).offset(offset)
    return list(conn.execute(q).mappings())


def update_fields(conn: Connection, customer_id: int, values: dict[str, Any]) -> None:
    conn.execute(update(customers).where(customers.c.id == customer_id).values(**values))


def add_to_counter(conn: Connection, customer_id: int, column: str, delta: int) -> None:
    col = customers.c[column]
    conn.execute(update(customers).where(customers.c.id == customer_id).values({col: col + delta}))


def insert_billing_event(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(billing_events.insert().values(**values))


def count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(customers)).scalar_one())


# --- licence bookings (R16-R18) ------------------------------------------------------------
def insert_booking(
    conn: Connection, customer_id: int, effective_on: date, booked: int, fees: int, now: datetime
) -> None:
    conn.execute(
        licence_bookings.insert().values(
            customer_id=customer_id,
            effective_on=effective_on,
            booked_extensions=booked,
            activation_fees=fees,
            requested_at=now,
        )
    )


def delete_pending_bookings(conn: Connection, customer_id: int, today: date) -> None:
    conn.execute(
        delete(licence_bookings).where(
            licence_bookings.c.customer_id == customer_id, licence_bookings.c.effective_on > today
        )
    )


def booked_on(conn: Connection, customer_id: int, day: date) -> int:
    """The extensions booked on ``day``: the latest booking in force by then (the latest
    requested among those of one day)."""
    q = (
        select(licence_bookings.c.booked_extensions)
        .where(
            licence_bookings.c.customer_id == customer_id, licence_bookings.c.effective_on <= day
        )
        .order_by(licence_bookings.c.effective_on.desc(), licence_bookings.c.id.desc())
        .limit(1)
    )
    return int(conn.execute(q).scalar_one_or_none() or 0)


def bookings(conn: Connection, customer_id: int) -> list[RowMapping]:
    q = (
        select(licence_bookings)
        .where(licence_bookings.c.customer_id == customer_id)
        .order_by(licence_bookings.c.effective_on, licence_bookings.c.id)
    )
    return list(conn.execute(q).mappings())


def get_many(conn: Connection, ids: list[int]) -> list[RowMapping]:
    if not ids:
        return []
    q = select(customers).where(customers.c.id.in_(ids)).order_by(customers.c.id)
    return list(conn.execute(q).mappings())


# --- the plan (R16): tariff, discounts, options from a day on --------------------------------
PLAN_FIELDS = ("tariff", "discount_mobile", "discount_all_ip", "cti", "efax", "flat_rate")


def insert_plan(conn: Connection, customer: RowMapping, effective_on: date, now: datetime) -> None:
    values = {f: customer[f] for f in PLAN_FIELDS}
    conn.execute(
        plan_changes.insert().values(
            customer_id=customer["id"], effective_on=effective_on, requested_at=now, **values
        )
    )


def plans(conn: Connection, ids: list[int]) -> dict[int, list[RowMapping]]:
    q = (
        select(plan_changes)
        .where(plan_changes.c.customer_id.in_(ids))
        .order_by(plan_changes.c.effective_on, plan_changes.c.id)
    )
    found: dict[int, list[RowMapping]] = {i: [] for i in ids}
    for row in conn.execute(q).mappings():
        found[row["customer_id"]].append(row)
    return found
