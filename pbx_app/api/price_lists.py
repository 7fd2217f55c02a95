"""The operator's price lists (R16): tariffs, discounts, options, fees, zones, minute prices."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field

from pbx_app.api.deps import Ctx, CurrentActor, Id, IsoDate, now
from pbx_app.api.errors import AUTHENTICATED, JSON_BODY, NOT_FOUND, error_responses
from pbx_app.api.models import Body, Items
from pbx_app.pricing import PriceListDoc
from pbx_app.services import price_lists as service

router = APIRouter(tags=["billing"], responses=error_responses(AUTHENTICATED))

_IN_FORCE = {
    409: "price_list_in_force: the list's first day has begun (a list in force never "
    "changes; a new one starts tomorrow at the earliest); conflict: a list already starts on "
    "that day",
}


class PriceListCreate(Body):
    valid_from: IsoDate = Field(description="the first day the list is in force, after today")
    document: PriceListDoc


class PriceListOut(BaseModel):
    id: int
    valid_from: str
    in_force_since_begun: bool = Field(
        description="its first day has begun: it bills the days from then until the next list"
    )
    document: PriceListDoc


@router.get("/price-lists", response_model=Items[PriceListOut])
def list_price_lists(actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    today = now().date()
    with ctx.db.snapshot() as conn:
        lists = service.list_all(conn, actor)
    return {"items": [service.public(p, today) for p in lists]}


@router.get(
    "/price-lists/{list_id}", response_model=PriceListOut, responses=error_responses(NOT_FOUND)
)
def get_price_list(list_id: Id, actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        return service.public(service.get(conn, actor, list_id), now().date())


@router.post(
    "/price-lists",
    status_code=201,
    response_model=PriceListOut,
    responses=error_responses(JSON_BODY, _IN_FORCE),
)
def create_price_list(body: PriceListCreate, actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    t = now()
    with ctx.db.transaction() as conn:
        created = service.create(conn, actor, body.valid_from, body.document, t)
    return service.public(created, t.date())


@router.delete(
    "/price-lists/{list_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(NOT_FOUND, _IN_FORCE),
)
def withdraw_price_list(list_id: Id, actor: CurrentActor, ctx: Ctx) -> Response:
    with ctx.db.transaction() as conn:
        service.withdraw(conn, actor, list_id, now())
    return Response(status_code=204)
