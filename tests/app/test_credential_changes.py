"""The credential change log the proxies poll to drop cached credentials (migration 0008,
kamailio.cfg route[CRED_POLL]): PostgreSQL's triggers write it, so no code path of the app can
change a device's view row without it; columns the view does not read write nothing."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text

from pbx_app import credential_changes
from pbx_app.db import Database, utcnow
from pbx_app.services.access import Role
from tests.app.conftest import (
    Api,
    PgServer,
    client_for,
    login,
    new_customer,
    new_user,
)


@pytest.fixture
def pg_api(pg_db: Database) -> Iterator[Api]:
    a = new_customer(pg_db, booked_licences=20)
    b = new_customer(pg_db)
    new_user(pg_db, "op@platform.test", Role.OPERATOR, None)
    new_user(pg_db, "admin@a.test", Role.CUSTOMER_ADMIN, a)
    new_user(pg_db, "admin@b.test", Role.CUSTOMER_ADMIN, b)
    clients = [
        login(client_for(pg_db), e) for e in ("op@platform.test", "admin@a.test", "admin@b.test")
    ]
    loc = {
        "name": "Frankfurt",
        "street": "Main 1",
        "postal_code": "60329",
        "city": "Frankfurt",
        "area_code": "069",
    }
    loc_a = clients[1].post(f"/api/v1/customers/{a}/locations", json=loc).json()["id"]
    loc_b = clients[2].post(f"/api/v1/customers/{b}/locations", json=loc).json()["id"]
    yield Api(pg_db, clients[0], clients[1], clients[2], a, b, loc_a, loc_b, "")
    for c in clients:
        c.close()


def _extension(client: TestClient, customer: int, location: int, number: str, **kw: Any) -> int:
    r = client.post(
        f"/api/v1/customers/{customer}/extensions",
        json={"location_id": location, "number": number, **kw},
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _device(client: TestClient, customer: int, extension: int) -> dict[str, Any]:
    r = client.post(f"/api/v1/customers/{customer}/extensions/{extension}/devices", json={})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _changes_since(db: Database, seq: int) -> list[str]:
    with db.snapshot() as conn:
        rows = conn.execute(
            text("SELECT username FROM credential_changes WHERE seq > :s ORDER BY seq"), {"s": seq}
        )
        return [r.username for r in rows]


def _last(db: Database) -> int:
    with db.snapshot() as conn:
        last = conn.execute(text("SELECT COALESCE(MAX(seq), 0) FROM credential_changes"))
        return int(last.scalar_one())


def test_a_password_reset_a_delete_and_an_option_switch_are_logged(pg_api: Api) -> None:
    api, admin = pg_api, pg_api.admin_a
    ext = _extension(admin, api.a, api.loc_a, "100")
    phone = _device(admin, api.a, ext)
    user, device = phone["sip_username"], phone["id"]
    url = f"/api/v1/customers/{api.a}/extensions/{ext}"

    mark = _last(api.db)
    r = admin.post(f"{url}/devices/{device}/password", json={})
    assert r.status_code == 200, r.text
    assert _changes_since(api.db, mark) == [user]

    # The Business Option changes the view's max_contacts and business_option.
    mark = _last(api.db)
    r = admin.patch(url, json={"business_option": True})
    assert r.status_code == 200, r.text
    assert _changes_since(api.db, mark) == [user]

    # A change the view does not show writes nothing.
    mark = _last(api.db)
    r = admin.patch(url, json={"display_name": "Reception"})
    assert r.status_code == 200, r.text
    assert _changes_since(api.db, mark) == []

    # The customer's SRTP policy is in every device's row.
    mark = _last(api.db)
    r = api.operator.patch(f"/api/v1/customers/{api.a}", json={"srtp_required": True})
    assert r.status_code == 200, r.text
    assert _changes_since(api.db, mark) == [user]

    mark = _last(api.db)
    r = admin.delete(f"{url}/devices/{device}")
    assert r.status_code == 204, r.text
    assert _changes_since(api.db, mark) == [user]


def test_deleting_an_extension_logs_its_devices(pg_api: Api) -> None:
    api, admin = pg_api, pg_api.admin_a
    ext = _extension(admin, api.a, api.loc_a, "100", business_option=True)
    users = sorted(_device(admin, api.a, ext)["sip_username"] for _ in range(2))
    mark = _last(api.db)
    r = admin.delete(f"/api/v1/customers/{api.a}/extensions/{ext}")
    assert r.status_code == 204, r.text
    assert sorted(_changes_since(api.db, mark)) == users


KAMAILIO_CFG = Path(__file__).resolve().parents[2] / "kamailio" / "kamailio.cfg"


def _cfg_value(name: str) -> int:
    m = re.search(rf'^#!substdef "!{name}!(\d+)!g"', KAMAILIO_CFG.read_text(), re.M)
    assert m, f"{name} not defined in kamailio.cfg"
    return int(m.group(1))


def _proxy_poll(conn: Connection, prev: str) -> tuple[str, list[str]]:
    """route[CRED_POLL]'s own query (read from kamailio.cfg) after a poll whose snapshot was
    `prev`: this poll's snapshot and the usernames it reads."""
    cfg = KAMAILIO_CFG.read_text()
    m = re.search(r'sql_query\("pbx", "(WITH s AS [^"]*credential_changes[^"]*)", "cpr"\)', cfg)
    assert m, "route[CRED_POLL]'s query not found in kamailio.cfg"
    assert re.fullmatch(r"[0-9]+:[0-9]+:[0-9,]*", prev), prev
    sql = m.group(1).replace("$var(prev)", prev)
    sql = sql.replace("PBX_CRED_BULK", str(_cfg_value("PBX_CRED_BULK")))
    rows = conn.exec_driver_sql(sql).all()
    return str(rows[0][0]), [str(r[1]) for r in rows if r[1] is not None]


def _snapshot(db: Database) -> str:
    with db.snapshot() as conn:
        return str(conn.execute(text("SELECT pg_current_snapshot()::text")).scalar_one())


def test_the_proxies_poll_reads_each_change_once_whatever_the_commit_order(pg_api: Api) -> None:
    """A change committed after a later one was polled is found by the next poll; no change is
    read twice, also while a transaction elsewhere stays open (it holds the snapshot's xmin
    back: a poll by xmin read the same rows again on every round, dropping cached entries)."""
    api, admin = pg_api, pg_api.admin_a
    ext = _extension(admin, api.a, api.loc_a, "100")
    phone = _device(admin, api.a, ext)
    idle = api.db.engine.connect()
    slow = api.db.engine.connect()
    try:
        idle_tx = idle.begin()
        idle.execute(text("SELECT pg_current_xact_id()"))  # open, with a transaction id
        prev = _snapshot(api.db)
        slow_tx = slow.begin()
        slow.execute(
            text("UPDATE devices SET ha1 = md5(ha1) WHERE sip_username = :u"),
            {"u": phone["sip_username"]},
        )
        # A later change commits first and is polled...
        other = _extension(admin, api.a, api.loc_a, "101")
        later = _device(admin, api.a, other)["sip_username"]
        with api.db.snapshot() as conn:
            prev, first = _proxy_poll(conn, prev)
        assert later in first, first
        assert phone["sip_username"] not in first, first
        slow_tx.commit()
        # ... the earlier one (committed after that poll) is found next, the later not again.
        with api.db.snapshot() as conn:
            prev, second = _proxy_poll(conn, prev)
        assert phone["sip_username"] in second, second
        assert later not in second, second
        with api.db.snapshot() as conn:
            prev, third = _proxy_poll(conn, prev)
        assert third == [], third
        idle_tx.rollback()
    finally:
        slow.close()
        idle.close()


def _cached_for(db: Database, username: str) -> int:
    """The seconds route[CREDENTIALS] (its query, read from kamailio.cfg) keeps a device."""
    cfg = KAMAILIO_CFG.read_text()
    m = re.search(r'sql_xquery\("pbx", "(SELECT domain, ha1[^"]*)", "cred"\)', cfg)
    assert m, "route[CREDENTIALS]'s query not found in kamailio.cfg"
    sql = m.group(1).replace("$(aU{sql.val.str})", f"'{username}'")
    sql = sql.replace("PBX_CRED_TTL", str(_cfg_value("PBX_CRED_TTL")))
    with db.snapshot() as conn:
        return int(conn.exec_driver_sql(sql).one()._mapping["ttl"])


def test_credentials_are_cached_for_the_ttl_or_until_the_trial_ends(pg_api: Api) -> None:
    """A customer without a trial: PBX_CRED_TTL (GREATEST(1, NULL) is 1 in PostgreSQL, and
    cached every device for one second); one whose trial ends in 10 minutes: until then."""
    api, admin = pg_api, pg_api.admin_a
    phone = _device(admin, api.a, _extension(admin, api.a, api.loc_a, "100"))
    assert _cached_for(api.db, phone["sip_username"]) == _cfg_value("PBX_CRED_TTL")
    with api.db.engine.begin() as conn:
        conn.execute(
            text("UPDATE customers SET trial_ends_at = :t WHERE id = :c"),
            {"t": utcnow() + timedelta(minutes=10), "c": api.a},
        )
    assert 590 <= _cached_for(api.db, phone["sip_username"]) <= 600


def test_a_poll_loop_covers_the_bulk_limit() -> None:
    """route[CRED_POLL] walks up to PBX_CRED_BULK rows in one while loop; the core stops a loop
    after max_while_loops rounds, which would leave the rest of the devices cached."""
    m = re.search(r"^max_while_loops=(\d+)", KAMAILIO_CFG.read_text(), re.M)
    assert m, "max_while_loops not set in kamailio.cfg"
    assert int(m.group(1)) > _cfg_value("PBX_CRED_BULK")


def test_the_log_is_pruned_after_an_hour(pg_api: Api) -> None:
    api, admin = pg_api, pg_api.admin_a
    ext = _extension(admin, api.a, api.loc_a, "100")
    _device(admin, api.a, ext)
    with api.db.transaction() as conn:
        conn.execute(
            text("UPDATE credential_changes SET changed_at = changed_at - interval '2 hours'")
        )
    phone = _device(admin, api.a, _extension(admin, api.a, api.loc_a, "101"))
    assert credential_changes.prune(api.db, utcnow()) >= 1
    assert _changes_since(api.db, 0) == [phone["sip_username"]]
    assert credential_changes.prune(api.db, utcnow() + timedelta(hours=2)) == 1


def test_the_kamailio_role_reads_the_log_and_nothing_else_new(pg_server: PgServer) -> None:
    from sqlalchemy import create_engine

    admin = create_engine(pg_server.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = 'kamailio'")).first():
            conn.execute(text("CREATE ROLE kamailio LOGIN"))
    name = f"pbx_grant_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = Database(pg_server.url(name))
    try:
        db.migrate()
        with db.engine.connect() as conn:
            check = "SELECT has_table_privilege('kamailio', :t, :p)"
            assert conn.execute(text(check), {"t": "credential_changes", "p": "SELECT"}).scalar()
            for p in ("INSERT", "UPDATE", "DELETE"):
                assert not conn.execute(text(check), {"t": "credential_changes", "p": p}).scalar()
    finally:
        db.dispose()
        pg_server.drop(name)
    admin.dispose()
