"""Customers (tenants), licences (R16) and activation fees (R17)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import Field

from pbx_app.api.deps import Ctx, CurrentActor, Id, Limit, LongName, Offset, SafeText, now
from pbx_app.api.models import Body
from pbx_app.services import customers as service

router = APIRouter(tags=["customers"])

TariffName = Literal["basic", "standard", "premium", "mobile", "all_ip"]
Licences = Annotated[int, Field(strict=True, ge=0, le=1_000_000)]


class CustomerCreate(Body):
    name: LongName
    tariff: TariffName
    contract_start: date
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
    business_option: Annotated[bool, Field(strict=True)] | None = None
    srtp_required: Annotated[bool, Field(strict=True)] | None = None
    trial: Literal[False] | None = None


class LicencesUpdate(Body):
    booked_licences: Licences


@router.post("/customers", status_code=201)
def create_customer(body: CustomerCreate, actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    t = now()
    with ctx.db.transaction() as conn:
        row = service.create(conn, actor, service.NewCustomer(**body.model_dump()), t)
    return service.public(row, t)


@router.get("/customers")
def list_customers(
    actor: CurrentActor, ctx: Ctx, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    t = now()
    with ctx.db.snapshot() as conn:
        rows = service.list_visible(conn, actor, t, limit, offset)
    return {"items": [service.public(r, t) for r in rows]}


@router.get("/customers/{customer_id}")
def get_customer(customer_id: Id, actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    t = now()
    with ctx.db.snapshot() as conn:
        return service.public(service.get(conn, actor, customer_id, t), t)


@router.patch("/customers/{customer_id}")
def update_customer(
    customer_id: Id, body: CustomerUpdate, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    t = now()
    with ctx.db.transaction() as conn:
        row = service.update(conn, actor, customer_id, body.model_dump(exclude_none=True), t)
    return service.public(row, t)


@router.put("/customers/{customer_id}/licences")
def set_licences(
    customer_id: Id, body: LicencesUpdate, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    with ctx.db.transaction() as conn:
        change = service.set_booked_licences(conn, actor, customer_id, body.booked_licences, now())
    return asdict(change)
