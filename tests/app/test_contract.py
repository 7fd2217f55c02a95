"""The OpenAPI document tells the truth: schemathesis generates requests for every operation of
/api/v1/openapi.json and checks each answer against the document (the status is documented, the
body and headers match, no 5xx), in-process, as an operator and as a customer admin, on SQLite
and PostgreSQL.

A few examples per operation keep it bounded; derandomized, so a run is reproducible.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Connection

from pbx_app.api.internal import TOKEN_HEADER
from pbx_app.app import create_app
from pbx_app.db import Database, utcnow
from pbx_app.services import devices, extensions, head_numbers, locations, porting, ring_groups
from pbx_app.services.access import SYSTEM, Role
from pbx_app.settings import Settings
from tests.app.conftest import PgServer, make_settings, new_customer, new_user, token_for

INTERNAL_TOKEN = "contract-internal-token"
# Not positive_data_acceptance: some rules JSON Schema cannot state (a number in the location's
# area, no emergency number as an extension) rightly refuse data the schema allows.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    ignored_auth,
]
CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    # The test sends real credentials; generated ones would only ever be refused.
    {"generation": {"with-security-parameters": False}}
)


class AcceptingMailer:
    """User creation sends a password link; here every mail is accepted and dropped."""

    def send(self, to: str, subject: str, body: str, attachment: object = None) -> None:
        return None


# --- what exists -----------------------------------------------------------------------------
Ids = dict[str, int | str]  # path parameter name -> an object it can address


@dataclass(frozen=True)
class Tenant:
    """A customer with one of each object, and a disposable twin of each deletable one: a
    DELETE removes the twin, so the operations after it still find the kept objects."""

    kept: Ids
    disposable: Ids


def seed_tenant(db: Database, name: str) -> Tenant:
    customer = new_customer(db, name, booked_licences=20, business_option=True)
    now = utcnow()
    with db.transaction() as conn:
        location = _location(conn, customer, f"{name} Frankfurt")
        spare_location = _location(conn, customer, f"{name} Spare")
        head = _head_number(conn, customer, location, f"+4969{customer:03d}10")
        spare_head = _head_number(conn, customer, location, f"+4969{customer:03d}20")
        extension = _extension(conn, customer, location, "20", f"+4969{customer:03d}1020")
        spare_extension = _extension(conn, customer, location, "21", None)
        mac = f"00156512{customer:02x}01"
        device = _device(conn, customer, extension, mac)
        spare_device = _device(conn, customer, extension, f"00156512{customer:02x}02")
        request = porting.create(
            conn,
            SYSTEM,
            customer,
            porting.NewPortingRequest(
                location,
                [f"+4969{customer:03d}30"],
                "Donor",
                date(2027, 1, 4),
                {f"+4969{customer:03d}30": "21"},
            ),
            now,
        )
        group = ring_groups.create(
            conn, SYSTEM, customer, ring_groups.NewGroup("Sales", members=["20", "21"]), now
        )
        spare_group = ring_groups.create(conn, SYSTEM, customer, ring_groups.NewGroup("Spare"), now)
    user = new_user(db, f"user@{name.lower()}.test", Role.USER, customer)
    spare_user = new_user(db, f"spare@{name.lower()}.test", Role.USER, customer)
    kept: Ids = {
        "customer_id": customer,
        "location_id": location,
        "head_number_id": head,
        "extension_id": extension,
        "device_id": device,
        "mac": mac,
        "user_id": user,
        "request_id": int(request["id"]),
        "group_id": int(group["id"]),
    }
    disposable: Ids = {
        "location_id": spare_location,
        "head_number_id": spare_head,
        "extension_id": spare_extension,
        "device_id": spare_device,
        "user_id": spare_user,
        "group_id": int(spare_group["id"]),
    }
    return Tenant(kept, disposable)


def _location(conn: Connection, customer: int, name: str) -> int:
    new = locations.NewLocation(name, "Main 1", "60329", "Frankfurt", "069")
    return int(locations.create(conn, SYSTEM, customer, new, utcnow())["id"])


def _head_number(conn: Connection, customer: int, location: int, number: str) -> int:
    new = head_numbers.NewHeadNumber(location, number, 100)
    return int(head_numbers.create(conn, SYSTEM, customer, new, utcnow())["id"])


def _extension(conn: Connection, customer: int, location: int, number: str, geo: str | None) -> int:
    new = extensions.NewExtension(location, number, "Reception", geo)
    return int(extensions.create(conn, SYSTEM, customer, new, utcnow())["id"])


def _device(conn: Connection, customer: int, extension: int, mac: str) -> int:
    new = devices.NewDevice(mac=mac, model="yealink-t54w")
    creds = devices.create(conn, SYSTEM, customer, extension, new, utcnow(), "sip.lab.test")
    return int(creds.device["id"])


# --- the deployment under test and who acts on it -----------------------------------------------
@dataclass(frozen=True)
class Deployment:
    db: Database
    settings: Settings
    app: FastAPI


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    # Module-scoped (conftest's `db` is per test): set up once per backend, not per operation.
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path_factory.mktemp('contract') / 'pbx.db'}")
        db.migrate()
        drop = db.dispose
    else:
        pg_server: PgServer = request.getfixturevalue("pg_server")
        name = pg_server.new_database()
        db = Database(pg_server.url(name))

        def drop() -> None:
            db.dispose()
            pg_server.drop(name)

    settings = make_settings(db, internal_token=INTERNAL_TOKEN)
    try:
        yield Deployment(db, settings, create_app(settings, db, AcceptingMailer()))
    finally:
        drop()


@dataclass(frozen=True)
class Acting:
    """A user with an API token, and the tenant the run aims at."""

    token: str
    token_id: int
    spare_token_id: int  # another API token of the same user, free to be revoked
    tenant: Tenant


@pytest.fixture(
    scope="module", params=[Role.OPERATOR, Role.CUSTOMER_ADMIN], ids=lambda role: role.value
)
def acting(request: pytest.FixtureRequest, deployment: Deployment) -> Acting:
    """Logged in before the run: login may be throttled after the run's failed attempts."""
    role: Role = request.param
    tenant = seed_tenant(deployment.db, role.value.replace("_", ""))
    customer = None if role is Role.OPERATOR else int(tenant.kept["customer_id"])
    email = f"{role.value}@contract.test"
    new_user(deployment.db, email, role, customer)
    token = token_for(deployment.db, deployment.settings, email)
    with TestClient(deployment.app, headers={"Authorization": f"Bearer {token}"}) as client:
        spare = client.post("/api/v1/tokens", json={"name": "spare"}).json()["id"]
        tokens = client.get("/api/v1/tokens").json()["items"]
    token_id = next(t["id"] for t in tokens if t["id"] != spare)
    return Acting(token, token_id, spare, tenant)


def credentials(case: Any, acting: Acting) -> dict[str, str]:
    if case.path.startswith("/internal/"):
        return {TOKEN_HEADER: INTERNAL_TOKEN}
    return {"Authorization": f"Bearer {acting.token}"}


def spare_own_token(case: Any, acting: Acting) -> None:
    """Revoking the token the run authenticates with would turn every later answer into 401:
    such a request revokes the spare token instead."""
    # Compared as text: the coverage phase's cases carry path parameters as strings.
    if str((case.path_parameters or {}).get("token_id")) == str(acting.token_id):
        case.path_parameters["token_id"] = acting.spare_token_id


# --- the run -----------------------------------------------------------------------------------
def served_schema() -> Any:
    """The document as /api/v1/openapi.json serves it. Loaded at import: schemathesis'
    pytest.from_fixture (4.32) fails on pytest 9.2 (Node._nodeid is gone), so the deployment
    comes per test through case.call_and_validate(app=...)."""
    with tempfile.TemporaryDirectory() as tmp:
        # Serving runs the app's lifespan, which starts its outbox sender: give it a real
        # database, and stop it before the database goes.
        placeholder = Database(f"sqlite:///{tmp}/schema.db")
        placeholder.migrate()
        app = create_app(make_settings(placeholder), placeholder, AcceptingMailer())
        try:
            return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app, config=CONFIG)
        finally:
            app.state.ctx.outbox.stop()
            placeholder.dispose()


schema = served_schema()
# The tenant under test. Set by `aim`: generation runs inside the test, after the fixtures (the
# coverage phase's cases are built at collection and keep their drawn ids).
AIM: list[Tenant] = []


@pytest.fixture
def aim(acting: Acting) -> None:
    AIM[:] = [acting.tenant]


@schema.hook
def flatmap_path_parameters(ctx: Any, parameters: dict[str, Any] | None) -> Any:
    """Drawn ids rarely exist: half the time, address the tenant's objects instead."""
    known = existing_ids(ctx.operation, parameters or {})
    if not known:
        return st.just(parameters)
    return st.sampled_from([{**(parameters or {}), **known}, parameters])


def existing_ids(operation: Any, parameters: dict[str, Any]) -> Ids:
    tenant = AIM[0]
    known = {k: v for k, v in tenant.kept.items() if k in parameters}
    names = re.findall(r"{(\w+)}", operation.path)
    # A DELETE removes the disposable twin of its target, the last id in the path.
    if operation.method.upper() == "DELETE" and names and names[-1] in tenant.disposable:
        known[names[-1]] = tenant.disposable[names[-1]]
    return known


@schema.parametrize()
@hypothesis.settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    database=None,
    # `aim` is per operation, not per example, on purpose.
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)
@pytest.mark.usefixtures("aim")
def test_every_answer_is_documented(case: Any, deployment: Deployment, acting: Acting) -> None:
    spare_own_token(case, acting)
    case.call_and_validate(app=deployment.app, headers=credentials(case, acting), checks=CHECKS)
