"""Head numbers (Kopfnummern), at most 1,000 per customer (R15)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import Field

from pbx_app.api.deps import E164, Ctx, CurrentActor, Id, Limit, Offset, StrictId, exactly, now
from pbx_app.api.errors import AUTHENTICATED, JSON_BODY, NOT_FOUND, error_responses
from pbx_app.api.models import Body, HeadNumber, Items
from pbx_app.services import head_numbers as service

router = APIRouter(tags=["head numbers"], responses=error_responses(AUTHENTICATED, NOT_FOUND))

CREATE_ERRORS = error_responses(
    JSON_BODY,
    {
        409: "number_in_use: the number is taken; head_number_limit_reached: at most 1,000 per "
        "customer (R15)",
        422: "validation_failed, or number_area_mismatch: the number is not in the area of "
        "the location (R13)",
    },
)


class HeadNumberCreate(Body):
    location_id: StrictId
    number: Annotated[E164, Field(description="In the area of the location (R13).")]
    block_size: Annotated[Literal[1, 10, 100, 1000, 10000], exactly(int, "an integer")] = 100


class HeadNumberBulk(Body):
    items: Annotated[list[HeadNumberCreate], Field(min_length=1, max_length=1000)]


@router.post(
    "/customers/{customer_id}/head-numbers",
    status_code=201,
    response_model=HeadNumber,
    responses=CREATE_ERRORS,
)
def create_head_number(
    customer_id: Id, body: HeadNumberCreate, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    with ctx.db.transaction() as conn:
        row = service.create(
            conn, actor, customer_id, service.NewHeadNumber(**body.model_dump()), now()
        )
    return service.public(row)


@router.post(
    "/customers/{customer_id}/head-numbers/bulk",
    status_code=201,
    response_model=Items[HeadNumber],
    responses=CREATE_ERRORS,
)
def create_head_numbers(
    customer_id: Id, body: HeadNumberBulk, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    new = [service.NewHeadNumber(**item.model_dump()) for item in body.items]
    with ctx.db.transaction() as conn:
        rows = service.create_many(conn, actor, customer_id, new, now())
    return {"items": [service.public(r) for r in rows]}


@router.get("/customers/{customer_id}/head-numbers", response_model=Items[HeadNumber])
def list_head_numbers(
    customer_id: Id, actor: CurrentActor, ctx: Ctx, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        rows = service.list_(conn, actor, customer_id, now(), limit, offset)
    return {"items": [service.public(r) for r in rows]}


@router.delete(
    "/customers/{customer_id}/head-numbers/{head_number_id}",
    status_code=204,
    response_model=None,
    responses=error_responses({409: "conflict: extensions use numbers of this head number"}),
)
def delete_head_number(customer_id: Id, head_number_id: Id, actor: CurrentActor, ctx: Ctx) -> None:
    with ctx.db.transaction() as conn:
        service.delete(conn, actor, customer_id, head_number_id, now())
