"""Extensions (R13, R14, R16), including bulk import from CSV or JSON."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from pbx_app.api.deps import (
    E164,
    Ctx,
    CurrentActor,
    ExtensionNumber,
    Id,
    Limit,
    Offset,
    OptionalName,
    StrictId,
    now,
)
from pbx_app.api.models import Body
from pbx_app.services import extensions as service
from pbx_app.services.access import Actor
from pbx_app.services.extension_files import parse_import

router = APIRouter(tags=["extensions"])


class ExtensionCreate(Body):
    location_id: StrictId
    number: ExtensionNumber
    display_name: OptionalName = ""
    geo_number: E164 | None = None


class ExtensionUpdate(Body):
    location_id: StrictId | None = None
    display_name: OptionalName | None = None
    geo_number: E164 | None = None


@router.post("/customers/{customer_id}/extensions", status_code=201)
def create_extension(
    customer_id: Id, body: ExtensionCreate, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    with ctx.db.transaction() as conn:
        row = service.create(
            conn, actor, customer_id, service.NewExtension(**body.model_dump()), now()
        )
    return service.public(row)


@router.get("/customers/{customer_id}/extensions")
def list_extensions(
    customer_id: Id, actor: CurrentActor, ctx: Ctx, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        rows = service.list_(conn, actor, customer_id, now(), limit, offset)
    return {"items": [service.public(r) for r in rows]}


@router.get("/customers/{customer_id}/extensions/{extension_id}")
def get_extension(
    customer_id: Id, extension_id: Id, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        return service.public(service.get(conn, actor, customer_id, extension_id, now()))


@router.patch("/customers/{customer_id}/extensions/{extension_id}")
def update_extension(
    customer_id: Id, extension_id: Id, body: ExtensionUpdate, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    fields = body.model_dump(exclude_unset=True)
    kwargs: dict[str, Any] = {
        "location_id": fields.get("location_id"),
        "display_name": fields.get("display_name"),
    }
    if "geo_number" in fields:
        kwargs["geo_number"] = fields["geo_number"]
    with ctx.db.transaction() as conn:
        row = service.update(conn, actor, customer_id, extension_id, now(), **kwargs)
    return service.public(row)


@router.delete(
    "/customers/{customer_id}/extensions/{extension_id}", status_code=204, response_model=None
)
def delete_extension(customer_id: Id, extension_id: Id, actor: CurrentActor, ctx: Ctx) -> None:
    with ctx.db.transaction() as conn:
        service.delete(conn, actor, customer_id, extension_id, now())


def run_import(ctx: Any, actor: Actor, customer_id: int, rows: list[Any]) -> dict[str, Any]:
    with ctx.db.transaction() as conn:
        result = service.import_rows(conn, actor, customer_id, rows, now())
    return {"created": result.created, "extension_count": result.extension_count}


@router.post(
    "/customers/{customer_id}/extensions/import",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            },
        }
    },
)
async def import_extensions(
    customer_id: Id, request: Request, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    raw = await request.body()
    content_type = request.headers.get("content-type", "").lower()
    rows = await run_in_threadpool(parse_import, content_type, raw)
    return await run_in_threadpool(run_import, ctx, actor, customer_id, rows)
