"""Kamailio's view of the app: the kamailio_subscriber view (auth_db) and the routing decisions
of GET /internal/v1/route, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import text

from pbx_app import subscriber_view
from pbx_app.addressing import CARRIER_CALLER, EMERGENCY_NUMBERS, aor
from pbx_app.app import create_app
from pbx_app.db import Database, alembic_config, utcnow
from pbx_app.limits import max_devices_per_extension
from pbx_app.mail import SmtpMailer
from pbx_app.repositories import customers as customers_repo
from pbx_app.repositories import extensions as extensions_repo
from pbx_app.repositories import head_numbers as head_numbers_repo
from pbx_app.services import (
    call_rules,
    customers,
    devices,
    extensions,
    head_numbers,
    locations,
    ring_groups,
)
from pbx_app.services.access import SYSTEM, Role, trial_expired
from tests.app.conftest import PgServer, login, make_settings, new_customer, new_user

TOKEN = "internal-test-token-0123456789"
FRANKFURT = ("Frankfurt", "Main 1", "60329", "Frankfurt", "069")
BERLIN = ("Berlin", "Spree 1", "10117", "Berlin", "030")


def _location(db: Database, cid: int, site: tuple[str, ...]) -> int:
    with db.transaction() as conn:
        return int(
            locations.create(conn, SYSTEM, cid, locations.NewLocation(*site), utcnow())["id"]
        )


def _head(db: Database, cid: int, loc: int, number: str, block: int = 1000) -> None:
    with db.transaction() as conn:
        head_numbers.create(
            conn, SYSTEM, cid, head_numbers.NewHeadNumber(loc, number, block), utcnow()
        )


def _extension(db: Database, cid: int, loc: int, number: str, geo: str | None = None) -> int:
    with db.transaction() as conn:
        new = extensions.NewExtension(location_id=loc, number=number, geo_number=geo)
        return int(extensions.create(conn, SYSTEM, cid, new, utcnow())["id"])


def _device(db: Database, cid: int, ext: int, username: str) -> None:
    with db.transaction() as conn:
        new = devices.NewDevice(sip_username=username, sip_password="x" * 20)
        devices.create(conn, SYSTEM, cid, ext, new, utcnow(), "pbx.lab")


@dataclass
class World:
    db: Database
    a: int  # Business Option, SRTP optional; head +49691234 (1,000 block) in Frankfurt
    b: int  # no Business Option, SRTP required; head +49307770 (1,000 block) in Berlin
    c: int  # no head numbers at all
    t: int  # trial, expired; head +49691239
    client: TestClient

    def route(self, caller: str, target: str, **headers: str) -> Any:
        return self.client.get(
            "/internal/v1/route",
            params={"caller": caller, "target": target},
            headers=headers or {"X-PBX-Internal-Token": TOKEN},
        )

    def decide(self, caller: str, target: str) -> dict[str, Any]:
        r = self.route(caller, target)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


def _client(db: Database, token: str) -> TestClient:
    settings = make_settings(db, internal_token=token)
    app = create_app(settings, db, SmtpMailer("127.0.0.1", 1, "x@y.z"))
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def world(db: Database) -> Iterator[World]:
    a = new_customer(db, business_option=True, booked_licences=10)
    b = new_customer(db, srtp_required=True)
    c = new_customer(db)
    t = new_customer(db, trial=True)

    fra = _location(db, a, FRANKFURT)
    _head(db, a, fra, "+49691234")
    _device(db, a, _extension(db, a, fra, "100", "+49691234100"), "a-100")
    _device(db, a, _extension(db, a, fra, "101"), "a-101")  # implicit DID +49691234101
    _device(db, a, _extension(db, a, fra, "102", "+49691234555"), "a-102")
    ber_a = _location(db, a, BERLIN)
    _device(db, a, _extension(db, a, ber_a, "150"), "a-150")  # no head at its location

    ber = _location(db, b, BERLIN)
    _head(db, b, ber, "+49307770")
    _device(db, b, _extension(db, b, ber, "100", "+49307770100"), "b-100")
    _device(db, b, _extension(db, b, ber, "105"), "b-105")  # implicit DID +49307770105

    _device(db, c, _extension(db, c, _location(db, c, BERLIN), "10"), "c-10")

    fra_t = _location(db, t, FRANKFURT)
    _head(db, t, fra_t, "+49691239")
    _device(db, t, _extension(db, t, fra_t, "100", "+49691239100"), "t-100")
    with db.transaction() as conn:
        customers_repo.update_fields(conn, t, {"trial_ends_at": utcnow() - timedelta(minutes=1)})

    client = _client(db, TOKEN)
    yield World(db, a, b, c, t, client)
    client.close()


def ring(*aors: str, timeout: int = 0, diversion: str = "", **then: int) -> dict[str, Any]:
    """A ring step of a call plan; ``then``: busy/noanswer/unavailable step indexes."""
    causes = {"busy": -1, "noanswer": -1, "unavailable": -1, **then}
    return {"ring": list(aors), "timeout": timeout, **causes, "diversion": diversion}


def local(cid: int, ext: str, srtp: bool = False, ttl: int = 2) -> dict[str, Any]:
    """A plain call to an extension without rules: ring its devices, nothing else."""
    return {
        "action": "local",
        "aor": aor(cid, ext),
        "customer_id": cid,
        "srtp_required": srtp,
        "ttl": ttl,
        "privacy": False,
        "steps": [ring(aor(cid, ext))],
    }


FORBIDDEN = {"action": "reject", "code": 403, "reason": "Forbidden", "ttl": 2}
NOT_FOUND = {"action": "reject", "code": 404, "reason": "Not Found", "ttl": 2}


# --- kamailio_subscriber ---------------------------------------------------------------------
def _subscribers(db: Database) -> dict[str, dict[str, Any]]:
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM kamailio_subscriber")).mappings().all()
    return {r["username"]: dict(r) for r in rows}


def test_view_rows_carry_aor_contact_limit_customer_and_srtp_policy(world: World) -> None:
    rows = _subscribers(world.db)
    assert set(rows) == {"a-100", "a-101", "a-102", "a-150", "b-100", "b-105", "c-10"}
    a100 = rows["a-100"]
    assert set(a100) >= {
        "username",
        "domain",
        "ha1",
        "ha1b",
        "aor",
        "max_contacts",
        "customer_id",
        "srtp_required",
    }
    assert a100["domain"] == "pbx.lab"
    assert len(a100["ha1"]) == 32
    assert a100["ha1"] != a100["ha1b"]
    assert (a100["aor"], a100["max_contacts"], a100["customer_id"]) == (
        aor(world.a, "100"),
        max_devices_per_extension(business_option=True),
        world.a,
    )
    assert bool(a100["srtp_required"]) is False
    b105 = rows["b-105"]
    assert (b105["aor"], b105["max_contacts"], b105["customer_id"]) == (
        aor(world.b, "105"),
        max_devices_per_extension(business_option=False),
        world.b,
    )
    assert bool(b105["srtp_required"]) is True
    assert rows["c-10"]["aor"] == aor(world.c, "10")
    # every device of one extension registers under the same AOR
    assert len({r["aor"] for r in rows.values()}) == len(rows)


def test_view_follows_business_option_srtp_policy_and_trial_end(world: World) -> None:
    ops = login(_client(world.db, TOKEN), _operator(world.db))
    r = ops.patch(
        f"/api/v1/customers/{world.a}", json={"business_option": False, "srtp_required": True}
    )
    assert r.status_code == 200, r.text
    assert r.json()["srtp_required"] is True
    rows = _subscribers(world.db)
    assert rows["a-100"]["max_contacts"] == max_devices_per_extension(business_option=False)
    assert bool(rows["a-100"]["srtp_required"]) is True
    # a trial customer's devices exist while the trial runs and vanish when it ends
    with world.db.transaction() as conn:
        customers_repo.update_fields(conn, world.t, {"trial_ends_at": utcnow() + timedelta(days=1)})
    assert _subscribers(world.db)["t-100"]["aor"] == aor(world.t, "100")
    with world.db.transaction() as conn:
        # one second ago: SQLite's datetime('now') in the view has whole-second resolution
        ended = utcnow() - timedelta(seconds=1)
        customers_repo.update_fields(conn, world.t, {"trial_ends_at": ended})
    assert "t-100" not in _subscribers(world.db)
    ops.close()


def _operator(db: Database) -> str:
    email = f"op-{uuid.uuid4().hex[:6]}@platform.test"
    new_user(db, email, Role.OPERATOR, None)
    return email


def test_srtp_required_via_api_create_and_default(world: World) -> None:
    ops = login(_client(world.db, TOKEN), _operator(world.db))
    base = {"tariff": "basic", "contract_start": "2026-11-25"}
    r = ops.post("/api/v1/customers", json={**base, "name": "Secure AG", "srtp_required": True})
    assert r.status_code == 201, r.text
    assert r.json()["srtp_required"] is True
    r = ops.post("/api/v1/customers", json={**base, "name": "Plain AG"})
    assert r.json()["srtp_required"] is False
    r = ops.post("/api/v1/customers", json={**base, "name": "Bad AG", "srtp_required": "yes"})
    assert r.status_code == 422
    ops.close()


# The view holds three product rules as SQL; migrations freeze that SQL. It must agree with the
# Python definitions, in the newest migration's text and in a freshly migrated database.
def test_newest_view_migration_holds_the_sql_the_rules_render() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    newest = next(r for r in script.walk_revisions() if hasattr(r.module, "view_select"))
    for dialect in subscriber_view.DIALECTS:
        rendered = subscriber_view.select_sql(dialect)
        assert newest.module.view_select(dialect) == rendered, (
            f"a rule of pbx_app.subscriber_view changed since migration {newest.revision}: "
            f"add a migration that recreates {subscriber_view.VIEW} with, on {dialect}:{rendered}"
        )


@pytest.mark.parametrize("business_option", [False, True])
def test_migrated_view_agrees_with_the_python_rules(db: Database, business_option: bool) -> None:
    now = utcnow()
    soon, past = now + timedelta(minutes=5), now - timedelta(minutes=5)
    trials = {"none": None, "running": soon, "ended": past}
    devices_of: dict[int, str] = {}
    for trial, ends in trials.items():
        cid = new_customer(db, business_option=business_option, trial=ends is not None)
        location = _location(db, cid, FRANKFURT)
        username = f"v{cid}-{trial}"
        _device(db, cid, _extension(db, cid, location, "100"), username)
        with db.transaction() as conn:
            customers_repo.update_fields(conn, cid, {"trial_ends_at": ends})
        devices_of[cid] = username
    rows = _subscribers(db)
    with db.transaction() as conn:
        for cid, username in devices_of.items():
            customer = customers_repo.get(conn, cid)
            assert customer is not None
            if trial_expired(customer, now):
                assert username not in rows
                continue
            assert rows[username]["aor"] == aor(cid, "100")
            assert rows[username]["max_contacts"] == max_devices_per_extension(business_option)
    assert sum(name in rows for name in devices_of.values()) == 2


def test_migration_grants_select_to_kamailio_role(pg_server: PgServer) -> None:
    from sqlalchemy import create_engine

    admin = create_engine(pg_server.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = 'kamailio'")).first()
        if not exists:
            conn.execute(text("CREATE ROLE kamailio LOGIN"))
    name = f"pbx_grant_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = Database(pg_server.url(name))
    try:
        db.migrate()
        with db.engine.connect() as conn:
            check = "SELECT has_table_privilege('kamailio', :t, :p)"
            assert conn.execute(text(check), {"t": "kamailio_subscriber", "p": "SELECT"}).scalar()
            assert not conn.execute(
                text(check), {"t": "kamailio_subscriber", "p": "INSERT"}
            ).scalar()
            assert not conn.execute(text(check), {"t": "devices", "p": "SELECT"}).scalar()
    finally:
        db.dispose()
        pg_server.drop(name)
        admin.dispose()


# --- route: local ----------------------------------------------------------------------------
def test_own_extension_by_number_aor_and_device_username(world: World) -> None:
    assert world.decide("a-100", "101") == local(world.a, "101")
    assert world.decide("a-100", "100") == local(world.a, "100")
    assert world.decide("a-100", aor(world.a, "150")) == local(world.a, "150")
    assert world.decide("a-100", "a-102") == local(world.a, "102")
    assert world.decide("b-100", "105") == local(world.b, "105", srtp=True)


@pytest.mark.parametrize(
    "dialled", ["+49307770100", "0307770100", "0049307770100", "00493077701 00".replace(" ", "")]
)
def test_other_customers_did_in_every_format_reaches_its_extension(
    world: World, dialled: str
) -> None:
    assert world.decide("a-100", dialled) == local(world.b, "100", srtp=True)


def test_did_rule_explicit_geo_number_then_head_number_plus_extension(world: World) -> None:
    # implicit: head +49307770 (1,000 block) + extension 105 without its own geo_number
    assert world.decide("a-100", "0307770105") == local(world.b, "105", srtp=True)
    assert world.decide("b-100", "+49691234101") == local(world.a, "101")
    # explicit geo_number wins; the extension's implicit number then answers nothing
    assert world.decide("b-100", "+49691234555") == local(world.a, "102")
    assert world.decide("b-100", "+49691234102") == NOT_FOUND
    # own DID from own device: local, not out to the carrier and back
    assert world.decide("a-100", "069 1234 100".replace(" ", "")) == local(world.a, "100")


def test_numbers_of_the_platform_nobody_answers_are_not_sent_to_the_carrier(
    world: World,
) -> None:
    assert world.decide("a-100", "+49691234999") == NOT_FOUND  # in the block, unassigned
    assert world.decide("a-100", "+49691234") == NOT_FOUND  # the head number itself
    assert world.decide("a-100", "+4969123410") == NOT_FOUND  # too short for the block
    assert world.decide("a-100", "+49691239100") == NOT_FOUND  # expired trial customer's DID


# --- route: external -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("dialled", "e164"),
    [
        ("030555123", "+4930555123"),
        ("+4930555123", "+4930555123"),
        ("004930555123", "+4930555123"),
        ("01701234567", "+491701234567"),
        ("+33123456789", "+33123456789"),
        ("0033123456789", "+33123456789"),
    ],
)
def test_public_numbers_go_to_the_carrier_with_the_callers_did(
    world: World, dialled: str, e164: str
) -> None:
    assert world.decide("a-100", dialled) == {
        "action": "external",
        "number": e164,
        "caller_id": "+49691234100",
        "privacy": False,
        "ttl": 2,
    }


def test_caller_id_is_explicit_did_implicit_did_or_first_head_number(world: World) -> None:
    def caller_id(caller: str) -> str:
        body = world.decide(caller, "030555123")
        assert body["action"] == "external", body
        return str(body["caller_id"])

    assert caller_id("a-102") == "+49691234555"
    assert caller_id("a-101") == "+49691234101"
    assert caller_id("a-150") == "+49691234"  # Berlin, no head there: the first head number
    assert caller_id("b-105") == "+49307770105"
    # a customer without any number cannot call out
    assert world.decide("c-10", "030555123") == FORBIDDEN


def test_service_numbers_are_refused_unless_the_customer_allows_them(world: World) -> None:
    # 0900: a premium-rate number, in the price list's zone "service" (refused unless allowed).
    assert world.decide("a-100", "09001234567") == FORBIDDEN
    assert world.decide("a-100", "08001234567")["action"] == "external"  # freephone
    with world.db.transaction() as conn:
        customers.update(conn, SYSTEM, world.a, {"service_numbers_allowed": True}, utcnow())
    assert world.decide("a-100", "09001234567")["action"] == "external"


def test_a_contract_that_ended_after_a_notice_calls_nowhere_but_emergency(world: World) -> None:
    yesterday = utcnow().date() - timedelta(days=1)
    with world.db.transaction() as conn:
        customers_repo.update_fields(
            conn, world.b, {"notice_given_on": date(2020, 1, 1), "contract_ends_on": yesterday}
        )
    assert world.decide("b-105", "030555123") == FORBIDDEN
    assert world.decide("b-105", "112")["action"] == "external"


@pytest.mark.parametrize("number", sorted(EMERGENCY_NUMBERS))
def test_emergency_numbers_always_reach_the_carrier_from_the_callers_area(
    world: World, number: str
) -> None:
    def emergency(caller_id: str, site: tuple[str, ...]) -> dict[str, Any]:
        return {
            "action": "external",
            "number": number,
            "caller_id": caller_id,
            "emergency": True,
            "area_code": site[4],
            "location": f"{site[1]}, {site[2]} {site[3]}",
            "privacy": False,
            "ttl": 0,
        }

    assert world.decide("a-100", number) == emergency("+49691234100", FRANKFURT)
    assert world.decide("b-105", number) == emergency("+49307770105", BERLIN)
    # Berlin, no number there: the customer's first head number, Berlin's emergency data
    assert world.decide("a-150", number) == emergency("+49691234", BERLIN)
    # no number of its own, or a trial that has ended: an emergency call still goes out
    assert world.decide("c-10", number) == emergency("", BERLIN)
    assert world.decide("t-100", number) == emergency("+49691239100", FRANKFURT)
    # the CLIR prefix never applies to an emergency call
    assert world.decide("c-10", "#31#" + number) == emergency("", BERLIN)
    # an unknown caller is not a device of the platform
    assert world.decide("ghost-1", number) == FORBIDDEN


# --- route: reject ---------------------------------------------------------------------------
def test_tenant_isolation_other_customers_internal_addresses_are_forbidden(world: World) -> None:
    assert world.decide("a-100", aor(world.b, "100")) == FORBIDDEN
    assert world.decide("a-100", aor(world.b, "999")) == FORBIDDEN  # no existence oracle
    assert world.decide("a-100", "b-100") == FORBIDDEN
    assert world.decide("b-100", aor(world.a, "100")) == FORBIDDEN
    assert world.decide("b-100", "a-100") == FORBIDDEN
    # B has 105, A has not: a bare extension number stays inside the caller's customer
    assert world.decide("a-100", "105") == NOT_FOUND
    assert world.decide("b-100", "101") == NOT_FOUND
    assert world.decide("c-10", "100") == NOT_FOUND


def test_unknown_or_inactive_callers_are_forbidden(world: World) -> None:
    assert world.decide("ghost-1", "101") == FORBIDDEN
    assert world.decide("t-100", "100") == FORBIDDEN  # trial ended
    assert world.decide("", "101") == FORBIDDEN
    assert world.decide(aor(world.a, "100"), "101") == FORBIDDEN  # an AOR is not a device


def test_unknown_extensions_and_number_nonsense_are_not_found(world: World) -> None:
    for target in ("999", "12", aor(world.a, "999"), "nobody-1", "", "0", "+", "+49", "00", "*97"):
        assert world.decide("a-100", target) == NOT_FOUND, target


HOSTILE = [
    "\x00",
    "101\x00",
    "1" * 300,
    "+" + "9" * 40,
    "0" * 20,
    "'; DROP TABLE devices; --",
    "101' OR '1'='1",
    "%00",
    "\u202e101",
    "\uff11\uff10\uff11",  # fullwidth digits
    "\u0663\u0664\u0665",  # Arabic-Indic digits
    "c1x0100",
    "c0x100",
    "c99999999999999999999x100",
    "c1x100\n",
    "101\n",
    " 101",
    "sip:101@pbx.lab",
    "a" * 5000,
    "{}",
    "🦜",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_get_a_decision_never_an_error(world: World, value: str) -> None:
    for caller, target in (("a-100", value), (value, "101"), (value, value)):
        r = world.route(caller, target)
        assert r.status_code == 200, (caller, target, r.text)
        body = r.json()
        assert body["action"] == "reject", (caller, target, body)
        assert body["code"] in (403, 404)


@pytest.mark.parametrize("raw", ["%ED%A0%80", "%FF%FE", "%C0%80", "%00%00", "%25%32%35"])
def test_undecodable_bytes_in_the_query_get_a_decision(world: World, raw: str) -> None:
    headers = {"X-PBX-Internal-Token": TOKEN}
    for query in (f"caller=a-100&target={raw}", f"caller={raw}&target=101"):
        r = world.client.get(f"/internal/v1/route?{query}", headers=headers)
        assert r.status_code == 200, (query, r.text)
        assert r.json()["action"] == "reject"


def test_repeated_and_missing_parameters(world: World) -> None:
    headers = {"X-PBX-Internal-Token": TOKEN}
    r = world.client.get("/internal/v1/route", headers=headers)
    assert (r.status_code, r.json()) == (200, FORBIDDEN)
    r = world.client.get("/internal/v1/route?caller=a-100", headers=headers)
    assert (r.status_code, r.json()) == (200, NOT_FOUND)
    r = world.client.get("/internal/v1/route?caller=a-100&target=101&target=999", headers=headers)
    assert r.status_code == 200
    assert r.json()["action"] in ("local", "reject")


# --- token -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-PBX-Internal-Token": ""},
        {"X-PBX-Internal-Token": "wrong"},
        {"X-PBX-Internal-Token": TOKEN + "x"},
        {"X-PBX-Internal-Token": TOKEN[:-1]},
        {"X-PBX-Internal-Token": TOKEN.upper()},
        {"Authorization": f"Bearer {TOKEN}"},
        {"X-PBX-Internal-Token": "\u00e9".encode() * 20},
    ],
)
def test_missing_or_wrong_token_is_401(world: World, headers: dict[str, Any]) -> None:
    r = world.client.get(
        "/internal/v1/route", params={"caller": "a-100", "target": "101"}, headers=headers
    )
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "internal_token_invalid"


def test_token_unset_disables_the_internal_api(world: World) -> None:
    with _client(world.db, "") as disabled:
        r = disabled.get(
            "/internal/v1/route",
            params={"caller": "a-100", "target": "101"},
            headers={"X-PBX-Internal-Token": ""},
        )
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "internal_api_disabled"
        r = disabled.get("/internal/v1/route", params={"caller": "a-100", "target": "101"})
        assert r.status_code == 503


def test_settings_read_the_token_from_the_environment() -> None:
    from pbx_app.settings import Settings

    assert Settings.from_env({"PBX_INTERNAL_TOKEN": "s3cret"}).internal_token == "s3cret"
    assert Settings.from_env({}).internal_token == ""


def test_device_usernames_cannot_take_the_shape_of_an_aor(world: World) -> None:
    from pbx_app import errors

    with pytest.raises(errors.InvalidNumberFormat):
        _device(world.db, world.c, _extension(world.db, world.c, _any_loc(world), "11"), "c1x100")


def _any_loc(world: World) -> int:
    with world.db.engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT id FROM locations WHERE customer_id = :c"), {"c": world.c}
            ).scalar_one()
        )


def test_no_device_may_be_called_carrier(world: World) -> None:
    from pbx_app import errors

    with pytest.raises(errors.InvalidNumberFormat, match="carrier trunk"):
        _device(
            world.db, world.c, _extension(world.db, world.c, _any_loc(world), "12"), CARRIER_CALLER
        )


# --- route: inbound from the carrier trunk ---------------------------------------------------
@pytest.mark.parametrize("dialled", ["+49307770100", "0307770100", "0049307770100"])
def test_inbound_did_from_the_carrier_reaches_its_extension(world: World, dialled: str) -> None:
    assert world.decide(CARRIER_CALLER, dialled) == local(world.b, "100", srtp=True)


def test_inbound_implicit_did_and_unanswered_block_numbers(world: World) -> None:
    assert world.decide(CARRIER_CALLER, "+49307770105") == local(world.b, "105", srtp=True)
    assert world.decide(CARRIER_CALLER, "+49307770999") == NOT_FOUND  # in B's block, nobody answers


def test_the_carrier_cannot_transit_or_reach_internal_addresses(world: World) -> None:
    assert world.decide(CARRIER_CALLER, "+4930555123") == FORBIDDEN  # not a platform number
    # a bare extension is nobody's from outside
    assert world.decide(CARRIER_CALLER, "100") == NOT_FOUND
    assert world.decide(CARRIER_CALLER, aor(world.a, "100")) == NOT_FOUND
    assert world.decide(CARRIER_CALLER, "a-100") == NOT_FOUND
    assert world.decide(CARRIER_CALLER, "+49691239100") == NOT_FOUND  # trial ended: DID unreachable


# --- issue 13: CLIR, caller ID, the plan's parameters ------------------------------------------
def _ext_id(db: Database, cid: int, number: str) -> int:
    with db.transaction() as conn:
        return extensions_repo.id_by_number(conn, cid, number)


def _rules(db: Database, cid: int, number: str, *rules: call_rules.NewRule) -> None:
    ext = _ext_id(db, cid, number)
    with db.transaction() as conn:
        call_rules.put(conn, SYSTEM, cid, ext, list(rules), utcnow())


def _external(number: str, caller_id: str, privacy: bool = False) -> dict[str, Any]:
    return {
        "action": "external",
        "number": number,
        "caller_id": caller_id,
        "privacy": privacy,
        "ttl": 2,
    }


def test_clir_by_prefix_and_by_extension(world: World) -> None:
    assert world.decide("a-100", "#31#030555123") == _external(
        "+4930555123", "+49691234100", privacy=True
    )
    assert world.decide("a-100", "#31#101") == {**local(world.a, "101"), "privacy": True}
    assert world.decide("a-100", "#31#+49307770100") == {
        **local(world.b, "100", srtp=True),
        "privacy": True,
    }
    for nonsense in ("#31#", "#31##31#101", "#30#101", "*31#101"):
        assert world.decide("a-100", nonsense) == NOT_FOUND, nonsense
    a101 = _ext_id(world.db, world.a, "101")
    with world.db.transaction() as conn:
        extensions.update(conn, SYSTEM, world.a, a101, utcnow(), clir=True)
    assert world.decide("a-101", "030555123") == _external("+4930555123", "+49691234101", True)
    # withheld from other customers, not inside the own one
    assert world.decide("a-101", "+49307770100")["privacy"] is True
    assert world.decide("a-101", "100")["privacy"] is False


def test_the_caller_id_is_a_number_the_customer_still_holds(world: World) -> None:
    fra = int(_frankfurt(world))
    _head(world.db, world.a, fra, "+4969777123", block=1)  # e.g. ported in
    a101 = _ext_id(world.db, world.a, "101")
    with world.db.transaction() as conn:
        extensions.update(conn, SYSTEM, world.a, a101, utcnow(), caller_id="+4969777123")
        customers.update(conn, SYSTEM, world.a, {"default_caller_id": "+4969777123"}, utcnow())
    assert world.decide("a-101", "030555123")["caller_id"] == "+4969777123"
    assert world.decide("a-100", "030555123")["caller_id"] == "+4969777123"  # the default
    assert world.decide("a-102", "030555123")["caller_id"] == "+4969777123"
    # emergency calls keep the number of the caller's own area
    assert world.decide("a-101", "112")["caller_id"] == "+49691234101"
    # the number leaves the customer (ported away): it is nobody's caller ID here any more
    with world.db.transaction() as conn:
        head = next(
            h for h in head_numbers_repo.list_for_customer(conn, world.a) if h["block_size"] == 1
        )
        head_numbers.delete(conn, SYSTEM, world.a, int(head["id"]), utcnow())
    assert world.decide("a-101", "030555123")["caller_id"] == "+49691234101"
    assert world.decide("a-100", "030555123")["caller_id"] == "+49691234100"
    assert world.decide("a-102", "030555123")["caller_id"] == "+49691234555"


def _frankfurt(world: World) -> int:
    with world.db.engine.connect() as conn:
        q = "SELECT id FROM locations WHERE customer_id = :c AND name = 'Frankfurt'"
        return int(conn.execute(text(q), {"c": world.a}).scalar_one())


def test_a_customer_without_numbers_forwards_nowhere_outside(world: World) -> None:
    _rules(
        world.db,
        world.c,
        "10",
        call_rules.NewRule("unconditional", call_rules.Target("external", "030555123")),
    )
    assert world.decide("c-10", "10") == {**FORBIDDEN, "ttl": 0}
    assert world.decide("c-10", "030555123") == FORBIDDEN
    for number in sorted(EMERGENCY_NUMBERS):
        answer = world.decide("c-10", number)
        assert (answer["action"], answer["emergency"], answer["caller_id"]) == (
            "external",
            True,
            "",
        )
        assert (answer["area_code"], answer["location"]) == ("030", "Spree 1, 10117 Berlin")


def test_a_forwarding_to_a_service_number_is_refused_unless_allowed(world: World) -> None:
    # Customer b has not allowed service numbers: its rule cannot reach 0900 either.
    _rules(
        world.db,
        world.b,
        "105",
        call_rules.NewRule("unconditional", call_rules.Target("external", "09001234567")),
    )
    assert world.decide("a-100", "+49307770105") == {**FORBIDDEN, "ttl": 0}
    with world.db.transaction() as conn:
        customers.update(conn, SYSTEM, world.b, {"service_numbers_allowed": True}, utcnow())
    answer = world.decide("a-100", "+49307770105")
    assert answer["action"] != "reject", answer


def test_the_from_and_div_parameters(world: World) -> None:
    caller = call_rules.NewRule("caller", call_rules.Target("reject", 603), match="0170*")
    _rules(world.db, world.b, "100", caller)
    headers = {"X-PBX-Internal-Token": TOKEN}

    def route(**params: str) -> dict[str, Any]:
        r = world.client.get(
            "/internal/v1/route",
            params={"caller": CARRIER_CALLER, "target": "+49307770100", **params},
            headers=headers,
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    decline = {"action": "reject", "code": 603, "reason": "Decline", "ttl": 0}
    assert route(**{"from": "01701234567"}) == decline
    assert route(**{"from": "+491701234567", "div": "2"}) == decline
    assert route(**{"from": "01711234567"}) == {**local(world.b, "100", srtp=True), "ttl": 0}
    loop = {"action": "reject", "code": 482, "reason": "Loop Detected", "ttl": 0}
    assert route(div="6") == loop
    assert route(div="99999") == loop
    for nonsense in ("x", "-1", "", "\u0663"):
        assert route(div=nonsense)["action"] == "local", nonsense
    # without rules a decision may be cached, unless the request came diverted
    r = world.client.get(
        "/internal/v1/route",
        params={"caller": "a-100", "target": "101", "div": "1"},
        headers=headers,
    )
    assert r.json() == {**local(world.a, "101"), "ttl": 0}


def test_round_robin_advances_through_the_route_api(world: World) -> None:
    with world.db.transaction() as conn:
        group = ring_groups.create(
            conn,
            SYSTEM,
            world.a,
            ring_groups.NewGroup("Desk", "roundrobin", 10, ["100", "101"]),
            utcnow(),
        )
    _rules(
        world.db,
        world.a,
        "102",
        call_rules.NewRule("unconditional", call_rules.Target("group", int(group["id"]))),
    )
    firsts = [world.decide("a-150", "102")["steps"][0]["ring"] for _ in range(3)]
    assert firsts == [[aor(world.a, "100")], [aor(world.a, "101")], [aor(world.a, "100")]]
