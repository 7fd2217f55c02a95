"""Monthly invoices (R16, R17): the operator's run for a month that has ended, and reading them.

The run is idempotent: a customer with an invoice for the month gets no second one (the
database's unique key on customer and month holds it also against two runs at once), so running
it again after a failure completes what is missing. A customer with nothing to charge in the
month (a trial, a contract not begun) gets no invoice. Invoice numbers are the month and the
customer: 2026-11-000042.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, func, select

from pbx_app import errors, invoicing
from pbx_app.billing_time import local_day
from pbx_app.invoicing import Account, Booking, Plan
from pbx_app.pricing import in_force
from pbx_app.repositories import customers as customers_repo
from pbx_app.repositories import price_lists as price_lists_repo
from pbx_app.repositories import rating
from pbx_app.repositories.rating import DayCalls
from pbx_app.schema import customers, extensions, invoices, licence_bookings
from pbx_app.services import faxes
from pbx_app.services.access import Actor, Role, require_operator


@dataclass(frozen=True)
class RunResult:
    period: str
    customers: int
    issued: int
    already_issued: int
    nothing_to_charge: int
    net_cents: int


def _plan(row: Mapping[Any, Any]) -> Plan:
    discounts = frozenset(d for d in ("mobile", "all_ip") if row[f"discount_{d}"])
    return Plan(
        row["effective_on"], row["tariff"], discounts, row["cti"], row["efax"], row["flat_rate"]
    )


def accounts(conn: Connection, rows: Sequence[RowMapping]) -> list[Account]:
    ids = [r["id"] for r in rows]
    bookings: dict[int, list[Booking]] = {i: [] for i in ids}
    q = (
        select(licence_bookings)
        .where(licence_bookings.c.customer_id.in_(ids))
        .order_by(licence_bookings.c.effective_on, licence_bookings.c.id)
    )
    for b in conn.execute(q).mappings():
        bookings[b["customer_id"]].append(
            Booking(b["effective_on"], b["booked_extensions"], b["activation_fees"],
                    local_day(b["requested_at"]))
        )  # fmt: skip
    plans = {
        cid: tuple(_plan(p) for p in changes)
        for cid, changes in customers_repo.plans(conn, ids).items()
    }
    q_bo = (
        select(extensions.c.customer_id, func.count())
        .where(extensions.c.customer_id.in_(ids), extensions.c.business_option)
        .group_by(extensions.c.customer_id)
    )
    with_option = {int(c): int(n) for c, n in conn.execute(q_bo)}
    return [
        Account(
            customer_id=r["id"],
            name=r["name"],
            billing_starts_on=r["billing_starts_on"],
            contract_ends_on=r["contract_ends_on"],
            business_option_extensions=with_option.get(r["id"], 0),
            bookings=tuple(bookings[r["id"]]),
            # Every customer has its plan history (create, migration 0009); its row otherwise.
            plans=plans[r["id"]] or (_plan({**r, "effective_on": r["contract_start"]}),),
        )
        for r in rows
    ]


def month(text: str) -> date:
    """'2026-11' -> 2026-11-01."""
    year, mon = text.split("-")
    return date(int(year), int(mon), 1)


def run(conn: Connection, actor: Actor, period: date, now: datetime, batch: int = 500) -> RunResult:
    require_operator(actor)
    if invoicing.next_month(period) > local_day(now):
        raise errors.InvoicePeriodOpen(
            f"{period:%Y-%m} has not ended yet; invoices are issued for months that have ended"
        )
    lists = price_lists_repo.all_lists(conn)
    if in_force(lists, period) is None:
        raise errors.Conflict(f"no price list was in force on {period}: nothing can be billed")
    # Month order per customer: a customer invoiced for this month or a later one is done (its
    # calls went on those invoices); the others' previous invoice bounds the calls of this one.
    done: set[int] = set()
    previous: dict[int, tuple[date, datetime]] = {}
    q = select(invoices.c.customer_id, invoices.c.period, invoices.c.issued_at)
    for cid, invoiced, issued_at in conn.execute(q):
        if invoiced >= period:
            done.add(int(cid))
        elif int(cid) not in previous or previous[int(cid)][0] < invoiced:
            previous[int(cid)] = (invoiced, issued_at)
    all_rows = list(conn.execute(select(customers).order_by(customers.c.id)).mappings())
    todo = [r for r in all_rows if r["id"] not in done]
    issued = nothing = net = 0
    end = invoicing.next_month(period)
    for start in range(0, len(todo), batch):
        rows = todo[start : start + batch]
        # One query per distinct previous invoice (after a run: one for all).
        by_previous: dict[tuple[date, datetime] | None, list[int]] = defaultdict(list)
        for r in rows:
            before = previous.get(r["id"])
            by_previous[(invoicing.next_month(before[0]), before[1]) if before else None].append(
                r["id"]
            )
        calls: dict[int, list[DayCalls]] = defaultdict(list)
        for bound, ids in by_previous.items():
            for group in rating.day_calls(conn, ids, end, now, bound, lists):
                calls[group.customer_id].append(group)
        pages = faxes.pages_by_day(conn, [r["id"] for r in rows], period, end)
        values = []
        for account in accounts(conn, rows):
            cid = account.customer_id
            doc = invoicing.build(account, period, lists, calls.get(cid, []), pages.get(cid, ()))
            if not doc["lines"]:
                nothing += 1
                continue
            number = f"{period:%Y-%m}-{account.customer_id:06d}"
            doc["number"] = number
            doc["issued_at"] = now.isoformat(timespec="seconds") + "Z"
            values.append(
                {
                    "number": number,
                    "customer_id": account.customer_id,
                    "period": period,
                    "issued_at": now,
                    "net_cents": doc["net_cents"],
                    "vat_cents": doc["vat_cents"],
                    "gross_cents": doc["gross_cents"],
                    "document": json.dumps(doc),
                }
            )
            net += doc["net_cents"]
        if values:
            conn.execute(invoices.insert(), values)
            issued += len(values)
    return RunResult(period.isoformat()[:7], len(all_rows), issued, len(done), nothing, net)


def public(row: RowMapping) -> dict[str, Any]:
    doc = json.loads(row["document"])
    return {
        "id": row["id"],
        "number": row["number"],
        "customer_id": row["customer_id"],
        "period": row["period"].isoformat()[:7],
        "issued_at": row["issued_at"].isoformat(timespec="seconds") + "Z",
        "net_cents": row["net_cents"],
        "vat_cents": row["vat_cents"],
        "gross_cents": row["gross_cents"],
        "vat_percent": doc["vat_percent"],
        "customer_name": doc["customer_name"],
        "lines": doc["lines"],
        "rounding": doc["rounding"],
    }


def list_for_customer(conn: Connection, actor: Actor, customer_id: int) -> list[RowMapping]:
    _may_read(actor, customer_id)
    q = (
        select(invoices)
        .where(invoices.c.customer_id == customer_id)
        .order_by(invoices.c.period.desc())
    )
    return list(conn.execute(q).mappings())


def get(conn: Connection, actor: Actor, customer_id: int, number: str) -> RowMapping:
    _may_read(actor, customer_id)
    q = select(invoices).where(invoices.c.customer_id == customer_id, invoices.c.number == number)
    row = conn.execute(q).mappings().first()
    if row is None:
        raise errors.NotFound(f"invoice {number} not found")
    return row


def _may_read(actor: Actor, customer_id: int) -> None:
    # An ended or expired customer's admin still reads its invoices; operators read all.
    if actor.is_operator:
        return
    if actor.customer_id != customer_id:
        raise errors.CustomerScopeViolation(
            "this resource belongs to another customer; access is limited to your own customer"
        )
    if actor.role is Role.USER:
        raise errors.PermissionDenied("only a customer admin or an operator reads invoices")
