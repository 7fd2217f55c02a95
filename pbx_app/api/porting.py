"""Porting requests (R12): a state machine with an audit trail."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import Field

from pbx_app.api.deps import (
    E164,
    Ctx,
    CurrentActor,
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
            "number_area_mismatch, R13).",
        ),
    ]
    donor_carrier: Name
    requested_date: IsoDate


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
            409: "conflict: a number appears twice",
            422: "validation_failed, or number_area_mismatch (R13)",
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
            "may take a step that exists: 403 permission_denied",
        },
    ),
)
def transition_porting_request(
    customer_id: Id, request_id: Id, body: PortingTransition, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    with ctx.db.transaction() as conn:
        service.transition(conn, actor, customer_id, request_id, body.to_state, body.note, now())
        row, events = service.get(conn, actor, customer_id, request_id, now())
    return service.public(row, events)
