"""The lab's demo tenants (idempotent): `python -m pbx_app seed-demo --out PATH`.

"Demo GmbH" (Business Option, extensions 100-199 in Frankfurt 069 and Berlin 030, each with a DID;
110 and 112 are emergency numbers, never extensions) and "Other GmbH" (no Business Option,
extensions 100-109 in Munich 089) to show tenant isolation. Output: `devices` and `other_devices`,
each entry with extension, sip_username, sip_password, sip_domain, aor and did (E.164).

The generated plaintext credentials live only in the output file. Re-runs keep them; if the
file is gone but the tenant exists, the demo passwords are reset and the file is rewritten.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from pbx_app.addressing import EMERGENCY_NUMBERS, aor
from pbx_app.db import Database, utcnow
from pbx_app.limits import BASE_PACKAGE_EXTENSIONS
from pbx_app.repositories import customers as customers_repo
from pbx_app.repositories import devices as devices_repo
from pbx_app.repositories import extensions as extensions_repo
from pbx_app.repositories import head_numbers as head_numbers_repo
from pbx_app.repositories import locations as locations_repo
from pbx_app.repositories import users as users_repo
from pbx_app.security import generate_password, verify_password
from pbx_app.services import (
    customers,
    devices,
    extensions,
    head_numbers,
    locations,
    users,
)
from pbx_app.services.access import SYSTEM, Role
from pbx_app.settings import Settings

DEMO_CUSTOMER = "Demo GmbH"
DEMO_ADMIN = "admin@demo.pbx.test"
# 110 and 112 are emergency numbers, never extensions.
EXTENSIONS = [n for n in range(100, 200) if str(n) not in EMERGENCY_NUMBERS]
# (location, street, postal code, city, area code, head number with a 1,000 block)
SITES = (
    ("Frankfurt", "Mainzer Landstrasse 1", "60329", "Frankfurt am Main", "069", "+49699876"),
    ("Berlin", "Friedrichstrasse 1", "10117", "Berlin", "030", "+49309876"),
)
# A second tenant without the Business Option, to demonstrate tenant isolation: its devices may
# reach the demo tenant only through public numbers (DIDs), never by extension or AOR.
OTHER_CUSTOMER = "Other GmbH"
OTHER_EXTENSIONS = range(100, 110)
OTHER_SITES = (("Muenchen", "Leopoldstrasse 1", "80802", "Muenchen", "089", "+49895554"),)


@dataclass(frozen=True)
class Tenant:
    name: str
    extensions: Sequence[int]
    sites: tuple[tuple[str, str, str, str, str, str], ...]
    username_prefix: str
    business_option: bool

    def site_for(self, number: int) -> int:
        # Demo: 100-149 Frankfurt, 150-199 Berlin (R13: each extension at its location).
        return 0 if number < 150 or len(self.sites) == 1 else 1


DEMO = Tenant(DEMO_CUSTOMER, EXTENSIONS, SITES, "demo", business_option=True)
OTHER = Tenant(OTHER_CUSTOMER, OTHER_EXTENSIONS, OTHER_SITES, "other", business_option=False)


def _site_for(number: int) -> int:
    return DEMO.site_for(number)


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _ensure_tenant(conn: Connection, settings: Settings, tenant: Tenant = DEMO) -> int:
    now = utcnow()
    customer = customers_repo.get_by_name(conn, tenant.name)
    if customer is None:
        customer = customers.create(
            conn,
            SYSTEM,
            customers.NewCustomer(
                name=tenant.name,
                tariff="premium" if tenant.business_option else "basic",
                contract_start=date(2026, 1, 1),
                term_months=24,
                business_option=tenant.business_option,
                booked_licences=max(0, len(tenant.extensions) - BASE_PACKAGE_EXTENSIONS),
                srtp_required=False,
            ),
            now,
        )
    cid = int(customer["id"])
    loc_ids: list[int] = []
    for name, street, postal, city, area, head in tenant.sites:
        loc = locations_repo.get_by_name(conn, cid, name)
        if loc is None:
            loc = locations.create(
                conn, SYSTEM, cid, locations.NewLocation(name, street, postal, city, area), now
            )
        loc_ids.append(int(loc["id"]))
        if head_numbers_repo.overlapping(conn, head) is None:
            head_numbers.create(
                conn, SYSTEM, cid, head_numbers.NewHeadNumber(int(loc["id"]), head, 1000), now
            )
    existing = extensions_repo.numbers_of_customer(conn, cid)
    for number in tenant.extensions:
        if str(number) not in existing:
            site = tenant.site_for(number)
            extensions.create(
                conn,
                SYSTEM,
                cid,
                extensions.NewExtension(
                    location_id=loc_ids[site],
                    number=str(number),
                    display_name=f"{tenant.username_prefix.title()} {number}",
                    # The DID rule of pbx_app.services.routing: head number + extension number.
                    geo_number=f"{tenant.sites[site][5]}{number}",
                ),
                now,
            )
    return cid


def _ensure_devices(
    conn: Connection,
    settings: Settings,
    tenant: Tenant,
    cid: int,
    previous: list[Any],
) -> tuple[str, list[dict[str, str]]]:
    """One device per extension; passwords from the previous output file are kept."""
    old_devices = {str(d.get("extension")): d for d in previous if isinstance(d, dict)}
    customer = customers_repo.get(conn, cid)
    assert customer is not None
    realm = devices.realm_of(customer, settings.sip_domain)
    geo = {
        row["number"]: row["geo_number"]
        for row in extensions_repo.list_for_customer(conn, cid, 100_000, 0)
    }
    now = utcnow()
    out: list[dict[str, str]] = []
    for number in tenant.extensions:
        username = f"{tenant.username_prefix}-{number}"
        old = old_devices.get(str(number), {})
        password = str(old.get("sip_password") or generate_password())
        device = devices_repo.get_by_sip_username(conn, username)
        if device is None:
            ext_id = extensions_repo.id_by_number(conn, cid, str(number))
            devices.create(
                conn,
                SYSTEM,
                cid,
                ext_id,
                devices.NewDevice(sip_username=username, sip_password=password),
                now,
                settings.sip_domain,
            )
        else:
            wanted = devices.credential_values(username, device["realm"], password)
            if device["ha1"] != wanted["ha1"]:
                devices_repo.update_fields(conn, int(device["id"]), wanted)
            realm = device["realm"]
        entry = {
            "extension": str(number),
            "sip_username": username,
            "sip_password": password,
            "sip_domain": realm,
            "aor": aor(cid, str(number)),
        }
        if geo.get(str(number)):
            entry["did"] = str(geo[str(number)])
        out.append(entry)
    return realm, out


def seed_demo(settings: Settings, db: Database, out: Path) -> dict[str, Any]:
    previous = _load(out) if out.exists() else {}
    admin_password = str(previous.get("admin_password") or generate_password())
    with db.transaction() as conn:
        cid = _ensure_tenant(conn, settings, DEMO)
        other_cid = _ensure_tenant(conn, settings, OTHER)
        now = utcnow()
        admin = users_repo.get_by_email(conn, DEMO_ADMIN)
        if admin is None:
            admin_id = users_repo.insert(
                conn,
                {
                    "customer_id": cid,
                    "email": DEMO_ADMIN,
                    "display_name": "Demo admin",
                    "role": Role.CUSTOMER_ADMIN.value,
                    "password_hash": None,
                    "created_at": now,
                },
            )
            users.set_password_directly(conn, admin_id, admin_password, now)
        elif not verify_password(admin["password_hash"], admin_password):
            users.set_password_directly(conn, int(admin["id"]), admin_password, now)
        realm, result_devices = _ensure_devices(
            conn, settings, DEMO, cid, previous.get("devices") or []
        )
        _, other_devices = _ensure_devices(
            conn, settings, OTHER, other_cid, previous.get("other_devices") or []
        )
    data: dict[str, Any] = {
        **previous,
        # What people use: the portal and the API over HTTPS (PBX_PUBLIC_URL).
        "portal_url": f"{settings.effective_public_url}/",
        "api_base_url": f"{settings.effective_public_url}/api/v1",
        "admin_email": DEMO_ADMIN,
        "admin_password": admin_password,
        "sip_domain": realm,
        "customer_id": cid,
        "devices": result_devices,
        "other_customer_id": other_cid,
        "other_devices": other_devices,
    }
    _write_private(out, data)
    return data


def _write_private(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".seed-")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
