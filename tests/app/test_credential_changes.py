"""The credential change log the proxies poll to drop cached credentials (migration 0008,
kamailio.cfg route[CRED_POLL]): PostgreSQL's triggers write it, so no code path of the app can
change a device's view row without it; columns the view does not read write nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

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


def test_changes_carry_their_transaction_for_the_proxies_poll(pg_api: Api) -> None:
    """A proxy asks for rows whose transaction is at or above the oldest transaction that was
    still running at its previous poll: a change committed later than a newer one is not
    skipped, whatever its seq."""
    api, admin = pg_api, pg_api.admin_a
    ext = _extension(admin, api.a, api.loc_a, "100")
    phone = _device(admin, api.a, ext)
    poll = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
    slow = api.db.engine.connect()
    try:
        with api.db.snapshot() as conn:
            low = int(conn.execute(text(poll)).scalar_one())
        slow_tx = slow.begin()
        slow.execute(
            text("UPDATE devices SET ha1 = md5(ha1) WHERE sip_username = :u"),
            {"u": phone["sip_username"]},
        )
        # A later change commits first and is polled...
        r = admin.post(f"/api/v1/customers/{api.a}/extensions/{ext}/devices", json={})
        assert r.status_code in (201, 409), r.text
        with api.db.snapshot() as conn:
            seen_low = int(conn.execute(text(poll)).scalar_one())
        slow_tx.commit()
    finally:
        slow.close()
    # ... the earlier one (smaller seq, committed after that poll) is still found from there.
    with api.db.snapshot() as conn:
        found = [
            r.username
            for r in conn.execute(
                text("SELECT username FROM credential_changes WHERE tx >= :low"),
                {"low": seen_low},
            )
        ]
    assert phone["sip_username"] in found
    assert seen_low >= low


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
