"""The browser phone's SIP credentials for the logged-in user (R4, issue 14)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from pbx_app.api.deps import Ctx, CurrentActor, StrictId, now
from pbx_app.api.errors import AUTHENTICATED, JSON_BODY, error_responses
from pbx_app.api.models import Body
from pbx_app.services import browser_phone as service

router = APIRouter(tags=["browser phone"], responses=error_responses(AUTHENTICATED))


class BrowserPhoneRequest(Body):
    extension_id: StrictId


class BrowserPhoneCredentials(BaseModel):
    extension_id: int
    extension: str = Field(description="the extension number")
    display_name: str
    sip_uri: str = Field(description="the address the browser registers as")
    authorization_user: str
    password: str = Field(description="derived: the same for every tab of the user")
    realm: str
    ws_servers: list[str] = Field(description="the proxies' WSS URLs, home site first")
    srtp_required: bool


@router.post(
    "/me/browser-phone",
    response_model=BrowserPhoneCredentials,
    responses=error_responses(
        JSON_BODY,
        {
            403: "business_option_required: the extension has no Business Option (R4); "
            "customer_scope_violation: not an extension of the user (a user: linked to them, "
            "an admin: of their customer); permission_denied, csrf_failed, trial_expired",
            409: "device_limit_reached: the extension has all the devices it may have (R4)",
        },
    ),
)
def browser_phone(body: BrowserPhoneRequest, actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    """SIP credentials of the user's browser phone on one extension: the device is made on
    first use and counts against the extension's device limit; deleting the user deletes it."""
    with ctx.db.transaction() as conn:
        return service.credentials(
            conn,
            actor,
            body.extension_id,
            now(),
            secret_key=ctx.settings.secret_key,
            platform_sip_domain=ctx.settings.sip_domain,
            ws_servers=ctx.settings.wss_urls,
        )
