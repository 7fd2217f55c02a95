"""Extensions (R13, R14, R16), including bulk import from CSV or JSON."""

from __future__ import annotations

import tempfile
from typing import IO, Annotated, Any

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
from pbx_app.services import extension_import as importer
from pbx_app.services import extensions as service
from pbx_app.services.extension_files import check_format

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
BusinessOption = Annotated[
    bool,
    Field(
        strict=True,
        description="The Business Option of this extension (R4): up to 3 devices instead of 1, "
        "and the browser phone (the proxies refuse browser registrations without it).",
    ),
]


class ExtensionCreate(Body):
    location_id: StrictId
    number: ExtensionNumber
    display_name: OptionalName = ""
    geo_number: GeoNumber | None = None
    business_option: BusinessOption | None = Field(
        default=None,
        description="Book the Business Option for this extension; left out: the customer's "
        "default for new extensions (the customer's business_option).",
    )


class ExtensionUpdate(Body):
    location_id: StrictId | None = None
    display_name: OptionalName | None = None
    geo_number: GeoNumber | None = Field(default=None, description="null removes the number")
    caller_id: E164 | None = Field(
        default=None,
        description="The number shown outside (one the customer holds: a head number or a "
        "number in its blocks, else 422 caller_id_not_held); null: the customer's "
        "default_caller_id, else the extension's own DID.",
    )
    clir: Annotated[bool, Field(strict=True)] | None = Field(
        default=None, description="Withhold the number on calls that leave the customer."
    )
    business_option: BusinessOption | None = Field(
        default=None,
        description="Book (true) or cancel (false) the Business Option; cancelling while the "
        "extension has more than 1 device is refused (409 device_limit_reached).",
    )


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
            409: "number_in_use: geo_number belongs to another extension; "
            "device_limit_reached: business_option false while the extension has more than "
            "1 device (R4)",
            422: f"validation_failed, {GEO_NUMBER_ERRORS}, caller_id_not_held (caller_id)",
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
    if "caller_id" in fields:
        kwargs["caller_id"] = fields["caller_id"]
    if fields.get("clir") is not None:
        kwargs["clir"] = fields["clir"]
    if fields.get("business_option") is not None:
        kwargs["business_option"] = fields["business_option"]
    with ctx.db.transaction() as conn:
        row = service.update(conn, actor, customer_id, extension_id, now(), **kwargs)
    return service.public(row)


@router.delete(
    "/customers/{customer_id}/extensions/{extension_id}", status_code=204, response_model=None
)
def delete_extension(customer_id: Id, extension_id: Id, actor: CurrentActor, ctx: Ctx) -> None:
    with ctx.db.transaction() as conn:
        service.delete(conn, actor, customer_id, extension_id, now())


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
    """The body goes to a spool file as it arrives (BodySizeLimit stops it past the import
    limit with 413), then is read row by row: see services.extension_import."""
    content_type = request.headers.get("content-type", "").lower()
    check_format(content_type)
    await run_in_threadpool(importer.check_may_import, ctx.db, actor, customer_id, now())
    with tempfile.SpooledTemporaryFile(max_size=importer.SPOOL_IN_MEMORY_BYTES) as body:
        await _spool(request, body)
        result = await run_in_threadpool(
            importer.import_file, ctx.db, actor, customer_id, content_type, body, now()
        )
    return {"created": result.created, "extension_count": result.extension_count}


async def _spool(request: Request, body: IO[bytes]) -> None:
    # Written on the event loop: a chunk is at most some 64 KiB, to memory or the page cache.
    async for chunk in request.stream():
        body.write(chunk)
    body.seek(0)
