"""The browser phone's SIP credentials for the logged-in user (R4, issue 14).

Each user gets one device of kind "browser" per extension, created on first use; it counts
against the extension's device limit like any phone. Its password is derived (HMAC with the
stack secret over the device id and username): every tab of the user gets the same one, and
nothing recoverable is stored, only HA1 as for every device. Browsers are a Business Option
feature: the proxies refuse WSS registrations without it, and so does this endpoint.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping

from pbx_app import errors
from pbx_app.repositories import browser_phones as repo
from pbx_app.repositories import customers as customers_repo
from pbx_app.repositories import devices as devices_repo
from pbx_app.repositories import extensions as extensions_repo
from pbx_app.repositories import user_extensions as user_extensions_repo
from pbx_app.services import devices as devices_service
from pbx_app.services.access import Actor, Role, authorize

# Long enough for a digest password nobody types; hex, so any SIP stack takes it.
PASSWORD_HEX_CHARS = 32


def derived_password(secret_key: str, device_id: int, username: str) -> str:
    message = f"browser-phone:{device_id}:{username}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()[:PASSWORD_HEX_CHARS]


def _extension_of_actor(
    conn: Connection, actor: Actor, extension_id: int, now: datetime
) -> tuple[RowMapping, RowMapping]:
    """(customer, extension) if ``actor`` may phone from it: an admin any extension of their
    customer, a user only the extensions linked to them. Anything else, another customer's
    extension or one that does not exist, is the same customer_scope_violation: whether an
    extension id exists elsewhere is nobody else's business."""
    refused = errors.CustomerScopeViolation(
        "a browser phone is for your own extensions only; this one is not yours"
    )
    if actor.customer_id is None or actor.user_id is None:
        raise refused
    authorize(conn, actor, actor.customer_id, now)  # scope and trial (R19)
    # Locked like every device write (a plain user may not write otherwise): the limit check
    # counts under it, and two tabs asking at once make one device.
    customer = customers_repo.get(conn, actor.customer_id, for_update=True)
    assert customer is not None
    extension = extensions_repo.get(conn, actor.customer_id, extension_id, for_update=True)
    if extension is None:
        raise refused
    if actor.role is Role.USER and not user_extensions_repo.linked(
        conn, actor.user_id, extension_id
    ):
        raise refused
    return customer, extension


def credentials(
    conn: Connection,
    actor: Actor,
    extension_id: int,
    now: datetime,
    *,
    secret_key: str,
    platform_sip_domain: str,
    ws_servers: tuple[str, ...],
) -> dict[str, Any]:
    customer, extension = _extension_of_actor(conn, actor, extension_id, now)
    if not extension["business_option"]:
        raise errors.BusinessOptionRequired(
            f"extension {extension['number']} has no Business Option: browser phones need it "
            "(R4); an admin can book it for the extension"
        )
    assert actor.user_id is not None
    device = repo.get(conn, actor.user_id, extension_id)
    if device is None:
        device = _create(conn, customer, extension, actor.user_id, platform_sip_domain, now)
    username, realm = device["sip_username"], device["realm"]
    password = derived_password(secret_key, device["id"], username)
    stored = devices_service.credential_values(username, realm, password)
    if device["ha1"] != stored["ha1"]:
        # The stack secret changed since the device was made: its HA1 follows the new password.
        devices_repo.update_fields(conn, device["id"], stored)
    return {
        "extension_id": extension["id"],
        "extension": extension["number"],
        "display_name": extension["display_name"],
        "sip_uri": f"sip:{username}@{realm}",
        "authorization_user": username,
        "password": password,
        "realm": realm,
        "ws_servers": list(ws_servers),
        "srtp_required": bool(customer["srtp_required"]),
    }


def _create(
    conn: Connection,
    customer: RowMapping,
    extension: RowMapping,
    user_id: int,
    platform_sip_domain: str,
    now: datetime,
) -> RowMapping:
    devices_service.check_limit(extension)  # 409 device_limit_reached (R4)
    customer_id = customer["id"]
    username = f"c{customer_id}-{extension['number']}-b{secrets.token_hex(3)}"
    while devices_repo.sip_username_exists(conn, username):
        username = f"c{customer_id}-{extension['number']}-b{secrets.token_hex(3)}"
    realm = devices_service.realm_of(customer, platform_sip_domain)
    device_id = devices_repo.insert(
        conn,
        {
            "customer_id": customer_id,
            "extension_id": extension["id"],
            "sip_username": username,
            "realm": realm,
            # Set from the derived password right after: it needs the device id.
            "ha1": "",
            "ha1b": "",
            "created_at": now,
            "kind": repo.BROWSER,
            "user_id": user_id,
        },
    )
    extensions_repo.add_device_count(conn, extension["id"], 1)
    row = devices_repo.get(conn, customer_id, device_id)
    assert row is not None
    return row
