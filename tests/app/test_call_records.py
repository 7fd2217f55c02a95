"""Call records (issue 13, item 6): the proxies' shippers deliver batches to
POST /internal/v1/call-records, stored once however often a batch arrives, refused whole when any
record is invalid (the field named); tenants list and export (JSON, CSV) only their own, operators
everything. SQLite and PostgreSQL (the `db` fixture)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from pbx_app.api.internal import TOKEN_HEADER
from pbx_app.db import Database
from pbx_app.schema import call_records
from pbx_app.services.access import Role
from pbx_app.services.call_records import FIELDS
from tests.app.conftest import Api, PgServer, client_for, error_code, login, new_user

TOKEN = "cdr-internal-token-0123456789"


def record(n: int, **kw: Any) -> dict[str, Any]:
    """A record as a shipper sends it: call n started at 10:00:n on 2026-12-01."""
    values: dict[str, Any] = {
        "node": "fra-sip-proxy-1",
        "site": "fra",
        "call_id": f"call-{n}@10.0.0.1",
        "from_tag": f"tag{n}",
        "started_at": f"2026-12-01T10:00:{n:02d}.250000Z",
        "answered_at": f"2026-12-01T10:00:{n + 1:02d}.500000Z",
        "ended_at": f"2026-12-01T10:00:{n + 3:02d}.750000Z",
        "customer_id": None,
        "callee_customer_id": None,
        "source": "device",
        "caller": "c1d100a",
        "caller_id": "+496912345100",
        "dialled": "101",
        "resolved": "c1x101",
        "answered_by": "c1d101a@172.30.1.120:5070",
        "diversions": 0,
        "relay": "fra",
        "sip_code": 200,
        "reason": "OK",
    }
    values.update(kw)
    return values


@pytest.fixture
def internal(db: Database) -> Iterator[TestClient]:
    with client_for(db, internal_token=TOKEN) as client:
        client.headers[TOKEN_HEADER] = TOKEN
        yield client


def post(client: TestClient, records: list[dict[str, Any]]) -> Any:
    return client.post("/internal/v1/call-records", json={"records": records})


def stored(db: Database) -> int:
    with db.snapshot() as conn:
        return int(conn.execute(select(func.count()).select_from(call_records)).scalar_one())


# --- ingest ------------------------------------------------------------------------------------
def test_a_batch_delivered_again_is_stored_once(db: Database, internal: TestClient) -> None:
    first = post(internal, [record(1), record(2)])
    assert first.status_code == 200, first.text
    assert first.json() == {"received": 2, "stored": 2}
    again = post(internal, [record(1), record(2)])
    assert again.json() == {"received": 2, "stored": 0}
    # A retry after a partial delivery: the old record is skipped, the new one stored.
    overlap = post(internal, [record(2), record(3)])
    assert overlap.json() == {"received": 2, "stored": 1}
    assert stored(db) == 3
    # The identity is node, Call-ID, From tag and start: the same call seen by another node, or
    # a new attempt with the same Call-ID later, is another record.
    later = record(1, started_at="2026-12-01T10:00:01.260000Z")
    other = post(internal, [record(1, node="ber-sip-proxy-1"), later])
    assert other.json() == {"received": 2, "stored": 2}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"started_at": "2026-12-01 10:00:00"}, "started_at"),
        ({"started_at": "2026-12-01T10:00:00+01:00"}, "started_at"),
        ({"ended_at": "2026-12-01T09:59:59Z"}, "ended_at"),
        ({"answered_at": "2026-12-01T11:00:00Z"}, "answered_at"),
        ({"sip_code": 99}, "sip_code"),
        ({"sip_code": "200"}, "sip_code"),
        ({"customer_id": 0}, "customer_id"),
        ({"source": "fax"}, "source"),
        ({"caller": "c1d100a\x00"}, "caller"),
        ({"call_id": ""}, "call_id"),
        ({"resolved": "x" * 513}, "resolved"),
        ({"diversions": -1}, "diversions"),
        ({"extra": "field"}, "extra"),
    ],
)
def test_one_invalid_record_refuses_the_whole_batch_naming_its_field(
    db: Database, internal: TestClient, change: dict[str, Any], field: str
) -> None:
    r = post(internal, [record(1), record(2, **change), record(3)])
    assert r.status_code == 422, r.text
    assert error_code(r) == "validation_failed"
    locations = [p["location"] for p in r.json()["error"]["details"]]
    assert ["body", "records", "1", field] in locations, locations
    assert f"body.records.1.{field}" in r.json()["error"]["message"]
    assert stored(db) == 0


def test_a_record_without_a_field_is_refused(db: Database, internal: TestClient) -> None:
    incomplete = record(1)
    del incomplete["sip_code"]
    r = post(internal, [incomplete])
    assert r.status_code == 422
    assert ["body", "records", "0", "sip_code"] in [
        p["location"] for p in r.json()["error"]["details"]
    ]


def test_ingest_needs_the_internal_token(db: Database) -> None:
    with client_for(db, internal_token=TOKEN) as client:
        assert post(client, [record(1)]).status_code == 401
        client.headers[TOKEN_HEADER] = "wrong"
        assert post(client, [record(1)]).status_code == 401
    assert stored(db) == 0


def test_batches_are_bounded(db: Database, internal: TestClient) -> None:
    assert post(internal, []).status_code == 422
    assert post(internal, [record(n % 50, call_id=f"c{n}") for n in range(1001)]).status_code == 422
    r = post(internal, [record(n % 50, call_id=f"c{n}") for n in range(1000)])
    assert r.json() == {"received": 1000, "stored": 1000}


# --- who sees what -----------------------------------------------------------------------------
def seed_calls(api: Api, internal_client: TestClient) -> None:
    a, b = api.a, api.b
    r = post(
        internal_client,
        [
            record(1, customer_id=a, call_id="a-internal"),
            record(2, customer_id=b, call_id="b-internal"),
            # A's device calls one of B's numbers: both customers see it.
            record(3, customer_id=a, callee_customer_id=b, call_id="a-to-b"),
            # The carrier calls a number nobody holds: operators only.
            record(
                4,
                source="trunk",
                call_id="nobody",
                sip_code=404,
                reason="Not Found",
                answered_at=None,
                resolved="",
                answered_by="",
            ),
        ],
    )
    assert r.json()["stored"] == 4


def call_ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["call_id"] for item in response.json()["items"]]


def test_a_customer_sees_only_its_own_records(api: Api) -> None:
    with client_for(api.db, internal_token=TOKEN) as internal_client:
        internal_client.headers[TOKEN_HEADER] = TOKEN
        seed_calls(api, internal_client)
    base = "/api/v1/customers/{}/call-records"
    # Newest first.
    assert call_ids(api.admin_a.get(base.format(api.a))) == ["a-to-b", "a-internal"]
    assert call_ids(api.admin_b.get(base.format(api.b))) == ["a-to-b", "b-internal"]
    refused = api.admin_a.get(base.format(api.b))
    assert refused.status_code == 403
    assert error_code(refused) == "customer_scope_violation"
    assert api.admin_a.get("/api/v1/call-records").status_code == 403
    assert call_ids(api.operator.get(base.format(api.a))) == ["a-to-b", "a-internal"]
    everything = call_ids(api.operator.get("/api/v1/call-records"))
    assert everything == ["nobody", "a-to-b", "b-internal", "a-internal"]
    assert api.operator.get(base.format(999_999)).status_code == 404
    # A bearer token of A's admin (integrations) reads the same.
    with TestClient(api.admin_a.app) as bearer:
        bearer.headers["Authorization"] = f"Bearer {api.token_a}"
        assert call_ids(bearer.get(base.format(api.a))) == ["a-to-b", "a-internal"]


def test_plain_users_do_not_read_call_records(api: Api) -> None:
    new_user(api.db, "user@a.test", Role.USER, api.a)
    with client_for(api.db) as client:
        login(client, "user@a.test")
        r = client.get(f"/api/v1/customers/{api.a}/call-records")
    assert r.status_code == 403
    assert error_code(r) == "permission_denied"


def test_records_read_back_as_delivered(api: Api, internal: TestClient) -> None:
    post(internal, [record(5, customer_id=api.a, diversions=2)])
    (item,) = api.admin_a.get(f"/api/v1/customers/{api.a}/call-records").json()["items"]
    assert item["started_at"] == "2026-12-01T10:00:05.250000Z"
    assert item["answered_at"] == "2026-12-01T10:00:06.500000Z"
    assert item["ended_at"] == "2026-12-01T10:00:08.750000Z"
    assert item["duration"] == 2.25
    assert item["cause"] == "answered"
    assert item["diversions"] == 2
    assert {k: item[k] for k in ("caller", "dialled", "resolved", "site", "relay")} == {
        "caller": "c1d100a",
        "dialled": "101",
        "resolved": "c1x101",
        "site": "fra",
        "relay": "fra",
    }
    assert set(item) == set(FIELDS)


@pytest.mark.parametrize(
    ("code", "cause"),
    [(486, "busy"), (480, "unavailable"), (487, "cancelled"), (404, "not_found"), (503, "failed")],
)
def test_unanswered_calls_have_no_duration_and_a_cause(
    api: Api, internal: TestClient, code: int, cause: str
) -> None:
    post(internal, [record(1, customer_id=api.a, answered_at=None, sip_code=code, reason="x")])
    (item,) = api.admin_a.get(f"/api/v1/customers/{api.a}/call-records").json()["items"]
    assert (item["answered_at"], item["duration"], item["cause"]) == (None, 0.0, cause)


# --- window, paging, export ---------------------------------------------------------------------
def test_time_window_and_paging(api: Api, internal: TestClient) -> None:
    post(internal, [record(n, customer_id=api.a) for n in range(10)])
    url = f"/api/v1/customers/{api.a}/call-records"
    window = api.admin_a.get(
        url, params={"from": "2026-12-01T10:00:03Z", "until": "2026-12-01T10:00:07.250000Z"}
    )
    # from inclusive (call 3 started at :03.25), until exclusive (call 7 started at :07.25).
    assert call_ids(window) == [f"call-{n}@10.0.0.1" for n in (6, 5, 4, 3)]
    first = api.admin_a.get(url, params={"limit": 4})
    assert call_ids(first)[0] == "call-9@10.0.0.1"
    assert first.json()["next_offset"] == 4
    pages, offset = [], 0
    while offset is not None:
        page = api.admin_a.get(url, params={"limit": 4, "offset": offset}).json()
        pages += [i["call_id"] for i in page["items"]]
        offset = page["next_offset"]
    assert pages == [f"call-{n}@10.0.0.1" for n in range(9, -1, -1)]
    for bad in ({"from": "2026-12-01"}, {"until": "yesterday"}, {"limit": 0}, {"format": "xml"}):
        assert api.admin_a.get(url, params=bad).status_code == 422, bad


def test_csv_export_has_a_header_row_and_the_json_values(api: Api, internal: TestClient) -> None:
    post(
        internal,
        [
            record(1, customer_id=api.a),
            record(
                2,
                customer_id=api.a,
                caller='=HYPERLINK("x")',
                answered_at=None,
                sip_code=486,
                reason="Busy Here",
            ),
        ],
    )
    url = f"/api/v1/customers/{api.a}/call-records"
    as_json = api.admin_a.get(url).json()["items"]
    for r in (
        api.admin_a.get(url, params={"format": "csv"}),
        api.admin_a.get(url, headers={"Accept": "text/csv"}),
    ):
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(r.text)))
        assert rows[0] == list(FIELDS)
        assert len(rows) == 3
        by_id = {row[0]: dict(zip(FIELDS, row, strict=True)) for row in rows[1:]}
        for item in as_json:
            row = by_id[str(item["id"])]
            assert row["started_at"] == item["started_at"]
            assert row["dialled"] == item["dialled"]
            assert row["sip_code"] == str(item["sip_code"])
            assert row["answered_at"] == (item["answered_at"] or "")
        # A cell a spreadsheet would run as a formula is defused; numbers stay numbers.
        busy = next(row for row in by_id.values() if row["sip_code"] == "486")
        assert busy["caller"] == '\'=HYPERLINK("x")'
        assert busy["caller_id"] == "+496912345100"
    assert api.admin_a.get(url, params={"format": "json"}).json()["items"] == as_json


# --- the database refusing writes ---------------------------------------------------------------
def test_ingest_answers_503_while_the_database_refuses_writes(
    pg_server: PgServer, pg_db: Database
) -> None:
    """What the shipper relies on: nothing is stored and the answer says "later", then the same
    batch goes in once the database takes writes again."""
    name = make_url(pg_db.url).database
    with client_for(pg_db, internal_token=TOKEN) as client:
        client.headers[TOKEN_HEADER] = TOKEN
        with pg_server.admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
        pg_db.engine.dispose()  # new sessions only: the pool's are writable
        refused = post(client, [record(1)])
        assert refused.status_code == 503, refused.text
        assert error_code(refused) == "database_unavailable"
        assert refused.headers["retry-after"] == "5"
        with pg_server.admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" RESET default_transaction_read_only'))
        # As the shipper does: the same batch again. A session opened during the read-only
        # window (the app's background rounds open some) may answer 503 once more; that error
        # drops every older pooled session, so the next attempt writes.
        accepted = post(client, [record(1)])
        if accepted.status_code == 503:
            accepted = post(client, [record(1)])
        assert accepted.json() == {"received": 1, "stored": 1}
    assert stored(pg_db) == 1
