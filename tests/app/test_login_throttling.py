"""Login guessing: throttled per account and per source, shared by all app nodes, never a
lockout for good, and every login and failed login in the customer's audit trail."""

from __future__ import annotations

import time
from datetime import timedelta

from fastapi.testclient import TestClient

from pbx_app.app import create_app
from pbx_app.db import Database, utcnow
from pbx_app.mail import SmtpMailer
from pbx_app.services import login_throttle
from tests.app.conftest import PASSWORD, Api, error_code, make_settings

WRONG = "not the password at all"


def node(db: Database, source: str = "198.51.100.7") -> TestClient:
    """One app node, seen from one client address."""
    app = create_app(make_settings(db), db, SmtpMailer("127.0.0.1", 1, "x@y.z"))
    return TestClient(app, raise_server_exceptions=False, client=(source, 40000))


def attempt(client: TestClient, password: str, email: str = "admin@a.test") -> tuple[int, str]:
    r = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    return r.status_code, r.headers.get("retry-after", "")


def test_forty_wrong_passwords_are_throttled_with_429_and_retry_after(api: Api) -> None:
    client = node(api.db)
    answers = [attempt(client, WRONG) for _ in range(40)]
    statuses = [status for status, _ in answers]
    assert statuses[:5] == [401] * 5, statuses
    assert statuses.count(429) >= 30, statuses
    for status, retry_after in answers:
        if status == 429:
            assert retry_after.isdigit(), answers
            assert 1 <= int(retry_after) <= 900, answers
    r = client.post("/api/v1/auth/login", json={"email": "admin@a.test", "password": PASSWORD})
    assert r.status_code == 429, "the right password is not even checked while blocked"
    assert error_code(r) == "login_throttled"
    assert int(r.headers["retry-after"]) >= 1


def test_the_block_ends_and_the_right_password_then_works(api: Api) -> None:
    client = node(api.db)
    statuses = [attempt(client, WRONG)[0] for _ in range(6)]
    assert statuses == [401] * 6
    status, retry_after = attempt(client, PASSWORD)
    assert status == 429
    assert retry_after == "1"
    time.sleep(1.1)
    assert attempt(client, PASSWORD)[0] == 200
    # Success clears the account's count: the next typo is a plain 401 again.
    assert attempt(client, WRONG)[0] == 401


def test_a_guesser_elsewhere_does_not_block_the_real_user(api: Api) -> None:
    guesser = node(api.db, "203.0.113.50")
    for _ in range(12):
        attempt(guesser, WRONG)
    assert attempt(guesser, PASSWORD)[0] == 429
    assert attempt(node(api.db, "192.0.2.10"), PASSWORD)[0] == 200


def test_one_source_spraying_many_accounts_is_throttled(api: Api) -> None:
    sprayer = node(api.db, "203.0.113.77")
    statuses = [attempt(sprayer, WRONG, f"user{i}@spray.test")[0] for i in range(40)]
    assert statuses[:30] == [401] * 30, statuses
    assert 429 in statuses[30:], statuses
    # Also for a real account with the right password, from that source.
    assert attempt(sprayer, PASSWORD)[0] == 429


def test_the_throttle_is_shared_by_all_app_nodes(api: Api) -> None:
    """Failures counted by one node block the same account and source at another (both sites
    share the database)."""
    fra, ber = node(api.db), node(api.db)
    for _ in range(6):
        assert attempt(fra, WRONG)[0] == 401
    assert attempt(ber, PASSWORD)[0] == 429


def test_ipv6_clients_are_counted_per_64(api: Api) -> None:
    for i in range(6):
        attempt(node(api.db, f"2001:db8:1:2::{i + 1:x}"), WRONG)
    assert attempt(node(api.db, "2001:db8:1:2::ff"), PASSWORD)[0] == 429
    assert attempt(node(api.db, "2001:db8:1:3::1"), PASSWORD)[0] == 200


def test_a_distributed_attack_never_locks_the_account_for_more_than_a_minute(db: Database) -> None:
    """Thousands of failures from hundreds of addresses over an hour: the account-wide block
    never exceeds its cap, so the real user from a new address waits at most 60 s."""
    start = utcnow()
    longest = 0
    for i in range(2000):
        now = start + timedelta(seconds=2 * i)
        keys = login_throttle.keys("admin@a.test", f"10.9.{i % 250}.{i // 250}")
        with db.transaction() as conn:
            if login_throttle.retry_after(conn, keys, now) == 0:
                login_throttle.record_failure(conn, keys, now)
        user = login_throttle.keys("admin@a.test", "192.0.2.99")
        with db.snapshot() as conn:
            longest = max(longest, login_throttle.retry_after(conn, user, now))
    assert 0 < longest <= 60


def test_logins_and_failed_logins_are_in_the_customers_audit_trail(api: Api) -> None:
    client = node(api.db, "198.51.100.23")
    assert attempt(client, WRONG)[0] == 401
    assert attempt(client, PASSWORD)[0] == 200
    assert attempt(client, WRONG, "nobody@a.test")[0] == 401
    r = api.admin_a.get(f"/api/v1/customers/{api.a}/audit-events")
    assert r.status_code == 200, r.text
    mine = [e for e in r.json()["items"] if e["source"] == "198.51.100.23"]
    assert [(e["kind"], e["email"]) for e in mine] == [
        ("login", "admin@a.test"),
        ("login_failed", "admin@a.test"),
    ]
    # The unknown e-mail belongs to no customer: only operators see it.
    r = api.operator.get("/api/v1/audit-events")
    assert any(e["email"] == "nobody@a.test" for e in r.json()["items"]), r.text
    assert api.admin_a.get("/api/v1/audit-events").status_code == 403
    # Another customer's admin does not see A's trail.
    r = api.admin_b.get(f"/api/v1/customers/{api.a}/audit-events")
    assert r.status_code == 403
    assert error_code(r) == "customer_scope_violation"
