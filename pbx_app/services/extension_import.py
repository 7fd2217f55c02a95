"""Bulk import of extensions (R13, R14, R16) from rows read one at a time, in bounded memory.

Three steps, so that no other tenant waits for an import's parsing (on SQLite every write
transaction holds the database's single write lock):

1. read, in one short read-only snapshot: may the actor write to the customer, its counters, its
   locations and head number blocks, the extension and geographic numbers it uses already;
2. validate, in no transaction: row by row as the file's reader yields them, each valid row
   normalised into a spool file; reading stops at the first row past what the customer may
   still add (R14, R16: 409 at once, the rest of the file is never read);
3. write, in one short transaction: authorise again with the customer row locked, check the
   limits again with the fresh counters, insert from the spool in batches (COPY on PostgreSQL).
   A number taken in between ends as the IntegrityError of a unique constraint (409), nothing
   half-written.

Memory does not grow with the size of the file. It is bounded by the in-memory parts of two
spools (SPOOL_IN_MEMORY_BYTES each, the rest goes to disk: the request body's in
pbx_app.api.extensions, the normalised rows' here), the reader's buffer (64 KiB, one CSV record),
one batch of INSERT_BATCH_ROWS rows (about 2 MB), up to MAX_IMPORT_ERRORS_REPORTED problems, and
the sets of extension and geographic numbers taken (existing ones plus those of the rows so far).
The limit check caps each set at the customer's 249,000 extensions (R14): about 23 MB each at
worst, 47 MB for both. Measured with tracemalloc through the ASGI app on SQLite: 1.2 MiB for a
30 MB file refused at its 25th row, 6.2 MiB for 20,000 valid rows, 24 MiB for 249,000.
"""

from __future__ import annotations

import csv
import itertools
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from sqlalchemy import RowMapping

from pbx_app import errors
from pbx_app.addressing import EMERGENCY_NUMBERS
from pbx_app.db import Database
from pbx_app.repositories import customers as customers_repo
from pbx_app.repositories import extensions as repo
from pbx_app.repositories import head_numbers as head_numbers_repo
from pbx_app.repositories import locations as locations_repo
from pbx_app.services.access import Actor, authorize
from pbx_app.services.extension_files import read_rows
from pbx_app.services.extensions import (
    EXTENSION_NUMBER,
    GEO_NUMBER,
    MAX_DISPLAY_NAME,
    check_geo,
    check_limits,
)
from pbx_app.services.head_numbers import HeadNumberIndex
from pbx_app.text import require_printable

SPOOL_IN_MEMORY_BYTES = 1024 * 1024
INSERT_BATCH_ROWS = 2_000
MAX_IMPORT_ERRORS_REPORTED = 100
ROW_FIELDS = frozenset({"number", "location_id", "location", "display_name", "geo_number"})


@dataclass(frozen=True)
class ImportResult:
    created: int
    extension_count: int


def check_may_import(db: Database, actor: Actor, customer_id: int, now: datetime) -> None:
    """Whether ``actor`` may add extensions to the customer at all: asked before a file is
    received, so that a refused request costs no upload."""
    with db.snapshot() as conn:
        authorize(conn, actor, customer_id, now, write=True, lock=False)


def import_file(
    db: Database,
    actor: Actor,
    customer_id: int,
    content_type: str,
    binary: IO[bytes],
    now: datetime,
) -> ImportResult:
    """A CSV or JSON file (see extension_files.read_rows), all rows or none."""
    # Closed here, not whenever a refusal's traceback lets go of it: the reader must be done
    # with ``binary`` before the caller closes that.
    with closing(read_rows(content_type, binary)) as rows:
        return import_rows(db, actor, customer_id, rows, now)


def import_rows(
    db: Database, actor: Actor, customer_id: int, rows: Iterable[Any], now: datetime
) -> ImportResult:
    """All rows or none. Each row: number, location_id or location (name), optional
    display_name and geo_number."""
    known = _read_customer(db, actor, customer_id, now)
    with tempfile.SpooledTemporaryFile(
        max_size=SPOOL_IN_MEMORY_BYTES, mode="w+", encoding="utf-8", newline=""
    ) as spool:
        count = _validate_into(spool, rows, known)
        spool.seek(0)
        return _write(db, actor, customer_id, spool, count, now)


@dataclass
class _Known:
    """What validation needs of the customer, read in one snapshot."""

    customer: RowMapping
    locations_by_id: dict[int, RowMapping]
    locations_by_name: dict[str, RowMapping]
    heads: HeadNumberIndex
    numbers: set[str]  # extension numbers taken: the customer's, then each valid row's
    geo_numbers: set[str]


def _read_customer(db: Database, actor: Actor, customer_id: int, now: datetime) -> _Known:
    with db.snapshot() as conn:
        customer = authorize(conn, actor, customer_id, now, write=True, lock=False)
        locations = locations_repo.list_for_customer(conn, customer_id)
        return _Known(
            customer=customer,
            locations_by_id={loc["id"]: loc for loc in locations},
            locations_by_name={loc["name"]: loc for loc in locations},
            heads=HeadNumberIndex(head_numbers_repo.list_for_customer(conn, customer_id)),
            numbers=repo.numbers_of_customer(conn, customer_id),
            geo_numbers=repo.geo_numbers_of_customer(conn, customer_id),
        )


def _validate_into(spool: IO[str], rows: Iterable[Any], known: _Known) -> int:
    """Writes each valid row, normalised, to ``spool``; the number of rows. Raises the limit's
    error at the first row too many, ImportInvalid (with the rows' problems) at the end."""
    writer = csv.writer(spool)
    problems: list[dict[str, object]] = []
    count = 0
    for count, row in enumerate(rows, start=1):
        # Before anything else, as for a single extension: a file too large for the customer's
        # licences is refused as that, whatever else is wrong with it.
        check_limits(known.customer, count, at_least=True)
        if len(problems) >= MAX_IMPORT_ERRORS_REPORTED:
            continue  # enough reported; the rows are still counted for the limit
        try:
            writer.writerow(_normalise(row, known))
        except (ValueError, errors.DomainError) as exc:
            code = exc.code if isinstance(exc, errors.DomainError) else "invalid_row"
            problems.append({"row": count, "code": code, "message": str(exc)})
    if problems:
        more = "+" if len(problems) >= MAX_IMPORT_ERRORS_REPORTED else ""
        raise errors.ImportInvalid(
            f"{len(problems)}{more} invalid rows (first: {problems[0]['message']}); "
            "nothing was imported",
            rows=problems,
        )
    return count


def _normalise(row: Any, known: _Known) -> tuple[int, str, str, str]:
    """(location_id, number, display_name, geo_number or ""), the row's numbers now taken."""
    if not isinstance(row, dict):
        raise ValueError("each row must be an object")
    unknown = set(row) - ROW_FIELDS
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(map(str, unknown)))[:200]}")
    number = _text(row, "number")
    if number is None or not EXTENSION_NUMBER.fullmatch(number):
        raise ValueError("number must have 2-8 digits and no leading 0")
    if number in EMERGENCY_NUMBERS:
        raise ValueError(f"{number} is an emergency number and cannot be an extension")
    location = _location(row, known)
    display_name = _text(row, "display_name") or ""
    if len(display_name) > MAX_DISPLAY_NAME:
        raise ValueError("display_name has at most 100 characters")
    require_printable(display_name)
    geo = _text(row, "geo_number")
    if number in known.numbers:
        raise errors.ExtensionNumberInUse(f"extension {number} exists already")
    known.numbers.add(number)
    if geo is not None:
        if not GEO_NUMBER.fullmatch(geo):
            raise ValueError("geo_number must be a German number in E.164 form")
        check_geo(geo, location, known.heads)
        if geo in known.geo_numbers:
            raise errors.NumberInUse(f"{geo} is assigned to another extension")
        known.geo_numbers.add(geo)
    return location["id"], number, display_name, geo or ""


def _location(row: dict[str, Any], known: _Known) -> RowMapping:
    loc_id = row.get("location_id")
    if isinstance(loc_id, str) and loc_id.isdigit() and len(loc_id) < 10:
        loc_id = int(loc_id)
    location = None
    if loc_id not in (None, ""):
        if type(loc_id) is not int:
            raise ValueError("location_id must be an integer")
        location = known.locations_by_id.get(loc_id)
    else:
        name = _text(row, "location")
        location = known.locations_by_name.get(name) if name is not None else None
    if location is None:
        raise ValueError("location_id/location does not name a location of this customer")
    return location


def _text(row: dict[str, Any], key: str) -> str | None:
    value = row.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def _write(
    db: Database, actor: Actor, customer_id: int, spool: IO[str], count: int, now: datetime
) -> ImportResult:
    with db.transaction() as conn:
        customer = authorize(conn, actor, customer_id, now, write=True)
        check_limits(customer, count)  # with the counters as they are now, under the lock
        option = bool(customer["business_option"])  # what new extensions get (R4)
        for batch in _batches(spool, customer_id, option, now):
            repo.insert_many(conn, batch)
        customers_repo.add_to_counter(conn, customer_id, "extension_count", count)
    return ImportResult(created=count, extension_count=customer["extension_count"] + count)


def _batches(
    spool: IO[str], customer_id: int, business_option: bool, now: datetime
) -> Iterator[list[dict[str, Any]]]:
    rows = csv.reader(spool)
    while batch := list(itertools.islice(rows, INSERT_BATCH_ROWS)):
        yield [
            {
                "customer_id": customer_id,
                "location_id": int(location_id),
                "number": number,
                "display_name": display_name,
                "geo_number": geo or None,
                "device_count": 0,
                "created_at": now,
                "business_option": business_option,
            }
            for location_id, number, display_name, geo in batch
        ]
