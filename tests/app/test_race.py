"""Limits under concurrency on PostgreSQL: 32 clients racing past a limit never exceed it."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator

import httpx
import pytest

from pbx_app.db import Database, utcnow
from pbx_app.services import head_numbers, locations
from pbx_app.services.access import SYSTEM, Role
from tests.app.conftest import (
    LiveServer,
    make_settings,
    new_customer,
    new_user,
    start_server,
    stop_server,
    token_for,
)

CLIENTS = 32


@pytest.fixture
def live(pg_db: Database) -> Iterator[tuple[Database, LiveServer]]:
    server = start_server(pg_db, make_settings(pg_db))
    try:
        yield pg_db, server
    finally:
        stop_server(server)


def race(
    fn: Callable[[httpx.Client, int], list[httpx.Response]], base_url: str, token: str
) -> list[httpx.Response]:
    barrier = threading.Barrier(CLIENTS)
    results: list[httpx.Response] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        with httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as c:
            barrier.wait()
            out = fn(c, i)
        with lock:
            results.extend(out)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def setup_customer(db: Database, **kw: object) -> tuple[int, int, str]:
    cid = new_customer(db, **kw)  # type: ignore[arg-type]
    new_user(db, f"admin{cid}@race.test", Role.CUSTOMER_ADMIN, cid)
    with db.transaction() as conn:
        loc = locations.create(
            conn, SYSTEM, cid, locations.NewLocation("F", "S", "60329", "F", "069"), utcnow()
        )
    return cid, int(loc["id"]), token_for(db, make_settings(db), f"admin{cid}@race.test")


def test_extension_licence_limit_holds_under_32_racing_clients(
    live: tuple[Database, LiveServer],
) -> None:
    db, server = live
    cid, loc, token = setup_customer(db, booked_licences=15)  # 20 allowed
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}) as c:
        for n in range(10):
            assert (
                c.post(
                    f"/api/v1/customers/{cid}/extensions",
                    json={"location_id": loc, "number": f"1{n:02d}"},
                ).status_code
                == 201
            )

    def add(c: httpx.Client, i: int) -> list[httpx.Response]:
        return [
            c.post(
                f"/api/v1/customers/{cid}/extensions",
                json={"location_id": loc, "number": f"{i + 2}{k:02d}"},
            )
            for k in range(3)
        ]

    results = race(add, server.base_url, token)
    codes = Counter(r.status_code for r in results)
    assert codes[201] == 10, codes
    assert codes[409] == CLIENTS * 3 - 10, codes
    assert {r.json()["error"]["code"] for r in results if r.status_code == 409} == {
        "extension_licences_exhausted"
    }
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}) as c:
        customer = c.get(f"/api/v1/customers/{cid}").json()
        listed = c.get(f"/api/v1/customers/{cid}/extensions", params={"limit": 1000}).json()[
            "items"
        ]
    assert customer["extension_count"] == 20
    assert len(listed) == 20


def test_head_number_limit_holds_under_32_racing_clients(live: tuple[Database, LiveServer]) -> None:
    db, server = live
    cid, loc, token = setup_customer(db)
    batch = [head_numbers.NewHeadNumber(loc, f"+4969{100000 + i}", 10) for i in range(995)]
    with db.transaction() as conn:
        head_numbers.create_many(conn, SYSTEM, cid, batch, utcnow())

    def add(c: httpx.Client, i: int) -> list[httpx.Response]:
        return [
            c.post(
                f"/api/v1/customers/{cid}/head-numbers",
                json={"location_id": loc, "number": f"+4969{300000 + i}"},
            )
        ]

    results = race(add, server.base_url, token)
    codes = Counter(r.status_code for r in results)
    assert codes == Counter({201: 5, 409: CLIENTS - 5}), codes
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}) as c:
        assert c.get(f"/api/v1/customers/{cid}").json()["head_number_count"] == 1000
        total = sum(
            len(
                c.get(
                    f"/api/v1/customers/{cid}/head-numbers", params={"limit": 1000, "offset": o}
                ).json()["items"]
            )
            for o in (0, 1000)
        )
    assert total == 1000


def test_device_limit_holds_under_32_racing_clients(live: tuple[Database, LiveServer]) -> None:
    db, server = live
    cid, loc, token = setup_customer(db, business_option=True)
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}) as c:
        ext = c.post(
            f"/api/v1/customers/{cid}/extensions", json={"location_id": loc, "number": "100"}
        ).json()["id"]

    def add(c: httpx.Client, i: int) -> list[httpx.Response]:
        return [c.post(f"/api/v1/customers/{cid}/extensions/{ext}/devices", json={})]

    results = race(add, server.base_url, token)
    assert Counter(r.status_code for r in results) == Counter({201: 3, 409: CLIENTS - 3})
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}) as c:
        assert len(c.get(f"/api/v1/customers/{cid}/extensions/{ext}/devices").json()["items"]) == 3
