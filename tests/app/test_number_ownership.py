"""Number ownership: no number or block of one customer overlaps any number or block of another,
enforced by the database (exclusion constraint / trigger), through booking and porting alike."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pbx_app import errors
from pbx_app.db import Database, utcnow
from pbx_app.repositories import head_numbers as head_numbers_repo
from pbx_app.schema import head_numbers
from pbx_app.services import head_numbers as head_numbers_service
from pbx_app.services.access import SYSTEM
from tests.app.conftest import Api, error_code

BLOCK = "+4969777"  # B's block of 100: +496977700 .. +496977799


def tenant(api: Api, who: str) -> tuple[TestClient, int, int]:
    """Customer "a" or "b": its admin's client, its id, its location."""
    return (api.admin_a, api.a, api.loc_a) if who == "a" else (api.admin_b, api.b, api.loc_b)


def book(api: Api, who: str, number: str, block_size: int) -> Any:
    client, cid, loc = tenant(api, who)
    return client.post(
        f"/api/v1/customers/{cid}/head-numbers",
        json={"location_id": loc, "number": number, "block_size": block_size},
    )


def port_in(api: Api, who: str, number: str, extension: str | None = "100") -> Any:
    """A request to port ``number`` to ``who``; a single number rings ``extension`` (made at the
    customer's location if it does not exist yet), a block none."""
    client, cid, loc = tenant(api, who)
    extensions = {}
    if extension is not None:
        client.post(
            f"/api/v1/customers/{cid}/extensions", json={"location_id": loc, "number": extension}
        )
        extensions = {number: extension}
    return client.post(
        f"/api/v1/customers/{cid}/porting-requests",
        json={
            "location_id": loc,
            "numbers": [number],
            "extensions": extensions,
            "donor_carrier": "Telekom",
            "requested_date": "2027-01-15",
        },
    )


def held(db: Database, customer_id: int) -> list[str]:
    with db.snapshot() as conn:
        q = select(head_numbers.c.number).where(head_numbers.c.customer_id == customer_id)
        return sorted(conn.execute(q).scalars())


@pytest.mark.parametrize(
    ("number", "block_size"),
    [
        ("+496977711", 1),  # a single number inside B's block
        ("+49697771", 10),  # a smaller block inside it
        ("+4969777", 1),  # B's head number itself
    ],
)
def test_a_number_overlapping_another_customers_block_is_refused(
    api: Api, number: str, block_size: int
) -> None:
    assert book(api, "b", BLOCK, 100).status_code == 201
    r = book(api, "a", number, block_size)
    assert r.status_code == 409, r.text
    assert error_code(r) == "number_in_use"
    assert "another customer" in r.json()["error"]["message"]
    assert held(api.db, api.a) == []
    # Neighbours outside the block stay bookable.
    assert book(api, "a", "+496977811", 1).status_code == 201


def test_a_block_around_another_customers_single_number_is_refused(api: Api) -> None:
    """The other direction: A holds a single number first; B cannot book a block covering it,
    and A keeps its number."""
    assert book(api, "a", "+496977711", 1).status_code == 201
    r = book(api, "b", BLOCK, 100)
    assert r.status_code == 409, r.text
    assert error_code(r) == "number_in_use"
    assert held(api.db, api.a) == ["+496977711"]
    assert held(api.db, api.b) == []


def test_overlaps_within_one_request_and_with_own_numbers_are_refused(api: Api) -> None:
    base = f"/api/v1/customers/{api.a}/head-numbers"
    items = [
        {"location_id": api.loc_a, "number": "+4969555", "block_size": 100},
        {"location_id": api.loc_a, "number": "+496955512", "block_size": 1},
    ]
    r = api.admin_a.post(f"{base}/bulk", json={"items": items})
    assert r.status_code == 409, r.text
    assert held(api.db, api.a) == []
    assert book(api, "a", "+4969555", 100).status_code == 201
    r = book(api, "a", "+496955512", 1)
    assert r.status_code == 409
    assert "your head number +4969555" in r.json()["error"]["message"]


def test_the_database_itself_refuses_an_overlap(db: Database, api: Api) -> None:
    """Not only the service's check: a row written past it (a bug, a script, a race) is refused
    by the constraint, on both backends."""
    assert book(api, "b", BLOCK, 100).status_code == 201
    row = {
        "customer_id": api.a,
        "location_id": api.loc_a,
        "number": "+496977711",
        "area_code": "069",
        "block_size": 1,
        "created_at": utcnow(),
    }
    with pytest.raises(errors.NumberInUse), db.transaction() as conn:
        head_numbers_repo.insert_many(conn, [row])
    with pytest.raises(errors.NumberInUse), db.transaction() as conn:
        head_numbers_repo.insert_many(conn, [{**row, "number": "+496977", "block_size": 1000}])
    assert held(db, api.a) == []


def test_two_customers_booking_overlapping_numbers_at_once_one_wins(db: Database, api: Api) -> None:
    """A's transaction has checked and written its block but not committed when B's starts: B's
    check cannot see A's row yet, the database makes B wait for A and then refuses it."""
    a_wrote = threading.Event()
    let_a_commit = threading.Event()
    outcome: dict[str, object] = {}

    def a_books() -> None:
        with db.transaction() as conn:
            head_numbers_service.create(
                conn,
                SYSTEM,
                api.a,
                head_numbers_service.NewHeadNumber(api.loc_a, BLOCK, 100),
                utcnow(),
            )
            a_wrote.set()
            let_a_commit.wait(10)
        outcome["a"] = "committed"

    def b_books() -> None:
        try:
            with db.transaction() as conn:
                head_numbers_service.create(
                    conn,
                    SYSTEM,
                    api.b,
                    head_numbers_service.NewHeadNumber(api.loc_b, "+496977742", 1),
                    utcnow(),
                )
            outcome["b"] = "committed"
        except errors.NumberInUse:
            outcome["b"] = "refused"

    ta = threading.Thread(target=a_books)
    ta.start()
    assert a_wrote.wait(10)
    tb = threading.Thread(target=b_books)
    tb.start()
    time.sleep(0.5)  # B is now blocked on A's row (PostgreSQL) or on the write lock (SQLite)
    assert "b" not in outcome
    let_a_commit.set()
    ta.join(15)
    tb.join(15)
    assert outcome == {"a": "committed", "b": "refused"}
    assert held(db, api.a) == [BLOCK]
    assert held(db, api.b) == []


def test_porting_in_part_of_a_block_someone_holds_is_refused(api: Api) -> None:
    """Another customer's block moves whole (its head number) or not at all; a number inside
    one of the customer's own blocks is theirs already."""
    assert book(api, "b", BLOCK, 100).status_code == 201
    r = port_in(api, "a", "+496977733")
    assert r.status_code == 409, r.text
    assert error_code(r) == "porting_partial_block"
    r = port_in(api, "b", "+496977733", extension="101")
    assert r.status_code == 409, r.text
    assert error_code(r) == "number_in_use"
    r = port_in(api, "a", BLOCK, extension=None)  # the whole block: an intra-platform port
    assert r.status_code == 201, r.text
    assert held(api.db, api.b) == [BLOCK]  # until the port completes


def test_a_completed_port_makes_the_numbers_the_customers_own(api: Api) -> None:
    """After the switch-over the ported number is A's: B can no longer book a block over it,
    nor port a range that covers it; B may ask to port the number itself from A (an
    intra-platform port), which takes nothing from A before it completes."""
    base = f"/api/v1/customers/{api.a}/porting-requests"
    r = port_in(api, "a", "+496977733")
    assert r.status_code == 201, r.text
    assert r.json()["extensions"] == {"+496977733": "100"}
    rid = r.json()["id"]
    assert api.admin_a.post(f"{base}/{rid}/transitions", json={"to_state": "submitted"}).is_success
    for state in ("confirmed", "completed"):
        r = api.operator.post(f"{base}/{rid}/transitions", json={"to_state": state})
        assert r.status_code == 200, r.text
    assert held(api.db, api.a) == ["+496977733"]
    r = book(api, "b", BLOCK, 100)
    assert r.status_code == 409, r.text
    r = port_in(api, "b", "+49697773", extension="101")
    assert r.status_code == 409, r.text
    assert error_code(r) == "number_in_use"
    r = port_in(api, "b", "+496977733")
    assert r.status_code == 201, r.text
    assert held(api.db, api.a) == ["+496977733"]
