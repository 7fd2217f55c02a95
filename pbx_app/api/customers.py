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
from pbx_app.api.models import Body, Customer, Items, LicenceChange, TariffName
from pbx_app.services import customers as service

router = APIRouter(tags=["customers"], responses=error_responses(AUTHENTICATED))

Licences = Annotated[int, Field(strict=True, ge=0, le=1_000_000)]


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
        "change this field (alone); every other field is the operator's.",
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
    with ctx.db.transaction() as conn:
        row = service.create(conn, actor, service.NewCustomer(**body.model_dump()), t)
    return service.public(row, t)


@router.get("/customers", response_model=Items[Customer])
def list_customers(
    actor: CurrentActor, ctx: Ctx, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    t = now()
    with ctx.db.snapshot() as conn:
        rows = service.list_visible(conn, actor, t, limit, offset)
    return {"items": [service.public(r, t) for r in rows]}


@router.get(
    "/customers/{customer_id}", response_model=Customer, responses=error_responses(NOT_FOUND)
)
def get_customer(customer_id: Id, actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    t = now()
    with ctx.db.snapshot() as conn:
        return service.public(service.get(conn, actor, customer_id, t), t)


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
    if "default_caller_id" in body.model_fields_set:  # null removes it
        changes["default_caller_id"] = body.default_caller_id
    with ctx.db.transaction() as conn:
        row = service.update(conn, actor, customer_id, changes, t)
    return service.public(row, t)


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
