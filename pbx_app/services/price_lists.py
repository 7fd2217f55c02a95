"""The operator's price lists (R16): read and written by operators (customers see their prices
on their customer record, call records and invoices).

A list is stored with the first day it is in force. Only lists that are not in force yet may be
added or withdrawn: a day that has begun is billed by the list in force on it, so a price change
always starts tomorrow or later, and an issued invoice keeps its own lines anyway.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection

from pbx_app import errors
from pbx_app.billing_time import local_day
from pbx_app.pricing import PriceList, PriceListDoc
from pbx_app.repositories import price_lists as repo
from pbx_app.services.access import Actor, require_operator


def public(price_list: PriceList, today: date) -> dict[str, Any]:
    return {
        "id": price_list.id,
        "valid_from": price_list.valid_from.isoformat(),
        "in_force_since_begun": price_list.valid_from <= today,
        "document": price_list.doc.model_dump(mode="json"),
    }


def list_all(conn: Connection, actor: Actor) -> list[PriceList]:
    require_operator(actor)
    return repo.all_lists(conn)


def get(conn: Connection, actor: Actor, list_id: int) -> PriceList:
    require_operator(actor)
    found = repo.get(conn, list_id)
    if found is None:
        raise errors.NotFound(f"price list {list_id} not found")
    return found


def create(
    conn: Connection, actor: Actor, valid_from: date, doc: PriceListDoc, now: datetime
) -> PriceList:
    require_operator(actor)
    if valid_from <= local_day(now):
        raise errors.PriceListInForce(
            f"valid_from {valid_from} has begun: a new price list starts tomorrow at the earliest"
        )
    if repo.get_by_valid_from(conn, valid_from) is not None:
        raise errors.Conflict(f"a price list already starts on {valid_from}")
    created = repo.get(conn, repo.insert(conn, valid_from, doc, now))
    assert created is not None
    return created


def withdraw(conn: Connection, actor: Actor, list_id: int, now: datetime) -> None:
    found = get(conn, actor, list_id)
    if found.valid_from <= local_day(now):
        raise errors.PriceListInForce(
            f"price list {list_id} is in force since {found.valid_from}: it stays as it is"
        )
    repo.remove(conn, list_id)
