"""eFax: a customer's fax numbers, faxes sent through the API or by mail, faxes received, and the
job queue the fax gateways (pbx_efax) work from.

Reading of the price list: eFax is one option per customer and month (``customers.efax``,
pbx_app.pricing ``efax_cents``), for all its fax numbers; the invoice counts the pages of the
faxes sent (at ``fax_page_cents``) and received (included) per day.

Outgoing faxes are jobs: queued -> sending (a gateway holds a lease and renews it while the
call lasts) -> sent, or back to queued for a retry (busy, no answer, a call that broke off),
or failed once the attempts are used up or the cause is permanent. A gateway that dies with a
job leaves a lease that runs out; then a gateway of either site takes the job again. The
documents are in the replicated database, so nothing depends on the node that took the upload.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, and_, delete, or_, select, update

from pbx_app import errors, outbox
from pbx_app.billing_time import local_day, utc_start
from pbx_app.db import is_postgresql
from pbx_app.invoicing import FaxPages
from pbx_app.repositories import routing as routing_repo
from pbx_app.schema import customers, fax_numbers, faxes
from pbx_app.services.access import Actor, authorize
from pbx_app.services.numbering import dialled_to_e164
from pbx_app.services.users import normalise_email

MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
MAX_ATTEMPTS = 3
MAX_ADDRESSES = 10
# How long a gateway holds a job without renewing it (it renews at a third of this while the
# call lasts): after a gateway's death, its job waits this long for another gateway.
LEASE = timedelta(seconds=90)
# SIP answers after which dialling again will not help.
# 415: the gateway could not render the document (pbx_efax reports it so).
PERMANENT_SIP_CODES = frozenset({403, 404, 410, 415, 484, 485, 488, 603, 604})
DOCUMENT_TYPES = {"pdf": "application/pdf", "tiff": "image/tiff"}


def require(customer: RowMapping) -> None:
    if not customer["efax"]:
        raise errors.EfaxNotBooked("eFax is not booked for this customer (price list option)")


def _addresses(values: list[str], field: str) -> str:
    if len(values) > MAX_ADDRESSES:
        raise errors.TooManyAddresses(f"at most {MAX_ADDRESSES} addresses", field=field)
    try:
        return ",".join(dict.fromkeys(normalise_email(v) for v in values))
    except errors.InvalidEmail as exc:
        raise errors.InvalidEmail(str(exc), field=field) from None


def public_number(row: RowMapping) -> dict[str, Any]:
    return {
        "id": row["id"],
        "customer_id": row["customer_id"],
        "number": row["number"],
        "email_to": [a for a in row["email_to"].split(",") if a],
        "allowed_senders": [a for a in row["allowed_senders"].split(",") if a],
        "relay_t38": bool(row["relay_t38"]),
        "created_at": row["created_at"].isoformat() + "Z",
    }


def public(row: RowMapping) -> dict[str, Any]:
    """A fax as the customer sees it (never the document itself, nor a gateway's lease)."""
    return {
        "id": row["id"],
        "customer_id": row["customer_id"],
        "direction": row["direction"],
        "our_number": row["our_number"],
        "remote_number": row["remote_number"],
        "status": row["status"],
        "cause": row["cause"],
        "pages": row["pages"],
        "attempts": row["attempts"],
        "source": row["source"],
        "document_name": row["document_name"],
        "seconds": row["seconds"],
        "bit_rate": row["bit_rate"],
        "transport": row["transport"],
        "remote_ident": row["remote_ident"],
        "created_at": row["created_at"].isoformat() + "Z",
        "completed_at": row["completed_at"].isoformat() + "Z" if row["completed_at"] else None,
        "next_attempt_at": (
            row["next_attempt_at"].isoformat() + "Z"
            if row["status"] == "queued" and row["next_attempt_at"]
            else None
        ),
    }


# --- fax numbers -------------------------------------------------------------------------------
def list_numbers(
    conn: Connection, actor: Actor, customer_id: int, now: datetime
) -> list[RowMapping]:
    authorize(conn, actor, customer_id, now)
    q = select(fax_numbers).where(fax_numbers.c.customer_id == customer_id)
    return list(conn.execute(q.order_by(fax_numbers.c.id)).mappings())


def _number_row(conn: Connection, customer_id: int, number_id: int) -> RowMapping:
    row = (
        conn.execute(
            select(fax_numbers).where(
                fax_numbers.c.id == number_id, fax_numbers.c.customer_id == customer_id
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise errors.NotFound(f"fax number {number_id} not found")
    return row


def add_number(
    conn: Connection, actor: Actor, customer_id: int, number: str, email_to: list[str],
    allowed_senders: list[str], now: datetime, relay_t38: bool = False,
) -> RowMapping:  # fmt: skip
    """A number of the customer's head number blocks that no extension answers becomes a fax
    number: the gateways answer its calls."""
    customer = authorize(conn, actor, customer_id, now, write=True)
    require(customer)
    e164 = dialled_to_e164(number) or (number if number.startswith("+") else None)
    if e164 is None or not e164[1:].isdigit():
        raise errors.InvalidNumberFormat(
            "a national (0...) or E.164 (+49...) number", field="number"
        )
    rows = routing_repo.public_number(conn, e164)
    if not any(int(r["customer_id"]) == customer_id for r in rows):
        raise errors.NumberNotOwned(
            f"{e164} is not in a head number block of this customer", field="number"
        )
    if routing_repo.did_owner(rows) is not None:
        raise errors.NumberInUse(
            f"{e164} rings an extension; a fax number must be free", field="number"
        )
    if conn.execute(select(fax_numbers.c.id).where(fax_numbers.c.number == e164)).first():
        raise errors.NumberInUse(f"{e164} is a fax number already", field="number")
    values = {
        "customer_id": customer_id,
        "number": e164,
        "email_to": _addresses(email_to, "email_to"),
        "allowed_senders": _addresses(allowed_senders, "allowed_senders"),
        "relay_t38": relay_t38,
        "created_at": now,
    }
    new_id = conn.execute(fax_numbers.insert().values(**values)).inserted_primary_key[0]
    return _number_row(conn, customer_id, int(new_id))


def update_number(
    conn: Connection, actor: Actor, customer_id: int, number_id: int,
    email_to: list[str] | None, allowed_senders: list[str] | None, now: datetime,
    relay_t38: bool | None = None,
) -> RowMapping:  # fmt: skip
    authorize(conn, actor, customer_id, now, write=True)
    _number_row(conn, customer_id, number_id)
    values: dict[str, str | bool] = {}
    if relay_t38 is not None:
        values["relay_t38"] = relay_t38
    if email_to is not None:
        values["email_to"] = _addresses(email_to, "email_to")
    if allowed_senders is not None:
        values["allowed_senders"] = _addresses(allowed_senders, "allowed_senders")
    if values:
        conn.execute(update(fax_numbers).where(fax_numbers.c.id == number_id).values(**values))
    return _number_row(conn, customer_id, number_id)


def delete_number(
    conn: Connection, actor: Actor, customer_id: int, number_id: int, now: datetime
) -> None:
    authorize(conn, actor, customer_id, now, write=True)
    _number_row(conn, customer_id, number_id)
    conn.execute(delete(fax_numbers).where(fax_numbers.c.id == number_id))


# --- sending -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Document:
    content: bytes
    name: str


def document_type(content: bytes) -> str:
    """ "pdf" or "tiff" by the content itself (pbx_efax.documents.kind_of says the same)."""
    if content.startswith(b"%PDF-"):
        return "pdf"
    if content.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    raise errors.DocumentTypeUnsupported("only PDF and TIFF documents can be faxed", field="file")


def _queue(
    conn: Connection, customer_id: int, number: RowMapping, to: str, document: Document,
    source: str, notify: str, now: datetime,
) -> RowMapping:  # fmt: skip
    if len(document.content) > MAX_DOCUMENT_BYTES:
        raise errors.DocumentTooLarge(f"a document has at most {MAX_DOCUMENT_BYTES} bytes")
    kind = document_type(document.content)
    # As people write numbers: "030 1234-567", "+49 (30) 1234567".
    remote = dialled_to_e164(re.sub(r"[\s()/.-]", "", to))
    if remote is None:
        raise errors.InvalidNumberFormat("a national (0...) or international number", field="to")
    name = document.name.rsplit("/", 1)[-1][:150] or f"fax.{kind}"
    values = {
        "customer_id": customer_id,
        "fax_number_id": number["id"],
        "direction": "out",
        "our_number": number["number"],
        "remote_number": remote,
        "status": "queued",
        "cause": "",
        "pages": 0,
        "document": document.content,
        "document_name": name,
        "source": source,
        "notify": notify,
        "attempts": 0,
        "max_attempts": MAX_ATTEMPTS,
        "next_attempt_at": now,
        "seconds": 0,
        "bit_rate": 0,
        "transport": "",
        "remote_ident": "",
        "created_at": now,
        "updated_at": now,
    }
    fax_id = conn.execute(faxes.insert().values(**values)).inserted_primary_key[0]
    return get_row(conn, int(fax_id))


def submit(
    conn: Connection, actor: Actor, customer_id: int, *, to: str, from_number: str,
    document: Document, notify: str, now: datetime,
) -> RowMapping:  # fmt: skip
    """A fax to send from one of the customer's fax numbers (its caller ID on the call)."""
    customer = authorize(conn, actor, customer_id, now, write=True)
    require(customer)
    e164 = dialled_to_e164(from_number) or from_number
    number = (
        conn.execute(
            select(fax_numbers).where(
                fax_numbers.c.customer_id == customer_id, fax_numbers.c.number == e164
            )
        )
        .mappings()
        .first()
    )
    if number is None:
        raise errors.NotFound(f"{from_number} is not a fax number of this customer", field="from")
    notify = normalise_email(notify) if notify else ""
    return _queue(conn, customer_id, number, to, document, "api", notify, now)


def submit_by_mail(
    conn: Connection, sender: str, to: str, document: Document, now: datetime
) -> RowMapping:
    """A mail to <number>@<the fax domain>: the sender must be an allowed sender of a fax
    number of a customer with eFax, which then sends it; the status mail goes back to it."""
    sender = normalise_email(sender)
    candidates = conn.execute(
        select(fax_numbers, customers.c.efax)
        .join(customers, customers.c.id == fax_numbers.c.customer_id)
        .where(fax_numbers.c.allowed_senders.contains(sender))
        .order_by(fax_numbers.c.id)
    ).mappings()
    for row in candidates:
        if sender in row["allowed_senders"].split(",") and row["efax"]:
            return _queue(conn, int(row["customer_id"]), row, to, document, "mail", sender, now)
    raise errors.SenderNotAllowed(f"{sender} may not send faxes")


def get_row(conn: Connection, fax_id: int) -> RowMapping:
    row = conn.execute(select(faxes).where(faxes.c.id == fax_id)).mappings().first()
    if row is None:
        raise errors.NotFound(f"fax {fax_id} not found")
    return row


def get(conn: Connection, actor: Actor, customer_id: int, fax_id: int, now: datetime) -> RowMapping:
    authorize(conn, actor, customer_id, now)
    row = get_row(conn, fax_id)
    if int(row["customer_id"]) != customer_id:
        raise errors.NotFound(f"fax {fax_id} not found")
    return row


def list_faxes(
    conn: Connection, actor: Actor, customer_id: int, direction: str | None, limit: int,
    before: int | None, now: datetime,
) -> list[RowMapping]:  # fmt: skip
    authorize(conn, actor, customer_id, now)
    q = select(*(c for c in faxes.c if c.name != "document")).where(
        faxes.c.customer_id == customer_id
    )
    if direction:
        q = q.where(faxes.c.direction == direction)
    if before:
        q = q.where(faxes.c.id < before)
    return list(conn.execute(q.order_by(faxes.c.id.desc()).limit(limit)).mappings())


def pages_by_day(
    conn: Connection, customer_ids: list[int], first: date, end: date
) -> dict[int, tuple[FaxPages, ...]]:
    """Pages of the faxes sent and received from Berlin day ``first`` to before ``end``, per
    customer and day: what the invoice counts (a fax counts on the day it ended)."""
    q = select(faxes.c.customer_id, faxes.c.direction, faxes.c.completed_at, faxes.c.pages).where(
        faxes.c.customer_id.in_(customer_ids),
        faxes.c.completed_at >= utc_start(first),
        faxes.c.completed_at < utc_start(end),
        faxes.c.status.in_(("sent", "received")),
        faxes.c.pages > 0,
    )
    days: dict[int, dict[date, list[int]]] = {}
    for cid, direction, completed_at, pages in conn.execute(q):
        day = days.setdefault(int(cid), {}).setdefault(local_day(completed_at), [0, 0])
        day[direction == "in"] += int(pages)
    return {
        cid: tuple(FaxPages(d, sent, received) for d, (sent, received) in sorted(per_day.items()))
        for cid, per_day in days.items()
    }


# --- the gateways' side (internal API) ---------------------------------------------------------
def lease(
    conn: Connection, gateway: str, now: datetime, hold: timedelta = LEASE
) -> RowMapping | None:
    """The oldest due job, leased to `gateway`: queued and due, or sending with a lease that ran
    out (its gateway died; the job counts that attempt as made)."""
    q = (
        select(faxes.c.id, faxes.c.status)
        .where(
            or_(
                and_(faxes.c.status == "queued", faxes.c.next_attempt_at <= now),
                and_(faxes.c.status == "sending", faxes.c.lease_until < now),
            )
        )
        .order_by(faxes.c.next_attempt_at, faxes.c.id)
        .limit(1)
    )
    if is_postgresql(conn):
        q = q.with_for_update(skip_locked=True)  # gateways take different jobs, never wait
    row = conn.execute(q).first()
    if row is None:
        return None
    conn.execute(
        update(faxes)
        .where(faxes.c.id == row.id)
        .values(
            status="sending",
            lease_owner=gateway[:64],
            lease_until=now + hold,
            attempts=faxes.c.attempts + 1,
            updated_at=now,
        )
    )
    return get_row(conn, int(row.id))


def _leased(conn: Connection, fax_id: int, gateway: str, now: datetime) -> RowMapping:
    row = get_row(conn, fax_id)
    if row["status"] != "sending" or row["lease_owner"] != gateway:
        raise errors.LeaseLost(f"fax {fax_id} is not leased to {gateway}")
    return row


def renew(
    conn: Connection, fax_id: int, gateway: str, now: datetime, hold: timedelta = LEASE
) -> None:
    _leased(conn, fax_id, gateway, now)
    conn.execute(update(faxes).where(faxes.c.id == fax_id).values(lease_until=now + hold))


@dataclass(frozen=True)
class Outcome:
    status: str  # ok | busy | no_answer | failed
    cause: str = ""
    pages: int = 0
    seconds: int = 0
    bit_rate: int = 0
    transport: str = ""
    remote_ident: str = ""
    sip_code: int = 0


def retry_delay(attempts: int, first_seconds: float) -> timedelta:
    """After the first attempt `first_seconds`, then five times as long each time."""
    return timedelta(seconds=first_seconds * 5 ** max(attempts - 1, 0))


def finish(
    conn: Connection, fax_id: int, gateway: str, outcome: Outcome, now: datetime,
    retry_seconds: float,
) -> RowMapping:  # fmt: skip
    """A gateway's report of an attempt: sent, another try later, or failed for good."""
    row = _leased(conn, fax_id, gateway, now)
    values: dict[str, Any] = {
        "lease_owner": None, "lease_until": None, "updated_at": now,
        "seconds": outcome.seconds, "bit_rate": outcome.bit_rate,
        "transport": outcome.transport, "remote_ident": outcome.remote_ident[:40],
    }  # fmt: skip
    retry = outcome.status in ("busy", "no_answer") or (
        outcome.status == "failed" and outcome.sip_code not in PERMANENT_SIP_CODES
    )
    cause = _cause(outcome)
    if outcome.status == "ok":
        values.update(status="sent", cause="", pages=outcome.pages, completed_at=now)
    elif retry and row["attempts"] < row["max_attempts"]:
        values.update(
            status="queued", cause=cause,
            next_attempt_at=now + retry_delay(row["attempts"], retry_seconds),
        )  # fmt: skip
    else:
        values.update(status="failed", cause=cause, pages=outcome.pages, completed_at=now)
    conn.execute(update(faxes).where(faxes.c.id == fax_id).values(**values))
    done = get_row(conn, fax_id)
    if done["status"] in ("sent", "failed") and done["notify"]:
        outbox.enqueue(conn, done["notify"], *_status_mail(done), now)
    return done


def _cause(outcome: Outcome) -> str:
    if outcome.status == "busy":
        return "busy"
    if outcome.status == "no_answer":
        return "no answer"
    return outcome.cause[:200] or "failed"


def seiten(pages: int) -> str:
    return "1 Seite" if pages == 1 else f"{pages} Seiten"


def _status_mail(row: RowMapping) -> tuple[str, str]:
    if row["status"] == "sent":
        return (
            f"Fax an {row['remote_number']} gesendet ({seiten(row['pages'])})",
            f'Ihr Fax "{row["document_name"]}" an {row["remote_number"]} wurde gesendet: '
            f"{seiten(row['pages'])}, {row['seconds']} s.\n\n"
            f"Your fax to {row['remote_number']} was sent: {row['pages']} pages.\n",
        )
    return (
        f"Fax an {row['remote_number']} nicht gesendet",
        f'Ihr Fax "{row["document_name"]}" an {row["remote_number"]} konnte nach '
        f"{row['attempts']} Versuchen nicht gesendet werden: {row['cause']}.\n\n"
        f"Your fax to {row['remote_number']} could not be sent after {row['attempts']} "
        f"attempts: {row['cause']}.\n",
    )


def document(conn: Connection, fax_id: int, gateway: str, now: datetime) -> bytes:
    row = _leased(conn, fax_id, gateway, now)
    return bytes(row["document"] or b"")


def received(
    conn: Connection, number: str, caller: str, outcome: Outcome, pdf: bytes | None,
    now: datetime,
) -> RowMapping | None:  # fmt: skip
    """A fax that came in on `number`: kept with its pages (PDF) and mailed to the number's
    addresses. None when `number` is no fax number (any more)."""
    row = conn.execute(select(fax_numbers).where(fax_numbers.c.number == number)).mappings().first()
    if row is None:
        return None
    ok = outcome.status == "ok"
    values = {
        "customer_id": row["customer_id"],
        "fax_number_id": row["id"],
        "direction": "in",
        "our_number": number,
        "remote_number": caller[:32],
        "status": "received" if ok else "failed",
        "cause": "" if ok else _cause(outcome),
        "pages": outcome.pages,
        "document": pdf,
        "document_name": f"fax-{now:%Y%m%d-%H%M%S}-{caller[:20] or 'unbekannt'}.pdf",
        "source": "call",
        "notify": "",
        "attempts": 1,
        "max_attempts": 1,
        "seconds": outcome.seconds,
        "bit_rate": outcome.bit_rate,
        "transport": outcome.transport,
        "remote_ident": outcome.remote_ident[:40],
        "created_at": now,
        "updated_at": now,
        "completed_at": now,
    }
    fax_id = int(conn.execute(faxes.insert().values(**values)).inserted_primary_key[0])
    if pdf and outcome.pages:
        for address in (a for a in row["email_to"].split(",") if a):
            who = caller or "unbekannt"
            partial = "" if ok else f" (unvollstaendig: {_cause(outcome)})"
            subject = f"Fax von {who} an {number} ({seiten(outcome.pages)})"
            body = (
                f"Ein Fax ist eingegangen: von {who} an {number}, {seiten(outcome.pages)}"
                f"{partial}.\n\nA fax arrived from {caller or 'unknown'} for {number}: "
                f"{outcome.pages} pages.\n"
            )
            outbox.enqueue(conn, address, subject, body, now, fax_id=fax_id)
    return get_row(conn, fax_id)
