"""Zero-touch provisioning (R10): a phone asks for its configuration by MAC and proves it is that
phone, with nobody logged in and nobody typing a SIP password.

A phone proves itself in one of three ways, strongest first:
- its vendor's device certificate (mTLS on the provisioning listener, pbx_app.serving): the TLS
  layer has checked the chain against the vendor CAs the operator configured; the certificate
  must be issued by a CA of the device model's own vendor (one vendor's CA does not vouch for
  another's phones), and the MAC in its subject must be the MAC asked for;
- a one-time claim token in the URL (`/prov/t/<token>/<file>`), for phones without such a
  certificate: the admin gets it in the API or portal and types it into the phone or registers
  it at the vendor's redirection service; it works once, for that device, until it expires;
- afterwards, the provisioning password its configuration gave it (HTTP Basic, user = MAC), so
  the phone can come back on every boot and on its daily check.

Everything else (an unknown MAC, another customer's device, a replayed token, a certificate for
another MAC, a model that is not certified) is refused the same way outwardly, and logged with
the reason. A refusal writes nothing but its log entry.
"""

from __future__ import annotations

import functools
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID
from sqlalchemy import Connection, RowMapping

from pbx_app import errors, provisioning_formats
from pbx_app.addressing import MAC_PATTERN, mac_digits
from pbx_app.db import Database
from pbx_app.provisioning_formats import Account, Profile, Server
from pbx_app.repositories import customers as customers_repo
from pbx_app.repositories import devices as devices_repo
from pbx_app.repositories import extensions as extensions_repo
from pbx_app.repositories import locations as locations_repo
from pbx_app.repositories import provisioning as repo
from pbx_app.security import generate_password, token_hash
from pbx_app.services import devices as devices_service
from pbx_app.services import login_throttle
from pbx_app.services.access import Actor, authorize
from pbx_app.settings import Settings
from pbx_app.vault import Vault, VaultError

log = logging.getLogger("pbx_app.provisioning")

# A MAC inside a certificate's subject field (not part of a longer run of hex digits).
_MAC_IN_TEXT = re.compile(rf"(?<![0-9A-Fa-f]){MAC_PATTERN}(?![0-9A-Fa-f])")
REALM = "pbx provisioning"
# The ASGI scope extension with the client certificate (DER) the provisioning listener verified
# against the vendor CAs (pbx_app.serving puts it there).
CLIENT_CERTIFICATE = "pbx.client_certificate"


@dataclass(frozen=True)
class Request:
    file: str  # the last path element, as the phone's firmware names it
    remote: str
    user_agent: str
    token: str | None = None  # from /prov/t/<token>/<file>
    # The client certificate the TLS layer verified against the vendor CAs (None: the phone
    # presented none).
    certificate: x509.Certificate | None = None
    basic: tuple[str, str] | None = None  # HTTP Basic user, password


@dataclass(frozen=True)
class Served:
    body: str
    content_type: str
    device_id: int


class Refused(Exception):
    """What the phone is told (status, a short text) and what the log keeps (reason)."""

    def __init__(self, status: int, reason: str, **where: Any) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason
        self.mac: str | None = where.get("mac")
        self.customer_id: int | None = where.get("customer_id")
        self.device_id: int | None = where.get("device_id")
        self.retry_after: int = where.get("retry_after", 0)


def certificate_macs(cert: x509.Certificate) -> set[str]:
    """MACs a device certificate names: in its subject's common name or serial number (vendors
    put it there, some with separators, some in upper case) or its alternative names."""
    wanted = (NameOID.COMMON_NAME, NameOID.SERIAL_NUMBER)
    fields = [str(a.value) for a in cert.subject if a.oid in wanted]
    try:
        alternatives = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        fields += [str(name.value) for name in alternatives.value]
    except x509.ExtensionNotFound:
        pass
    return {mac_digits(m) for f in fields for m in _MAC_IN_TEXT.findall(f)}


@functools.cache
def vendor_cas(directory: str) -> dict[str, tuple[x509.Certificate, ...]]:
    """Each vendor's CAs: <directory>/<vendor>.pem, the vendor as device models name it (read
    once; the directory comes with the node's configuration)."""
    path = Path(directory)
    if not directory or not path.is_dir():
        return {}
    return {
        f.stem: tuple(x509.load_pem_x509_certificates(f.read_bytes())) for f in path.glob("*.pem")
    }


def issued_by_vendor(cert: x509.Certificate, vendor: str, directory: str) -> bool:
    """Whether one of this vendor's CAs signed the certificate."""
    for ca in vendor_cas(directory).get(vendor, ()):
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False


# Refusals per source (an IPv4 address, an IPv6 /64), counted on every node of both sites: a
# few misconfigured phones behind one NAT stay well below; past it, each further refusal blocks
# the source for twice as long, up to 15 minutes.
REFUSALS = login_throttle.Rule("provisioning_source", 20, timedelta(minutes=15))
# How long the provisioning log keeps its entries.
LOG_RETENTION = timedelta(days=90)


def _throttle_keys(remote: str) -> dict[str, login_throttle.Rule]:
    return {f"{REFUSALS.kind}:{login_throttle.source_of(remote)}": REFUSALS}


def _auth(req: Request) -> str:
    """How the request tries to prove itself (the strongest it offers)."""
    if req.token:
        return "token"
    if req.certificate is not None:
        return "certificate"
    return "password" if req.basic else "none"


def serve(db: Database, vault: Vault, settings: Settings, req: Request, now: datetime) -> Served:
    auth = _auth(req)
    throttle = _throttle_keys(req.remote)
    with db.snapshot() as conn:
        wait = login_throttle.retry_after(conn, throttle, now)
    if wait:
        # A source refused again and again (a scanner, a brute force): answered without
        # looking, and without a log row per request (the log must not be the attack's disk).
        log.warning("provisioning: %s throttled for %d s", req.remote, wait)
        raise Refused(429, "throttled", retry_after=wait)
    entry = {
        "at": now,
        "path": req.file[:200],
        "remote": req.remote[:45],
        "user_agent": req.user_agent[:300],
        "auth": auth,
    }
    try:
        with db.transaction() as conn:
            served, device = _serve(conn, vault, settings, req, now)
            repo.prune_log(conn, now - LOG_RETENTION)
            repo.log(
                conn,
                entry
                | {
                    "mac": device["mac"],
                    "outcome": "served",
                    "reason": "ok",
                    "customer_id": device["customer_id"],
                    "device_id": device["id"],
                },
            )
        log.info("provisioned %s (%s) for %s", device["mac"], auth, req.remote)
        return served
    except Refused as r:
        if r.reason == "unknown_file":
            # A file the platform never serves (a vendor's common or boot file): every phone
            # asks for some on each boot; the access log has them.
            raise
        with db.transaction() as conn:
            login_throttle.record_failure(conn, throttle, now)
            repo.log(
                conn,
                entry
                | {
                    "mac": r.mac,
                    "outcome": "refused",
                    "reason": r.reason,
                    "customer_id": r.customer_id,
                    "device_id": r.device_id,
                },
            )
        log.warning(
            "provisioning refused: %s, file %r, %s from %s (%s)",
            r.reason,
            req.file[:60],
            auth,
            req.remote,
            req.user_agent[:80],
        )
        raise


def _serve(
    conn: Connection, vault: Vault, settings: Settings, req: Request, now: datetime
) -> tuple[Served, RowMapping]:
    asked = provisioning_formats.parse_file(req.file)
    if asked is None:
        raise Refused(404, "unknown_file")
    fmt, mac = asked
    device = repo.device_by_mac_for_update(conn, mac)
    if device is None:
        # Answered like a failed proof: whether a MAC is registered here is told only to the
        # phone whose certificate names it.
        if req.certificate is not None and mac in certificate_macs(req.certificate):
            raise Refused(404, "unknown_mac", mac=mac)
        raise Refused(401 if _auth(req) == "none" else 403, "unknown_mac", mac=mac)
    where = {"mac": mac, "customer_id": device["customer_id"], "device_id": device["id"]}
    model = repo.model(conn, device["model"] or "")
    if model is None or not model["certified"]:
        raise Refused(404, "not_certified", **where)
    if model["format"] != fmt:
        raise Refused(404, "wrong_file_for_model", **where)
    _prove(conn, vault, settings, req, device, model["vendor"], now, where)
    return _render(conn, vault, settings, device, model), device


def _prove(
    conn: Connection,
    vault: Vault,
    settings: Settings,
    req: Request,
    device: RowMapping,
    vendor: str,
    now: datetime,
    where: dict[str, Any],
) -> None:
    if req.token is not None:
        claimed = repo.device_by_claim(conn, token_hash(settings.secret_key, req.token))
        if claimed is None:
            raise Refused(403, "token_unknown_or_used", **where)
        if claimed["id"] != device["id"]:
            # Someone else's token (another device, maybe another customer's): it stays unused.
            raise Refused(403, "token_for_another_device", **where)
        if claimed["claim_expires_at"] is None or claimed["claim_expires_at"] <= now:
            raise Refused(403, "token_expired", **where)
        devices_repo.update_fields(
            conn, device["id"], {"claim_hash": None, "claim_expires_at": None}
        )
        return
    if req.certificate is not None:
        if device["mac"] not in certificate_macs(req.certificate):
            raise Refused(403, "certificate_for_another_mac", **where)
        if not issued_by_vendor(req.certificate, vendor, settings.vendor_ca_dir):
            raise Refused(403, "certificate_of_another_vendor", **where)
        return
    if req.basic is not None:
        user, password = req.basic
        stored = device["prov_secret"]
        expected = _open(vault, stored, _prov_context(device)) if stored else None
        user_mac = mac_digits(user)
        if (
            expected is None
            or user_mac != device["mac"]
            or not hmac.compare_digest(password.encode(), expected.encode())
        ):
            raise Refused(401, "wrong_password", **where)
        return
    raise Refused(401, "no_credentials", **where)


def _open(vault: Vault, stored: str, context: str) -> str:
    try:
        return vault.open(stored, context)
    except VaultError as e:
        log.error("provisioning: %s", e)
        raise Refused(503, "credentials_unavailable") from e


def rekey(db: Database, vault: Vault, batch: int = 1000) -> int:
    """Seal every stored secret again under the current (first) key, a batch per transaction;
    then the old key can go. Returns the devices changed."""
    changed, after = 0, 0
    while True:
        with db.transaction() as conn:
            rows = repo.sealed_after(conn, after, batch)
            for row in rows:
                values = {}
                for column, context in (
                    ("sip_secret", devices_service.sip_secret_context(row["sip_username"])),
                    ("prov_secret", _prov_context(row)),
                ):
                    stored = row[column]
                    if stored and vault.needs_rekey(stored):
                        values[column] = vault.seal(vault.open(stored, context), context)
                if values:
                    devices_repo.update_fields(conn, row["id"], values)
                    changed += 1
        if len(rows) < batch:
            return changed
        after = rows[-1]["id"]


def _prov_context(device: RowMapping) -> str:
    return f"device:{device['sip_username']}:provisioning"


def _render(
    conn: Connection, vault: Vault, settings: Settings, device: RowMapping, model: RowMapping
) -> Served:
    changes: dict[str, Any] = {}
    username = device["sip_username"]
    if device["sip_secret"]:
        password = _open(vault, device["sip_secret"], devices_service.sip_secret_context(username))
    else:
        # Made before passwords were sealed: only its hash is known, so it gets a new one now,
        # once; from here on every fetch serves this one.
        password = generate_password()
        changes |= devices_service.credential_values(username, device["realm"], password, vault)
    if device["prov_secret"]:
        prov_password = _open(vault, device["prov_secret"], _prov_context(device))
    else:
        prov_password = secrets.token_urlsafe(18)
        changes["prov_secret"] = vault.seal(prov_password, _prov_context(device))
    if changes:
        devices_repo.update_fields(conn, device["id"], changes)
    customer = customers_repo.get(conn, device["customer_id"])
    ext = extensions_repo.get(conn, device["customer_id"], device["extension_id"])
    assert customer is not None and ext is not None  # noqa: PT018 - rows the device hangs on
    location = locations_repo.get(conn, device["customer_id"], ext["location_id"])
    area = location["area_code"] if location else ""
    profile = Profile(
        mac=device["mac"],
        model=device["model"],
        label=model["label"],
        accounts=(
            Account(
                line=1,
                label=ext["number"],
                display_name=ext["display_name"] or ext["number"],
                user=username,
                password=password,
                domain=device["realm"],
                proxies=proxies(settings, area, device["customer_id"]),
                srtp_required=bool(customer["srtp_required"]),
            ),
        ),
        time_zone=customer["time_zone"],
        language=customer["language"],
        firmware_url=model["firmware_url"],
        provisioning_url=f"{settings.effective_provisioning_url}/prov/",
        provisioning_user=device["mac"],
        provisioning_password=prov_password,
    )
    body, content_type = provisioning_formats.render(model["format"], profile)
    return Served(body, content_type, device["id"])


def proxies(settings: Settings, area_code: str, customer_id: int) -> tuple[Server, ...]:
    """Both sites, home site first: the site of the location's area code, else one picked by
    the customer id, so that customers outside the sites' cities spread over both (they are
    active-active). Each is the site's SIP name, which carries SRV records of its own listing
    that site first (pbx_infra.topology.Platform.site_srv_records)."""
    sites = [s.split(":") for s in settings.sip_sites] or [[settings.site, ""]]
    home = next((i for i, (_, code) in enumerate(sites) if code and code == area_code), None)
    if home is None:
        home = customer_id % len(sites)
    ordered = sites[home:] + sites[:home]
    return tuple(
        Server(f"{name}.{settings.sip_domain}", settings.sip_tls_port) for name, _ in ordered
    )


# --- the admin's side: claim tokens --------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    token: str
    url: str
    expires_at: datetime


def issue_claim(
    conn: Connection,
    actor: Actor,
    customer_id: int,
    extension_id: int,
    device_id: int,
    settings: Settings,
    now: datetime,
) -> Claim:
    """A one-time token for a phone without a vendor certificate; a new one replaces the last."""
    authorize(conn, actor, customer_id, now, write=True)
    device = devices_repo.get(conn, customer_id, device_id)
    if device is None or device["extension_id"] != extension_id or device["kind"] != "phone":
        raise errors.NotFound(f"device {device_id} not found")
    if not device["mac"]:
        raise errors.DeviceHasNoMac("a device is claimed by its MAC; set the device's MAC first")
    model = repo.model(conn, device["model"] or "")
    if model is None or not model["certified"]:
        raise errors.DeviceNotCertified(
            f"model {device['model']!r} is not certified; hardware-only devices are configured "
            "by hand (R10)"
        )
    token = secrets.token_urlsafe(24)
    expires = now + timedelta(hours=settings.claim_token_ttl_hours)
    devices_repo.update_fields(
        conn,
        device_id,
        {"claim_hash": token_hash(settings.secret_key, token), "claim_expires_at": expires},
    )
    url = f"{settings.effective_provisioning_url}/prov/t/{token}/"
    return Claim(token, url, expires)
