"""Shared setup for the call rule tests: two customers through the API, with numbers,
extensions, devices and a user who manages one extension."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient

from pbx_app.addressing import aor
from pbx_app.db import Database, utcnow
from pbx_app.repositories import routing as routing_repo
from pbx_app.services import devices, extensions, head_numbers, routing
from pbx_app.services.access import SYSTEM, Role
from tests.app.conftest import Api, client_for, login, new_user


@dataclass
class Tenant:
    customer: int
    location: int
    ext: dict[str, int] = field(default_factory=dict)  # extension number -> id


def add_head(db: Database, t: Tenant, number: str, block: int = 1000) -> None:
    with db.transaction() as conn:
        new = head_numbers.NewHeadNumber(t.location, number, block)
        head_numbers.create(conn, SYSTEM, t.customer, new, utcnow())


def add_extension(db: Database, t: Tenant, number: str, geo: str | None = None) -> int:
    with db.transaction() as conn:
        new = extensions.NewExtension(location_id=t.location, number=number, geo_number=geo)
        ext = int(extensions.create(conn, SYSTEM, t.customer, new, utcnow())["id"])
        username = f"t{t.customer}-{number}"
        devices.create(
            conn,
            SYSTEM,
            t.customer,
            ext,
            devices.NewDevice(sip_username=username, sip_password="x" * 20),
            utcnow(),
            "pbx.lab",
        )
    t.ext[number] = ext
    return ext


def user_managing(api: Api, t: Tenant, *numbers: str) -> TestClient:
    """A plain user of the tenant, linked to these extensions, logged in."""
    email = f"u{uuid.uuid4().hex[:8]}@rules.test"
    user_id = new_user(api.db, email, Role.USER, t.customer)
    r = api.operator.put(
        f"/api/v1/customers/{t.customer}/users/{user_id}/extensions",
        json={"extension_ids": [t.ext[n] for n in numbers]},
    )
    assert r.status_code == 200, r.text
    return login(client_for(api.db), email)


def rules_path(t: Tenant, number: str) -> str:
    return f"/api/v1/customers/{t.customer}/extensions/{t.ext[number]}/call-rules"


def groups_path(t: Tenant) -> str:
    return f"/api/v1/customers/{t.customer}/ring-groups"


def put_rules(client: TestClient, t: Tenant, number: str, *rules: dict[str, Any]) -> Any:
    return client.put(rules_path(t, number), json={"rules": list(rules)})


def make_tenants(api: Api) -> tuple[Tenant, Tenant]:
    """A: head +49691234 (1,000 block) in Frankfurt, extensions 100-103 (100 with DID
    +49691234100, the others implicit). B: head +49691299, extensions 100, 200."""
    a, b = Tenant(api.a, api.loc_a), Tenant(api.b, api.loc_b)
    add_head(api.db, a, "+49691234")
    for n in ("100", "101", "102", "103"):
        add_extension(api.db, a, n, "+49691234100" if n == "100" else None)
    add_head(api.db, b, "+49691299")
    for n in ("100", "200"):
        add_extension(api.db, b, n)
    return a, b


# --- routing decisions, with the time injected ---------------------------------------------------
DOMAIN = "pbx.lab"


def decide(
    db: Database,
    caller: str,
    target: str,
    *,
    at: datetime | None = None,
    div: int = 0,
    from_user: str = "",
) -> dict[str, Any]:
    """GET /internal/v1/route's decision at ``at`` (naive UTC; default now), as the API makes
    it: one read snapshot, and a round robin group's counter advanced in its own transaction."""

    def rotate(group_id: int, members: int) -> int:
        with db.transaction() as conn:
            return routing_repo.advance_round_robin(conn, group_id, members)

    ctx = routing.Context(now=at or utcnow(), domain=DOMAIN, ttl=2, div=div, rotate=rotate)
    with db.read_snapshot() as conn:
        return routing.decide(conn, caller, target, ctx, from_user)


def device(t: Tenant, number: str) -> str:
    """The SIP username of the extension's device (add_extension made one)."""
    return f"t{t.customer}-{number}"


def aor_of(t: Tenant, number: str) -> str:
    return aor(t.customer, number)


def ring(*aors: str, timeout: int = 0, diversion: str = "", **then: int) -> dict[str, Any]:
    """A ring step; ``then``: busy/noanswer/unavailable step indexes (default -1, the end)."""
    causes = {"busy": -1, "noanswer": -1, "unavailable": -1, **then}
    return {"ring": list(aors), "timeout": timeout, **causes, "diversion": diversion}


def diversion(number: str, reason: str, counter: int) -> str:
    return f"<sip:{number}@{DOMAIN}>;reason={reason};counter={counter}"
