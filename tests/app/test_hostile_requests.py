"""Requests an attacker shapes: a forged Host header, a secret in the query string."""

from __future__ import annotations

import logging
import threading
import time

import httpx
import pytest
import uvicorn

from pbx_app.app import create_app
from pbx_app.db import Database
from pbx_app.mail import SmtpMailer
from tests.app.conftest import make_settings
from tests.app.pg_cluster import free_port


def test_a_trailing_slash_is_not_redirected_to_a_forged_host(db: Database) -> None:
    """Starlette's slash redirect builds its Location from the Host header: a forged Host
    would come back as a redirect to anywhere (open redirect, cache poisoning)."""
    from fastapi.testclient import TestClient

    client = TestClient(create_app(make_settings(db), db), raise_server_exceptions=False)
    r = client.get("/healthz/", headers={"host": "evil.example"}, follow_redirects=False)
    assert r.status_code == 404, (r.status_code, r.headers)
    assert "evil.example" not in r.headers.get("location", "")
    assert "evil.example" not in r.text


def test_set_password_token_never_reaches_the_access_log(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """The link in the onboarding mail carries a single-use token in its query string; the
    access log must show the request, not the token."""
    port = free_port()
    app = create_app(make_settings(db), db, SmtpMailer("127.0.0.1", 1, "x@y.z"))
    # uvicorn configures its loggers here (its access logger does not propagate): listen on
    # it directly, as the operator's log collector would.
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info"))
    access = logging.getLogger("uvicorn.access")
    access.addHandler(caplog.handler)
    thread = threading.Thread(target=server.run, daemon=True)
    secret = "sEcReT-tOkEn-0123456789abcdef"
    try:
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        try:
            r = httpx.get(f"http://127.0.0.1:{port}/set-password?token={secret}&x=1", timeout=5)
            assert r.status_code == 200
            time.sleep(0.2)
        finally:
            server.should_exit = True
            thread.join(timeout=15)
    finally:
        access.removeHandler(caplog.handler)
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert any("/set-password?token=[redacted]&x=1" in line for line in lines), lines
    assert not any(secret in line for line in lines), lines
