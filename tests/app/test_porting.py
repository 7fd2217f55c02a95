"""Porting completes on its date (R12, issue 13): a confirmed request completes when its date
begins in Europe/Berlin, exactly once however many schedulers race, and its numbers ring the
extensions the request names; a number another customer of the platform holds moves in one
transaction (the old customer's DID stops, the new one's starts, at the same commit), and a
completion that fails leaves everything as it was. On SQLite and PostgreSQL.

Time is injected (``complete_due(db, now, ...)``); only the lifespan test runs the real
scheduler thread."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pbx_app import errors
from pbx_app.addressing import CARRIER_CALLER, aor
from pbx_app.app import create_app
from pbx_app.db import Database, utcnow
from pbx_app.mail import SmtpMailer
from pbx_app.porting_scheduler import PortingScheduler, complete_due
from pbx_app.repositories import customers as customers_repo
from pbx_app.schema import (
    audit_events,
    extensions,
    head_numbers,
    porting_events,
    porting_requests,
)
from pbx_app.services import extensions as extensions_service
from pbx_app.services import head_numbers as head_numbers_service
from pbx_app.services import locations, porting, routing
from pbx_app.services.access import SYSTEM, Role
from pbx_app.settings import Settings
from tests.app.conftest import Api, error_code, login, make_settings, new_customer, new_user

DAY = date(2027, 1, 15)
# 00:00 on 15 January in Berlin (CET, UTC+1) is 23:00 UTC on the 14th.
FIRST_DUE = datetime(2027, 1, 14, 23, 0, 0)
RETRY = timedelta(minutes=15)


# --- a little world: customers with a location in 069 and extensions --------------------------
@dataclass
class Tenant:
    id: int
    location: int


def tenant(db: Database, name: str) -> Tenant:
    cid = new_customer(db, name, booked_licences=20)
    with db.transaction() as conn:
        new = locations.NewLocation("Frankfurt", "Main 1", "60329", "Frankfurt", "069")
        loc = int(locations.create(conn, SYSTEM, cid, new, utcnow())["id"])
    return Tenant(cid, loc)


def extension(db: Database, t: Tenant, number: str, geo: str | None = None) -> int:
    with db.transaction() as conn:
        new = extensions_service.NewExtension(t.location, number, "", geo)
        return int(extensions_service.create(conn, SYSTEM, t.id, new, utcnow())["id"])


def hold(db: Database, t: Tenant, number: str, block_size: int) -> None:
    with db.transaction() as conn:
        new = head_numbers_service.NewHeadNumber(t.location, number, block_size)
        head_numbers_service.create(conn, SYSTEM, t.id, new, utcnow())


def confirmed_request(
    db: Database,
    t: Tenant,
    numbers: list[str],
    targets: dict[str, str] | None = None,
    day: date = DAY,
) -> int:
    """A request as the customer makes it and the operator confirms it."""
    with db.transaction() as conn:
        new = porting.NewPortingRequest(t.location, numbers, "Old Telco", day, targets or {})
        rid = int(porting.create(conn, SYSTEM, t.id, new, utcnow())["id"])
        for state in ("submitted", "confirmed"):
            porting.transition(conn, SYSTEM, t.id, rid, state, "", utcnow())
    return rid


def state(db: Database, t: Tenant, rid: int) -> str:
    with db.snapshot() as conn:
        row, _ = porting.get(conn, SYSTEM, t.id, rid, utcnow())
    return str(row["state"])


def events(db: Database, rid: int) -> list[tuple[str | None, str, str]]:
    with db.snapshot() as conn:
        q = (
            select(porting_events.c.from_state, porting_events.c.to_state, porting_events.c.note)
            .where(porting_events.c.porting_request_id == rid)
            .order_by(porting_events.c.id)
        )
        return [(r.from_state, r.to_state, r.note) for r in conn.execute(q)]


def held(db: Database, t: Tenant) -> list[tuple[str, int]]:
    with db.snapshot() as conn:
        q = (
            select(head_numbers.c.number, head_numbers.c.block_size)
            .where(head_numbers.c.customer_id == t.id)
            .order_by(head_numbers.c.number)
        )
        return [(r.number, r.block_size) for r in conn.execute(q)]


def head_count(db: Database, t: Tenant) -> int:
    with db.snapshot() as conn:
        row = customers_repo.get(conn, t.id)
        assert row is not None
        return int(row["head_number_count"])


def geo_of(db: Database, t: Tenant, number: str) -> str | None:
    with db.snapshot() as conn:
        q = select(extensions.c.geo_number).where(
            extensions.c.customer_id == t.id, extensions.c.number == number
        )
        return conn.execute(q).scalar_one()  # type: ignore[no-any-return]


def rings(db: Database, number: str) -> str:
    """What a call from the carrier to ``number`` reaches: an AOR, or the reject code."""
    with db.read() as conn:
        decision = routing.decide(conn, CARRIER_CALLER, number, routing.Context(utcnow()))
    return str(decision["aor"]) if decision["action"] == "local" else str(decision["code"])


def run(db: Database, now: datetime) -> list[int]:
    return complete_due(db, now, "test-node", RETRY)


# --- on its date, not before ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("day", "first_due"),
    [
        (DAY, FIRST_DUE),  # winter: CET, UTC+1
        (date(2027, 7, 15), datetime(2027, 7, 14, 22, 0, 0)),  # summer: CEST, UTC+2
    ],
    ids=["winter", "summer"],
)
def test_completes_when_its_date_begins_in_berlin_not_a_second_before(
    db: Database, day: date, first_due: datetime
) -> None:
    a = tenant(db, "A")
    extension(db, a, "100")
    rid = confirmed_request(db, a, ["+4969555001"], {"+4969555001": "100"}, day)

    assert run(db, first_due - timedelta(seconds=1)) == []  # 23:59:59 the day before, Berlin
    assert state(db, a, rid) == "confirmed"
    assert held(db, a) == []
    assert rings(db, "+4969555001") == "403"  # not a number of the platform yet

    assert run(db, first_due) == [rid]
    assert state(db, a, rid) == "completed"
    assert held(db, a) == [("+4969555001", 1)]
    assert geo_of(db, a, "100") == "+4969555001"
    assert rings(db, "+4969555001") == aor(a.id, "100")
    last = events(db, rid)[-1]
    assert last[:2] == ("confirmed", "completed")
    assert f"completed on its date ({day.isoformat()}) by the scheduler on test-node" in last[2]

    assert run(db, first_due + timedelta(days=1)) == []  # idempotent: nothing left to do
    assert len(events(db, rid)) == 4


def test_a_date_that_has_passed_completes_on_the_next_round(db: Database) -> None:
    """Confirmed late (the date is over): the next round completes it; a request of a later
    date waits."""
    a = tenant(db, "A")
    extension(db, a, "100")
    extension(db, a, "101")
    late = confirmed_request(db, a, ["+4969555001"], {"+4969555001": "100"}, date(2027, 1, 2))
    later = confirmed_request(db, a, ["+4969555002"], {"+4969555002": "101"}, date(2027, 1, 16))
    assert run(db, FIRST_DUE) == [late]
    assert state(db, a, later) == "confirmed"


def test_only_confirmed_requests_complete(db: Database) -> None:
    a = tenant(db, "A")
    extension(db, a, "100")
    with db.transaction() as conn:
        new = porting.NewPortingRequest(
            a.location, ["+4969555001"], "Old Telco", DAY, {"+4969555001": "100"}
        )
        rid = int(porting.create(conn, SYSTEM, a.id, new, utcnow())["id"])
        porting.transition(conn, SYSTEM, a.id, rid, "submitted", "", utcnow())
    assert run(db, FIRST_DUE + timedelta(days=30)) == []
    assert state(db, a, rid) == "submitted"


# --- several nodes ----------------------------------------------------------------------------
def test_two_schedulers_racing_complete_each_request_exactly_once(db: Database) -> None:
    """Two app nodes (two engines on one database) run their rounds at the same instant: every
    request completes once, by one of them, with one completion event."""
    a = tenant(db, "A")
    numbers = [f"+49695550{i:02d}" for i in range(12)]
    rids = []
    for i, number in enumerate(numbers):
        extension(db, a, f"{200 + i}")
        rids.append(confirmed_request(db, a, [number], {number: f"{200 + i}"}))
    nodes = [Database(db.url), Database(db.url)]
    results: list[list[int]] = [[], []]
    start = threading.Barrier(2)

    def node(i: int) -> None:
        start.wait()
        results[i] = complete_due(nodes[i], FIRST_DUE, f"node-{i}", RETRY)

    threads = [threading.Thread(target=node, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for n in nodes:
        n.dispose()
    assert sorted(results[0] + results[1]) == sorted(rids)
    for rid in rids:
        completions = [e for e in events(db, rid) if e[1] == "completed"]
        assert len(completions) == 1, (rid, completions)
        assert state(db, a, rid) == "completed"
    assert held(db, a) == [(n, 1) for n in numbers]
    assert head_count(db, a) == len(numbers)
    assert run(db, FIRST_DUE) == []


def test_the_operator_and_the_scheduler_racing_complete_once(db: Database) -> None:
    """The operator completes by hand while the scheduler's round runs: one of them does it,
    the other finds nothing to do (the operator: 409 porting_transition_invalid)."""
    a = tenant(db, "A")
    extension(db, a, "100")
    rid = confirmed_request(db, a, ["+4969555001"], {"+4969555001": "100"})
    manual: list[object] = []
    scheduled: list[list[int]] = []
    start = threading.Barrier(2)

    def operator() -> None:
        start.wait()
        try:
            with db.transaction() as conn:
                porting.transition(conn, SYSTEM, a.id, rid, "completed", "by hand", FIRST_DUE)
            manual.append("completed")
        except errors.PortingTransitionInvalid as exc:
            manual.append(exc)

    def scheduler() -> None:
        start.wait()
        scheduled.append(run(db, FIRST_DUE))

    threads = [threading.Thread(target=operator), threading.Thread(target=scheduler)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert (manual == ["completed"]) != (scheduled == [[rid]]), (manual, scheduled)
    assert [e[:2] for e in events(db, rid)].count(("confirmed", "completed")) == 1
    assert held(db, a) == [("+4969555001", 1)]


# --- intra-platform: the old customer loses, the new one gains, at one commit ------------------
def test_a_block_moves_whole_from_another_customer_of_the_platform(db: Database) -> None:
    """B's block of 100 goes to A: B's DIDs (implicit ones and an explicit geo_number) stop
    ringing B's extensions, and the block's numbers ring A's extensions by their last digits."""
    a, b = tenant(db, "A"), tenant(db, "B")
    hold(db, b, "+4969777", 100)
    extension(db, b, "33")
    extension(db, b, "50", geo="+496977750")
    extension(db, a, "33")
    assert rings(db, "+496977733") == aor(b.id, "33")
    assert rings(db, "+496977750") == aor(b.id, "50")

    rid = confirmed_request(db, a, ["+4969777"])  # the head number: the whole block
    assert run(db, FIRST_DUE - timedelta(minutes=1)) == []
    assert rings(db, "+496977733") == aor(b.id, "33")  # nothing moves before the date

    assert run(db, FIRST_DUE) == [rid]
    assert rings(db, "+496977733") == aor(a.id, "33")
    assert rings(db, "+496977750") == "404"  # A's block, no extension 50 at A
    assert held(db, a) == [("+4969777", 100)]
    assert head_count(db, a) == 1
    assert held(db, b) == []
    assert head_count(db, b) == 0
    assert geo_of(db, b, "50") is None  # B keeps the extension, not the number
    with db.snapshot() as conn:
        q = select(audit_events.c.customer_id, audit_events.c.kind, audit_events.c.detail).where(
            audit_events.c.kind.in_(["ported_in", "ported_out"])
        )
        trail = {(r.customer_id, r.kind): r.detail for r in conn.execute(q)}
    assert set(trail) == {(a.id, "ported_in"), (b.id, "ported_out")}
    assert "+4969777 (block of 100)" in trail[(b.id, "ported_out")]
    assert "+496977750" in trail[(b.id, "ported_out")]  # the extension's number released
    assert "moved from another customer of this platform" in events(db, rid)[-1][2]


def test_a_single_number_moves_from_another_customer_to_the_named_extension(
    db: Database,
) -> None:
    a, b = tenant(db, "A"), tenant(db, "B")
    hold(db, b, "+4969555001", 1)
    extension(db, b, "100", geo="+4969555001")
    extension(db, a, "200")
    assert rings(db, "+4969555001") == aor(b.id, "100")

    rid = confirmed_request(db, a, ["+4969555001"], {"+4969555001": "200"})
    assert run(db, FIRST_DUE) == [rid]
    assert rings(db, "+4969555001") == aor(a.id, "200")
    assert geo_of(db, b, "100") is None
    assert geo_of(db, a, "200") == "+4969555001"
    assert held(db, b) == []
    assert held(db, a) == [("+4969555001", 1)]


def test_a_failed_completion_writes_nothing_and_is_retried(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the old holding was released and the new one booked undoes both: B
    still holds and rings, A has nothing, the request waits for its retry; its reason is in the
    events once, however often it fails."""
    a, b = tenant(db, "A"), tenant(db, "B")
    hold(db, b, "+4969777", 100)
    extension(db, b, "50", geo="+496977750")
    rid = confirmed_request(db, a, ["+4969777"])

    def broken(*args: Any) -> list[str]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(porting, "_assign", broken)
    assert run(db, FIRST_DUE) == []
    assert state(db, a, rid) == "confirmed"
    assert held(db, b) == [("+4969777", 100)]
    assert head_count(db, b) == 1
    assert held(db, a) == []
    assert head_count(db, a) == 0
    assert geo_of(db, b, "50") == "+496977750"
    assert rings(db, "+496977750") == aor(b.id, "50")
    failure = events(db, rid)[-1]
    assert failure[:2] == ("confirmed", "confirmed")
    assert "internal error: RuntimeError" in failure[2]
    assert "retried every 15 min" in failure[2]

    assert run(db, FIRST_DUE + RETRY - timedelta(seconds=1)) == []  # waits for its retry
    assert run(db, FIRST_DUE + RETRY) == []  # tried again, failed again, no second event
    assert events(db, rid)[-1] == failure
    assert len(events(db, rid)) == 4

    monkeypatch.undo()
    assert run(db, FIRST_DUE + 2 * RETRY) == [rid]
    assert held(db, a) == [("+4969777", 100)]


def test_a_number_someone_else_took_meanwhile_is_not_taken_from_them(db: Database) -> None:
    """A's request from another carrier; before its date C books the number: the port does not
    take it from C (that would need a request naming the platform as donor). It stays confirmed
    with the reason; once C lets go, the retry completes it."""
    a, c = tenant(db, "A"), tenant(db, "C")
    extension(db, a, "100")
    rid = confirmed_request(db, a, ["+4969555001"], {"+4969555001": "100"})
    hold(db, c, "+4969555001", 1)
    assert run(db, FIRST_DUE) == []
    assert "number_in_use" in events(db, rid)[-1][2]
    assert held(db, c) == [("+4969555001", 1)]
    with db.transaction() as conn:
        head = conn.execute(select(head_numbers.c.id).where(head_numbers.c.customer_id == c.id))
        head_numbers_service.delete(conn, SYSTEM, c.id, head.scalar_one(), utcnow())
    assert run(db, FIRST_DUE + RETRY) == [rid]
    assert rings(db, "+4969555001") == aor(a.id, "100")


def test_an_extension_that_got_a_number_meanwhile_keeps_it(db: Database) -> None:
    """The named extension got another public number before the date: the port still makes
    the number the customer's (the carrier switches it anyway), the extension keeps its own,
    and the completion event says which number rings nothing yet."""
    a = tenant(db, "A")
    hold(db, a, "+496912345", 100)
    extension(db, a, "100")
    rid = confirmed_request(db, a, ["+4969555001"], {"+4969555001": "100"})
    with db.transaction() as conn:
        ext = extensions_service.get_owned(conn, a.id, _ext_id(db, a, "100"))
        extensions_service.update(
            conn, SYSTEM, a.id, ext["id"], utcnow(), geo_number="+49691234599"
        )
    assert run(db, FIRST_DUE) == [rid]
    assert ("+4969555001", 1) in held(db, a)
    assert geo_of(db, a, "100") == "+49691234599"
    assert rings(db, "+4969555001") == "404"
    assert "rings no extension yet" in events(db, rid)[-1][2]


def _ext_id(db: Database, t: Tenant, number: str) -> int:
    with db.snapshot() as conn:
        q = select(extensions.c.id).where(
            extensions.c.customer_id == t.id, extensions.c.number == number
        )
        return int(conn.execute(q).scalar_one())


# --- the API: bad inputs, clear answers -------------------------------------------------------
def _request(api: Api, body: dict[str, Any], who: str = "a") -> Any:
    client, cid = (api.admin_a, api.a) if who == "a" else (api.admin_b, api.b)
    base = {
        "location_id": api.loc_a if who == "a" else api.loc_b,
        "donor_carrier": "Old Telco",
        "requested_date": "2027-01-15",
    }
    return client.post(f"/api/v1/customers/{cid}/porting-requests", json={**base, **body})


def _ext(api: Api, who: str, number: str, **body: Any) -> None:
    client, cid, loc = (api.admin_a, api.a, api.loc_a) if who == "a" else (
        api.admin_b, api.b, api.loc_b,
    )  # fmt: skip
    body.setdefault("location_id", loc)
    r = client.post(f"/api/v1/customers/{cid}/extensions", json={"number": number, **body})
    assert r.status_code == 201, r.text


@pytest.fixture
def world(api: Api) -> Api:
    """A: extensions 100 (free), 101 (with a public number), 102 at a second location; B: a
    block of 100 at +4969777."""
    r = api.admin_a.post(
        f"/api/v1/customers/{api.a}/head-numbers",
        json={"location_id": api.loc_a, "number": "+496912345", "block_size": 100},
    )
    assert r.status_code == 201, r.text
    _ext(api, "a", "100")
    _ext(api, "a", "101", geo_number="+49691234501")
    r = api.admin_a.post(
        f"/api/v1/customers/{api.a}/locations",
        json={
            "name": "Offenbach",
            "street": "Main 2",
            "postal_code": "63065",
            "city": "Offenbach",
            "area_code": "069",
        },
    )
    assert r.status_code == 201, r.text
    _ext(api, "a", "102", location_id=r.json()["id"])
    r = api.admin_b.post(
        f"/api/v1/customers/{api.b}/head-numbers",
        json={"location_id": api.loc_b, "number": "+4969777", "block_size": 100},
    )
    assert r.status_code == 201, r.text
    return api


N1, N2 = "+4969555001", "+4969555002"


def one(number: str, extension: str) -> dict[str, Any]:
    return {"numbers": [number], "extensions": {number: extension}}


# (what is wrong, body, status, code); the world is built once for all of them: none writes.
BAD_REQUESTS: list[tuple[str, dict[str, Any], int, str]] = [
    ("no extension", {"numbers": [N1]}, 422, "porting_target_invalid"),
    ("unknown extension", one(N1, "999"), 422, "porting_target_invalid"),
    ("extension at another location", one(N1, "102"), 422, "porting_target_invalid"),
    ("extension with a number", one(N1, "101"), 422, "porting_target_invalid"),
    (
        "one extension twice",
        {"numbers": [N1, N2], "extensions": {N1: "100", N2: "100"}},
        422,
        "porting_target_invalid",
    ),
    (
        "extension for a number not requested",
        {"numbers": [N1], "extensions": {N1: "100", N2: "101"}},
        422,
        "porting_target_invalid",
    ),
    ("extension for a block", one("+4969777", "100"), 422, "porting_target_invalid"),
    ("extension number format", one(N1, "0100"), 422, "validation_failed"),
    (
        "national number as a key",
        one("069555001", "100") | {"numbers": [N1]},
        422,
        "validation_failed",
    ),
    ("extensions not an object", {"numbers": [N1], "extensions": [N1]}, 422, "validation_failed"),
    ("inside another customer's block", one("+496977733", "100"), 409, "porting_partial_block"),
    ("inside an own block", one("+49691234577", "100"), 409, "number_in_use"),
    ("another area", one("+4930555001", "100"), 422, "number_area_mismatch"),
    ("a number twice", {"numbers": [N1, N1], "extensions": {N1: "100"}}, 409, "conflict"),
]


def test_bad_requests_get_clear_answers(world: Api) -> None:
    for what, body, status, code in BAD_REQUESTS:
        r = _request(world, body)
        assert (r.status_code, error_code(r)) == (status, code), (what, r.text)
    r = world.admin_a.get(f"/api/v1/customers/{world.a}/porting-requests")
    assert r.json()["items"] == []


def test_an_extension_takes_one_ported_number_across_open_requests(world: Api) -> None:
    r = _request(world, {"numbers": [N1], "extensions": {N1: "100"}})
    assert r.status_code == 201, r.text
    assert r.json()["extensions"] == {N1: "100"}
    r = _request(world, {"numbers": [N2], "extensions": {N2: "100"}})
    assert r.status_code == 422, r.text
    assert error_code(r) == "porting_target_invalid"
    assert "porting request" in r.json()["error"]["message"]


def test_a_manual_completion_that_cannot_complete_is_409_and_changes_nothing(
    world: Api,
) -> None:
    """A's request for N1 from another carrier; B books N1 meanwhile (it was free): the
    operator's completion is refused, the request stays confirmed, B keeps the number."""
    r = _request(world, {"numbers": [N1], "extensions": {N1: "100"}})
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    base = f"/api/v1/customers/{world.a}/porting-requests/{rid}/transitions"
    assert world.admin_a.post(base, json={"to_state": "submitted"}).status_code == 200
    assert world.operator.post(base, json={"to_state": "confirmed"}).status_code == 200
    r = world.admin_b.post(
        f"/api/v1/customers/{world.b}/head-numbers",
        json={"location_id": world.loc_b, "number": N1, "block_size": 1},
    )
    assert r.status_code == 201, r.text
    r = world.operator.post(base, json={"to_state": "completed"})
    assert r.status_code == 409, r.text
    assert error_code(r) == "number_in_use"
    r = world.admin_a.get(f"/api/v1/customers/{world.a}/porting-requests/{rid}")
    assert r.json()["state"] == "confirmed"
    with world.db.snapshot() as conn:
        owner = conn.execute(
            select(head_numbers.c.customer_id).where(head_numbers.c.number == N1)
        ).scalar_one()
    assert owner == world.b


def test_the_audit_trail_shows_the_ports_to_both_customers(world: Api) -> None:
    r = _request(world, {"numbers": ["+4969777"]})
    assert r.status_code == 201, r.text
    assert r.json()["extensions"] == {}
    rid = r.json()["id"]
    base = f"/api/v1/customers/{world.a}/porting-requests/{rid}/transitions"
    assert world.admin_a.post(base, json={"to_state": "submitted"}).status_code == 200
    for step in ("confirmed", "completed"):
        r = world.operator.post(base, json={"to_state": step, "note": "switched"})
        assert r.status_code == 200, r.text
    assert r.json()["events"][-1]["note"].startswith("switched; ported in: +4969777 (block")
    r = world.admin_b.get(f"/api/v1/customers/{world.b}/audit-events")
    out = [e for e in r.json()["items"] if e["kind"] == "ported_out"]
    assert len(out) == 1, r.json()
    assert "+4969777 (block of 100)" in out[0]["detail"]
    assert out[0]["source"] == "porting"
    assert out[0]["email"] == ""
    r = world.admin_a.get(f"/api/v1/customers/{world.a}/audit-events")
    assert [e["kind"] for e in r.json()["items"]].count("ported_in") == 1


# --- the scheduler thread in the app --------------------------------------------------------
def test_the_apps_scheduler_completes_a_request_confirmed_on_its_date(db: Database) -> None:
    """Started by the lifespan; the operator's confirmation wakes it, so a request whose date
    has come completes at once, not a poll later."""
    a = tenant(db, "A")
    extension(db, a, "100")
    new_user(db, "op@platform.test", Role.OPERATOR, None)
    settings = make_settings(db, porting_poll_seconds=3600)
    app = create_app(settings, db, SmtpMailer("127.0.0.1", 1, "x@y.z"))
    today = porting.local_date(utcnow())
    with db.transaction() as conn:
        new = porting.NewPortingRequest(a.location, [N1], "Old Telco", today, {N1: "100"})
        rid = int(porting.create(conn, SYSTEM, a.id, new, utcnow())["id"])
        porting.transition(conn, SYSTEM, a.id, rid, "submitted", "", utcnow())
    with TestClient(app) as client:
        login(client, "op@platform.test")
        base = f"/api/v1/customers/{a.id}/porting-requests/{rid}"
        r = client.post(f"{base}/transitions", json={"to_state": "confirmed"})
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 10
        while client.get(base).json()["state"] != "completed":
            assert time.monotonic() < deadline, client.get(base).json()
            time.sleep(0.05)
    assert rings(db, N1) == aor(a.id, "100")
    note = events(db, rid)[-1][2]
    assert "by the scheduler on pbx-app-fra-1" in note


def test_settings_of_the_scheduler() -> None:
    s = Settings.from_env({"PBX_PORTING_POLL_SECONDS": "0", "PBX_PORTING_RETRY_SECONDS": "60"})
    assert s.porting_poll_seconds == 0
    assert s.porting_retry_seconds == 60
    assert not PortingScheduler(Database("sqlite://"), "n", poll=s.porting_poll_seconds).enabled
    assert Settings().porting_poll_seconds == 60


def test_stored_targets_are_json(db: Database) -> None:
    """What the scheduler acts on is written when the request is made."""
    a, b = tenant(db, "A"), tenant(db, "B")
    hold(db, b, "+4969777", 100)
    extension(db, a, "100")
    rid = confirmed_request(db, a, ["+4969777", N1], {N1: "100"})
    with db.snapshot() as conn:
        q = select(porting_requests.c.targets).where(porting_requests.c.id == rid)
        raw = conn.execute(q).scalar_one()
    assert json.loads(raw) == {
        "+4969777": {"extension": None, "block_size": 100, "donor": b.id},
        N1: {"extension": "100", "block_size": 1, "donor": None},
    }
