"""Locations (branches) with address and German area code (R13)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import Field

from pbx_app.addressing import AREA_CODE_PATTERN, NON_GEOGRAPHIC_AREA_CODES, alternatives, anchored
from pbx_app.api.deps import Ctx, CurrentActor, Id, LongName, Name, now
from pbx_app.api.errors import AUTHENTICATED, JSON_BODY, NOT_FOUND, error_responses
from pbx_app.api.models import Body, Items, Location
from pbx_app.services import calendar
from pbx_app.services import locations as service

router = APIRouter(tags=["locations"], responses=error_responses(AUTHENTICATED, NOT_FOUND))


Interval = Annotated[
    str,
    Field(
        strict=True,
        max_length=11,
        description='"HH:MM-HH:MM" in Europe/Berlin, start included, end not ("24:00": '
        "midnight); 422 invalid_schedule names an interval that cannot be read or overlaps",
    ),
]
DayHours = Annotated[list[Interval], Field(max_length=calendar.MAX_INTERVALS_PER_DAY)]
StateCode = Annotated[
    str,
    Field(
        strict=True,
        pattern=f"^({'|'.join(calendar.STATES)})$",
        description="German state code (public holidays there close the location)",
    ),
]
PostalCode = Annotated[str, Field(strict=True, pattern=r"^[0-9]{5}$")]
HOURS_ERRORS = "invalid_schedule: opening_hours or state cannot be read (field names it)"


class OpeningHours(Body):
    """Intervals per weekday; a weekday left out (or null) is closed all day."""

    mon: DayHours | None = None
    tue: DayHours | None = None
    wed: DayHours | None = None
    thu: DayHours | None = None
    fri: DayHours | None = None
    sat: DayHours | None = None
    sun: DayHours | None = None


class LocationCreate(Body):
    name: Name
    street: LongName
    postal_code: PostalCode
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
    opening_hours: OpeningHours | None = Field(
        default=None, description="null or absent: always open (call rules by schedule)"
    )
    state: StateCode | None = Field(default=None, description="null or absent: no holidays")


class LocationUpdate(Body):
    name: Name | None = None
    street: LongName | None = None
    postal_code: PostalCode | None = None
    city: Name | None = None
    opening_hours: OpeningHours | None = Field(default=None, description="null: always open")
    state: StateCode | None = Field(default=None, description="null: no holidays")


@router.post(
    "/customers/{customer_id}/locations",
    status_code=201,
    response_model=Location,
    responses=error_responses(
        JSON_BODY,
        {
            409: "location_name_in_use: the customer has a location of this name",
            422: f"validation_failed, or invalid_area_code (R13), or {HOURS_ERRORS}",
        },
    ),
)
def create_location(
    customer_id: Id, body: LocationCreate, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    fields = body.model_dump(exclude={"opening_hours"})
    hours = body.opening_hours.model_dump(exclude_none=True) if body.opening_hours else None
    with ctx.db.transaction() as conn:
        new = service.NewLocation(**fields, opening_hours=hours)
        row = service.create(conn, actor, customer_id, new, now())
    return service.public(row)


@router.patch(
    "/customers/{customer_id}/locations/{location_id}",
    response_model=Location,
    responses=error_responses(
        JSON_BODY,
        {
            409: "location_name_in_use: the customer has a location of this name",
            422: f"validation_failed, or {HOURS_ERRORS}",
        },
    ),
)
def update_location(
    customer_id: Id, location_id: Id, body: LocationUpdate, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    """Fields left out stay; opening_hours and state may be set to null. The area code cannot
    change (the location's numbers are bound to it, R13)."""
    changes = body.model_dump(exclude_unset=True)
    for name in ("name", "street", "postal_code", "city"):
        if changes.get(name, "") is None:
            del changes[name]  # null for a required field: left as it is
    if body.opening_hours is not None:
        changes["opening_hours"] = body.opening_hours.model_dump(exclude_none=True)
    with ctx.db.transaction() as conn:
        row = service.update(conn, actor, customer_id, location_id, changes, now())
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
