"""Billing rules R17-R18 as plain functions: activation fees by high-water mark, notice periods.
Prices are the price list's (pbx_app.pricing)."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date

from pbx_app.limits import BASE_PACKAGE_NOTICE_MONTHS


@dataclass(frozen=True)
class ActivationResult:
    fees: int
    high_water_mark: int


def activation_fee_high_water_mark(high_water_mark: int, booked_after: int) -> ActivationResult:
    """R17: an activation fee is due once per extension above the highest count ever booked.

    Worked example (R17 in docs/architecture.md): 10 booked (mark 10), 5 cancelled (5),
    3 added (8: no fee), 3 added (11): 1 fee, new mark 11.
    """
    if booked_after < 0 or high_water_mark < 0:
        raise ValueError("booked extensions cannot be negative")
    fees = max(0, booked_after - high_water_mark)
    return ActivationResult(fees=fees, high_water_mark=max(high_water_mark, booked_after))


def add_months(d: date, months: int) -> date:
    month_index = d.month - 1 + months
    year, month = d.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def base_package_term_end(contract_start: date, term_months: int, notice_given_on: date) -> date:
    """R18: the base package ends at the end of a term (terms renew by themselves) for which the
    notice arrived at least 3 months before; returns the last contract day."""
    if term_months < 1:
        raise ValueError("term must be at least one month")
    k = 1
    while True:
        term_end = add_months(contract_start, term_months * k)  # first day after the term
        if notice_given_on <= add_months(term_end, -BASE_PACKAGE_NOTICE_MONTHS):
            return date.fromordinal(term_end.toordinal() - 1)
        k += 1


def licence_cancellation_effective(notice_given_on: date) -> date:
    """R18: further licences can be cancelled monthly, effective at the end of the month."""
    last = calendar.monthrange(notice_given_on.year, notice_given_on.month)[1]
    return date(notice_given_on.year, notice_given_on.month, last)
