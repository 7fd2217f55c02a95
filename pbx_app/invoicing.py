"""A customer's monthly invoice from its bookings, options, rated calls and the price lists
(R16, R17): pure functions, no database.

Rules a customer can check on the invoice itself:
- Licences and monthly options are prorated by day: a month's price times the days charged over
  the days of the month. The days charged run from ``billing_starts_on`` (the contract start, or
  the day a trial converted) to ``contract_ends_on`` (after a notice). Each day is priced by the
  list in force on it and the extensions booked on it; days alike form one line.
- Options (Business Option per extension, CTI, eFax, a flat rate per booked extension) are
  charged as booked on the day of the run, over the same days.
- Activation fees: in the month of the booking that reached a new high-water mark (or the first
  charged month, for bookings during a trial), at the list in force on that day.
- Calls: each answered call to a number outside the platform is billed in whole increments of the
  list in force when it started (``increment``), at its tariff's minute price for the zone of the
  number dialled; calls to a zone of the customer's flat rate cost nothing; emergency calls are
  never rated (they carry no E.164 number).
- Money is in whole cents. Each line is rounded once, half up; VAT is the list's percentage of the
  net sum, rounded half up; gross is net plus VAT.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pbx_app.pricing import PriceList, PriceListDoc, in_force

ONE_CENT = Decimal(1)


def cents(amount: Decimal) -> int:
    """Rounds an amount in (fractional) cents to whole cents, half up."""
    return int(amount.quantize(ONE_CENT, rounding=ROUND_HALF_UP))


def month_days(period: date) -> list[date]:
    last = calendar.monthrange(period.year, period.month)[1]
    return [date(period.year, period.month, d) for d in range(1, last + 1)]


def next_month(period: date) -> date:
    return date(period.year + period.month // 12, period.month % 12 + 1, 1)


@dataclass(frozen=True)
class Booking:
    effective_on: date
    booked_extensions: int
    activation_fees: int
    requested_on: date


@dataclass(frozen=True)
class CallGroup:
    """Answered external calls of one zone under one price list: their count and billed
    seconds (already in whole increments of that list)."""

    zone: str
    price_list_id: int
    calls: int
    billed_seconds: int


@dataclass(frozen=True)
class Account:
    customer_id: int
    name: str
    tariff: str
    discounts: frozenset[str]
    billing_starts_on: date | None
    contract_ends_on: date | None
    business_option_extensions: int
    cti: str
    efax: bool
    flat_rate: str | None
    bookings: tuple[Booking, ...]


@dataclass
class Line:
    kind: str
    text: str
    quantity: str
    amount_cents: int
    detail: dict[str, Any] = field(default_factory=dict)


def booked_on(bookings: Iterable[Booking], day: date) -> int:
    """The bookings are in order of effective day and request; the last in force counts."""
    count = 0
    for b in bookings:
        if b.effective_on <= day:
            count = b.booked_extensions
    return count


def charged_days(account: Account, period: date) -> list[date]:
    start = account.billing_starts_on
    if start is None:
        return []
    end = account.contract_ends_on
    return [d for d in month_days(period) if d >= start and (end is None or d <= end)]


def _segments(
    account: Account, days: list[date], lists: list[PriceList]
) -> list[tuple[list[date], PriceList, int]]:
    """Runs of consecutive days with the same price list and booked extensions."""
    runs: list[tuple[list[date], PriceList, int]] = []
    for day in days:
        plist = in_force(lists, day)
        assert plist is not None, f"no price list in force on {day}"
        booked = booked_on(account.bookings, day)
        last = runs[-1] if runs else None
        if last and last[1].id == plist.id and last[2] == booked and _follows(last[0], day):
            last[0].append(day)
            continue
        runs.append(([day], plist, booked))
    return runs


def _follows(days: list[date], day: date) -> bool:
    return days[-1] + timedelta(days=1) == day


def _span(days: list[date]) -> str:
    return f"{days[0].isoformat()} to {days[-1].isoformat()}"


def _monthly_options(
    account: Account, doc: PriceListDoc, booked: int
) -> list[tuple[str, str, int]]:
    """(kind, text, monthly cents) of each option booked."""
    options = []
    if account.business_option_extensions:
        n = account.business_option_extensions
        options.append(
            ("business_option", f"Business Option, {n} extensions",
             n * doc.options.business_option_per_extension_cents)
        )  # fmt: skip
    if account.cti == "standard":
        options.append(("cti", "CTI Standard", doc.options.cti_standard_cents))
    elif account.cti == "premium":
        options.append(("cti", "CTI Premium", doc.options.cti_premium_cents))
    if account.efax:
        options.append(("efax", "eFax", doc.options.efax_cents))
    if account.flat_rate and account.flat_rate in doc.flat_rates:
        flat = doc.flat_rates[account.flat_rate]
        options.append(
            ("flat_rate", f"Flat rate {account.flat_rate}, {booked} extensions",
             booked * flat.per_extension_cents)
        )  # fmt: skip
    return options


def build(
    account: Account, period: date, lists: list[PriceList], calls: Iterable[CallGroup]
) -> dict[str, Any]:
    """The invoice document for ``period`` (the first of a month)."""
    month_length = len(month_days(period))
    lines: list[Line] = []
    days = charged_days(account, period)
    for run, plist, booked in _segments(account, days, lists):
        n_days = len(run)
        doc = plist.doc
        monthly = doc.monthly_licences_cents(account.tariff, account.discounts, booked)
        lines.append(
            Line(
                "licences",
                f"Base package and {max(0, booked - 5)} further extensions "
                f"({booked} in all), {_span(run)}",
                f"{len(run)}/{month_length} days",
                cents(Decimal(monthly) * n_days / month_length),
                {"booked_extensions": booked, "monthly_cents": monthly, "days": len(run),
                 "price_list_id": plist.id},
            )
        )  # fmt: skip
        for kind, text, option_monthly in _monthly_options(account, doc, booked):
            lines.append(
                Line(kind, f"{text}, {_span(run)}", f"{len(run)}/{month_length} days",
                     cents(Decimal(option_monthly) * n_days / month_length),
                     {"monthly_cents": option_monthly, "days": len(run),
                      "price_list_id": plist.id})
            )  # fmt: skip
    lines.extend(_activation_fees(account, period, lists))
    lines.extend(_calls(account, lists, calls))
    net = sum(line.amount_cents for line in lines)
    last_day = month_days(period)[-1]
    vat_list = in_force(lists, last_day)
    assert vat_list is not None
    vat_percent = vat_list.doc.vat_percent
    vat = cents(Decimal(net) * vat_percent / 100)
    return {
        "customer_id": account.customer_id,
        "customer_name": account.name,
        "period": period.isoformat()[:7],
        "tariff": account.tariff,
        "discounts": sorted(account.discounts),
        "lines": [line.__dict__ for line in lines],
        "net_cents": net,
        "vat_percent": str(vat_percent),
        "vat_cents": vat,
        "gross_cents": net + vat,
        "rounding": "each line half up to whole cents; VAT on the net sum, half up",
    }


def _activation_fees(account: Account, period: date, lists: list[PriceList]) -> list[Line]:
    if account.billing_starts_on is None:
        return []
    lines = []
    end = next_month(period)
    for b in account.bookings:
        charged_on = max(b.requested_on, account.billing_starts_on)
        if b.activation_fees and period <= charged_on < end:
            plist = in_force(lists, charged_on)
            assert plist is not None
            fee = plist.doc.activation_fee_cents
            lines.append(
                Line("activation_fees", f"Activation fees, booking of {b.requested_on}",
                     f"{b.activation_fees} x {fee} ct", b.activation_fees * fee,
                     {"fees": b.activation_fees, "fee_cents": fee,
                      "booked_extensions": b.booked_extensions, "price_list_id": plist.id})
            )  # fmt: skip
    return lines


def _calls(account: Account, lists: list[PriceList], calls: Iterable[CallGroup]) -> list[Line]:
    by_id = {p.id: p for p in lists}
    lines = []
    for group in sorted(calls, key=lambda g: (g.price_list_id, g.zone)):
        doc = by_id[group.price_list_id].doc
        flat = doc.flat_rates.get(account.flat_rate or "")
        minutes = Decimal(group.billed_seconds) / 60
        if flat is not None and group.zone in flat.zones:
            price = Decimal(0)
            note = f"in flat rate {account.flat_rate}"
        else:
            listed = doc.minute_price(account.tariff, group.zone)
            price = listed if listed is not None else Decimal(0)
            note = f"{price} ct/min"
        lines.append(
            Line("calls", f"Calls to {group.zone} ({note})",
                 f"{group.calls} calls, {minutes.normalize():f} min",
                 cents(Decimal(group.billed_seconds) * price / 60),
                 {"zone": group.zone, "calls": group.calls,
                  "billed_seconds": group.billed_seconds,
                  "minute_cents": str(price), "price_list_id": group.price_list_id})
        )  # fmt: skip
    return lines
