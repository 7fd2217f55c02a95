"""Extensions (R13, R14, R16), including bulk import from CSV or JSON."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

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
from pbx_app.api.errors import AUTHENTICATED, JSON_BODY, NOT_FOUND, error_responses
from pbx_app.api.models import Body, Extension, Items
from pbx_app.services import extensions as service
from pbx_app.services.access import Actor
from pbx_app.services.extension_files import parse_import

router = APIRouter(tags=["extensions"], responses=error_responses(AUTHENTICATED, NOT_FOUND))

GeoNumber = Annotated[
    E164,
    Field(
        description="A direct-dial number in one of the customer's head number blocks, in the "
        "area of the extension's location (R13)."
    ),
]
LIMITS = (
    "extension_limit_reached: at most 249,000 per customer (R14); "
    "extension_licences_exhausted: book licences first (R16)"
)
GEO_NUMBER_ERRORS = "number_area_mismatch or number_not_owned (geo_number, R13)"


class ExtensionCreate(Body):
    location_id: StrictId
    number: ExtensionNumber
    display_name: OptionalName = ""
    geo_number: GeoNumber | None = None


class ExtensionUpdate(Body):
    location_id: StrictId | None = None
    display_name: OptionalName | None = None
    geo_number: GeoNumber | None = Field(default=None, description="null removes the number")


@router.post(
    "/customers/{customer_id}/extensions",
    status_code=201,
    response_model=Extension,
    responses=error_responses(
        JSON_BODY,
        {
            409: f"extension_number_in_use; number_in_use (geo_number); {LIMITS}",
            422: f"validation_failed, extension_number_reserved, {GEO_NUMBER_ERRORS}",
        },
    ),
)
def create_extension(
    customer_id: Id, body: ExtensionCreate, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    with ctx.db.transaction() as conn:
        row = service.create(
            conn, actor, customer_id, service.NewExtension(**body.model_dump()), now()
        )
    return service.public(row)


@router.get("/customers/{customer_id}/extensions", response_model=Items[Extension])
def list_extensions(
    customer_id: Id, actor: CurrentActor, ctx: Ctx, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        rows = service.list_(conn, actor, customer_id, now(), limit, offset)
    return {"items": [service.public(r) for r in rows]}


@router.get("/customers/{customer_id}/extensions/{extension_id}", response_model=Extension)
def get_extension(
    customer_id: Id, extension_id: Id, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        return service.public(service.get(conn, actor, customer_id, extension_id, now()))


@router.patch(
    "/customers/{customer_id}/extensions/{extension_id}",
    response_model=Extension,
    responses=error_responses(
        JSON_BODY,
        {
            409: "number_in_use: geo_number belongs to another extension",
            422: f"validation_failed, {GEO_NUMBER_ERRORS}",
        },
    ),
)
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
    responses=error_responses(
        {
            409: f"{LIMITS}; conflict: another writer took a number meanwhile",
            422: "import_invalid: the file or some rows are invalid (rows lists them); "
            "nothing was imported",
        }
    ),
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
