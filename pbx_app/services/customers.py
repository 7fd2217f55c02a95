"""Customers (tenants): tariff, discounts and options, contract and notice (R18), trial (R19),
licences and activation fees (R16, R17).

Licences: an increase is in force at once (and charged from that day); a cancellation of
further licences takes effect at the end of the month (R18), so the customer pays for the
licences until then, but may no longer fill them (extensions beyond the new count are refused
already, and so is the cancellation while they exist). Every booking is kept with the day it
takes effect (licence_bookings): invoices prorate by it (pbx_app.invoicing).

Activation fees (R17) count every booked extension, the base package's 5 included: the seed's
example books 10 in month 1 and pays 10 fees. The mark is the highest count ever booked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, RowMapping

from pbx_app import billing, errors
from pbx_app.billing_time import local_day
from pbx_app.limits import (
    BASE_PACKAGE_EXTENSIONS,
    MAX_EXTENSIONS_PER_CUSTOMER,
    TRIAL_PERIOD,
    devices_phrase,
    max_devices_per_extension,
)
from pbx_app.pricing import PriceListDoc
from pbx_app.repositories import customers as repo
from pbx_app.repositories import extensions as extensions_repo
from pbx_app.repositories import price_lists as price_lists_repo
from pbx_app.services import head_numbers
from pbx_app.services.access import Actor, authorize, require_operator, trial_expired


@dataclass(frozen=True)
class NewCustomer:
    name: str
    tariff: str
    contract_start: date
    term_months: int = 24
    business_option: bool = False
    trial: bool = False
    booked_licences: int = 0
    sip_domain: str | None = None
    srtp_required: bool = False
    discounts: tuple[str, ...] = ()
    cti: str = "none"
    efax: bool = False
    flat_rate: str | None = None
    service_numbers_allowed: bool = False


def discounts(customer: RowMapping) -> frozenset[str]:
    return frozenset(name for name in ("mobile", "all_ip") if customer[f"discount_{name}"])


def public(conn: Connection, customer: RowMapping, now: datetime) -> dict[str, Any]:
    booked = BASE_PACKAGE_EXTENSIONS + customer["booked_licences"]
    prices = price_lists_repo.in_force(conn, local_day(now)).doc
    monthly = prices.monthly_licences_cents(customer["tariff"], discounts(customer), booked)
    return {
        "id": customer["id"],
        "name": customer["name"],
        "tariff": customer["tariff"],
        "business_option": customer["business_option"],
        "srtp_required": customer["srtp_required"],
        "sip_domain": customer["sip_domain"],
        "contract_start": customer["contract_start"].isoformat(),
        "term_months": customer["term_months"],
        "trial": customer["trial_ends_at"] is not None,
        "trial_ends_at": customer["trial_ends_at"].isoformat() + "Z"
        if customer["trial_ends_at"]
        else None,
        "trial_expired": trial_expired(customer, now),
        "booked_licences": customer["booked_licences"],
        "booked_extensions": booked,
        "extension_count": customer["extension_count"],
        "head_number_count": customer["head_number_count"],
        "activation_high_water_mark": customer["activation_high_water_mark"],
        "monthly_price_eur": f"{monthly // 100}.{monthly % 100:02d}",
        "monthly_licences_cents": monthly,
        "default_caller_id": customer["default_caller_id"],
        "discounts": sorted(discounts(customer)),
        "cti": customer["cti"],
        "efax": customer["efax"],
        "flat_rate": customer["flat_rate"],
        "time_zone": customer["time_zone"],
        "language": customer["language"],
        "service_numbers_allowed": customer["service_numbers_allowed"],
        "billing_starts_on": _iso(customer["billing_starts_on"]),
        "notice_given_on": _iso(customer["notice_given_on"]),
        "contract_ends_on": _iso(customer["contract_ends_on"]),
    }


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _check_tariff(prices: PriceListDoc, tariff: str) -> None:
    if tariff not in prices.tariffs:
        known = ", ".join(prices.tariffs)
        raise errors.Conflict(f"unknown tariff {tariff!r}; known: {known}")


def _check_flat_rate(prices: PriceListDoc, flat_rate: str | None) -> None:
    if flat_rate is not None and flat_rate not in prices.flat_rates:
        known = ", ".join(prices.flat_rates) or "none"
        raise errors.OptionUnknown(
            f"flat_rate: {flat_rate!r} is not in the price list in force (known: {known})",
            field="flat_rate",
        )


def _check_licences(booked_licences: int, in_use: int) -> None:
    if booked_licences < 0:
        raise errors.LicenceCountInvalid("booked licences cannot be negative")
    if BASE_PACKAGE_EXTENSIONS + booked_licences > MAX_EXTENSIONS_PER_CUSTOMER:
        raise errors.ExtensionLimitReached(
            f"at most {MAX_EXTENSIONS_PER_CUSTOMER} extensions per customer (R14): at most "
            f"{MAX_EXTENSIONS_PER_CUSTOMER - BASE_PACKAGE_EXTENSIONS} licences on top of the base "
            "package"
        )
    if BASE_PACKAGE_EXTENSIONS + booked_licences < in_use:
        raise errors.LicenceCountInvalid(
            f"{in_use} extensions exist; delete extensions before cancelling their licences (R16)"
        )


def create(conn: Connection, actor: Actor, new: NewCustomer, now: datetime) -> RowMapping:
    require_operator(actor)
    prices = price_lists_repo.in_force(conn, local_day(now)).doc
    _check_tariff(prices, new.tariff)
    _check_flat_rate(prices, new.flat_rate)
    _check_licences(new.booked_licences, 0)
    booked = BASE_PACKAGE_EXTENSIONS + new.booked_licences
    # R17: every booked extension counts towards the mark, the base package's 5 as well.
    fees = billing.activation_fee_high_water_mark(0, booked)
    customer_id = repo.insert(
        conn,
        {
            "name": new.name,
            "tariff": new.tariff,
            "business_option": new.business_option,
            "srtp_required": new.srtp_required,
            "sip_domain": new.sip_domain,
            "contract_start": new.contract_start,
            "term_months": new.term_months,
            "trial_ends_at": now + TRIAL_PERIOD if new.trial else None,
            "booked_licences": new.booked_licences,
            "activation_high_water_mark": fees.high_water_mark,
            "activation_fees_charged": fees.fees,
            "extension_count": 0,
            "head_number_count": 0,
            "created_at": now,
            "discount_mobile": "mobile" in new.discounts,
            "discount_all_ip": "all_ip" in new.discounts,
            "cti": new.cti,
            "efax": new.efax,
            "flat_rate": new.flat_rate,
            "service_numbers_allowed": new.service_numbers_allowed,
            # A trial is free; its conversion sets the first charged day (update()).
            "billing_starts_on": None if new.trial else new.contract_start,
        },
    )
    repo.insert_booking(conn, customer_id, new.contract_start, booked, fees.fees, now)
    _record_billing(conn, customer_id, "created", 0, booked, fees.fees, prices, now)
    row = repo.get(conn, customer_id)
    assert row is not None
    repo.insert_plan(conn, row, new.contract_start, now)
    return row


def _record_billing(
    conn: Connection,
    customer_id: int,
    kind: str,
    before: int,
    after: int,
    fees: int,
    prices: PriceListDoc,
    now: datetime,
) -> None:
    repo.insert_billing_event(
        conn,
        {
            "customer_id": customer_id,
            "kind": kind,
            "booked_before": before,
            "booked_after": after,
            "activation_fees": fees,
            "amount_eur": Decimal(prices.activation_fee_cents * fees) / 100,
            "at": now,
        },
    )


def get(conn: Connection, actor: Actor, customer_id: int, now: datetime) -> RowMapping:
    return authorize(conn, actor, customer_id, now)


def list_visible(
    conn: Connection, actor: Actor, now: datetime, limit: int, offset: int
) -> list[RowMapping]:
    if actor.is_operator:
        return repo.list_all(conn, limit, offset)
    assert actor.customer_id is not None
    return [authorize(conn, actor, actor.customer_id, now)]


# What a customer's admin may change on its own customer (every other field is the operator's).
ADMIN_FIELDS = frozenset(
    {
        "default_caller_id",
        "cti",
        "efax",
        "flat_rate",
        "service_numbers_allowed",
        "time_zone",
        "language",
    }
)


def update(
    conn: Connection, actor: Actor, customer_id: int, changes: dict[str, Any], now: datetime
) -> RowMapping:
    """Operator changes: name, tariff, discounts, Business Option, SRTP policy, trial
    conversion. The customer's admin may change the rest too: the default caller ID (a number
    the customer holds) and the options it books (CTI, eFax, flat rate, service numbers)."""
    if changes and set(changes) <= ADMIN_FIELDS:
        authorize(conn, actor, customer_id, now, write=True)
    else:
        require_operator(actor)
    prices = price_lists_repo.in_force(conn, local_day(now)).doc
    customer = repo.get(conn, customer_id, for_update=True)
    if customer is None:
        raise errors.NotFound(f"customer {customer_id} not found")
    values: dict[str, Any] = {}
    if "default_caller_id" in changes:
        number = changes["default_caller_id"]
        if number is not None:
            head_numbers.require_held(conn, customer_id, number, "default_caller_id")
        values["default_caller_id"] = number
    if "name" in changes:
        values["name"] = changes["name"]
    if "tariff" in changes:
        _check_tariff(prices, changes["tariff"])
        values["tariff"] = changes["tariff"]
    if "discounts" in changes:
        values["discount_mobile"] = "mobile" in changes["discounts"]
        values["discount_all_ip"] = "all_ip" in changes["discounts"]
    if "flat_rate" in changes:
        _check_flat_rate(prices, changes["flat_rate"])
        values["flat_rate"] = changes["flat_rate"]
    for option in ("cti", "efax", "service_numbers_allowed", "time_zone", "language"):
        if option in changes:
            values[option] = changes[option]
    if "business_option" in changes:
        # The option is booked per extension (extensions.business_option); the customer's
        # flag is what new extensions get, and changing it books or cancels it for all of them.
        allowed = max_devices_per_extension(business_option=False)
        if (
            not changes["business_option"]
            and extensions_repo.max_device_count(conn, customer_id) > allowed
        ):
            raise errors.DeviceLimitReached(
                f"without the Business Option an extension has {devices_phrase(allowed)} (R4); "
                "remove extra devices before cancelling the option"
            )
        values["business_option"] = changes["business_option"]
        extensions_repo.set_business_option_all(conn, customer_id, changes["business_option"])
    if "srtp_required" in changes:
        values["srtp_required"] = bool(changes["srtp_required"])
    if changes.get("trial") is False and customer["trial_ends_at"] is not None:
        values["trial_ends_at"] = None
        # R19: charged from the day it converts (or from the contract's start, if later).
        values["billing_starts_on"] = max(local_day(now), customer["contract_start"])
    if values:
        repo.update_fields(conn, customer_id, values)
    row = repo.get(conn, customer_id)
    assert row is not None
    if any(row[f] != customer[f] for f in repo.PLAN_FIELDS):
        # Billed from today (or the contract's first day): each day by the plan of that day.
        repo.insert_plan(conn, row, max(local_day(now), customer["contract_start"]), now)
    return row


@dataclass(frozen=True)
class LicenceChange:
    booked_extensions_before: int
    booked_extensions_after: int
    effective_on: str
    activation_fees: int
    activation_fee_eur: str
    high_water_mark: int


def set_booked_licences(
    conn: Connection, actor: Actor, customer_id: int, booked_licences: int, now: datetime
) -> LicenceChange:
    customer = authorize(conn, actor, customer_id, now, write=True)
    if actor.role.value == "user":
        raise errors.PermissionDenied("only a customer admin or an operator may book licences")
    _check_licences(booked_licences, customer["extension_count"])
    prices = price_lists_repo.in_force(conn, local_day(now)).doc
    # Before a contract starts, its bookings count from its first day.
    today = max(local_day(now), customer["contract_start"])
    # A booking not in force yet (a cancellation for the 1st of next month) gives way to this one.
    repo.delete_pending_bookings(conn, customer_id, today)
    billed = repo.booked_on(conn, customer_id, today)
    after = BASE_PACKAGE_EXTENSIONS + booked_licences
    # Fewer than today's: from the 1st of next month (R18); as many or more, or any change
    # before the contract starts (nothing billed yet): from today.
    cancels = after < billed and local_day(now) >= customer["contract_start"]
    effective = billing.licence_cancellation_effective(today) if cancels else None
    effective_on = today if effective is None else date.fromordinal(effective.toordinal() + 1)
    fees = billing.activation_fee_high_water_mark(customer["activation_high_water_mark"], after)
    repo.insert_booking(conn, customer_id, effective_on, after, fees.fees, now)
    repo.update_fields(
        conn,
        customer_id,
        {
            # The count extensions may fill: the new one at once, also ahead of a cancellation.
            "booked_licences": booked_licences,
            "activation_high_water_mark": fees.high_water_mark,
            "activation_fees_charged": customer["activation_fees_charged"] + fees.fees,
        },
    )
    _record_billing(conn, customer_id, "licences", billed, after, fees.fees, prices, now)
    fee_cents = prices.activation_fee_cents * fees.fees
    return LicenceChange(
        booked_extensions_before=billed,
        booked_extensions_after=after,
        effective_on=effective_on.isoformat(),
        activation_fees=fees.fees,
        activation_fee_eur=f"{fee_cents // 100}.{fee_cents % 100:02d}",
        high_water_mark=fees.high_water_mark,
    )


def give_notice(
    conn: Connection, actor: Actor, customer_id: int, given_on: date | None, now: datetime
) -> RowMapping:
    """R18: the base package ends at the end of the first term that is still 3 months or more
    away on the day the notice arrives (terms renew by themselves); with it go all licences."""
    customer = authorize(conn, actor, customer_id, now, write=True)
    if customer["notice_given_on"] is not None:
        raise errors.NoticeAlreadyGiven(
            f"notice was given on {customer['notice_given_on']}; the contract ends on "
            f"{customer['contract_ends_on']}"
        )
    day = local_day(now)
    if given_on is not None and given_on != day:
        if not actor.is_operator:
            raise errors.PermissionDenied("only an operator may record a notice on another day")
        if given_on > day:
            raise errors.NoticeDateInvalid(
                f"given_on {given_on} lies in the future: a notice is recorded when it arrived",
                field="given_on",
            )
        day = given_on
    ends = billing.base_package_term_end(customer["contract_start"], customer["term_months"], day)
    repo.update_fields(conn, customer_id, {"notice_given_on": day, "contract_ends_on": ends})
    row = repo.get(conn, customer_id)
    assert row is not None
    return row


def withdraw_notice(conn: Connection, actor: Actor, customer_id: int, now: datetime) -> RowMapping:
    """An operator may take a notice back while the contract still runs."""
    require_operator(actor)
    customer = authorize(conn, actor, customer_id, now, write=True)
    if customer["contract_ends_on"] is not None and customer["contract_ends_on"] < local_day(now):
        raise errors.ContractEnded(f"the contract ended on {customer['contract_ends_on']}")
    repo.update_fields(conn, customer_id, {"notice_given_on": None, "contract_ends_on": None})
    row = repo.get(conn, customer_id)
    assert row is not None
    return row
