"""Locations (branches) with address and German area code (R13)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import Field

from pbx_app.addressing import AREA_CODE_PATTERN, NON_GEOGRAPHIC_AREA_CODES, alternatives, anchored
from pbx_app.api.deps import Ctx, CurrentActor, Id, LongName, Name, now
from pbx_app.api.errors import AUTHENTICATED, JSON_BODY, NOT_FOUND, error_responses
from pbx_app.api.models import Body, Items, Location
from pbx_app.services import locations as service

router = APIRouter(tags=["locations"], responses=error_responses(AUTHENTICATED, NOT_FOUND))


class LocationCreate(Body):
    name: Name
    street: LongName
    postal_code: Annotated[str, Field(strict=True, pattern=r"^[0-9]{5}$")]
    city: Name
    area_code: Annotated[
        str,
        Field(
            strict=True,
            pattern=anchored(AREA_CODE_PATTERN),
            description="A German geographic area code; not "
            f"{alternatives(NON_GEOGRAPHIC_AREA_CODES)} (422 invalid_area_code, R13).",
        ),
    ]


@router.post(
    "/customers/{customer_id}/locations",
    status_code=201,
    response_model=Location,
    responses=error_responses(
        JSON_BODY,
        {
            409: "location_name_in_use: the customer has a location of this name",
            422: "validation_failed, or invalid_area_code (R13)",
        },
    ),
)
def create_location(
    customer_id: Id, body: LocationCreate, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    with ctx.db.transaction() as conn:
        row = service.create(
            conn, actor, customer_id, service.NewLocation(**body.model_dump()), now()
        )
    return service.public(row)


@router.get("/customers/{customer_id}/locations", response_model=Items[Location])
def list_locations(customer_id: Id, actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        rows = service.list_(conn, actor, customer_id, now())
    return {"items": [service.public(r) for r in rows]}


@router.get("/customers/{customer_id}/locations/{location_id}", response_model=Location)
def get_location(customer_id: Id, location_id: Id, actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        return service.public(service.get(conn, actor, customer_id, location_id, now()))


@router.delete(
    "/customers/{customer_id}/locations/{location_id}",
    status_code=204,
    response_model=None,
    responses=error_responses(
        {409: "location_in_use: extensions, head numbers or porting requests use it (R13)"}
    ),
)
def delete_location(customer_id: Id, location_id: Id, actor: CurrentActor, ctx: Ctx) -> None:
    with ctx.db.transaction() as conn:
        service.delete(conn, actor, customer_id, location_id, now())
