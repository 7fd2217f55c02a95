"""R16-R18 billing rules as plain functions: the fee rule, the default price list's base
package prices, notice dates."""

from __future__ import annotations

from datetime import date

import pytest

from pbx_app.billing import (
    activation_fee_high_water_mark,
    base_package_term_end,
    licence_cancellation_effective,
)
from pbx_app.pricing import DEFAULT


def test_activation_fee_worked_example_from_the_seed() -> None:
    # 10 booked, 5 cancelled, 3 added = 8, 3 added = 11 -> pay 1 fee, new mark 11.
    mark = activation_fee_high_water_mark(0, 10)
    assert (mark.fees, mark.high_water_mark) == (10, 10)
    cancelled = activation_fee_high_water_mark(mark.high_water_mark, 5)
    assert (cancelled.fees, cancelled.high_water_mark) == (0, 10)
    eight = activation_fee_high_water_mark(cancelled.high_water_mark, 8)
    assert (eight.fees, eight.high_water_mark) == (0, 10)
    eleven = activation_fee_high_water_mark(eight.high_water_mark, 11)
    assert (eleven.fees, eleven.high_water_mark) == (1, 11)


def test_activation_fee_at_the_mark_is_free() -> None:
    assert activation_fee_high_water_mark(10, 10).fees == 0
    assert activation_fee_high_water_mark(10, 11).fees == 1


def test_activation_fee_rejects_negative_counts() -> None:
    with pytest.raises(ValueError):
        activation_fee_high_water_mark(0, -1)


def test_monthly_price_includes_five_extensions_in_the_base_package() -> None:
    none: frozenset[str] = frozenset()
    assert DEFAULT.monthly_licences_cents("basic", none, 5) == 3500
    assert DEFAULT.monthly_licences_cents("basic", none, 0) == 3500
    assert DEFAULT.monthly_licences_cents("basic", none, 6) == 4180
    assert DEFAULT.monthly_licences_cents("premium", none, 5) == 5900


def test_the_seed_base_package_prices_with_mobile_and_all_ip() -> None:
    # "reduziert sich der Preis fuer das Basispaket sogar bis auf 25,20 EUR bzw. auf 50 EUR"
    assert DEFAULT.base_package_cents("basic", frozenset({"mobile"})) == 2520
    assert DEFAULT.base_package_cents("premium", frozenset({"all_ip"})) == 5000
    # Combinable, never below zero; a further extension keeps its price.
    both = frozenset({"mobile", "all_ip"})
    assert DEFAULT.base_package_cents("basic", both) == 3500 - 980 - 900
    assert DEFAULT.monthly_licences_cents("basic", frozenset({"mobile"}), 6) == 2520 + 680


def test_base_package_needs_three_months_notice() -> None:
    start = date(2026, 1, 1)
    # 24-month term ends 2027-12-31; notice on 2027-10-01 is in time (3 months before 2028-01-01)
    assert base_package_term_end(start, 24, date(2027, 10, 1)) == date(2027, 12, 31)
    # one day late: the contract runs for another term
    assert base_package_term_end(start, 24, date(2027, 10, 2)) == date(2029, 12, 31)


def test_licences_cancel_at_month_end() -> None:
    assert licence_cancellation_effective(date(2026, 11, 25)) == date(2026, 11, 30)
    assert licence_cancellation_effective(date(2028, 2, 3)) == date(2028, 2, 29)
