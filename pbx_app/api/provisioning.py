"""Zero-touch provisioning (R10): what phones fetch (`/prov/...`, no session: they prove who they
are, pbx_app.provisioning), and what admins and the operator manage (claim tokens, the
certified models, the log of every fetch)."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any

from cryptography import x509
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field

from pbx_app import errors
from pbx_app import provisioning as service
from pbx_app.api.deps import Ctx, CurrentActor, Id, now
from pbx_app.api.errors import AUTHENTICATED, JSON_BODY, NOT_FOUND, error_responses
from pbx_app.api.models import Body, Items
from pbx_app.provisioning_formats import FormatName
from pbx_app.repositories import provisioning as repo
from pbx_app.services.access import authorize, require_operator

router = APIRouter(tags=["provisioning"], responses=error_responses(AUTHENTICATED))
# Phones: no JSON, no session, not in the API document (their firmware knows nothing of it).
phone_router = APIRouter(include_in_schema=False)

ModelName = Annotated[str, Field(strict=True, pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]


def _utc(naive: datetime) -> datetime:
    """Stored naive UTC; answered with its zone (RFC 3339 date-time)."""
    return naive.replace(tzinfo=UTC)


# --- phones ----------------------------------------------------------------------------------
def _basic(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


async def _fetch(request: Request, ctx: Ctx, file: str, token: str | None) -> Response:
    vault = ctx.vault
    assert vault is not None  # set by create_app
    cert = (request.scope.get("extensions") or {}).get(service.CLIENT_CERTIFICATE)
    req = service.Request(
        file=file,
        remote=request.client.host if request.client else "",
        user_agent=request.headers.get("user-agent", ""),
        token=token,
        certificate=x509.load_der_x509_certificate(cert) if cert is not None else None,
        basic=_basic(request),
    )
    try:
        served = await run_in_threadpool(service.serve, ctx.db, vault, ctx.settings, req, now())
    except service.Refused as r:
        # The same few words whatever the reason: the log says which, the phone learns nothing.
        headers = {"www-authenticate": f'Basic realm="{service.REALM}"'} if r.status == 401 else {}
        if r.status == 429:
            headers = {"retry-after": str(r.retry_after)}
        text = {
            401: "credentials required",
            403: "refused",
            404: "not found",
            429: "too many refusals; try later",
        }.get(r.status, "unavailable")
        return PlainTextResponse(text + "\n", status_code=r.status, headers=headers)
    return Response(served.body, media_type=served.content_type)


@phone_router.get("/prov/{file}")
async def phone_fetch(file: str, request: Request, ctx: Ctx) -> Response:
    return await _fetch(request, ctx, file, None)


@phone_router.get("/prov/t/{token}/{file}")
async def phone_fetch_with_claim(token: str, file: str, request: Request, ctx: Ctx) -> Response:
    return await _fetch(request, ctx, file, token)


# --- admins: claim tokens --------------------------------------------------------------------
class ClaimToken(BaseModel):
    token: str = Field(description="shown once; works once, for this device's MAC")
    url: str = Field(
        description="the provisioning server URL to give the phone (or its vendor's redirection "
        "service); the phone appends its own file name"
    )
    expires_at: datetime = Field(description="UTC")


@router.post(
    "/customers/{customer_id}/extensions/{extension_id}/devices/{device_id}/claim-token",
    status_code=201,
    response_model=ClaimToken,
    responses=error_responses(
        NOT_FOUND,
        {
            409: "device_has_no_mac; device_not_certified: hardware-only devices are "
            "configured by hand (R10)"
        },
    ),
)
def issue_claim_token(
    customer_id: Id, extension_id: Id, device_id: Id, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    with ctx.db.transaction() as conn:
        claim = service.issue_claim(
            conn, actor, customer_id, extension_id, device_id, ctx.settings, now()
        )
    return {"token": claim.token, "url": claim.url, "expires_at": _utc(claim.expires_at)}


# --- the operator: certified models ----------------------------------------------------------
class DeviceModelIn(Body):
    vendor: Annotated[str, Field(strict=True, pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]
    label: Annotated[str, Field(strict=True, min_length=1, max_length=100)]
    format: FormatName = Field(description="the file format its firmware reads")
    certified: Annotated[bool, Field(strict=True)] = Field(
        description="provisioned zero-touch; false: hardware only, configured by hand (R10)"
    )
    firmware_url: (
        Annotated[str, Field(strict=True, max_length=2000, pattern=r"^https?://[^\s]+$")] | None
    ) = None


class DeviceModel(BaseModel):
    model: str
    vendor: str
    label: str
    format: str
    certified: bool
    firmware_url: str | None


def _model_out(row: Any) -> dict[str, Any]:
    return {k: row[k] for k in ("model", "vendor", "label", "format", "certified", "firmware_url")}


@router.get("/device-models", response_model=Items[DeviceModel])
def list_device_models(actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        return {"items": [_model_out(r) for r in repo.models(conn)]}


@router.put(
    "/device-models/{model}",
    response_model=DeviceModel,
    responses=error_responses(JSON_BODY),
)
def put_device_model(
    model: Annotated[str, ModelName], body: DeviceModelIn, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    require_operator(actor)
    with ctx.db.transaction() as conn:
        repo.put_model(conn, {"model": model, **body.model_dump(), "updated_at": now()})
        row = repo.model(conn, model)
    return _model_out(row)


@router.delete(
    "/device-models/{model}",
    status_code=204,
    response_class=Response,
    responses=error_responses(NOT_FOUND, {409: "device_model_in_use: devices of it exist"}),
)
def delete_device_model(
    model: Annotated[str, ModelName], actor: CurrentActor, ctx: Ctx
) -> Response:
    require_operator(actor)
    with ctx.db.transaction() as conn:
        if repo.model_in_use(conn, model):
            raise errors.DeviceModelInUse(f"devices of model {model!r} exist; mark it uncertified")
        if not repo.delete_model(conn, model):
            raise errors.NotFound(f"device model {model!r} not found")
    return Response(status_code=204)


# --- the log ---------------------------------------------------------------------------------
class ProvisioningLogEntry(BaseModel):
    id: int
    at: datetime = Field(description="UTC")
    mac: str | None
    path: str
    remote: str
    user_agent: str
    auth: str = Field(description="certificate | token | password | none")
    outcome: str = Field(description="served | refused")
    reason: str
    customer_id: int | None
    device_id: int | None


@router.get(
    "/provisioning-log",
    response_model=Items[ProvisioningLogEntry],
    responses=error_responses(NOT_FOUND),
)
def provisioning_log(
    actor: CurrentActor,
    ctx: Ctx,
    customer_id: Annotated[
        int | None,
        Query(ge=1, description="required unless an operator: the customer's fetches"),
    ] = None,
    before: Annotated[int | None, Query(ge=1, description="entries older than this id")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        if customer_id is None:
            require_operator(actor)  # every fetch, unknown MACs included
        else:
            authorize(conn, actor, customer_id, now(), write=True, lock=False)  # admins
        rows = repo.log_entries(conn, customer_id, before, limit)
    return {"items": [{**r, "at": _utc(r["at"])} for r in rows]}
