"""What a browser gets: security headers on every page, Secure cookies over https, and CSRF
protection for writes authenticated by the session cookie."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from pbx_app.app import create_app
from pbx_app.db import Database
from pbx_app.mail import SmtpMailer
from tests.app.conftest import PASSWORD, Api, error_code, make_settings


def browser(db: Database, public_url: str = "http://127.0.0.1:8000") -> TestClient:
    settings = make_settings(db, public_url=public_url)
    app = create_app(settings, db, SmtpMailer("127.0.0.1", 1, "x@y.z"))
    return TestClient(app, base_url=public_url, raise_server_exceptions=False)


def test_the_set_password_page_is_locked_down(db: Database) -> None:
    page = browser(db).get("/set-password?token=abcdefghijklmnop")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "<script>" not in page.text  # no inline script for the CSP to forbid
    assert '<script type="module" src="/static/app.js">' in page.text
    assert page.headers["referrer-policy"] == "no-referrer"  # the token must not leak onward
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "abcdefghijklmnop" not in page.text  # the page reads the token from its address
    script = browser(db).get("/static/app.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "/auth/set-password" in script.text


def test_api_answers_are_not_cached_or_sniffed(api: Api) -> None:
    r = api.admin_a.get(f"/api/v1/customers/{api.a}")
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in r.headers  # plain http: HSTS would be a lie


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_cookies_are_secure_whenever_the_request_came_over_https(api: Api, scheme: str) -> None:
    client = browser(api.db, f"{scheme}://portal.pbx.test")
    r = client.post("/api/v1/auth/login", json={"email": "admin@a.test", "password": PASSWORD})
    assert r.status_code == 200, r.text
    cookies = r.headers.get_list("set-cookie")
    assert {c.split("=", 1)[0] for c in cookies} == {"pbx_session", "pbx_csrf"}
    for cookie in cookies:
        attributes = {a.strip().lower() for a in cookie.split(";")}
        assert ("secure" in attributes) is (scheme == "https"), cookie
        assert "samesite=strict" in attributes, cookie
        assert ("httponly" in attributes) is cookie.startswith("pbx_session="), cookie
    if scheme == "https":
        assert "max-age" in r.headers["strict-transport-security"]


def test_cookie_writes_need_the_csrf_header(api: Api) -> None:
    """A page on another site can make the browser send the session cookie, not the header."""
    client = browser(api.db)
    r = client.post("/api/v1/auth/login", json={"email": "admin@a.test", "password": PASSWORD})
    csrf = r.json()["csrf_token"]
    assert csrf == client.cookies["pbx_csrf"]
    base = f"/api/v1/customers/{api.a}/locations"
    body = {
        "name": "Forged",
        "street": "Main 1",
        "postal_code": "60329",
        "city": "Frankfurt",
        "area_code": "069",
    }
    for headers in ({}, {"X-CSRF-Token": "0" * 64}, {"X-CSRF-Token": "forged"}):
        r = client.post(base, json=body, headers=headers)
        assert r.status_code == 403, r.text
        assert error_code(r) == "csrf_failed"
    assert [loc["name"] for loc in client.get(base).json()["items"]] == ["Frankfurt"]  # reads ok
    # Another session's token is no good either.
    other = browser(api.db)
    other_csrf = other.post(
        "/api/v1/auth/login", json={"email": "admin@a.test", "password": PASSWORD}
    ).json()["csrf_token"]
    assert client.post(base, json=body, headers={"X-CSRF-Token": other_csrf}).status_code == 403
    r = client.post(base, json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    # Bearer tokens carry no ambient credential: no CSRF header needed.
    bearer = browser(api.db)
    r = bearer.post(
        base,
        json={**body, "name": "Via token"},
        headers={"Authorization": f"Bearer {api.token_a}"},
    )
    assert r.status_code == 201, r.text
