"""Devices of an extension (R4) and zero-touch provisioning by MAC (R10)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import Field

from pbx_app.addressing import AOR_SHAPE, CARRIER_CALLER, SIP_USERNAME_PATTERN, anchored
from pbx_app.api.deps import Ctx, CurrentActor, Id, SafeText, now
from pbx_app.api.errors import AUTHENTICATED, JSON_BODY, NOT_FOUND, error_responses
from pbx_app.api.models import Body, Device, DeviceCredentials, Items, ProvisioningConfig
from pbx_app.limits import devices_phrase, max_devices_per_extension
from pbx_app.services import devices as service

router = APIRouter(tags=["devices"], responses=error_responses(AUTHENTICATED, NOT_FOUND))

MAC_TEXT = r"^[0-9A-Fa-f]{2}([:.-]?[0-9A-Fa-f]{2}){5}$"
MacText = Annotated[str, Field(strict=True, pattern=MAC_TEXT)]
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


def _with_secret(creds: service.DeviceCredentials) -> dict[str, Any]:
    # The plain SIP password is shown once; only HA1 is stored.
    return {**service.public(creds.device), "sip_password": creds.sip_password}


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
        )
    return _with_secret(creds)


@router.get(
    "/customers/{customer_id}/extensions/{extension_id}/devices", response_model=Items[Device]
)
def list_devices(
    customer_id: Id, extension_id: Id, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        rows = service.list_(conn, actor, customer_id, extension_id, now())
    return {"items": [service.public(r) for r in rows]}


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
            conn, actor, customer_id, extension_id, device_id, now(), body.sip_password
        )
    return _with_secret(creds)


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


@router.post(
    "/provisioning/{mac}",
    response_model=ProvisioningConfig,
    responses=error_responses(
        {
            404: "not_found: no device has this MAC",
            409: "device_not_certified: hardware-only devices are configured by hand (R10)",
        }
    ),
)
def provision(
    mac: Annotated[str, Path(pattern=MAC_TEXT)],
    actor: CurrentActor,
    ctx: Ctx,
) -> dict[str, Any]:
    with ctx.db.transaction() as conn:
        return service.provisioning_config(conn, actor, mac, now(), ctx.settings.sip_tls_port)
