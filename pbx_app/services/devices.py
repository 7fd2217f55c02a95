"""Devices: SIP credentials per device, 1 per extension or up to 3 with the Business Option (R4).
Kamailio checks HA1 hashes; the password itself is kept only sealed (pbx_app.vault), so that a
phone provisioned again (pbx_app.provisioning) gets the same one. MAC and model say which phone
it is (R10)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping

from pbx_app import errors
from pbx_app.addressing import (
    AOR_PATTERN,
    AOR_SHAPE,
    CARRIER_CALLER,
    MAC_PATTERN,
    SIP_USERNAME_PATTERN,
    mac_digits,
)
from pbx_app.limits import devices_phrase, max_devices_per_extension
from pbx_app.repositories import devices as repo
from pbx_app.repositories import extensions as extensions_repo
from pbx_app.security import generate_password, sip_ha1, sip_ha1b
from pbx_app.services import extensions as extensions_service
from pbx_app.services.access import Actor, authorize
from pbx_app.vault import Vault

SIP_USERNAME = re.compile(SIP_USERNAME_PATTERN)
# The address of record of an extension: (customer id, extension number).
AOR = re.compile(AOR_PATTERN)
_MAC = re.compile(MAC_PATTERN)


def normalise_mac(mac: str) -> str:
    if not _MAC.fullmatch(mac):
        raise errors.InvalidNumberFormat(f"{mac[:40]!r} is not a MAC address")
    return mac_digits(mac)


@dataclass(frozen=True)
class NewDevice:
    sip_username: str | None = None
    sip_password: str | None = None
    mac: str | None = None
    model: str | None = None


@dataclass(frozen=True)
class DeviceCredentials:
    device: RowMapping
    sip_password: str


def public(row: RowMapping, certified_models: frozenset[str]) -> dict[str, Any]:
    out = {k: row[k] for k in ("id", "extension_id", "sip_username", "realm", "mac", "model")}
    out["sip_domain"] = row["realm"]
    out["certified"] = row["model"] in certified_models
    return out


def realm_of(customer: RowMapping, platform_sip_domain: str) -> str:
    return str(customer["sip_domain"] or platform_sip_domain)


def credential_values(
    username: str, realm: str, password: str, vault: Vault | None = None
) -> dict[str, str]:
    """The hashes Kamailio checks, and with a vault the password sealed for provisioning."""
    values = {
        "ha1": sip_ha1(username, realm, password),
        "ha1b": sip_ha1b(username, realm, realm, password),
    }
    if vault is not None:
        values["sip_secret"] = vault.seal(password, sip_secret_context(username))
    return values


def sip_secret_context(username: str) -> str:
    return f"device:{username}:sip"


def check_limit(extension: RowMapping, adding: int = 1) -> None:
    """The extension's own Business Option decides its device limit (R4)."""
    device_count = extension["device_count"]
    allowed = max_devices_per_extension(bool(extension["business_option"]))
    if device_count + adding > allowed:
        option = "with" if extension["business_option"] else "without"
        raise errors.DeviceLimitReached(
            f"{option} the Business Option an extension has at most {devices_phrase(allowed)} "
            f"(R4); this one has {device_count}"
        )


def create(
    conn: Connection,
    actor: Actor,
    customer_id: int,
    extension_id: int,
    new: NewDevice,
    now: datetime,
    platform_sip_domain: str,
    vault: Vault | None = None,
) -> DeviceCredentials:
    customer = authorize(conn, actor, customer_id, now, write=True)
    ext = extensions_service.get_owned(conn, customer_id, extension_id, for_update=True)
    check_limit(ext)
    username = new.sip_username or f"c{customer_id}-{ext['number']}-{secrets.token_hex(3)}"
    if not SIP_USERNAME.fullmatch(username):
        raise errors.InvalidNumberFormat("a SIP username has 3-64 of a-z 0-9 . _ -")
    if AOR.fullmatch(username):
        raise errors.InvalidNumberFormat(
            f"a SIP username may not look like an address of record ({AOR_SHAPE})"
        )
    if username == CARRIER_CALLER:
        raise errors.InvalidNumberFormat(f"{CARRIER_CALLER!r} is reserved for the carrier trunk")
    if repo.sip_username_exists(conn, username):
        raise errors.SipUsernameInUse(f"SIP username {username!r} is taken")
    mac = normalise_mac(new.mac) if new.mac else None
    if mac is not None and repo.mac_exists(conn, mac):
        raise errors.MacInUse(f"a device with MAC {mac} exists already")
    password = new.sip_password or generate_password()
    realm = realm_of(customer, platform_sip_domain)
    device_id = repo.insert(
        conn,
        {
            "customer_id": customer_id,
            "extension_id": extension_id,
            "sip_username": username,
            "realm": realm,
            **credential_values(username, realm, password, vault),
            "mac": mac,
            "model": new.model,
            "created_at": now,
        },
    )
    extensions_repo.add_device_count(conn, extension_id, 1)
    row = repo.get(conn, customer_id, device_id)
    assert row is not None
    return DeviceCredentials(device=row, sip_password=password)


def list_(
    conn: Connection, actor: Actor, customer_id: int, extension_id: int, now: datetime
) -> list[RowMapping]:
    authorize(conn, actor, customer_id, now)
    extensions_service.get_owned(conn, customer_id, extension_id)
    return repo.list_for_extension(conn, customer_id, extension_id)


def _owned(conn: Connection, customer_id: int, extension_id: int, device_id: int) -> RowMapping:
    row = repo.get(conn, customer_id, device_id)
    if row is None or row["extension_id"] != extension_id:
        raise errors.NotFound(f"device {device_id} not found")
    return row


def reset_password(
    conn: Connection,
    actor: Actor,
    customer_id: int,
    extension_id: int,
    device_id: int,
    now: datetime,
    password: str | None = None,
    vault: Vault | None = None,
) -> DeviceCredentials:
    """Rotation is this explicit action: the old password stops working at once, and the next
    provisioning fetch hands the phone the new one."""
    authorize(conn, actor, customer_id, now, write=True)
    row = _owned(conn, customer_id, extension_id, device_id)
    password = password or generate_password()
    repo.update_fields(
        conn, device_id, credential_values(row["sip_username"], row["realm"], password, vault)
    )
    fresh = repo.get(conn, customer_id, device_id)
    assert fresh is not None
    return DeviceCredentials(device=fresh, sip_password=password)


def delete(
    conn: Connection,
    actor: Actor,
    customer_id: int,
    extension_id: int,
    device_id: int,
    now: datetime,
) -> None:
    authorize(conn, actor, customer_id, now, write=True)
    extensions_service.get_owned(conn, customer_id, extension_id, for_update=True)
    _owned(conn, customer_id, extension_id, device_id)
    repo.delete_one(conn, device_id)
    extensions_repo.add_device_count(conn, extension_id, -1)
