"""Porting requests (R12): a state machine with an audit trail, completed on the requested date
by the app (pbx_app.porting_scheduler) or earlier by the operator."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import Field

from pbx_app.api.deps import (
    E164,
    Ctx,
    CurrentActor,
    ExtensionNumber,
    Id,
    IsoDate,
    Name,
    OptionalName,
    StrictId,
    now,
)
from pbx_app.api.errors import AUTHENTICATED, JSON_BODY, NOT_FOUND, error_responses
from pbx_app.api.models import (
    Body,
    Items,
    PortingRequest,
    PortingRequestSummary,
    PortingState,
)
from pbx_app.services import porting as service

router = APIRouter(tags=["porting"], responses=error_responses(AUTHENTICATED, NOT_FOUND))


class PortingCreate(Body):
    location_id: StrictId
    numbers: Annotated[
        list[E164],
        Field(
            min_length=1,
            max_length=1000,
            description="Each once (409 conflict), each in the area of the location (422 "
            "number_area_mismatch, R13). A number another customer of this platform holds is "
            "ported from them (the platform is the donor): name the holding itself, a single "
            "number or the head number of a block, which moves whole (a number inside such a "
            "block: 409 porting_partial_block). A number overlapping your own holdings, or "
            "covering another customer's: 409 number_in_use.",
        ),
    ]
    extensions: dict[E164, ExtensionNumber] = Field(
        default_factory=dict,
        max_length=1000,
        description="For each single number of the request: the extension (its number, at "
        "the request's location, without a public number of its own yet) that the number "
        "rings once ported; it becomes that extension's geo_number, its DID and caller ID. "
        "One number per extension. A block ported whole takes none: its numbers ring the "
        "extensions by their numbers. Missing, unknown or unsuitable: 422 "
        "porting_target_invalid.",
    )
    donor_carrier: Name
    requested_date: Annotated[
        IsoDate,
        Field(
            description="The porting date (a German calendar date): a confirmed request "
            "completes by itself when this day begins in Europe/Berlin."
        ),
    ]


class PortingTransition(Body):
    to_state: PortingState
    note: OptionalName = ""


@router.post(
    "/customers/{customer_id}/porting-requests",
    status_code=201,
    response_model=PortingRequestSummary,
    responses=error_responses(
        JSON_BODY,
        {
            409: "conflict: a number appears twice; number_in_use: a number overlaps one of "
            "yours or covers another customer's; porting_partial_block: a number inside a block "
            "another customer holds (ported whole only); head_number_limit_reached (R15)",
            422: "validation_failed, number_area_mismatch (R13), or porting_target_invalid: an "
            "extension missing, unknown, at another location, with a public number already, "
            "named twice or for a block",
        },
    ),
)
def create_porting_request(
    customer_id: Id, body: PortingCreate, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    with ctx.db.transaction() as conn:
        row = service.create(
            conn, actor, customer_id, service.NewPortingRequest(**body.model_dump()), now()
        )
    return service.public(row)


@router.get(
    "/customers/{customer_id}/porting-requests", response_model=Items[PortingRequestSummary]
)
def list_porting_requests(customer_id: Id, actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        rows = service.list_(conn, actor, customer_id, now())
    return {"items": [service.public(r) for r in rows]}


@router.get("/customers/{customer_id}/porting-requests/{request_id}", response_model=PortingRequest)
def get_porting_request(
    customer_id: Id, request_id: Id, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        row, events = service.get(conn, actor, customer_id, request_id, now())
    return service.public(row, events)


@router.post(
    "/customers/{customer_id}/porting-requests/{request_id}/transitions",
    response_model=PortingRequest,
    responses=error_responses(
        JSON_BODY,
        {
            409: "porting_transition_invalid: the state machine has no such step (R12); who "
            "may take a step that exists: 403 permission_denied. Completing (the operator's "
            "switch-over, also done by the app itself on the requested date): number_in_use or "
            "porting_partial_block when a number is no longer free to take, "
            "head_number_limit_reached (R15); nothing is changed then",
        },
    ),
)
def transition_porting_request(
    customer_id: Id, request_id: Id, body: PortingTransition, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    with ctx.db.transaction() as conn:
        service.transition(conn, actor, customer_id, request_id, body.to_state, body.note, now())
        row, events = service.get(conn, actor, customer_id, request_id, now())
    if body.to_state == service.CONFIRMED and ctx.porting is not None:
        ctx.porting.wake()  # committed: a request whose date has come completes right away
    return service.public(row, events)
