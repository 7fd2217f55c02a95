"""A customer's monthly invoice from its bookings, plan changes, rated calls and the price lists
(R16, R17): pure functions, no database. Days are Berlin days (pbx_app.billing_time).

Rules a customer can check on the invoice itself:
- The days charged run from ``billing_starts_on`` (the contract start, or the day a trial
  converted) to ``contract_ends_on`` (after a notice); a trial is free.
- Licences and monthly options are prorated by day: a month's price times the days over the days
  of the month. Each day is priced by the list in force on it, the extensions booked on it and
  the customer's plan of that day (tariff and discounts as they stood at its end; an option is
  charged for a day on which it was booked at any time). Days alike form one line.
- The Business Option is charged for the extensions that have it on the day of the run.
- Activation fees: in the month of the booking that reached a new high-water mark (or the first
  charged month, for bookings during a trial), at the list in force on that day.
- Fax pages (eFax): the pages of the faxes sent and received on each charged day; pages sent at
  the page price of the list in force that day, pages received included in the option.
- Calls (pbx_app.repositories.rating): each answered call to a number outside the platform, in
  whole increments of the list in force on the day it started, at the minute price of that day's
  tariff for the zone of the number dialled; nothing for a zone of that day's flat rate, nothing
  for calls on days not charged; emergency calls are never rated (no E.164 number).
- Money is in whole cents. Each line is rounded once, half up; VAT is the list's percentage of the
  net sum, rounded half up; gross is net plus VAT.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pbx_app.pricing import PriceList, PriceListDoc, in_force
from pbx_app.repositories.rating import DayCalls

ONE_CENT = Decimal(1)
CTI_RANK = {"none": 0, "standard": 1, "premium": 2}


def cents(amount: Decimal) -> int:
    """Rounds an amount in (fractional) cents to whole cents, half up."""
    return int(amount.quantize(ONE_CENT, rounding=ROUND_HALF_UP))


def month_days(period: date) -> list[date]:
    last = calendar.monthrange(period.year, period.month)[1]
    return [date(period.year, period.month, d) for d in range(1, last + 1)]


def next_month(period: date) -> date:
    return date(period.year + period.month // 12, period.month % 12 + 1, 1)


def previous_month(day: date) -> date:
    """The first day of the month before ``day``'s: the month a run on ``day`` invoices."""
    return date(day.year - (day.month == 1), (day.month - 2) % 12 + 1, 1)


@dataclass(frozen=True)
class Booking:
    effective_on: date
    booked_extensions: int
    activation_fees: int
    requested_on: date


@dataclass(frozen=True)
class Plan:
    """The customer's tariff, discounts and options from ``effective_on`` on."""

    effective_on: date
    tariff: str
    discounts: frozenset[str]
    cti: str = "none"
    efax: bool = False
    flat_rate: str | None = None


@dataclass(frozen=True)
class FaxPages:
    """Pages of the faxes a customer sent and received on one Berlin day."""

    day: date
    sent: int
    received: int


@dataclass(frozen=True)
class Account:
    customer_id: int
    name: str
    billing_starts_on: date | None
    contract_ends_on: date | None
    business_option_extensions: int
    bookings: tuple[Booking, ...]
    plans: tuple[Plan, ...]


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


def plan_of(plans: Sequence[Plan], day: date) -> Plan:
    """Tariff and discounts as they stood at the day's end; each option if booked at any time
    of the day; the flat rate last booked that day."""
    before = [p for p in plans if p.effective_on < day]
    states = ([before[-1]] if before else []) + [p for p in plans if p.effective_on == day]
    if not states:
        states = [plans[0]]
    last = states[-1]
    flats = [p.flat_rate for p in states if p.flat_rate]
    return Plan(
        day,
        last.tariff,
        last.discounts,
        max((p.cti for p in states), key=CTI_RANK.__getitem__),
        any(p.efax for p in states),
        flats[-1] if flats else None,
    )


def chargeable(account: Account, day: date) -> bool:
    start, end = account.billing_starts_on, account.contract_ends_on
    return start is not None and start <= day and (end is None or day <= end)


def _span(days: list[date]) -> str:
    return days[0].isoformat() if len(days) == 1 else f"{days[0]} to {days[-1]}"


Item = tuple[str, str, int, tuple[tuple[str, Any], ...]]


def _monthly_items(account: Account, doc: PriceListDoc, plan: Plan, booked: int) -> list[Item]:
    """(kind, text, monthly cents, detail) of the licences and of each option booked."""
    further = max(0, booked - 5)
    text = f"{plan.tariff.capitalize()} base package and {further} further extensions"
    if plan.discounts:
        text += f" ({booked} in all, discount {' and '.join(sorted(plan.discounts))})"
    else:
        text += f" ({booked} in all)"
    monthly = doc.monthly_licences_cents(plan.tariff, plan.discounts, booked)
    items: list[Item] = [("licences", text, monthly, (("booked_extensions", booked),))]
    if account.business_option_extensions:
        n = account.business_option_extensions
        items.append(("business_option", f"Business Option, {n} extensions",
                      n * doc.options.business_option_per_extension_cents, ()))  # fmt: skip
    if plan.cti == "standard":
        items.append(("cti", "CTI Standard", doc.options.cti_standard_cents, ()))
    elif plan.cti == "premium":
        items.append(("cti", "CTI Premium", doc.options.cti_premium_cents, ()))
    if plan.efax:
        items.append(("efax", "eFax", doc.options.efax_cents, ()))
    if plan.flat_rate and plan.flat_rate in doc.flat_rates:
        flat = doc.flat_rates[plan.flat_rate]
        items.append(("flat_rate", f"Flat rate {plan.flat_rate}, {booked} extensions",
                      booked * flat.per_extension_cents, ()))  # fmt: skip
    return items


def build(
    account: Account, period: date, lists: list[PriceList], calls: Iterable[DayCalls],
    fax_pages: Iterable[FaxPages] = (),
) -> dict[str, Any]:  # fmt: skip
    """The invoice document for ``period`` (the first of a month) from the account, the price
    lists and the month's usage: its calls and fax pages."""
    month_length = len(month_days(period))
    lines = _monthly_lines(account, period, lists, month_length)
    lines.extend(_activation_fees(account, period, lists))
    lines.extend(_fax_pages(account, lists, fax_pages))
    lines.extend(_calls(account, lists, calls))
    net = sum(line.amount_cents for line in lines)
    vat_list = in_force(lists, month_days(period)[-1])
    assert vat_list is not None
    vat_percent = vat_list.doc.vat_percent
    vat = cents(Decimal(net) * vat_percent / 100)
    return {
        "customer_id": account.customer_id,
        "customer_name": account.name,
        "period": period.isoformat()[:7],
        "lines": [line.__dict__ for line in lines],
        "net_cents": net,
        "vat_percent": str(vat_percent),
        "vat_cents": vat,
        "gross_cents": net + vat,
        "rounding": "each line half up to whole cents; VAT on the net sum, half up",
    }


def _monthly_lines(
    account: Account, period: date, lists: list[PriceList], month_length: int
) -> list[Line]:
    # Per item kind and text: runs of consecutive days with the same monthly price and list.
    runs: dict[tuple[str, str, int, int, tuple[tuple[str, Any], ...]], list[list[date]]] = {}
    for day in month_days(period):
        if not chargeable(account, day):
            continue
        plist = in_force(lists, day)
        assert plist is not None, f"no price list in force on {day}"
        plan = plan_of(account.plans, day)
        booked = booked_on(account.bookings, day)
        for kind, text, monthly, extra in _monthly_items(account, plist.doc, plan, booked):
            spans = runs.setdefault((kind, text, monthly, plist.id, extra), [])
            if spans and spans[-1][-1] + timedelta(days=1) == day:
                spans[-1].append(day)
            else:
                spans.append([day])
    lines = []
    for (kind, text, monthly, list_id, extra), spans in runs.items():
        for days in spans:
            lines.append(
                Line(kind, f"{text}, {_span(days)}", f"{len(days)}/{month_length} days",
                     cents(Decimal(monthly) * len(days) / month_length),
                     {**dict(extra), "monthly_cents": monthly, "days": len(days),
                      "from": days[0].isoformat(), "price_list_id": list_id})
            )  # fmt: skip
    lines.sort(key=lambda line: (line.detail["from"], line.kind))
    return lines


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


def _calls(account: Account, lists: list[PriceList], calls: Iterable[DayCalls]) -> list[Line]:
    by_id = {p.id: p for p in lists}
    # (zone, list, minute price, flat rate or None) -> [calls, billed seconds]
    totals: dict[tuple[str, int, Decimal, str | None], list[int]] = {}
    for group in calls:
        if not chargeable(account, group.day):
            continue
        doc = by_id[group.price_list_id].doc
        found = doc.zone_of(group.prefix)
        name = found.name if found is not None else "unknown"
        plan = plan_of(account.plans, group.day)
        flat = doc.flat_rates.get(plan.flat_rate or "")
        if flat is not None and name in flat.zones:
            key = (name, group.price_list_id, Decimal(0), plan.flat_rate)
        else:
            key = (
                name,
                group.price_list_id,
                doc.minute_price(plan.tariff, name) or Decimal(0),
                None,
            )
        entry = totals.setdefault(key, [0, 0])
        entry[0] += group.calls
        entry[1] += group.billed_seconds
    lines = []
    for (zone, list_id, price, flat_rate), (count, seconds) in sorted(totals.items()):
        note = f"in flat rate {flat_rate}" if flat_rate else f"{price} ct/min"
        minutes = Decimal(seconds) / 60
        lines.append(
            Line("calls", f"Calls to {zone} ({note})",
                 f"{count} calls, {minutes.normalize():f} min",
                 cents(Decimal(seconds) * price / 60),
                 {"zone": zone, "calls": count, "billed_seconds": seconds,
                  "minute_cents": str(price), "price_list_id": list_id})
        )  # fmt: skip
    return lines


def _fax_pages(
    account: Account, lists: list[PriceList], fax_pages: Iterable[FaxPages]
) -> list[Line]:
    # (price list, page price) -> [pages sent, pages received], over the charged days.
    totals: dict[tuple[int, int], list[int]] = {}
    for pages in fax_pages:
        if not chargeable(account, pages.day):
            continue
        plist = in_force(lists, pages.day)
        assert plist is not None, f"no price list in force on {pages.day}"
        entry = totals.setdefault((plist.id, plist.doc.options.fax_page_cents), [0, 0])
        entry[0] += pages.sent
        entry[1] += pages.received
    return [
        Line("fax_pages", f"Fax pages sent ({price} ct per page; {received} received, included)",
             f"{sent} x {price} ct", sent * price,
             {"pages_sent": sent, "pages_received": received, "page_cents": price,
              "price_list_id": list_id})
        for (list_id, price), (sent, received) in sorted(totals.items())
        if sent or received
    ]  # fmt: skip
