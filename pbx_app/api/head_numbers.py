"""Head numbers (Kopfnummern), at most 1,000 per customer (R15)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import Field

from pbx_app.api.deps import E164, Ctx, CurrentActor, Id, Limit, Offset, StrictId, now
from pbx_app.api.models import Body
from pbx_app.services import head_numbers as service

router = APIRouter(tags=["head numbers"])


class HeadNumberCreate(Body):
    location_id: StrictId
    number: E164
    block_size: Literal[1, 10, 100, 1000, 10000] = 100


class HeadNumberBulk(Body):
    items: Annotated[list[HeadNumberCreate], Field(min_length=1, max_length=1000)]


@router.post("/customers/{customer_id}/head-numbers", status_code=201)
def create_head_number(
    customer_id: Id, body: HeadNumberCreate, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    with ctx.db.transaction() as conn:
        row = service.create(
            conn, actor, customer_id, service.NewHeadNumber(**body.model_dump()), now()
        )
    return service.public(row)


@router.post("/customers/{customer_id}/head-numbers/bulk", status_code=201)
def create_head_numbers(
    customer_id: Id, body: HeadNumberBulk, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    new = [service.NewHeadNumber(**item.model_dump()) for item in body.items]
    with ctx.db.transaction() as conn:
        rows = service.create_many(conn, actor, customer_id, new, now())
    return {"items": [service.public(r) for r in rows]}


@router.get("/customers/{customer_id}/head-numbers")
def list_head_numbers(
    customer_id: Id, actor: CurrentActor, ctx: Ctx, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        rows = service.list_(conn, actor, customer_id, now(), limit, offset)
    return {"items": [service.public(r) for r in rows]}


@router.delete(
    "/customers/{customer_id}/head-numbers/{head_number_id}", status_code=204, response_model=None
)
def delete_head_number(customer_id: Id, head_number_id: Id, actor: CurrentActor, ctx: Ctx) -> None:
    with ctx.db.transaction() as conn:
        service.delete(conn, actor, customer_id, head_number_id, now())
