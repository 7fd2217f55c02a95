"""Requests an attacker shapes: a forged Host header, a secret in the query string."""

from __future__ import annotations

import logging
import threading
import time

import httpx
import pytest
import uvicorn

from labkit.pg_cluster import free_port
from pbx_app.app import create_app
from pbx_app.db import Database
from pbx_app.mail import SmtpMailer
from tests.app.conftest import Api, error_code, make_settings


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


def test_another_customers_mac_answers_like_an_unknown_one(api: Api) -> None:
    """Provisioning by MAC tells nobody which MACs are registered on the platform: with
    customer A's claim token, customer B's phone and a MAC nobody has answer alike, and so
    they do without any credentials."""
    made: list[tuple[int, int]] = []
    for client, cid, loc, mac in (
        (api.admin_a, api.a, api.loc_a, "00:15:65:aa:bb:01"),
        (api.admin_b, api.b, api.loc_b, "00:15:65:aa:bb:cc"),
    ):
        base = f"/api/v1/customers/{cid}/extensions"
        ext = client.post(base, json={"location_id": loc, "number": "100"}).json()["id"]
        r = client.post(f"{base}/{ext}/devices", json={"mac": mac, "model": "yealink-t54w"})
        assert r.status_code == 201, r.text
        made.append((ext, r.json()["id"]))
    (ext_a, device_a), _ = made
    claim = api.admin_a.post(
        f"/api/v1/customers/{api.a}/extensions/{ext_a}/devices/{device_a}/claim-token"
    )
    assert claim.status_code == 201, claim.text
    token = claim.json()["token"]
    phone = api.operator  # any client: the phone-facing paths ignore sessions
    theirs = phone.get(f"/prov/t/{token}/001565aabbcc.cfg")
    unknown = phone.get(f"/prov/t/{token}/001565aabbcd.cfg")
    assert (
        (theirs.status_code, theirs.text)
        == (unknown.status_code, unknown.text)
        == (
            403,
            "refused\n",
        )
    )
    bare = [phone.get(f"/prov/{m}.cfg") for m in ("001565aabbcc", "001565aabbcd")]
    assert {(r.status_code, r.text) for r in bare} == {(401, "credentials required\n")}


@pytest.mark.parametrize(
    "trick",
    [
        "Anna\u202egnp.exe",  # right-to-left override: shows as "Annaexe.png"
        "Ch\u200bef",  # zero-width space: looks like "Chef", compares unequal
        "Boss\u2028Line two",  # line separator
        "Null\u0000byte",
        "Bell\u0007",
    ],
)
def test_display_names_that_display_as_something_else_are_refused(api: Api, trick: str) -> None:
    """The API refuses what the import refuses: one rule for names people see."""
    base = f"/api/v1/customers/{api.a}"
    r = api.admin_a.post(
        f"{base}/extensions",
        json={"location_id": api.loc_a, "number": "300", "display_name": trick},
    )
    assert r.status_code == 422, r.text
    assert error_code(r) == "validation_failed"
    r = api.admin_a.post(f"{base}/users", json={"email": "x@a.test", "display_name": trick})
    assert r.status_code == 422, r.text
    csv_body = f"number,location_id,display_name\n301,{api.loc_a},{trick}\n"
    r = api.admin_a.post(
        f"{base}/extensions/import", content=csv_body, headers={"content-type": "text/csv"}
    )
    assert r.status_code == 422, r.text
    assert api.admin_a.get(f"{base}/extensions").json()["items"] == []
    ok = api.admin_a.post(
        f"{base}/extensions",
        json={"location_id": api.loc_a, "number": "302", "display_name": "Zoë Müller-Łukasz"},
    )
    assert ok.status_code == 201, ok.text


def test_a_misspelt_query_parameter_is_reported_not_ignored(api: Api) -> None:
    r = api.admin_a.get(f"/api/v1/customers/{api.a}/head-numbers?limt=5")
    assert r.status_code == 422, r.text
    assert error_code(r) == "validation_failed"
    assert "limt" in r.json()["error"]["message"]
    assert api.admin_a.get(f"/api/v1/customers/{api.a}/head-numbers?limit=5").status_code == 200
