"""SQL for the operator's price lists (pbx_app.pricing)."""

from __future__ import annotations

import time
from datetime import date, datetime

from sqlalchemy import Connection, delete, select

from pbx_app.pricing import PriceList, PriceListDoc
from pbx_app.schema import price_lists


def _load(row: object) -> PriceList:
    m = row._mapping  # type: ignore[attr-defined]
    doc = PriceListDoc.model_validate_json(m["document"])
    return PriceList(id=m["id"], valid_from=m["valid_from"], doc=doc)


def all_lists(conn: Connection) -> list[PriceList]:
    rows = conn.execute(select(price_lists).order_by(price_lists.c.valid_from))
    return [_load(r) for r in rows]


def in_force(conn: Connection, day: date) -> PriceList:
    """The list in force on ``day``; migration 0009 stores one from 2000-01-01."""
    q = (
        select(price_lists)
        .where(price_lists.c.valid_from <= day)
        .order_by(price_lists.c.valid_from.desc())
        .limit(1)
    )
    row = conn.execute(q).first()
    if row is None:
        raise LookupError(f"no price list in force on {day}")
    return _load(row)


def get(conn: Connection, list_id: int) -> PriceList | None:
    row = conn.execute(select(price_lists).where(price_lists.c.id == list_id)).first()
    return None if row is None else _load(row)


def get_by_valid_from(conn: Connection, valid_from: date) -> PriceList | None:
    q = select(price_lists).where(price_lists.c.valid_from == valid_from)
    row = conn.execute(q).first()
    return None if row is None else _load(row)


def insert(conn: Connection, valid_from: date, doc: PriceListDoc, now: datetime) -> int:
    values = {"valid_from": valid_from, "document": doc.model_dump_json(), "created_at": now}
    return int(conn.execute(price_lists.insert().values(**values)).inserted_primary_key[0])


def remove(conn: Connection, list_id: int) -> None:
    conn.execute(delete(price_lists).where(price_lists.c.id == list_id))


# Routing asks for the zones on every external call; a list read once a minute per process is
# enough (a new list starts on a later day, so it is read at the day's first call anyway).
_CACHE: dict[tuple[str, date], tuple[float, PriceList]] = {}
CACHE_SECONDS = 60.0


def in_force_cached(conn: Connection, day: date) -> PriceList:
    key = (str(conn.engine.url), day)  # one database per process, but tests have many
    hit = _CACHE.get(key)
    if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
        return hit[1]
    found = in_force(conn, day)
    if len(_CACHE) > 64:
        _CACHE.clear()
    _CACHE[key] = (time.monotonic(), found)
    return found
