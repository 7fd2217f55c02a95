"""Rating in the database: answered calls to numbers outside the platform, summed per charged
customer, number prefix, price list and Berlin day, so an invoice run reads a few rows per
customer and day however many calls it had (pbx_app.invoicing prices them by the customer's plan
of that day).

- The charged customer: the one whose rule forwarded the call out (a diverted call: the called
  customer), else the call's customer (the calling device's, or the called one for calls from
  the carrier).
- Talk time in whole seconds, rounded up, billed in whole increments of the list in force on the
  day the call started (pbx_app.pricing.Increment); pbx_app.rating.rate is the same rule for one
  call (tests/app/test_invoicing.py holds the two together).
- Which invoice bills a call: the first one, in month order, of a month that ended after the
  call started and issued after its record arrived (``received_at``). A record a node delivered
  late (a site cut off, a call over midnight) goes on the next invoice, never on none and never
  on two.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, bindparam, text

from pbx_app.billing_time import local_day_of_bucket, utc_start
from pbx_app.pricing import PriceList

# Talk time in whole seconds, rounded up: exact on PostgreSQL (interval arithmetic in
# microseconds); SQLite (tests, development) counts from the millisecond.
_TALK_SECONDS = {
    "postgresql": "CAST(CEIL(EXTRACT(EPOCH FROM (ended_at - answered_at))) AS BIGINT)",
    "sqlite": "((CAST(ROUND((julianday(ended_at) - julianday(answered_at)) * 86400000) "
    "AS INTEGER) + 999) / 1000)",
}
# The UTC date of started_at + 1 hour, and whether it started in the UTC hour 22: together they
# give the Berlin day (pbx_app.billing_time.local_day_of_bucket).
_DAY = {
    "postgresql": "CAST(started_at + INTERVAL '1 hour' AS DATE)",
    "sqlite": "date(started_at, '+1 hours')",
}
_LATE = {
    "postgresql": "CASE WHEN EXTRACT(HOUR FROM started_at) = 22 THEN 1 ELSE 0 END",
    "sqlite": "CASE WHEN CAST(strftime('%H', started_at) AS INTEGER) = 22 THEN 1 ELSE 0 END",
}
EPOCH = datetime(1970, 1, 1)
CHARGED = (
    "CASE WHEN diversions > 0 AND callee_customer_id IS NOT NULL "
    "THEN callee_customer_id ELSE customer_id END"
)


@dataclass(frozen=True)
class DayCalls:
    """Answered external calls of one charged customer to one number prefix on one Berlin day,
    billed under one price list."""

    customer_id: int
    prefix: str
    day: date
    price_list_id: int
    calls: int
    billed_seconds: int


def _sql(dialect: str) -> str:
    talk = _TALK_SECONDS[dialect]
    billed = (
        f"CASE WHEN {talk} <= 0 THEN 0 WHEN {talk} <= :first THEN :first "
        f"ELSE :first + (({talk} - :first + :next - 1) / :next) * :next END"
    )
    # Only this module's constant SQL is put in; every value is a bound parameter.
    return f"""
        SELECT {CHARGED} AS charged, substr(resolved, 1, :prefix_length) AS prefix,
               {_DAY[dialect]} AS day, {_LATE[dialect]} AS late,
               COUNT(*) AS calls, SUM({billed}) AS billed_seconds
        FROM call_records
        WHERE received_at >= :received_from AND received_at <= :received_until
          AND answered_at IS NOT NULL AND resolved LIKE '+%'
          AND started_at >= :started_from AND started_at < :started_until
          AND NOT (started_at < :billed_until AND received_at <= :billed_at)
          AND {CHARGED} IN :customers
        GROUP BY 1, 2, 3, 4
    """  # noqa: S608


def day_calls(
    conn: Connection,
    customers: Iterable[int],
    period_end: date,
    now: datetime,
    previous: tuple[date, datetime] | None,
    lists: list[PriceList],
) -> list[DayCalls]:
    """The calls an invoice issued at ``now`` for the month ending at the Berlin day
    ``period_end`` bills to ``customers``, whose previous invoice (the same for all of them)
    was for the month ending at ``previous[0]``, issued at ``previous[1]`` (None: no invoice
    before). Records arrive after their call started, so none of these arrived before the
    previous month's end: the index on received_at reads about a month, not the whole table."""
    wanted = sorted(set(customers))
    if not wanted:
        return []
    ordered = sorted(lists, key=lambda p: p.valid_from)
    statement = text(_sql(conn.dialect.name)).bindparams(bindparam("customers", expanding=True))
    found: dict[tuple[int, str, date, int], list[int]] = defaultdict(lambda: [0, 0])
    billed_until, billed_at = (utc_start(previous[0]), previous[1]) if previous else (EPOCH, EPOCH)
    for index, plist in enumerate(ordered):
        # The list bills the calls that started on its days (Berlin), before the month's end.
        start = utc_start(plist.valid_from)
        last = ordered[index + 1].valid_from if index + 1 < len(ordered) else period_end
        end = utc_start(min(last, period_end))
        if start >= end:
            continue
        doc = plist.doc
        params = {
            "prefix_length": max(len(p) for z in doc.zones for p in z.prefixes),
            "first": doc.increment.first_seconds,
            "next": doc.increment.next_seconds,
            "received_from": billed_until,
            "received_until": now,
            "billed_until": billed_until,
            "billed_at": billed_at,
            "started_from": start,
            "started_until": end,
            "customers": wanted,
        }
        for row in conn.execute(statement, params):
            day = row.day if isinstance(row.day, date) else date.fromisoformat(str(row.day))
            key = (int(row.charged), str(row.prefix), local_day_of_bucket(day, bool(row.late)),
                   plist.id)  # fmt: skip
            found[key][0] += int(row.calls)
            found[key][1] += int(row.billed_seconds or 0)
    return [DayCalls(c, p, d, i, n, s) for (c, p, d, i), (n, s) in sorted(found.items())]
