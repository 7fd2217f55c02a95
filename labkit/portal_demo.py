"""The portal without the lab, to test and to photograph: `python -m pbx_app serve` on loopback
over a throwaway SQLite database with two customers (A and B: an admin each, a location, a head
number block, three extensions, a device, a ring group, a porting request) and an operator.
Everything past the accounts is made through the API, as an admin would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import httpx

from pbx_app.db import Database, utcnow
from pbx_app.repositories import users as users_repo
from pbx_app.services import customers
from pbx_app.services.access import SYSTEM, Role
from pbx_app.services.users import set_password_directly

from .fax import letter
from .pg_cluster import free_port
from .portal import keep_session

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"  # noqa: S105 - the demo's throwaway accounts
INTERNAL_TOKEN = "portal-demo-internal"  # noqa: S105 - for the demo's call records


@dataclass
class Tenant:
    customer_id: int
    name: str
    admin_email: str
    location_id: int = 0
    location_name: str = ""
    extension_ids: list[int] = field(default_factory=list)
    extension_names: list[str] = field(default_factory=list)
    group_id: int = 0
    group_name: str = ""
    porting_id: int = 0
    user_id: int = 0  # the admin's
    member_email: str = ""  # a user (role "user") who manages the second extension
    fax_number: str = ""  # eFax booked: its fax number, with one fax received


@dataclass
class PortalDemo:
    base_url: str
    database_url: str
    a: Tenant
    b: Tenant
    operator_email: str

    @contextmanager
    def api(self, email: str) -> Iterator[httpx.Client]:
        """A logged-in API client (session cookie + CSRF header), as the portal page is."""
        with httpx.Client(base_url=f"{self.base_url}/api/v1", timeout=15) as client:
            r = client.post("/auth/login", json={"email": email, "password": PASSWORD})
            assert r.status_code == 200, r.text
            keep_session(client, r)
            yield client


def _account(db: Database, email: str, role: Role, customer_id: int | None) -> None:
    with db.transaction() as conn:
        user_id = users_repo.insert(
            conn,
            {
                "customer_id": customer_id,
                "email": email,
                "display_name": email.split("@")[0].title(),
                "role": role.value,
                "password_hash": None,
                "created_at": utcnow(),
            },
        )
        set_password_directly(conn, user_id, PASSWORD, utcnow())


def _tenant(db: Database, name: str, admin_email: str) -> Tenant:
    new = customers.NewCustomer(
        name=name,
        tariff="standard",
        contract_start=date(2026, 1, 1),
        business_option=True,
        booked_licences=10,
    )
    with db.transaction() as conn:
        customer_id = int(customers.create(conn, SYSTEM, new, utcnow())["id"])
    _account(db, admin_email, Role.CUSTOMER_ADMIN, customer_id)
    return Tenant(customer_id, name, admin_email)


def _created(r: httpx.Response) -> int:
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _fill(demo: PortalDemo, tenant: Tenant, prefix: str, area: str, block: str, port: str) -> None:
    with demo.api(tenant.admin_email) as api:
        base = f"/customers/{tenant.customer_id}"
        tenant.location_name = f"{prefix} Zentrale"
        address = {"street": "Hauptstraße 1", "postal_code": "60329", "city": f"{prefix}stadt"}
        tenant.location_id = _created(
            api.post(
                f"{base}/locations",
                json={"name": tenant.location_name, "area_code": area, **address},
            )
        )
        head = {"location_id": tenant.location_id, "number": block, "block_size": 100}
        _created(api.post(f"{base}/head-numbers", json=head))
        for number, who in (("100", "Empfang"), ("101", "Vertrieb"), ("102", "Lager")):
            name = f"{prefix} {who}"
            body = {"location_id": tenant.location_id, "number": number, "display_name": name}
            tenant.extension_ids.append(_created(api.post(f"{base}/extensions", json=body)))
            tenant.extension_names.append(name)
        _created(api.post(f"{base}/extensions/{tenant.extension_ids[0]}/devices", json={}))
        tenant.group_name = f"{prefix} Team"
        group = {"name": tenant.group_name, "members": ["100", "101"]}
        tenant.group_id = _created(api.post(f"{base}/ring-groups", json=group))
        rules = [
            {"kind": "caller", "match": "0171*", "target": {"extension": "100"}},
            {"kind": "busy", "target": {"group": tenant.group_id}},
            {"kind": "noanswer", "timeout": 25, "target": {"external": "+4930123456"}},
        ]
        r = api.put(
            f"{base}/extensions/{tenant.extension_ids[1]}/call-rules", json={"rules": rules}
        )
        assert r.status_code == 200, r.text
        porting = {
            "location_id": tenant.location_id,
            "numbers": [port],
            "extensions": {port: "102"},
            "donor_carrier": f"{prefix} Telekom",
            "requested_date": (date.today() + timedelta(days=30)).isoformat(),
        }
        tenant.porting_id = _created(api.post(f"{base}/porting-requests", json=porting))
        tenant.user_id = int(api.get("/me").json()["user"]["id"])
        tenant.member_email = f"{prefix.lower()}.user@{prefix.lower()}.test"
        member = {"email": tenant.member_email, "display_name": f"{prefix} Mitarbeiterin"}
        member_id = _created(api.post(f"{base}/users", json=member))
        linked = {"extension_ids": [tenant.extension_ids[1]]}
        r = api.put(f"{base}/users/{member_id}/extensions", json=linked)
        assert r.status_code == 200, r.text
    # The invited user sets a password as the mail's link would let them.
    db = Database(demo.database_url)
    try:
        with db.transaction() as conn:
            set_password_directly(conn, member_id, PASSWORD, utcnow())
    finally:
        db.dispose()


@contextmanager
def serve_demo(workdir: Path, smtp_port: int = 1) -> Iterator[PortalDemo]:
    """The app serving the portal (its bundle must be built: `make portal`) with the demo data;
    stopped on exit. Mail goes to 127.0.0.1:`smtp_port` (1: nowhere; the outbox keeps it). The
    server's log is ``workdir/server.log``."""
    url = f"sqlite:///{workdir / 'pbx.db'}"
    db = Database(url)
    db.migrate()
    a = _tenant(db, "Alpha Logistik GmbH", "admin@alpha.test")
    b = _tenant(db, "Beta Bäckerei KG", "admin@beta.test")
    _account(db, "op@platform.test", Role.OPERATOR, None)
    db.dispose()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PBX_DATABASE_URL": url,
        "PBX_LISTEN": f"127.0.0.1:{port}",
        "PBX_PUBLIC_URL": base,
        "PBX_SECRET_KEY": "portal-demo-secret",
        "PBX_SMTP_HOST": "127.0.0.1",
        "PBX_SMTP_PORT": str(smtp_port),
        "PBX_MAIL_RETRY_SECONDS": "0.5",
        "PBX_INTERNAL_TOKEN": INTERNAL_TOKEN,
    }
    log_path = workdir / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "pbx_app", "serve"], cwd=REPO, env=env, stdout=log, stderr=log
        )
        try:
            _wait_healthy(base, server, log_path)
            demo = PortalDemo(base, url, a, b, "op@platform.test")
            _fill(demo, a, "Alpha", "069", "+4969123400", "+4969777701")
            _fill(demo, b, "Beta", "089", "+4989555500", "+4989777701")
            _calls(demo, a, "+4969123400")
            _fax(demo, a, "+496912340099")
            _calls(demo, b, "+4989555500")
            yield demo
        finally:
            server.terminate()
            server.wait(timeout=15)


def _calls(demo: PortalDemo, tenant: Tenant, block: str) -> None:
    """Two calls into the customer, as a proxy's record shipper delivers them."""
    base: dict[str, object] = {"node": "sip-proxy-fra-1", "site": "fra", "source": "trunk"}
    base |= {"customer_id": None, "callee_customer_id": tenant.customer_id}
    base |= {"relay": "rtpengine-fra-1"}
    records = []
    for n, (ext, code, reason) in enumerate((("100", 200, "OK"), ("101", 486, "Busy Here"))):
        start = f"2026-11-30T09:0{n}:00Z"
        records.append(
            {
                **base,
                "call_id": f"demo-{tenant.customer_id}-{n}",
                "from_tag": f"tag{n}",
                "started_at": start,
                "answered_at": start if code == 200 else None,
                "ended_at": f"2026-11-30T09:0{n}:4{n}Z",
                "caller": "+4930555123",
                "caller_id": "+4930555123",
                "dialled": block[:-2] + ext[-2:],  # in the head number block
                "resolved": ext,
                "answered_by": ext if code == 200 else "",
                "diversions": 0,
                "sip_code": code,
                "reason": reason,
            }
        )
    r = httpx.post(
        f"{demo.base_url}/internal/v1/call-records",
        json={"records": records},
        headers={"X-PBX-Internal-Token": INTERNAL_TOKEN},
        timeout=15,
    )
    assert r.status_code == 200, r.text


def _fax(demo: PortalDemo, tenant: Tenant, number: str) -> None:
    """eFax booked, a fax number, and one fax received on it (as a gateway reports it)."""
    with demo.api(tenant.admin_email) as api:
        base = f"/customers/{tenant.customer_id}"
        assert api.patch(base, json={"efax": True}).status_code == 200
        body = {"number": number, "email_to": [tenant.admin_email]}
        _created(api.post(f"{base}/fax-numbers", json=body))
    tenant.fax_number = number
    outcome = {"status": "ok", "pages": 1, "seconds": 31, "bit_rate": 14400, "transport": "t38"}
    report = {"number": number, "caller": "+4930555123", "gateway": "efax-fra-1"}
    r = httpx.post(
        f"{demo.base_url}/internal/v1/fax/received",
        data={
            "report": json.dumps({**report, "outcome": {**outcome, "remote_ident": "LIEFERANT"}})
        },
        files={"file": ("fax.pdf", letter(1, "Bestellung 4711"), "application/pdf")},
        headers={"X-PBX-Internal-Token": INTERNAL_TOKEN},
        timeout=15,
    )
    assert r.status_code == 200, r.text


def _wait_healthy(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the app did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)
