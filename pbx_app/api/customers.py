"""Customers (tenants), licences (R16) and activation fees (R17)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import Field

from pbx_app.api.deps import (
    E164,
    Ctx,
    CurrentActor,
    Id,
    IsoDate,
    Limit,
    LongName,
    Offset,
    SafeText,
    exactly,
    now,
)
from pbx_app.api.errors import AUTHENTICATED, JSON_BODY, NOT_FOUND, error_responses
from pbx_app.api.models import Body, Customer, Items, LicenceChange
from pbx_app.pricing import CtiLevel, DiscountName, TariffName
from pbx_app.provisioning_formats import LanguageCode, TimeZoneName
from pbx_app.services import customers as service

router = APIRouter(tags=["customers"], responses=error_responses(AUTHENTICATED))

Licences = Annotated[int, Field(strict=True, ge=0, le=1_000_000)]
Discounts = Annotated[list[DiscountName], Field(max_length=2)]
FlatRateName = Annotated[str, Field(strict=True, pattern=r"^[a-z][a-z0-9_]{0,39}$")]
Strict = Annotated[bool, Field(strict=True)]


class CustomerCreate(Body):
    name: LongName
    tariff: TariffName
    contract_start: IsoDate
    term_months: Annotated[int, Field(strict=True, ge=1, le=120)] = 24
    business_option: Annotated[bool, Field(strict=True)] = False
    # R2: require SRTP for every call of this customer's devices (Kamailio/rtpengine enforce it).
    srtp_required: Annotated[bool, Field(strict=True)] = False
    trial: Annotated[bool, Field(strict=True)] = False
    booked_licences: Licences = 0
    discounts: Discounts = Field(default_factory=list)
    cti: CtiLevel = "none"
    efax: Strict = False
    flat_rate: FlatRateName | None = None
    service_numbers_allowed: Strict = False
    sip_domain: (
        Annotated[
            str,
            Field(strict=True, max_length=253, pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$"),
            SafeText,
        ]
        | None
    ) = None


class CustomerUpdate(Body):
    name: LongName | None = None
    tariff: TariffName | None = None
    business_option: Annotated[bool, Field(strict=True)] | None = Field(
        default=None,
        description="What new extensions get, and booked (true) or cancelled (false) for every "
        "extension of the customer at once; per extension: PATCH .../extensions/{id}.",
    )
    srtp_required: Annotated[bool, Field(strict=True)] | None = None
    trial: Annotated[Literal[False], exactly(bool, "false")] | None = Field(
        default=None, description="false converts a trial into a contract"
    )
    default_caller_id: E164 | None = Field(
        default=None,
        description="The number shown outside for extensions without their own caller_id: one "
        "the customer holds (422 caller_id_not_held); null removes it. The customer's admin may "
        "change this field and the options below (cti, efax, flat_rate, "
        "service_numbers_allowed); every other field is the operator's.",
    )
    discounts: Discounts | None = None
    cti: CtiLevel | None = None
    efax: Strict | None = None
    flat_rate: FlatRateName | None = Field(
        default=None, description="a flat rate of the price list in force; null cancels it"
    )
    service_numbers_allowed: Strict | None = None
    time_zone: TimeZoneName | None = None
    language: LanguageCode | None = None


class Notice(Body):
    given_on: IsoDate | None = Field(
        default=None,
        description="the day the notice arrived; today unless an operator records an earlier one",
    )


class LicencesUpdate(Body):
    booked_licences: Licences


@router.post(
    "/customers",
    status_code=201,
    response_model=Customer,
    responses=error_responses(
        JSON_BODY,
        {
            409: "extension_limit_reached: more licences than R14 allows; conflict: the "
            "sip_domain belongs to another customer",
        },
    ),
)
def create_customer(body: CustomerCreate, actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    t = now()
    new = body.model_dump()
    new["discounts"] = tuple(sorted(set(new["discounts"])))
    with ctx.db.transaction() as conn:
        row = service.create(conn, actor, service.NewCustomer(**new), t)
        return service.public(conn, row, t)


@router.get("/customers", response_model=Items[Customer])
def list_customers(
    actor: CurrentActor, ctx: Ctx, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    t = now()
    with ctx.db.snapshot() as conn:
        rows = service.list_visible(conn, actor, t, limit, offset)
        return {"items": [service.public(conn, r, t) for r in rows]}


@router.get(
    "/customers/{customer_id}", response_model=Customer, responses=error_responses(NOT_FOUND)
)
def get_customer(customer_id: Id, actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    t = now()
    with ctx.db.snapshot() as conn:
        return service.public(conn, service.get(conn, actor, customer_id, t), t)


@router.patch(
    "/customers/{customer_id}",
    response_model=Customer,
    responses=error_responses(
        JSON_BODY,
        NOT_FOUND,
        {
            409: "device_limit_reached: extensions have more devices than the plan without "
            "the Business Option allows (R4)",
            422: "validation_failed, or caller_id_not_held (default_caller_id)",
        },
    ),
)
def update_customer(
    customer_id: Id, body: CustomerUpdate, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    t = now()
    changes = body.model_dump(exclude_none=True)
    for nullable in ("default_caller_id", "flat_rate"):
        if nullable in body.model_fields_set:  # null removes it
            changes[nullable] = getattr(body, nullable)
    with ctx.db.transaction() as conn:
        row = service.update(conn, actor, customer_id, changes, t)
        return service.public(conn, row, t)


@router.put(
    "/customers/{customer_id}/licences",
    response_model=LicenceChange,
    responses=error_responses(
        JSON_BODY,
        NOT_FOUND,
        {
            409: "extension_limit_reached: more licences than R14 allows; "
            "licence_count_invalid: fewer than the extensions in use (R16)",
        },
    ),
)
def set_licences(
    customer_id: Id, body: LicencesUpdate, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    with ctx.db.transaction() as conn:
        change = service.set_booked_licences(conn, actor, customer_id, body.booked_licences, now())
    return asdict(change)


_NOTICE = {
    409: "notice_already_given: the contract already ends on contract_ends_on",
}


@router.post(
    "/customers/{customer_id}/notice",
    response_model=Customer,
    responses=error_responses(JSON_BODY, NOT_FOUND, _NOTICE),
)
def give_notice(customer_id: Id, body: Notice, actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    """R18: notice on the base package; the contract (and every licence) ends at the end of the
    first term that is at least 3 months away. The answer has contract_ends_on."""
    t = now()
    with ctx.db.transaction() as conn:
        row = service.give_notice(conn, actor, customer_id, body.given_on, t)
        return service.public(conn, row, t)


@router.delete(
    "/customers/{customer_id}/notice",
    response_model=Customer,
    responses=error_responses(NOT_FOUND),
)
def withdraw_notice(customer_id: Id, actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    """An operator takes a notice back while the contract runs."""
    t = now()
    with ctx.db.transaction() as conn:
        row = service.withdraw_notice(conn, actor, customer_id, t)
        return service.public(conn, row, t)
