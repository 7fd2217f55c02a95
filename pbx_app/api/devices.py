"""Devices of an extension (R4); what phones fetch by MAC is pbx_app.api.provisioning (R10)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import Field

from pbx_app.addressing import (
    AOR_SHAPE,
    CARRIER_CALLER,
    MAC_PATTERN,
    SIP_USERNAME_PATTERN,
    anchored,
)
from pbx_app.api.deps import Ctx, CurrentActor, Id, SafeText, now
from pbx_app.api.errors import AUTHENTICATED, JSON_BODY, NOT_FOUND, error_responses
from pbx_app.api.models import Body, Device, DeviceCredentials, Items
from pbx_app.limits import devices_phrase, max_devices_per_extension
from pbx_app.repositories import provisioning as provisioning_repo
from pbx_app.services import devices as service

router = APIRouter(tags=["devices"], responses=error_responses(AUTHENTICATED, NOT_FOUND))

MacText = Annotated[str, Field(strict=True, pattern=anchored(MAC_PATTERN))]
SipPassword = Annotated[str, Field(strict=True, min_length=12, max_length=64), SafeText]
GeneratedIfAbsent = Annotated[SipPassword | None, Field(description="Generated when absent.")]
SipUsername = Annotated[
    str,
    Field(
        strict=True,
        pattern=anchored(SIP_USERNAME_PATTERN),
        description="Unique on the platform; not shaped like an address of record "
        f"({AOR_SHAPE}) and not '{CARRIER_CALLER}' (422 invalid_number_format). "
        "Generated when absent.",
    ),
]


class DeviceCreate(Body):
    sip_username: SipUsername | None = None
    sip_password: GeneratedIfAbsent = None
    mac: MacText | None = None
    model: Annotated[str, Field(strict=True, pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")] | None = None


class PasswordReset(Body):
    sip_password: GeneratedIfAbsent = None


def _with_secret(creds: service.DeviceCredentials, certified: frozenset[str]) -> dict[str, Any]:
    # The plain SIP password is shown here once; the platform keeps HA1 and the sealed password
    # it hands only to the phone itself (provisioning).
    return {**service.public(creds.device, certified), "sip_password": creds.sip_password}


@router.post(
    "/customers/{customer_id}/extensions/{extension_id}/devices",
    status_code=201,
    response_model=DeviceCredentials,
    responses=error_responses(
        JSON_BODY,
        {
            409: f"device_limit_reached: {devices_phrase(max_devices_per_extension(False))} per "
            f"extension, {max_devices_per_extension(True)} with the Business Option (R4); "
            "sip_username_in_use; mac_in_use (R10)",
            422: "validation_failed, or invalid_number_format (a reserved SIP username)",
        },
    ),
)
def create_device(
    customer_id: Id, extension_id: Id, body: DeviceCreate, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    with ctx.db.transaction() as conn:
        creds = service.create(
            conn,
            actor,
            customer_id,
            extension_id,
            service.NewDevice(**body.model_dump()),
            now(),
            ctx.settings.sip_domain,
            ctx.vault,
        )
        certified = provisioning_repo.certified_models(conn)
    return _with_secret(creds, certified)


@router.get(
    "/customers/{customer_id}/extensions/{extension_id}/devices", response_model=Items[Device]
)
def list_devices(
    customer_id: Id, extension_id: Id, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        rows = service.list_(conn, actor, customer_id, extension_id, now())
        certified = provisioning_repo.certified_models(conn)
    return {"items": [service.public(r, certified) for r in rows]}


@router.post(
    "/customers/{customer_id}/extensions/{extension_id}/devices/{device_id}/password",
    response_model=DeviceCredentials,
    responses=error_responses(JSON_BODY),
)
def reset_device_password(
    customer_id: Id,
    extension_id: Id,
    device_id: Id,
    body: PasswordReset,
    actor: CurrentActor,
    ctx: Ctx,
) -> dict[str, Any]:
    with ctx.db.transaction() as conn:
        creds = service.reset_password(
            conn, actor, customer_id, extension_id, device_id, now(), body.sip_password, ctx.vault
        )
        certified = provisioning_repo.certified_models(conn)
    return _with_secret(creds, certified)


@router.delete(
    "/customers/{customer_id}/extensions/{extension_id}/devices/{device_id}",
    status_code=204,
    response_model=None,
)
def delete_device(
    customer_id: Id, extension_id: Id, device_id: Id, actor: CurrentActor, ctx: Ctx
) -> None:
    with ctx.db.transaction() as conn:
        service.delete(conn, actor, customer_id, extension_id, device_id, now())
