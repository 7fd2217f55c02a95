"""The price of one call (R16): what a call record shows, by the same rule the invoice run
applies to sums in SQL (pbx_app.repositories.rating)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from pbx_app.billing_time import local_day
from pbx_app.pricing import PriceList, in_force

ONE_SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class Rated:
    zone: str
    billed_seconds: int
    cents: Decimal  # exact; rounded only on the invoice's line
    price_list_id: int
    in_flat_rate: bool


def talk_seconds(answered_at: datetime, ended_at: datetime) -> int:
    """Whole seconds, rounded up (exact: timedelta counts microseconds)."""
    talk = ended_at - answered_at
    return max(0, -(-talk // timedelta(microseconds=1) // 1_000_000))


def rate(
    resolved: str,
    started_at: datetime,
    answered_at: datetime | None,
    ended_at: datetime,
    tariff: str,
    flat_rate: str | None,
    lists: list[PriceList],
) -> Rated | None:
    """None: nothing to rate (not answered, not an external number: on-net or emergency)."""
    if answered_at is None or not resolved.startswith("+"):
        return None
    plist = in_force(lists, local_day(started_at))
    if plist is None:
        return None
    doc = plist.doc
    zone = doc.zone_of(resolved)
    name = zone.name if zone is not None else "unknown"
    billed = doc.increment.billed_seconds(talk_seconds(answered_at, ended_at))
    flat = doc.flat_rates.get(flat_rate or "")
    if flat is not None and name in flat.zones:
        return Rated(name, billed, Decimal(0), plist.id, True)
    price = doc.minute_price(tariff, name) or Decimal(0)
    return Rated(name, billed, Decimal(billed) * price / 60, plist.id, False)
