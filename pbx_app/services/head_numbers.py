"""Head numbers (Kopfnummern): number blocks of one area, at most 1,000 per customer (R15)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

from sqlalchemy import Connection, RowMapping

from pbx_app import errors
from pbx_app.limits import MAX_HEAD_NUMBERS_PER_CUSTOMER
from pbx_app.repositories import customers as customers_repo
from pbx_app.repositories import head_numbers as repo
from pbx_app.services import locations as locations_service
from pbx_app.services.access import Actor, authorize
from pbx_app.services.numbering import GERMAN_E164, block_digits, require_in_area


@dataclass(frozen=True)
class NewHeadNumber:
    location_id: int
    number: str
    block_size: int = 100


def public(row: RowMapping) -> dict[str, Any]:
    return {k: row[k] for k in ("id", "location_id", "number", "area_code", "block_size")}


def check_limit(current: int, adding: int) -> None:
    if current + adding > MAX_HEAD_NUMBERS_PER_CUSTOMER:
        raise errors.HeadNumberLimitReached(
            f"at most {MAX_HEAD_NUMBERS_PER_CUSTOMER} head numbers per customer (R15); "
            f"{current} exist, {adding} requested"
        )


def create_many(
    conn: Connection, actor: Actor, customer_id: int, new: list[NewHeadNumber], now: datetime
) -> list[RowMapping]:
    """All or nothing: every number is validated before any is written."""
    customer = authorize(conn, actor, customer_id, now, write=True)
    rows: list[dict[str, Any]] = []
    for item in new:
        location = locations_service.get_owned(conn, customer_id, item.location_id)
        require_in_area(item.number, location["area_code"], location["name"])
        block_digits(item.block_size)
        rows.append(_row(customer_id, location, item.number, item.block_size, now))
    return book(conn, customer, rows)


def book_ported(
    conn: Connection,
    customer: RowMapping,
    location: RowMapping,
    numbers: list[str],
    now: datetime,
) -> list[RowMapping]:
    """A completed port-in: each number becomes the customer's own single number."""
    return book(conn, customer, [_row(customer["id"], location, n, 1, now) for n in numbers])


def _row(
    customer_id: int, location: RowMapping, number: str, block_size: int, now: datetime
) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "location_id": location["id"],
        "number": number,
        "area_code": location["area_code"],
        "block_size": block_size,
        "created_at": now,
    }


def book(conn: Connection, customer: RowMapping, rows: list[dict[str, Any]]) -> list[RowMapping]:
    """Writes head numbers (R15) that overlap nothing held by anyone. ``customer`` is the row
    locked by authorize(write=True); the database's overlap constraint settles races."""
    customer_id = customer["id"]
    check_limit(customer["head_number_count"], len(rows))
    numbers = [r["number"] for r in rows]
    require_disjoint(numbers)
    for number in numbers:
        require_free(conn, customer_id, number)
    repo.insert_many(conn, rows)
    customers_repo.add_to_counter(conn, customer_id, "head_number_count", len(rows))
    wanted = set(numbers)
    return [r for r in repo.list_for_customer(conn, customer_id) if r["number"] in wanted]


def require_disjoint(numbers: list[str]) -> None:
    """No number of one request may be another's prefix (in sorted order a prefix comes right
    before the numbers it covers, so neighbours suffice)."""
    ordered = sorted(numbers)
    for shorter, longer in pairwise(ordered):
        if longer.startswith(shorter):
            raise errors.NumberInUse(f"{longer} overlaps {shorter} in the same request")


def require_free(conn: Connection, customer_id: int, number: str) -> None:
    """Refuses a number that overlaps a held one: a block containing it, or a number inside the
    block it would be. Another customer's holding is not named (who holds what is theirs)."""
    held = repo.overlapping(conn, number)
    if held is None:
        return
    if held["customer_id"] == customer_id:
        raise errors.NumberInUse(
            f"{number} overlaps your head number {held['number']} (block of {held['block_size']})"
        )
    raise errors.NumberInUse(f"{number} is taken: it overlaps a number held by another customer")


def require_held(conn: Connection, customer_id: int, number: str, field: str) -> str:
    """A caller ID (issue 13) must be a number the customer holds: one of its head numbers or a
    number in one of their blocks (an extension's DID), nobody else's."""
    if not GERMAN_E164.fullmatch(number) or repo.holding(conn, customer_id, number) is None:
        raise errors.CallerIdNotHeld(
            f"{field}: {number} is not a number of this customer (one of its head numbers or "
            "a number in their blocks); the number shown outside must be the customer's own"
        )
    return number


def create(
    conn: Connection, actor: Actor, customer_id: int, new: NewHeadNumber, now: datetime
) -> RowMapping:
    return create_many(conn, actor, customer_id, [new], now)[0]


def list_(
    conn: Connection, actor: Actor, customer_id: int, now: datetime, limit: int, offset: int
) -> list[RowMapping]:
    authorize(conn, actor, customer_id, now)
    return repo.list_for_customer(conn, customer_id, limit, offset)


def delete(
    conn: Connection, actor: Actor, customer_id: int, head_number_id: int, now: datetime
) -> None:
    authorize(conn, actor, customer_id, now, write=True)
    head = repo.get(conn, customer_id, head_number_id)
    if head is None:
        raise errors.NotFound(f"head number {head_number_id} not found")
    if repo.has_extensions(conn, head):
        raise errors.Conflict("extensions use numbers of this head number; reassign them first")
    repo.delete_one(conn, head_number_id)
    customers_repo.add_to_counter(conn, customer_id, "head_number_count", -1)


class HeadNumberIndex:
    """Finds the head number (block) a direct-dial number belongs to in O(1) per number."""

    def __init__(self, heads: list[RowMapping]) -> None:
        self._by_number = {h["number"]: h for h in heads}

    def block_of(self, geo_number: str) -> RowMapping | None:
        for digits in range(5):
            head = self._by_number.get(geo_number[: len(geo_number) - digits])
            if head is not None and block_digits(head["block_size"]) == digits:
                return head
        return None
