"""Head numbers (Kopfnummern): number blocks of one area, at most 1,000 per customer (R15)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping

from pbx_app import errors
from pbx_app.limits import MAX_HEAD_NUMBERS_PER_CUSTOMER
from pbx_app.repositories import customers as customers_repo
from pbx_app.repositories import head_numbers as repo
from pbx_app.services import locations as locations_service
from pbx_app.services.access import Actor, authorize
from pbx_app.services.numbering import block_digits, require_in_area


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
    check_limit(customer["head_number_count"], len(new))
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in new:
        location = locations_service.get_owned(conn, customer_id, item.location_id)
        require_in_area(item.number, location["area_code"], location["name"])
        block_digits(item.block_size)
        if item.number in seen or repo.number_exists(conn, item.number):
            raise errors.NumberInUse(f"head number {item.number} is taken")
        seen.add(item.number)
        rows.append(
            {
                "customer_id": customer_id,
                "location_id": location["id"],
                "number": item.number,
                "area_code": location["area_code"],
                "block_size": item.block_size,
                "created_at": now,
            }
        )
    repo.insert_many(conn, rows)
    customers_repo.add_to_counter(conn, customer_id, "head_number_count", len(rows))
    if not rows:
        return []
    return [r for r in repo.list_for_customer(conn, customer_id) if r["number"] in seen]


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
