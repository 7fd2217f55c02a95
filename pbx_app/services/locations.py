"""Locations (branches) of a customer; each has an address and a German area code (R13)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping

from pbx_app import errors
from pbx_app.repositories import locations as repo
from pbx_app.services import calendar
from pbx_app.services.access import Actor, authorize
from pbx_app.services.numbering import validate_area_code


@dataclass(frozen=True)
class NewLocation:
    name: str
    street: str
    postal_code: str
    city: str
    area_code: str
    # Call rules by schedule (issue 13): None = always open, no holidays.
    opening_hours: dict[str, list[str]] | None = None
    state: str | None = None


def public(row: RowMapping) -> dict[str, Any]:
    shown = {k: row[k] for k in ("id", "name", "street", "postal_code", "city", "area_code")}
    shown["opening_hours"] = calendar.loads(row["opening_hours"])
    shown["state"] = row["state"]
    return shown


def address(row: RowMapping) -> str:
    """One line, as emergency services are told where a caller is: "Main 1, 60329 Frankfurt"."""
    return f"{row['street']}, {row['postal_code']} {row['city']}"


def create(
    conn: Connection, actor: Actor, customer_id: int, new: NewLocation, now: datetime
) -> RowMapping:
    authorize(conn, actor, customer_id, now, write=True)
    validate_area_code(new.area_code)
    hours = calendar.validate_hours(new.opening_hours)
    state = calendar.validate_state(new.state)
    if repo.get_by_name(conn, customer_id, new.name) is not None:
        raise errors.LocationNameInUse(f"a location named {new.name!r} exists already")
    location_id = repo.insert(
        conn,
        {
            "customer_id": customer_id,
            "name": new.name,
            "street": new.street,
            "postal_code": new.postal_code,
            "city": new.city,
            "area_code": new.area_code,
            "created_at": now,
            "opening_hours": calendar.dumps(hours),
            "state": state,
        },
    )
    row = repo.get(conn, customer_id, location_id)
    assert row is not None
    return row


def get_owned(conn: Connection, customer_id: int, location_id: int) -> RowMapping:
    row = repo.get(conn, customer_id, location_id)
    if row is None:
        raise errors.NotFound(f"location {location_id} not found")
    return row


def get(
    conn: Connection, actor: Actor, customer_id: int, location_id: int, now: datetime
) -> RowMapping:
    authorize(conn, actor, customer_id, now)
    return get_owned(conn, customer_id, location_id)


def list_(conn: Connection, actor: Actor, customer_id: int, now: datetime) -> list[RowMapping]:
    authorize(conn, actor, customer_id, now)
    return repo.list_for_customer(conn, customer_id)


# What a location may change: its name and address, opening hours and holiday state; not its
# area code (the numbers of the location are bound to it, R13).
UPDATABLE = frozenset({"name", "street", "postal_code", "city", "opening_hours", "state"})


def update(
    conn: Connection,
    actor: Actor,
    customer_id: int,
    location_id: int,
    changes: dict[str, Any],
    now: datetime,
) -> RowMapping:
    """``changes``: fields of UPDATABLE; opening_hours and state may be None (always open, no
    holidays)."""
    authorize(conn, actor, customer_id, now, write=True)
    location = get_owned(conn, customer_id, location_id)
    values = {k: v for k, v in changes.items() if k in UPDATABLE}
    if "opening_hours" in values:
        values["opening_hours"] = calendar.dumps(calendar.validate_hours(values["opening_hours"]))
    if "state" in values:
        values["state"] = calendar.validate_state(values["state"])
    name = values.get("name")
    if name is not None and name != location["name"] and repo.get_by_name(conn, customer_id, name):
        raise errors.LocationNameInUse(f"a location named {name!r} exists already")
    if values:
        repo.update_fields(conn, location_id, values)
    return get_owned(conn, customer_id, location_id)


def delete(
    conn: Connection, actor: Actor, customer_id: int, location_id: int, now: datetime
) -> None:
    authorize(conn, actor, customer_id, now, write=True)
    get_owned(conn, customer_id, location_id)
    if repo.is_referenced(conn, location_id):
        raise errors.LocationInUse(
            "extensions, head numbers or porting requests are assigned to this location (R13)"
        )
    repo.delete_one(conn, location_id)
