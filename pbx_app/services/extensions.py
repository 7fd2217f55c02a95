"""Extensions: at most 249,000 per customer (R14), 5 in the base package, more with licences
(R16); each assigned to one location, with a geographic number only from that area (R13)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping

from pbx_app import errors
from pbx_app.addressing import EMERGENCY_NUMBERS, EXTENSION_NUMBER_PATTERN
from pbx_app.limits import (
    BASE_PACKAGE_EXTENSIONS,
    MAX_EXTENSIONS_PER_CUSTOMER,
    devices_phrase,
    max_devices_per_extension,
)
from pbx_app.repositories import customers as customers_repo
from pbx_app.repositories import extensions as repo
from pbx_app.repositories import head_numbers as head_numbers_repo
from pbx_app.services import locations as locations_service
from pbx_app.services.access import Actor, authorize
from pbx_app.services.head_numbers import HeadNumberIndex, require_held
from pbx_app.services.numbering import GERMAN_E164, in_area

EXTENSION_NUMBER = re.compile(EXTENSION_NUMBER_PATTERN)
GEO_NUMBER = GERMAN_E164
MAX_DISPLAY_NAME = 100


@dataclass(frozen=True)
class NewExtension:
    location_id: int
    number: str
    display_name: str = ""
    geo_number: str | None = None
    # None: what the customer books for new extensions (customers.business_option).
    business_option: bool | None = None


def public(row: RowMapping) -> dict[str, Any]:
    return {
        k: row[k]
        for k in (
            "id",
            "location_id",
            "number",
            "display_name",
            "geo_number",
            "device_count",
            "caller_id",
            "clir",
            "business_option",
        )
    }


def check_can_unbook(ext: RowMapping) -> None:
    """Without the Business Option an extension keeps 1 device (R4): its extra devices go
    first, so that no registration is cut off by a booking change."""
    allowed = max_devices_per_extension(business_option=False)
    if ext["device_count"] > allowed:
        raise errors.DeviceLimitReached(
            f"without the Business Option an extension has {devices_phrase(allowed)} (R4); "
            f"extension {ext['number']} has {ext['device_count']}: remove extra devices before "
            "cancelling the option"
        )


def check_limits(customer: RowMapping, adding: int, *, at_least: bool = False) -> None:
    """R14 first (the hard product limit), then the booked licences (R16). ``at_least``: the
    request is still being read, ``adding`` is how many rows it had so far."""
    current = customer["extension_count"]
    requested = f"{'at least ' if at_least else ''}{adding} requested"
    if current + adding > MAX_EXTENSIONS_PER_CUSTOMER:
        raise errors.ExtensionLimitReached(
            f"at most {MAX_EXTENSIONS_PER_CUSTOMER} extensions per customer (R14); "
            f"{current} exist, {requested}"
        )
    licensed = BASE_PACKAGE_EXTENSIONS + customer["booked_licences"]
    if current + adding > licensed:
        raise errors.ExtensionLicencesExhausted(
            f"{licensed} extensions are booked (base package of {BASE_PACKAGE_EXTENSIONS} plus "
            f"{customer['booked_licences']} licences, R16); {current} exist, {requested}: "
            "book further licences first"
        )


def check_geo(geo_number: str, location: RowMapping, heads: HeadNumberIndex) -> None:
    if not in_area(geo_number, location["area_code"]):
        raise errors.NumberAreaMismatch(
            f"{geo_number} is not in area {location['area_code']} of location "
            f"{location['name']!r}; geographic numbers are bound to their area (R13)"
        )
    if heads.block_of(geo_number) is None:
        raise errors.NumberNotOwned(
            f"{geo_number} is not in a head number block of this customer (R13)"
        )


def create(
    conn: Connection, actor: Actor, customer_id: int, new: NewExtension, now: datetime
) -> RowMapping:
    customer = authorize(conn, actor, customer_id, now, write=True)
    check_limits(customer, 1)
    location = locations_service.get_owned(conn, customer_id, new.location_id)
    if not EXTENSION_NUMBER.fullmatch(new.number):
        raise errors.InvalidNumberFormat("an extension number has 2-8 digits and no leading 0")
    if new.number in EMERGENCY_NUMBERS:
        raise errors.ExtensionNumberReserved(f"{new.number} is an emergency number")
    if new.geo_number is not None:
        heads = HeadNumberIndex(head_numbers_repo.list_for_customer(conn, customer_id))
        check_geo(new.geo_number, location, heads)
        if repo.geo_number_exists(conn, new.geo_number):
            raise errors.NumberInUse(f"{new.geo_number} is assigned to another extension")
    if repo.number_exists(conn, customer_id, new.number):
        raise errors.ExtensionNumberInUse(f"extension {new.number} exists already")
    extension_id = repo.insert(
        conn,
        {
            "customer_id": customer_id,
            "location_id": location["id"],
            "number": new.number,
            "display_name": new.display_name,
            "geo_number": new.geo_number,
            "device_count": 0,
            "created_at": now,
            "business_option": bool(customer["business_option"])
            if new.business_option is None
            else new.business_option,
        },
    )
    customers_repo.add_to_counter(conn, customer_id, "extension_count", 1)
    row = repo.get(conn, customer_id, extension_id)
    assert row is not None
    return row


def get_owned(
    conn: Connection, customer_id: int, extension_id: int, *, for_update: bool = False
) -> RowMapping:
    row = repo.get(conn, customer_id, extension_id, for_update=for_update)
    if row is None:
        raise errors.NotFound(f"extension {extension_id} not found")
    return row


def get(
    conn: Connection, actor: Actor, customer_id: int, extension_id: int, now: datetime
) -> RowMapping:
    authorize(conn, actor, customer_id, now)
    return get_owned(conn, customer_id, extension_id)


def list_(
    conn: Connection, actor: Actor, customer_id: int, now: datetime, limit: int, offset: int
) -> list[RowMapping]:
    authorize(conn, actor, customer_id, now)
    return repo.list_for_customer(conn, customer_id, limit, offset)


_UNSET: Any = object()


def update(
    conn: Connection,
    actor: Actor,
    customer_id: int,
    extension_id: int,
    now: datetime,
    *,
    location_id: int | None = None,
    display_name: str | None = None,
    geo_number: str | None = _UNSET,
    caller_id: str | None = _UNSET,
    clir: bool | None = None,
    business_option: bool | None = None,
) -> RowMapping:
    authorize(conn, actor, customer_id, now, write=True)
    ext = get_owned(conn, customer_id, extension_id, for_update=True)
    values: dict[str, Any] = {}
    if business_option is not None:
        if not business_option:
            check_can_unbook(ext)
        values["business_option"] = business_option
    location = locations_service.get_owned(conn, customer_id, location_id or ext["location_id"])
    if location_id is not None:
        values["location_id"] = location_id
    if display_name is not None:
        values["display_name"] = display_name
    new_geo = ext["geo_number"] if geo_number is _UNSET else geo_number
    if new_geo is not None:
        heads = HeadNumberIndex(head_numbers_repo.list_for_customer(conn, customer_id))
        # Re-checked on a move too: the number must stay in the area of the location (R13).
        check_geo(new_geo, location, heads)
        if new_geo != ext["geo_number"] and repo.geo_number_exists(conn, new_geo):
            raise errors.NumberInUse(f"{new_geo} is assigned to another extension")
    if geo_number is not _UNSET:
        values["geo_number"] = geo_number
    if caller_id is not _UNSET:
        if caller_id is not None:
            require_held(conn, customer_id, caller_id, "caller_id")
        values["caller_id"] = caller_id
    if clir is not None:
        values["clir"] = clir
    if values:
        repo.update_fields(conn, extension_id, values)
    return get_owned(conn, customer_id, extension_id)


def delete(
    conn: Connection, actor: Actor, customer_id: int, extension_id: int, now: datetime
) -> None:
    authorize(conn, actor, customer_id, now, write=True)
    get_owned(conn, customer_id, extension_id)
    repo.delete_one(conn, extension_id)
    customers_repo.add_to_counter(conn, customer_id, "extension_count", -1)
