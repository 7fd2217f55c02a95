"""Customers (tenants): tariff, contract, trial (R19), licences and activation fees (R16, R17)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, RowMapping

from pbx_app import billing, errors
from pbx_app.limits import (
    BASE_PACKAGE_EXTENSIONS,
    MAX_EXTENSIONS_PER_CUSTOMER,
    TRIAL_PERIOD,
    devices_phrase,
    max_devices_per_extension,
)
from pbx_app.repositories import customers as repo
from pbx_app.repositories import extensions as extensions_repo
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


def public(customer: RowMapping, now: datetime) -> dict[str, Any]:
    booked = BASE_PACKAGE_EXTENSIONS + customer["booked_licences"]
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
        "monthly_price_eur": str(billing.monthly_price(customer["tariff"], booked)),
        "default_caller_id": customer["default_caller_id"],
    }


def _check_tariff(tariff: str) -> None:
    if tariff not in billing.TARIFFS:
        raise errors.Conflict(f"unknown tariff {tariff!r}; known: {', '.join(billing.TARIFFS)}")


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
    _check_tariff(new.tariff)
    _check_licences(new.booked_licences, 0)
    booked = BASE_PACKAGE_EXTENSIONS + new.booked_licences
    # The base package is always booked; its 5 extensions start the high-water mark (R17).
    fees = billing.activation_fee_high_water_mark(BASE_PACKAGE_EXTENSIONS, booked)
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
        },
    )
    _record_billing(conn, customer_id, "created", BASE_PACKAGE_EXTENSIONS, booked, fees.fees, now)
    row = repo.get(conn, customer_id)
    assert row is not None
    return row


def _record_billing(
    conn: Connection, customer_id: int, kind: str, before: int, after: int, fees: int, now: datetime
) -> None:
    repo.insert_billing_event(
        conn,
        {
            "customer_id": customer_id,
            "kind": kind,
            "booked_before": before,
            "booked_after": after,
            "activation_fees": fees,
            "amount_eur": billing.ACTIVATION_FEE_EUR * fees,
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


def update(
    conn: Connection, actor: Actor, customer_id: int, changes: dict[str, Any], now: datetime
) -> RowMapping:
    """Operator changes: name, tariff, Business Option, SRTP policy, trial conversion; and the
    default caller ID, which the customer's admin may set too (a number the customer holds)."""
    if changes and set(changes) <= {"default_caller_id"}:
        authorize(conn, actor, customer_id, now, write=True)
    else:
        require_operator(actor)
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
        _check_tariff(changes["tariff"])
        values["tariff"] = changes["tariff"]
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
    if changes.get("trial") is False:
        values["trial_ends_at"] = None
    if values:
        repo.update_fields(conn, customer_id, values)
    row = repo.get(conn, customer_id)
    assert row is not None
    return row


@dataclass(frozen=True)
class LicenceChange:
    booked_extensions_before: int
    booked_extensions_after: int
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
    before = BASE_PACKAGE_EXTENSIONS + customer["booked_licences"]
    after = BASE_PACKAGE_EXTENSIONS + booked_licences
    fees = billing.activation_fee_high_water_mark(customer["activation_high_water_mark"], after)
    repo.update_fields(
        conn,
        customer_id,
        {
            "booked_licences": booked_licences,
            "activation_high_water_mark": fees.high_water_mark,
            "activation_fees_charged": customer["activation_fees_charged"] + fees.fees,
        },
    )
    _record_billing(conn, customer_id, "licences", before, after, fees.fees, now)
    return LicenceChange(
        booked_extensions_before=before,
        booked_extensions_after=after,
        activation_fees=fees.fees,
        activation_fee_eur=str(billing.ACTIVATION_FEE_EUR * fees.fees),
        high_water_mark=fees.high_water_mark,
    )
