"""R6: an admin creates a user; the e-mail with a single-use, expiring link reaches the SMTP
sink."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from email.message import Message
from urllib.parse import parse_qs, urlparse

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import select

from labkit.pg_cluster import free_port
from pbx_app import errors
from pbx_app.app import create_app
from pbx_app.db import Database, utcnow
from pbx_app.mail import SmtpMailer
from pbx_app.repositories import users as users_repo
from pbx_app.schema import mail_outbox
from pbx_app.security import hash_password
from pbx_app.services import users
from pbx_app.services.access import Role
from tests.app.conftest import SmtpSink, login, make_settings, new_customer, new_user


def admin_client(db: Database, smtp_port: int) -> tuple[TestClient, int]:
    cid = new_customer(db)
    new_user(db, "boss@acme.test", Role.CUSTOMER_ADMIN, cid)
    settings = make_settings(db, smtp_port=smtp_port)
    app = create_app(settings, db, SmtpMailer("127.0.0.1", smtp_port, settings.mail_from))
    return login(TestClient(app), "boss@acme.test"), cid


def mail_body(mail: Message) -> str:
    payload = mail.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def link_token(body: str) -> str:
    match = re.search(r"http://127\.0\.0\.1:8000/set-password\?token=(\S+)", body)
    assert match, body
    return parse_qs(urlparse(match.group(0)).query)["token"][0]


def test_onboarding_mail_link_sets_the_password_exactly_once(
    db: Database, smtp_sink: SmtpSink
) -> None:
    client, cid = admin_client(db, smtp_sink.port)
    r = client.post(
        f"/api/v1/customers/{cid}/users", json={"email": "New.Hire@Acme.test", "role": "user"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["password_set"] is False
    (mail,) = smtp_sink.wait_for(1)
    assert mail["To"] == "new.hire@acme.test"
    assert mail["From"] == "pbx@lab.test"
    token = link_token(mail_body(mail))
    page = client.get(f"/set-password?token={token}")
    assert page.status_code == 200
    assert "/static/app.js" in page.text  # the portal's set-password view, which reads the token
    anonymous = TestClient(client.app)
    r = anonymous.post("/api/v1/auth/set-password", json={"token": token, "password": "short"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "password_too_weak"
    new_password = "a much better passphrase"
    r = anonymous.post("/api/v1/auth/set-password", json={"token": token, "password": new_password})
    assert r.status_code == 200, r.text
    r = anonymous.post(
        "/api/v1/auth/set-password", json={"token": token, "password": "another passphrase!"}
    )
    assert r.status_code == 410
    assert r.json()["error"]["code"] == "password_link_invalid"
    r = anonymous.post(
        "/api/v1/auth/login", json={"email": "new.hire@acme.test", "password": new_password}
    )
    assert r.status_code == 200
    r = anonymous.post(
        "/api/v1/auth/login",
        json={"email": "new.hire@acme.test", "password": "another passphrase!"},
    )
    assert r.status_code == 401


def test_password_link_expires(db: Database, smtp_sink: SmtpSink) -> None:
    client, cid = admin_client(db, smtp_sink.port)
    assert (
        client.post(f"/api/v1/customers/{cid}/users", json={"email": "late@acme.test"}).status_code
        == 201
    )
    token = link_token(mail_body(smtp_sink.wait_for(1)[0]))
    with pytest.raises(errors.PasswordLinkInvalid), db.transaction() as conn:
        users.set_password_with_link(
            conn,
            "test-secret",
            token,
            hash_password("a fine passphrase"),
            utcnow() + timedelta(hours=73),
        )
    with db.transaction() as conn:  # still valid within 72 hours
        users.set_password_with_link(
            conn,
            "test-secret",
            token,
            hash_password("a fine passphrase"),
            utcnow() + timedelta(hours=71),
        )


def test_a_relay_that_is_down_delays_the_mail_and_loses_nothing(db: Database) -> None:
    """The user is created at once; the outbox retries until the relay takes the mail."""
    port = free_port()
    client, cid = admin_client(db, smtp_port=port)  # nothing listens there yet
    r = client.post(f"/api/v1/customers/{cid}/users", json={"email": "later@acme.test"})
    assert r.status_code == 201, r.text
    with db.snapshot() as conn:
        assert users_repo.get_by_email(conn, "later@acme.test") is not None
        pending = conn.execute(select(mail_outbox.c.recipient, mail_outbox.c.attempts)).all()
    assert [p.recipient for p in pending] == ["later@acme.test"]
    time.sleep(1.0)  # a few refused attempts
    sink = SmtpSink(port=port)
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        (mail,) = sink.wait_for(1, timeout=15)
        assert mail["To"] == "later@acme.test"
        assert link_token(mail_body(mail))
    finally:
        controller.stop()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # sent mail leaves the outbox (its link with it)
        with db.snapshot() as conn:
            if not conn.execute(select(mail_outbox.c.id)).all():
                break
        time.sleep(0.1)
    else:
        raise AssertionError("the sent mail is still in the outbox")


def test_duplicate_email_refused(db: Database, smtp_sink: SmtpSink) -> None:
    client, cid = admin_client(db, smtp_sink.port)
    r = client.post(f"/api/v1/customers/{cid}/users", json={"email": "boss@acme.test"})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "email_in_use"
    assert smtp_sink.messages == []
