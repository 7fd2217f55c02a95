"""Locations (branches) of a customer; each has an address and a German area code (R13)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping

from pbx_app import errors
from pbx_app.repositories import locations as repo
from pbx_app.services.access import Actor, authorize
from pbx_app.services.numbering import validate_area_code


@dataclass(frozen=True)
class NewLocation:
    name: str
    street: str
    postal_code: str
    city: str
    area_code: str


def public(row: RowMapping) -> dict[str, Any]:
    return {k: row[k] for k in ("id", "name", "street", "postal_code", "city", "area_code")}


def create(
    conn: Connection, actor: Actor, customer_id: int, new: NewLocation, now: datetime
) -> RowMapping:
    authorize(conn, actor, customer_id, now, write=True)
    validate_area_code(new.area_code)
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
