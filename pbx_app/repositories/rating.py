"""Rating in the database: answered calls to numbers outside the platform, summed per customer,
number prefix and price list, so an invoice run reads a few rows per customer however many calls
it had (pbx_app.invoicing prices them).

A call's talk time is counted in whole seconds, rounded up, and billed in whole increments of
the list in force when it started (pbx_app.pricing.Increment). Periods and list days are UTC
days. pbx_app.rating.rate is the same rule for one call (tests/app/test_invoicing.py holds the
two together).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import Connection, bindparam, text

from pbx_app.invoicing import CallGroup
from pbx_app.pricing import PriceList

# Talk time in whole seconds, rounded up: exact on PostgreSQL (interval arithmetic in
# microseconds); SQLite (tests, development) counts from the millisecond.
_TALK_SECONDS = {
    "postgresql": "CAST(CEIL(EXTRACT(EPOCH FROM (ended_at - answered_at))) AS BIGINT)",
    "sqlite": "((CAST(ROUND((julianday(ended_at) - julianday(answered_at)) * 86400000) "
    "AS INTEGER) + 999) / 1000)",
}


def _sql(dialect: str, some_customers: bool) -> str:
    talk = _TALK_SECONDS[dialect]
    billed = (
        f"CASE WHEN {talk} <= 0 THEN 0 WHEN {talk} <= :first THEN :first "
        f"ELSE :first + (({talk} - :first + :next - 1) / :next) * :next END"
    )
    only = "AND customer_id IN :customers" if some_customers else ""
    # Only this module's constant SQL is put in; every value is a bound parameter.
    return f"""
        SELECT customer_id, substr(resolved, 1, :prefix_length) AS prefix,
               COUNT(*) AS calls, SUM({billed}) AS billed_seconds
        FROM call_records
        WHERE answered_at IS NOT NULL AND customer_id IS NOT NULL AND resolved LIKE '+%'
          AND started_at >= :since AND started_at < :until {only}
        GROUP BY 1, 2
    """  # noqa: S608


def call_groups(
    conn: Connection,
    since: date,
    until: date,
    lists: list[PriceList],
    customers: Iterable[int] | None = None,
) -> dict[int, list[CallGroup]]:
    """Answered external calls that started in [since, until), by customer."""
    wanted = None if customers is None else sorted(set(customers))
    ordered = sorted(lists, key=lambda p: p.valid_from)
    totals: dict[tuple[int, str, int], list[int]] = defaultdict(lambda: [0, 0])
    for index, plist in enumerate(ordered):
        start = max(since, plist.valid_from)
        end = min(until, ordered[index + 1].valid_from) if index + 1 < len(ordered) else until
        if start >= end:
            continue
        doc = plist.doc
        length = max(len(p) for z in doc.zones for p in z.prefixes)
        statement = text(_sql(conn.dialect.name, wanted is not None))
        if wanted is not None:
            statement = statement.bindparams(bindparam("customers", expanding=True))
        params: dict[str, object] = {
            "prefix_length": length,
            "first": doc.increment.first_seconds,
            "next": doc.increment.next_seconds,
            "since": datetime.combine(start, datetime.min.time()),
            "until": datetime.combine(end, datetime.min.time()),
        }
        if wanted is not None:
            params["customers"] = wanted
        zones: dict[str, str] = {}
        for row in conn.execute(statement, params):
            prefix = str(row.prefix)
            if prefix not in zones:
                zone = doc.zone_of(prefix)
                zones[prefix] = zone.name if zone is not None else "unknown"
            entry = totals[(int(row.customer_id), zones[prefix], plist.id)]
            entry[0] += int(row.calls)
            entry[1] += int(row.billed_seconds or 0)
    result: dict[int, list[CallGroup]] = defaultdict(list)
    for (customer_id, zone_name, list_id), (calls, seconds) in sorted(totals.items()):
        result[customer_id].append(CallGroup(zone_name, list_id, calls, seconds))
    return dict(result)
