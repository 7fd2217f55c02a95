"""eFax (issue 20): fax numbers, faxes sent and received, and the gateways' job queue.

Customers (eFax booked):
- ``/customers/{id}/fax-numbers``: which of its numbers the fax gateways answer, where their
  faxes are mailed, who may send faxes by mail;
- ``POST /customers/{id}/faxes`` (multipart: ``file`` PDF or TIFF, ``to``, ``from`` one of its
  fax numbers, optional ``notify`` for the status mail) queues a fax: 202 with its status;
- ``GET /customers/{id}/faxes[/{fax_id}[/document]]``: status and pages of every fax in and
  out, and its document (the PDF received, the document sent).

Gateways (/internal/v1/fax, the internal token): lease the next job, fetch its document, renew
the lease while the call lasts, report the outcome; hand in a fax received, or a mail to fax.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from pbx_app import errors, metrics
from pbx_app.api.deps import Ctx, CurrentActor, Id, Limit, now
from pbx_app.api.errors import AUTHENTICATED, JSON_BODY, NOT_FOUND, error_responses
from pbx_app.api.forms import Form, form_body, read_form
from pbx_app.api.internal import INTERNAL_RESPONSES, require_internal_token
from pbx_app.api.models import Body, Items
from pbx_app.services import faxes as service

router = APIRouter(tags=["efax"], responses=error_responses(AUTHENTICATED, NOT_FOUND))
internal_router = APIRouter(
    prefix="/internal/v1/fax",
    tags=["internal"],
    dependencies=[Depends(require_internal_token)],
    responses=INTERNAL_RESPONSES,
)
LEASED = error_responses(
    JSON_BODY, {409: "lease_lost: the job is not (any more) leased to this gateway"}
)
MULTIPART = {400: "form_invalid: the body is no readable multipart/form-data, or lacks a field"}
BOOKED = {403: "efax_not_booked: eFax is not booked for this customer (price list option)"}


class FaxNumber(BaseModel):
    id: int
    customer_id: int
    number: str
    email_to: list[str]
    allowed_senders: list[str]
    relay_t38: bool = Field(
        description="the media relay turns callers' G.711 into T.38 towards the fax gateway"
    )
    created_at: str


Addresses = Annotated[list[str], Field(max_length=service.MAX_ADDRESSES)]


class FaxNumberCreate(Body):
    number: Annotated[str, Field(min_length=2, max_length=20)]
    email_to: Addresses = Field(default_factory=list)
    allowed_senders: Addresses = Field(default_factory=list)
    relay_t38: Annotated[bool, Field(strict=True)] = False


class FaxNumberUpdate(Body):
    email_to: Addresses | None = None
    allowed_senders: Addresses | None = None
    relay_t38: Annotated[bool, Field(strict=True)] | None = None


class Fax(BaseModel):
    id: int
    customer_id: int
    direction: str = Field(description="in or out")
    our_number: str
    remote_number: str
    status: str = Field(description="out: queued, sending, sent, failed; in: received, failed")
    cause: str
    pages: int
    attempts: int
    source: str = Field(description="api, mail (sent by mail) or call (received)")
    document_name: str
    seconds: int
    bit_rate: int
    transport: str = Field(description="audio (G.711) or t38")
    remote_ident: str = Field(description="the other fax machine's station id")
    created_at: str
    completed_at: str | None
    next_attempt_at: str | None


@router.get("/customers/{customer_id}/fax-numbers", response_model=Items[FaxNumber])
def list_fax_numbers(customer_id: Id, actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        rows = service.list_numbers(conn, actor, customer_id, now())
    return {"items": [service.public_number(r) for r in rows]}


@router.post(
    "/customers/{customer_id}/fax-numbers",
    status_code=201,
    response_model=FaxNumber,
    responses=error_responses(
        JSON_BODY,
        {
            **BOOKED,
            409: "number_in_use: an extension answers it, or it is a fax number already",
            422: "number_not_owned: not in a head number block of this customer; "
            "invalid_number_format; invalid_email",
        },
    ),
)
def add_fax_number(
    customer_id: Id, body: FaxNumberCreate, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    with ctx.db.transaction() as conn:
        row = service.add_number(
            conn, actor, customer_id, body.number, body.email_to, body.allowed_senders, now(),
            body.relay_t38,
        )  # fmt: skip
    return service.public_number(row)


@router.patch(
    "/customers/{customer_id}/fax-numbers/{number_id}",
    response_model=FaxNumber,
    responses=error_responses(JSON_BODY, {422: "invalid_email"}),
)
def update_fax_number(
    customer_id: Id, number_id: Id, body: FaxNumberUpdate, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    with ctx.db.transaction() as conn:
        row = service.update_number(
            conn, actor, customer_id, number_id, body.email_to, body.allowed_senders, now(),
            body.relay_t38,
        )  # fmt: skip
    return service.public_number(row)


@router.delete(
    "/customers/{customer_id}/fax-numbers/{number_id}", status_code=204, response_model=None
)
def delete_fax_number(customer_id: Id, number_id: Id, actor: CurrentActor, ctx: Ctx) -> None:
    with ctx.db.transaction() as conn:
        service.delete_number(conn, actor, customer_id, number_id, now())


def _document(form: Form) -> service.Document:
    if "file" not in form.files:
        raise errors.FormInvalid("file is missing: the document (PDF or TIFF)", field="file")
    name, content = form.files["file"]
    if len(content) > service.MAX_DOCUMENT_BYTES:
        raise errors.DocumentTooLarge(
            f"a document has at most {service.MAX_DOCUMENT_BYTES} bytes", field="file"
        )
    return service.Document(content, name)


FILE = {"type": "string", "format": "binary", "description": "the document: PDF or TIFF"}
FORM_LIMIT = service.MAX_DOCUMENT_BYTES + 64 * 1024


@router.post(
    "/customers/{customer_id}/faxes",
    status_code=202,
    response_model=Fax,
    responses=error_responses(
        {
            **BOOKED,
            **MULTIPART,
            404: "not_found: `from` is not a fax number of this customer",
            413: "document_too_large: at most 10 MiB",
            415: "document_type_unsupported: only PDF and TIFF",
            422: "invalid_number_format: `to` is no number; invalid_email: `notify`",
        }
    ),
    openapi_extra=form_body(
        {
            "file": FILE,
            "to": {"type": "string", "description": "the number to fax to"},
            "from": {"type": "string", "description": "one of the customer's fax numbers"},
            "notify": {"type": "string", "description": "who gets the status mail"},
        },
        ["file", "to", "from"],
    ),
)
async def send_fax(
    customer_id: Id, request: Request, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    form = await read_form(request, FORM_LIMIT)
    document = _document(form)
    to = form.text("to", max_length=32)
    from_number = form.text("from", max_length=20)
    notify = form.text("notify", required=False)

    def queue() -> dict[str, Any]:
        with ctx.db.transaction() as conn:
            row = service.submit(
                conn,
                actor,
                customer_id,
                to=to,
                from_number=from_number,
                document=document,
                notify=notify,
                now=now(),
            )
        return service.public(row)

    return await run_in_threadpool(queue)


@router.get("/customers/{customer_id}/faxes", response_model=Items[Fax])
def list_faxes(
    customer_id: Id,
    actor: CurrentActor,
    ctx: Ctx,
    direction: Literal["in", "out"] | None = None,
    limit: Limit = 100,
    before: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        rows = service.list_faxes(conn, actor, customer_id, direction, limit, before, now())
    return {"items": [service.public(r) for r in rows]}


@router.get("/customers/{customer_id}/faxes/{fax_id}", response_model=Fax)
def get_fax(customer_id: Id, fax_id: Id, actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        return service.public(service.get(conn, actor, customer_id, fax_id, now()))


@router.get(
    "/customers/{customer_id}/faxes/{fax_id}/document",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}, "image/tiff": {}}}},
)
def fax_document(customer_id: Id, fax_id: Id, actor: CurrentActor, ctx: Ctx) -> Response:
    with ctx.db.snapshot() as conn:
        row = service.get(conn, actor, customer_id, fax_id, now())
    content = bytes(row["document"] or b"")
    if not content:
        raise errors.NotFound(f"fax {fax_id} has no document")
    kind = service.document_type(content)
    name = row["document_name"].replace('"', "")
    return Response(
        content,
        media_type=service.DOCUMENT_TYPES[kind],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --- the gateways -------------------------------------------------------------------------------
class Lease(Body):
    gateway: Annotated[str, Field(min_length=1, max_length=64)]


class Outcome(Body):
    status: Literal["ok", "busy", "no_answer", "failed"]
    cause: Annotated[str, Field(max_length=200)] = ""
    pages: Annotated[int, Field(ge=0, le=1000)] = 0
    seconds: Annotated[int, Field(ge=0, le=86_400)] = 0
    bit_rate: Annotated[int, Field(ge=0, le=33_600)] = 0
    transport: Annotated[str, Field(max_length=5)] = ""
    remote_ident: Annotated[str, Field(max_length=40)] = ""
    sip_code: Annotated[int, Field(ge=0, le=699)] = 0

    def outcome(self) -> service.Outcome:
        return service.Outcome(**self.model_dump(exclude={"gateway"}))


class Report(Outcome):
    """A gateway's report of an attempt at a job it holds."""

    gateway: Annotated[str, Field(min_length=1, max_length=64)]


class ReceivedReport(BaseModel):
    """What a gateway says of a fax it received (the form's ``report`` field)."""

    number: Annotated[str, Field(min_length=2, max_length=20)]
    caller: Annotated[str, Field(max_length=64)] = ""
    gateway: Annotated[str, Field(max_length=64)] = ""
    call_id: Annotated[str, Field(max_length=255)] = ""
    outcome: Outcome


class Job(BaseModel):
    id: int
    our_number: str
    remote_number: str
    attempts: int
    document_name: str
    lease_seconds: int = Field(description="renew the lease well within this (a third of it)")


@internal_router.post(
    "/jobs/lease",
    response_model=Job | None,
    responses={204: {"description": "no job is due"}, **error_responses(JSON_BODY)},
)
def lease_job(body: Lease, ctx: Ctx, response: Response) -> dict[str, Any] | None:
    hold = timedelta(seconds=ctx.settings.fax_lease_seconds)
    with ctx.db.transaction() as conn:
        row = service.lease(conn, body.gateway, now(), hold)
    if row is None:
        response.status_code = 204
        return None
    fields = {k: row[k] for k in Job.model_fields if k != "lease_seconds"}
    return {**fields, "lease_seconds": int(hold.total_seconds())}


@internal_router.post(
    "/jobs/{fax_id}/document",
    response_class=Response,
    responses={
        **LEASED,
        200: {"content": {"application/octet-stream": {}}},
        **error_responses(NOT_FOUND),
    },
)
def job_document(fax_id: Id, body: Lease, ctx: Ctx) -> Response:
    with ctx.db.snapshot() as conn:
        content = service.document(conn, fax_id, body.gateway, now())
    return Response(content, media_type="application/octet-stream")


@internal_router.post(
    "/jobs/{fax_id}/renew",
    status_code=204,
    response_model=None,
    responses={**LEASED, **error_responses(NOT_FOUND)},
)
def renew_job(fax_id: Id, body: Lease, ctx: Ctx) -> None:
    with ctx.db.transaction() as conn:
        service.renew(
            conn, fax_id, body.gateway, now(), timedelta(seconds=ctx.settings.fax_lease_seconds)
        )


@internal_router.post(
    "/jobs/{fax_id}/result",
    response_model=Fax,
    responses={**LEASED, **error_responses(NOT_FOUND)},
)
def job_result(fax_id: Id, body: Report, ctx: Ctx) -> dict[str, Any]:
    metrics.fax_call("out", body.status)
    with ctx.db.transaction() as conn:
        row = service.finish(
            conn, fax_id, body.gateway, body.outcome(), now(), ctx.settings.fax_retry_seconds
        )
    ctx.outbox.wake()
    return service.public(row)


@internal_router.post(
    "/received",
    response_model=Fax,
    responses=error_responses(
        {
            **MULTIPART,
            404: "not_found: the number is no fax number",
            413: "document_too_large",
            422: "validation_failed: the report cannot be read",
        }
    ),
    openapi_extra=form_body(
        {
            "report": {"type": "string", "description": "JSON: number, caller, outcome"},
            "file": {**FILE, "description": "the pages as PDF"},
        },
        ["report"],
    ),
)
async def fax_received(request: Request, ctx: Ctx) -> dict[str, Any]:
    form = await read_form(request, FORM_LIMIT)
    try:
        report = ReceivedReport.model_validate_json(form.text("report", max_length=2000))
    except ValidationError as exc:
        raise errors.FaxReportInvalid(f"report: {exc.errors()[0]['msg']}") from None
    outcome, number, caller = report.outcome.outcome(), report.number, report.caller
    metrics.fax_call("in", outcome.status)
    pdf = _document(form).content if "file" in form.files else None

    def keep() -> dict[str, Any]:
        with ctx.db.transaction() as conn:
            row = service.received(conn, number, caller[:32], outcome, pdf, now())
        if row is None:
            raise errors.NotFound(f"{number} is not a fax number")
        ctx.outbox.wake()
        return service.public(row)

    return await run_in_threadpool(keep)


@internal_router.post(
    "/mail",
    status_code=202,
    response_model=Fax,
    responses=error_responses(
        {
            **MULTIPART,
            403: "sender_not_allowed: no fax number allows this sender",
            413: "document_too_large",
            415: "document_type_unsupported",
            422: "invalid_number_format: `to`; invalid_email: `sender`",
        }
    ),
    openapi_extra=form_body(
        {"sender": {"type": "string"}, "to": {"type": "string"}, "file": FILE},
        ["sender", "to", "file"],
    ),
)
async def fax_by_mail(request: Request, ctx: Ctx) -> dict[str, Any]:
    form = await read_form(request, FORM_LIMIT)
    document = _document(form)
    sender, to = form.text("sender"), form.text("to", max_length=32)

    def queue() -> dict[str, Any]:
        with ctx.db.transaction() as conn:
            return service.public(service.submit_by_mail(conn, sender, to, document, now()))

    return await run_in_threadpool(queue)
