"""Porting requests (R12): a state machine with an audit trail."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import Field

from pbx_app.api.deps import E164, Ctx, CurrentActor, Id, Name, OptionalName, StrictId, now
from pbx_app.api.models import Body
from pbx_app.services import porting as service

router = APIRouter(tags=["porting"])


class PortingCreate(Body):
    location_id: StrictId
    numbers: Annotated[list[E164], Field(min_length=1, max_length=1000)]
    donor_carrier: Name
    requested_date: date


class PortingTransition(Body):
    to_state: Literal["submitted", "confirmed", "completed", "rejected", "cancelled", "draft"]
    note: OptionalName = ""


@router.post("/customers/{customer_id}/porting-requests", status_code=201)
def create_porting_request(
    customer_id: Id, body: PortingCreate, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    with ctx.db.transaction() as conn:
        row = service.create(
            conn, actor, customer_id, service.NewPortingRequest(**body.model_dump()), now()
        )
    return service.public(row)


@router.get("/customers/{customer_id}/porting-requests")
def list_porting_requests(customer_id: Id, actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        rows = service.list_(conn, actor, customer_id, now())
    return {"items": [service.public(r) for r in rows]}


@router.get("/customers/{customer_id}/porting-requests/{request_id}")
def get_porting_request(
    customer_id: Id, request_id: Id, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        row, events = service.get(conn, actor, customer_id, request_id, now())
    return service.public(row, events)


@router.post("/customers/{customer_id}/porting-requests/{request_id}/transitions")
def transition_porting_request(
    customer_id: Id, request_id: Id, body: PortingTransition, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    with ctx.db.transaction() as conn:
        service.transition(conn, actor, customer_id, request_id, body.to_state, body.note, now())
        row, events = service.get(conn, actor, customer_id, request_id, now())
    return service.public(row, events)
