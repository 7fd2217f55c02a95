"""Call records as the lab's API serves them, and the check that every call a test placed got
its record (issue 13: a CDR for every call).

The proxy where a call entered writes the record when the call ends; its node's shipper delivers
it within seconds (kamailio/pbx-cdr-shipper), or later, once the database takes writes again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import httpx

from .devices import PlacedCall
from .wait import wait_for

# Final answers after which no call record exists: the digest challenge (the device gave up or
# could not authenticate), and no final answer at all (sipp timed out, nothing answered).
UNRECORDED = {"401", "407"}
DELIVERY_S = 90  # the shipper's longest backoff (30 s), a round and some slack


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def records_since(api: httpx.Client, since: str, customer_id: int | None = None) -> list[Any]:
    """Every record started since `since` (UTC text), newest first: a customer's (as its admin
    or an operator reads them) or, with no customer, the platform's (operators)."""
    path = "/call-records" if customer_id is None else f"/customers/{customer_id}/call-records"
    found: list[Any] = []
    offset: int | None = 0
    while offset is not None:
        r = api.get(path, params={"from": since, "limit": 10_000, "offset": offset})
        if r.status_code != 200:
            return []
        page = r.json()
        found += page["items"]
        offset = page["next_offset"]
    return found


def recordable(call: PlacedCall) -> bool:
    m = re.match(r"(\d{3}) ", call.status)
    return m is not None and m.group(1) not in UNRECORDED


def check_recorded(
    operator: httpx.Client, since: str, calls: Iterable[PlacedCall], timeout: float = DELIVERY_S
) -> list[str]:
    """Problems (empty: none) with the records of `calls` placed since `since`: each call the
    platform answered has exactly one record, with the answer the caller got."""
    wanted = {c.call_id: c for c in calls if recordable(c)}
    if not wanted:
        return []

    def by_call_id() -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = {}
        for record in records_since(operator, since):
            if record["call_id"] in wanted:
                found.setdefault(record["call_id"], []).append(record)
        return found

    def complete() -> dict[str, list[Any]]:
        found = by_call_id()
        return found if set(found) == set(wanted) else {}

    try:
        found = wait_for(complete, timeout, 2, f"records of {len(wanted)} call(s)")
    except AssertionError:
        found = by_call_id()
    problems = []
    for call_id, call in wanted.items():
        records = found.get(call_id, [])
        code = call.status.split(" ", 1)[0]
        if len(records) != 1:
            problems.append(f"{call.user} -> {call.target} ({call.status}): {len(records)} records")
        elif str(records[0]["sip_code"]) != code:
            problems.append(
                f"{call.user} -> {call.target} ({call.status}): recorded as "
                f"{records[0]['sip_code']} {records[0]['reason']}"
            )
    return problems
