"""Call records (CDRs): ingest from the proxies' spool shippers, listing and export per tenant.

Kamailio writes a record where a call enters the platform (a device's proxy after digest auth,
or the proxy that takes the carrier's INVITE), spools it on the node and the node's shipper
delivers it here in batches, retrying until a batch is confirmed; storing is idempotent on
the record's identity (node, call_id, from_tag, started_at).

Who sees a record: the customer it belongs to (customer_id: the calling device's customer, or
the called customer for calls from the carrier) and the called customer of an on-net call
(callee_customer_id); operators see every record. Plain users see none yet (users are not
linked to extensions on this branch): customer admins and operators read them.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping

from pbx_app import errors, rating
from pbx_app.billing_time import local_day
from pbx_app.invoicing import chargeable, plan_of
from pbx_app.repositories import call_records as repo
from pbx_app.repositories import customers as customers_repo
from pbx_app.repositories import price_lists as price_lists_repo
from pbx_app.repositories.call_records import Window
from pbx_app.services.access import Actor, Role, authorize, require_operator
from pbx_app.services.invoices import accounts as invoicing_accounts

# Public fields, in the order of the CSV export's columns.
FIELDS = (
    "id",
    "started_at",
    "answered_at",
    "ended_at",
    "duration",
    "caller",
    "caller_id",
    "dialled",
    "resolved",
    "answered_by",
    "diversions",
    "sip_code",
    "reason",
    "cause",
    "customer_id",
    "callee_customer_id",
    "source",
    "site",
    "node",
    "relay",
    "call_id",
    "price_zone",
    "price_cents",
)

# cause: what a person reads from the final SIP answer (the code and reason stay in the record).
_CAUSES = {
    486: "busy",
    600: "busy",
    603: "declined",
    487: "cancelled",
    408: "no_answer",
    480: "unavailable",
    404: "not_found",
    484: "not_found",
    403: "forbidden",
    482: "loop",
    483: "loop",
}


def cause(sip_code: int, answered: bool) -> str:
    if answered or 200 <= sip_code < 300:
        return "answered"
    if sip_code in _CAUSES:
        return _CAUSES[sip_code]
    return "failed" if sip_code >= 500 else "rejected"


def _utc(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="microseconds") + "Z"


def charged_customer(row: RowMapping) -> int | None:
    """Who pays for the call's way out: the customer whose rule forwarded it (a diverted call
    to another customer), else the call's customer (pbx_app.repositories.rating.CHARGED)."""
    if row["diversions"] and row["callee_customer_id"] is not None:
        return int(row["callee_customer_id"])
    return None if row["customer_id"] is None else int(row["customer_id"])


def priced(
    conn: Connection, rows: Sequence[RowMapping], viewer: int | None = None
) -> list[dict[str, Any]]:
    """The public records, each answered external call with its price (R16): the zone of the
    number and the exact amount in cents by the plan of the charged customer on the day it
    started and the price list in force then (pbx_app.rating; the invoice rounds per line).
    A customer's admin (``viewer``) sees only the prices the customer pays; none for a day not
    charged (a trial)."""
    lists = price_lists_repo.all_lists(conn)
    ids = sorted({c for r in rows if (c := charged_customer(r)) is not None})
    accounts = {
        a.customer_id: a for a in invoicing_accounts(conn, customers_repo.get_many(conn, ids))
    }
    items = []
    for row in rows:
        item = public(row)
        account = accounts.get(charged_customer(row) or 0)
        if account is not None and viewer in (None, account.customer_id):
            day = local_day(row["started_at"])
            plan = plan_of(account.plans, day)
            rated = rating.rate(row["resolved"], row["started_at"], row["answered_at"],
                                row["ended_at"], plan.tariff, plan.flat_rate, lists)  # fmt: skip
            if rated is not None and chargeable(account, day):
                item["price_zone"] = rated.zone
                item["price_cents"] = f"{rated.cents:.4f}"
        items.append(item)
    return items


def public(row: RowMapping) -> dict[str, Any]:
    answered, ended = row["answered_at"], row["ended_at"]
    talk = (ended - answered).total_seconds() if answered is not None else 0.0
    return {
        "id": row["id"],
        "started_at": _utc(row["started_at"]),
        "answered_at": _utc(answered),
        "ended_at": _utc(ended),
        "duration": round(max(talk, 0.0), 3),
        "caller": row["caller"],
        "caller_id": row["caller_id"],
        "dialled": row["dialled"],
        "resolved": row["resolved"],
        "answered_by": row["answered_by"],
        "diversions": row["diversions"],
        "sip_code": row["sip_code"],
        "reason": row["reason"],
        "cause": cause(row["sip_code"], answered is not None),
        "customer_id": row["customer_id"],
        "callee_customer_id": row["callee_customer_id"],
        "source": row["source"],
        "site": row["site"],
        "node": row["node"],
        "relay": row["relay"],
        "call_id": row["call_id"],
        "price_zone": None,
        "price_cents": None,
    }


# --- ingest --------------------------------------------------------------------------------
def ingest(conn: Connection, records: Sequence[dict[str, Any]], now: datetime) -> int:
    """Stores the records that are not stored yet (all validated by the caller); returns how
    many were new. The whole batch is one transaction: all of it, or (on an error) none."""
    return repo.insert_new(conn, [{**r, "received_at": now} for r in records])


# --- reading -------------------------------------------------------------------------------
def list_for_customer(
    conn: Connection,
    actor: Actor,
    customer_id: int,
    now: datetime,
    window: Window,
    limit: int,
    offset: int,
) -> list[RowMapping]:
    authorize(conn, actor, customer_id, now)
    if actor.role is Role.USER:
        raise errors.PermissionDenied(
            "only a customer admin or an operator may read the call records"
        )
    return repo.list_records(conn, customer_id, window, limit, offset)


def list_platform(
    conn: Connection, actor: Actor, window: Window, limit: int, offset: int
) -> list[RowMapping]:
    """Every customer's records and those of no customer (calls from the carrier to numbers
    nobody holds)."""
    require_operator(actor)
    return repo.list_records(conn, None, window, limit, offset)


# --- CSV export ----------------------------------------------------------------------------
# A cell a spreadsheet would run as a formula gets a leading apostrophe: =, @, tab and CR
# always; + and - unless the rest is a plain number (E.164 numbers stay as they are).
_FORMULA = re.compile(r"^(?:[=@\t\r]|[+-](?![0-9]*$))")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    return "'" + text if _FORMULA.match(text) else text


def to_csv(items: Iterable[dict[str, Any]]) -> str:
    """The public records as CSV (RFC 4180, CRLF), a header row first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(FIELDS)
    for item in items:
        writer.writerow([_cell(item[f]) for f in FIELDS])
    return out.getvalue()
