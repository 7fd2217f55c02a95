"""The REST API: auth, scoping, error format, bulk import, hostile input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pbx_app.addressing import EMERGENCY_NUMBERS
from pbx_app.app import create_app
from pbx_app.db import Database
from pbx_app.mail import SmtpMailer
from tests.app.conftest import (
    PASSWORD,
    Api,
    SmtpSink,
    client_for,
    error_code,
    login,
    make_settings,
)


def test_openapi_document_under_api_v1(api: Api) -> None:
    for path in ("/api/v1/openapi.json", "/openapi.json"):
        doc = api.operator.get(path).json()
        assert "/api/v1/customers/{customer_id}/extensions" in doc["paths"]
        assert "/api/v1/customers/{customer_id}/extensions/import" in doc["paths"]


def test_healthz_checks_the_database(api: Api) -> None:
    r = api.operator.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ok",
        "database": "ok",
        "writable": True,
        "node": "pbx-app-fra-1",
        "site": "fra",
    }
    broken = Database("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    app = create_app(make_settings(broken), broken, SmtpMailer("127.0.0.1", 1, "x@y.z"))
    with TestClient(app) as c:
        r = c.get("/healthz")
    assert r.status_code == 503
    assert r.json()["database"] != "ok"
    assert r.json()["writable"] is False


def test_login_is_email_and_password_only(api: Api) -> None:
    c = client_for(api.db)
    r = c.post("/api/v1/auth/login", json={"email": "admin@a.test", "password": "wrong password!"})
    assert r.status_code == 401
    assert error_code(r) == "invalid_credentials"
    r = c.post("/api/v1/auth/login", json={"email": "nobody@a.test", "password": PASSWORD})
    assert r.status_code == 401
    assert c.get("/api/v1/me").status_code == 401
    r = c.post("/api/v1/auth/login", json={"email": "ADMIN@a.test", "password": PASSWORD})
    assert r.status_code == 200
    assert c.get("/api/v1/me").json()["user"]["email"] == "admin@a.test"
    r = c.post("/api/v1/auth/logout")  # a cookie write without the CSRF header
    assert r.status_code == 403
    assert error_code(r) == "csrf_failed"
    csrf = {"X-CSRF-Token": c.cookies["pbx_csrf"]}
    assert c.post("/api/v1/auth/logout", headers=csrf).status_code == 204
    assert c.get("/api/v1/me").status_code == 401


def test_bearer_tokens_for_integrations(api: Api) -> None:
    c = client_for(api.db)
    headers = {"Authorization": f"Bearer {api.token_a}"}
    r = c.get(f"/api/v1/customers/{api.a}", headers=headers)
    assert r.status_code == 200
    assert r.json()["id"] == api.a
    token_id = api.admin_a.get("/api/v1/tokens").json()["items"][0]["id"]
    assert api.admin_a.delete(f"/api/v1/tokens/{token_id}").status_code == 204
    assert c.get(f"/api/v1/customers/{api.a}", headers=headers).status_code == 401
    assert c.get("/api/v1/me", headers={"Authorization": "Bearer nonsense"}).status_code == 401


def test_cross_customer_reads_and_writes_refused(api: Api) -> None:
    ext_b = api.admin_b.post(
        f"/api/v1/customers/{api.b}/extensions", json={"location_id": api.loc_b, "number": "100"}
    )
    assert ext_b.status_code == 201
    ext_b_id = ext_b.json()["id"]
    a, b = api.admin_a, f"/api/v1/customers/{api.b}"
    refused = [
        a.get(b),
        a.get(f"{b}/extensions"),
        a.get(f"{b}/extensions/{ext_b_id}"),
        a.get(f"{b}/locations"),
        a.get(f"{b}/users"),
        a.post(f"{b}/extensions", json={"location_id": api.loc_b, "number": "101"}),
        a.patch(f"{b}/extensions/{ext_b_id}", json={"display_name": "hijacked"}),
        a.delete(f"{b}/extensions/{ext_b_id}"),
        a.put(f"{b}/licences", json={"booked_licences": 100}),
        a.post(f"{b}/users", json={"email": "evil@a.test", "role": "customer_admin"}),
    ]
    for r in refused:
        assert r.status_code == 403, r.text
        assert error_code(r) == "customer_scope_violation"
    # B's objects addressed through A's own customer are not found
    r = a.patch(f"/api/v1/customers/{api.a}/extensions/{ext_b_id}", json={"display_name": "x"})
    assert r.status_code == 404
    r = a.post(
        f"/api/v1/customers/{api.a}/extensions", json={"location_id": api.loc_b, "number": "1"}
    )
    assert r.status_code in (404, 422)
    after = api.admin_b.get(f"{b}/extensions/{ext_b_id}").json()
    assert after["display_name"] == ""
    assert api.admin_b.get(b).json()["booked_licences"] == 0
    # the operator sees every customer
    ids = {c["id"] for c in api.operator.get("/api/v1/customers").json()["items"]}
    assert {api.a, api.b} <= ids
    assert [c["id"] for c in a.get("/api/v1/customers").json()["items"]] == [api.a]


def test_rule_violations_answer_4xx_with_code_and_rule(api: Api) -> None:
    base = f"/api/v1/customers/{api.b}"
    for n in range(5):
        assert (
            api.admin_b.post(
                f"{base}/extensions", json={"location_id": api.loc_b, "number": f"10{n}"}
            ).status_code
            == 201
        )
    r = api.admin_b.post(f"{base}/extensions", json={"location_id": api.loc_b, "number": "200"})
    assert r.status_code == 409
    assert error_code(r) == "extension_licences_exhausted"
    assert r.json()["error"]["rule"] == "R16"
    r = api.admin_b.post(
        f"{base}/head-numbers", json={"location_id": api.loc_b, "number": "+4930123456"}
    )
    assert r.status_code == 422
    assert error_code(r) == "number_area_mismatch"
    assert "R13" in r.json()["error"]["message"]
    ext = api.admin_b.get(f"{base}/extensions").json()["items"][0]["id"]
    d = api.admin_b.post(f"{base}/extensions/{ext}/devices", json={})
    assert d.status_code == 201
    assert d.json()["sip_password"]
    assert "ha1" not in d.json()
    r = api.admin_b.post(f"{base}/extensions/{ext}/devices", json={})
    assert r.status_code == 409
    assert error_code(r) == "device_limit_reached"
    assert len(api.admin_b.get(f"{base}/extensions/{ext}/devices").json()["items"]) == 1


def test_bulk_import_csv_and_json_all_or_nothing(api: Api) -> None:
    base = f"/api/v1/customers/{api.a}/extensions"
    csv_body = f"number,location_id,display_name\n200,{api.loc_a},Anna\n201,{api.loc_a},Ben\n"
    r = api.admin_a.post(f"{base}/import", content=csv_body, headers={"content-type": "text/csv"})
    assert r.status_code == 201, r.text
    assert r.json() == {"created": 2, "extension_count": 2}
    rows = [{"number": "300", "location": "Frankfurt"}, {"number": "301", "location_id": api.loc_a}]
    r = api.admin_a.post(f"{base}/import", json=rows)
    assert r.status_code == 201, r.text
    bad = [
        {"number": "400", "location_id": api.loc_a},
        {"number": "200", "location_id": api.loc_a},
        {"number": "0x"},
    ]
    r = api.admin_a.post(f"{base}/import", json={"extensions": bad})
    assert r.status_code == 422
    assert error_code(r) == "import_invalid"
    assert [p["row"] for p in r.json()["error"]["rows"]] == [2, 3]
    too_many = [{"number": str(500 + i), "location_id": api.loc_a} for i in range(22)]
    r = api.admin_a.post(f"{base}/import", json=too_many)
    assert r.status_code == 409
    assert error_code(r) == "extension_licences_exhausted"
    assert api.admin_a.get(f"/api/v1/customers/{api.a}").json()["extension_count"] == 4
    assert len(api.admin_a.get(base).json()["items"]) == 4


HOSTILE_STRINGS: list[Any] = [
    "x" * 1_000_000,
    "'; DROP TABLE customers; --",
    "\u0000null",
    "\u202eevil\u200b",
    "😀" * 50,
    "",
    None,
    12,
    -1,
    10**40,
    1.5,
    True,
    [],
    {},
    {"$ne": 1},
]


def hostile_bodies(template: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key in template:
        for value in HOSTILE_STRINGS:
            yield {**template, key: value}
    yield {**template, "unexpected": 1}


def test_hostile_input_never_yields_5xx(api: Api, smtp_sink: SmtpSink) -> None:
    c = login(client_for(api.db, smtp_port=smtp_sink.port), "admin@a.test")
    base = f"/api/v1/customers/{api.a}"
    ext = c.post(f"{base}/extensions", json={"location_id": api.loc_a, "number": "100"}).json()[
        "id"
    ]
    templates: list[tuple[str, dict[str, Any]]] = [
        (
            f"{base}/locations",
            {
                "name": "B",
                "street": "S",
                "postal_code": "10117",
                "city": "Berlin",
                "area_code": "030",
            },
        ),
        (
            f"{base}/extensions",
            {
                "location_id": api.loc_a,
                "number": "555",
                "display_name": "x",
                "geo_number": "+49691234500",
            },
        ),
        (
            f"{base}/head-numbers",
            {"location_id": api.loc_a, "number": "+496912345", "block_size": 100},
        ),
        (
            f"{base}/extensions/{ext}/devices",
            {"sip_username": "abc", "mac": "001565aabbcc", "model": "snom-d785"},
        ),
        (f"{base}/users", {"email": "u@a.test", "role": "user", "display_name": "U"}),
        (
            f"{base}/porting-requests",
            {
                "location_id": api.loc_a,
                "numbers": ["+4969555"],
                "donor_carrier": "T",
                "requested_date": "2027-01-01",
            },
        ),
        ("/api/v1/auth/login", {"email": "admin@a.test", "password": "x"}),
        ("/api/v1/auth/set-password", {"token": "abcdefghijkl", "password": "x"}),
        ("/api/v1/customers", {"name": "N", "tariff": "basic", "contract_start": "2026-01-01"}),
    ]
    statuses: set[int] = set()
    for path, template in templates:
        for body in hostile_bodies(template):
            r = c.post(path, json=body)
            assert r.status_code < 500, (path, body, r.text[:300])
            statuses.add(r.status_code)
        for raw in (
            b"",
            b"{",
            b"[1,2]",
            b"null",
            b"\xff\xfe",
            b'{"name": "\\ud800"}',
            b"[" * 100_000,
        ):
            r = c.post(path, content=raw, headers={"content-type": "application/json"})
            assert 400 <= r.status_code < 500, (path, raw[:20], r.text[:200])
    assert 422 in statuses
    for bad_id in ("0", "-1", "abc", "99999999999999999999999", "1e3", "%00", "1;DROP"):
        for path in (
            f"/api/v1/customers/{bad_id}",
            f"{base}/extensions/{bad_id}",
            f"{base}/extensions/{bad_id}/devices",
        ):
            r = c.get(path)
            assert 400 <= r.status_code < 500, (path, r.text[:200])
    for q in ("limit=-1", "limit=100000000000000000000", "offset=-5", "limit=abc"):
        assert c.get(f"{base}/extensions?{q}").status_code == 422
    for ct, raw in (
        ("text/csv", b"\x00\x01\x02"),
        ("text/csv", b"number,location_id\n1,2,3,4\n"),
        ("text/csv", b'number\n"unterminated'),
        ("text/csv", ("number,location_id\n" + "9" * 100_000 + ",1\n").encode()),
        ("application/json", b'[{"number": 5}]'),
        ("application/json", json.dumps([{"number": "100", "location_id": 10**30}]).encode()),
        ("application/json", b"[" * 100_000),
        ("application/xml", b"<x/>"),
    ):
        r = c.post(f"{base}/extensions/import", content=raw, headers={"content-type": ct})
        assert 400 <= r.status_code < 500, (ct, raw[:30], r.text[:200])
    for header in ("Bearer " + "x" * 10_000, "Bearer \u00e9\u00e9", "Basic abc", "Bearer"):
        r = client_for(api.db).get("/api/v1/me", headers={b"Authorization": header.encode("utf-8")})
        assert r.status_code == 401
    # SQL-ish text is data, not SQL: the tables are intact
    assert c.get(base).status_code == 200
    names = [loc["name"] for loc in c.get(f"{base}/locations").json()["items"]]
    assert "'; DROP TABLE customers; --" in names


def test_oversized_bodies_are_refused(api: Api) -> None:
    c = login(client_for(api.db, max_import_bytes=1000), "admin@a.test")
    r = c.post(
        f"/api/v1/customers/{api.a}/extensions/import",
        content=b"a" * 5000,
        headers={"content-type": "text/csv"},
    )
    assert r.status_code == 413
    assert error_code(r) == "payload_too_large"


@pytest.mark.parametrize("number", sorted(EMERGENCY_NUMBERS))
def test_emergency_numbers_cannot_become_extensions(api: Api, number: str) -> None:
    base = f"/api/v1/customers/{api.b}"
    r = api.admin_b.post(f"{base}/extensions", json={"location_id": api.loc_b, "number": number})
    assert r.status_code == 422, r.text
    assert error_code(r) == "extension_number_reserved"
    assert "emergency" in r.json()["error"]["message"]
    body = f"number,location_id,display_name\n120,{api.loc_b},ok\n{number},{api.loc_b},bad\n"
    r = api.admin_b.post(
        f"{base}/extensions/import", content=body.encode(), headers={"content-type": "text/csv"}
    )
    assert r.status_code == 422, r.text
    assert "emergency" in r.text
    numbers = [e["number"] for e in api.admin_b.get(f"{base}/extensions").json()["items"]]
    assert "120" not in numbers  # all or nothing


@pytest.mark.parametrize("email", ["not-an-address", "a@b", "anna@@kunde.example"])
def test_an_invalid_email_is_a_bad_request_not_a_failed_login(api: Api, email: str) -> None:
    """Creating a user with a malformed e-mail is the admin's typo: 422 naming the field's
    rule, and the admin stays logged in (a 401 would send a portal to its login page)."""
    r = api.admin_a.post(f"/api/v1/customers/{api.a}/users", json={"email": email})
    assert r.status_code == 422, r.text
    assert error_code(r) == "invalid_email"
    assert api.admin_a.get("/api/v1/me").status_code == 200
    # At login, a malformed e-mail is just one more wrong login.
    r = client_for(api.db).post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 401
    assert error_code(r) == "invalid_credentials"
