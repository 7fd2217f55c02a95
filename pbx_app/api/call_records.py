"""Call records (CDRs): the tenant's list and export, and the proxies' ingest.

GET /api/v1/customers/{id}/call-records (customer admins of that customer, operators) and
GET /api/v1/call-records (operators): newest first, a started_at window (from inclusive,
until exclusive), limit/offset paging; JSON by default, CSV with ``?format=csv`` or
``Accept: text/csv``.

POST /internal/v1/call-records (the proxies' spool shippers, internal token): a batch of
records, validated whole (the first problems are named by their field, e.g.
``body.records.3.started_at``; nothing is stored then), stored idempotently.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from pbx_app.api.deps import Ctx, CurrentActor, Id, Offset, SafeText, now
from pbx_app.api.errors import AUTHENTICATED, EVERY_OPERATION, JSON_BODY, error_responses
from pbx_app.api.internal import require_internal_token
from pbx_app.api.models import Body
from pbx_app.repositories.call_records import Window
from pbx_app.services import call_records as service

MAX_BATCH = 1000

# --- times: UTC as ISO 8601 text, one spelling only --------------------------------------------
_UTC_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z$"
_UTC_TEXT = re.compile(_UTC_PATTERN)


def _utc_text(value: Any) -> Any:
    if not isinstance(value, str) or not _UTC_TEXT.fullmatch(value):
        raise ValueError("expected a UTC time as YYYY-MM-DDTHH:MM:SS[.ffffff]Z")
    return value


def _naive_utc(value: datetime) -> datetime:
    # Stored naive UTC, like every timestamp of the schema.
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


UtcTime = Annotated[
    datetime,
    BeforeValidator(_utc_text),
    AfterValidator(_naive_utc),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _UTC_PATTERN,
            "description": "UTC, ISO 8601: YYYY-MM-DDTHH:MM:SS[.ffffff]Z",
        }
    ),
]


# Text as the proxy recorded it (the shipper replaces control characters and cuts to length).
Tag = Annotated[str, Field(strict=True, min_length=1, max_length=64), SafeText]
Text64 = Annotated[str, Field(strict=True, max_length=64), SafeText]
Text128 = Annotated[str, Field(strict=True, max_length=128), SafeText]
Text256 = Annotated[str, Field(strict=True, max_length=256), SafeText]
Text512 = Annotated[str, Field(strict=True, max_length=512), SafeText]
CallId = Annotated[str, Field(strict=True, min_length=1, max_length=255), SafeText]

CustomerRef = Annotated[int | None, Field(strict=True, ge=1, le=2_147_483_647)]


# --- response models ---------------------------------------------------------------------------
class CallRecord(BaseModel):
    id: int
    started_at: str = Field(description="UTC, ISO 8601: the INVITE reached the platform")
    answered_at: str | None = Field(description="UTC; null when nobody answered")
    ended_at: str = Field(description="UTC: the call ended (BYE), or its final failure answer")
    duration: float = Field(description="seconds talked (answered_at to ended_at), else 0")
    caller: str = Field(
        description="as the call came in: the calling device's SIP username, or the "
        "carrier's From user"
    )
    caller_id: str = Field(description="the calling identity presented to the callee")
    dialled: str = Field(description="the number or extension as dialled (Request-URI user)")
    resolved: str = Field(
        description="what rang when the call was answered or ended: comma-joined extension "
        "AORs, an external number, or reject:<code>"
    )
    answered_by: str = Field(description="the answering contact (user@host), empty if none")
    diversions: int = Field(description="how often the call was diverted (forwarded)")
    sip_code: int = Field(description="the final SIP answer (200 when answered)")
    reason: str = Field(description="its reason phrase")
    cause: Literal[
        "answered",
        "busy",
        "declined",
        "cancelled",
        "no_answer",
        "unavailable",
        "not_found",
        "forbidden",
        "loop",
        "rejected",
        "failed",
    ] = Field(description="the outcome in words, from sip_code")
    customer_id: int | None = Field(
        description="the tenant of the call: the caller's customer, or the called customer "
        "for calls from outside; null for calls to numbers nobody holds"
    )
    callee_customer_id: int | None = Field(description="the called customer of an on-net call")
    source: Literal["device", "trunk"] = Field(
        description="device: a registered device called; trunk: the call came from the carrier"
    )
    site: str = Field(description="the site whose proxy took the call")
    node: str = Field(description="that proxy")
    relay: str = Field(description="the site whose media relay carried the call's media")
    call_id: str
    price_zone: str | None = Field(
        description="the price list's zone of the number called; null for calls not rated "
        "(unanswered, on-net, emergency)"
    )
    price_cents: str | None = Field(
        description="the call's price in cents, exact (4 decimals), net: billed increments "
        "of the list in force when it started, at the tariff's minute price, 0 in a flat rate; "
        "the invoice rounds once per line"
    )


class CallRecordPage(BaseModel):
    items: list[CallRecord]
    next_offset: int | None = Field(description="offset of the next page; null on the last")


# --- reading -----------------------------------------------------------------------------------
router = APIRouter(tags=["call records"], responses=error_responses(AUTHENTICATED))

CSV_MEDIA_TYPE = "text/csv"
ListLimit = Annotated[int, Query(ge=1, le=10_000)]
Since = Annotated[
    UtcTime | None, Query(alias="from", description="started_at from (inclusive), UTC")
]
Until = Annotated[UtcTime | None, Query(description="started_at until (exclusive), UTC")]
Format = Annotated[
    Literal["json", "csv"] | None,
    Query(
        alias="format",
        description="csv: text/csv with a header row (also chosen by Accept: text/csv)",
    ),
]
LIST_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the records, newest first (JSON; or CSV, see format)",
        "content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}}},
    }
}


def _wants_csv(request: Request, output: str | None) -> bool:
    if output is not None:
        return output == "csv"
    accept = request.headers.get("accept", "").lower()
    return CSV_MEDIA_TYPE in accept and "application/json" not in accept


def _answer(
    request: Request, output: str | None, items: list[Any], limit: int, offset: int
) -> dict[str, Any] | Response:
    if _wants_csv(request, output):
        return Response(
            service.to_csv(items),
            media_type=CSV_MEDIA_TYPE,
            headers={"content-disposition": 'attachment; filename="call-records.csv"'},
        )
    return {"items": items, "next_offset": offset + limit if len(items) == limit else None}


@router.get(
    "/customers/{customer_id}/call-records",
    response_model=CallRecordPage,
    responses={
        **LIST_RESPONSES,
        **error_responses({404: "not_found: no such customer"}),
    },
)
def list_customer_call_records(
    customer_id: Id,
    request: Request,
    actor: CurrentActor,
    ctx: Ctx,
    since: Since = None,
    until: Until = None,
    limit: ListLimit = 1000,
    offset: Offset = 0,
    output: Format = None,
) -> Any:
    with ctx.db.snapshot() as conn:
        rows = service.list_for_customer(
            conn, actor, customer_id, now(), Window(since, until), limit, offset
        )
        items = service.priced(conn, rows, viewer=customer_id)
    return _answer(request, output, items, limit, offset)


@router.get("/call-records", response_model=CallRecordPage, responses=LIST_RESPONSES)
def list_platform_call_records(
    request: Request,
    actor: CurrentActor,
    ctx: Ctx,
    since: Since = None,
    until: Until = None,
    limit: ListLimit = 1000,
    offset: Offset = 0,
    output: Format = None,
) -> Any:
    with ctx.db.snapshot() as conn:
        rows = service.list_platform(conn, actor, Window(since, until), limit, offset)
        items = service.priced(conn, rows)
    return _answer(request, output, items, limit, offset)


# --- ingest (Kamailio's spool shippers) ---------------------------------------------------------
class CallRecordIn(Body):
    """One call as the proxy where it entered the platform recorded it."""

    node: Tag
    site: Tag
    call_id: CallId
    from_tag: Text128
    started_at: UtcTime
    ended_at: UtcTime
    answered_at: UtcTime | None = None
    customer_id: CustomerRef = None
    callee_customer_id: CustomerRef = None
    source: Literal["device", "trunk"] = Field(
        description="device: a registered device called; trunk: the call came from the carrier"
    )
    caller: Text128
    caller_id: Text64
    dialled: Text128
    resolved: Text512
    answered_by: Text256
    diversions: Annotated[int, Field(strict=True, ge=0, le=1000)]
    relay: Text64
    sip_code: Annotated[int, Field(strict=True, ge=100, le=699)]
    reason: Text128

    @field_validator("ended_at")
    @classmethod
    def _not_before_start(cls, value: datetime, info: ValidationInfo) -> datetime:
        started = info.data.get("started_at")
        if started is not None and value < started:
            raise ValueError("ended_at is before started_at")
        return value

    @field_validator("answered_at")
    @classmethod
    def _within_the_call(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        started, ended = info.data.get("started_at"), info.data.get("ended_at")
        if value is not None and (
            (started is not None and value < started) or (ended is not None and value > ended)
        ):
            raise ValueError("answered_at is outside started_at..ended_at")
        return value


class CallRecordBatch(Body):
    records: Annotated[list[CallRecordIn], Field(min_length=1, max_length=MAX_BATCH)]


class IngestResult(BaseModel):
    received: int = Field(description="records in the batch")
    stored: int = Field(description="of them new; the rest were stored by an earlier delivery")


internal_router = APIRouter(
    prefix="/internal/v1",
    tags=["internal"],
    dependencies=[Depends(require_internal_token)],
    responses=error_responses(
        EVERY_OPERATION,
        JSON_BODY,
        {
            401: "internal_token_invalid: X-PBX-Internal-Token is missing or wrong",
            422: "validation_failed: a record is invalid (details name it, e.g. "
            "body.records.3.started_at); nothing of the batch was stored",
            503: "internal_api_disabled: PBX_INTERNAL_TOKEN is unset; or database_unavailable: "
            "no writable database; nothing was stored, send the batch again later (Retry-After)",
        },
    ),
)


@internal_router.post("/call-records", response_model=IngestResult)
def ingest_call_records(batch: CallRecordBatch, ctx: Ctx) -> dict[str, Any]:
    records = [r.model_dump() for r in batch.records]
    with ctx.db.transaction() as conn:
        stored = service.ingest(conn, records, now())
    return {"received": len(records), "stored": stored}
