"""Device credentials from the proxies' memory (issue 15): a known device's REGISTER costs the
database nothing, and a change in the database reaches every proxy's cache within seconds
(PostgreSQL triggers log it, each proxy polls the log every second: kamailio.cfg
route[CREDENTIALS], route[CRED_POLL]). A fresh customer with one phone at fra; its password is
reset and the phone deleted through the REST API, as an admin would."""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from labkit.control import appstats, clear_bindings, credentials_cached, kamcmd, unban
from labkit.devices import Device, Devices
from labkit.docker import docker
from labkit.lab import DB_CONTAINERS, SITES
from labkit.portal import operator
from labkit.wait import wait_for
from pbx_app.addressing import aor

pytestmark = pytest.mark.lab

FRA1, FRA2 = SITES["fra"]["proxies"]
FRA1_C, FRA2_C = SITES["fra"]["proxy_containers"]
PORT = 5181
# The promise: a changed or deleted device is refused this long after the API answered.
PROMPT_S = 3.0
OPEN_TX = "pbx-test-open-transaction"


@dataclass
class Phone:
    customer: int
    extension_id: int
    device_id: int
    username: str
    password: str

    @property
    def url(self) -> str:
        return f"/customers/{self.customer}/extensions/{self.extension_id}/devices/{self.device_id}"


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.text}"
    return r.json() if status != 204 else None


@pytest.fixture(scope="module")
def api() -> Iterator[httpx.Client]:
    with operator("credential-cache-tests@pbx.test") as client:
        yield client


@pytest.fixture
def phone(api: httpx.Client) -> Iterator[Phone]:
    tag = uuid.uuid4().hex[:8]
    body = {"name": f"Credential cache {tag}", "tariff": "basic", "contract_start": "2026-01-01"}
    cid = ok(api.post("/customers", json=body), 201)["id"]
    location = {
        "name": "Frankfurt",
        "street": "Mainzer Landstr. 1",
        "postal_code": "60329",
        "city": "Frankfurt",
        "area_code": "069",
    }
    loc = ok(api.post(f"/customers/{cid}/locations", json=location), 201)["id"]
    ext = ok(
        api.post(f"/customers/{cid}/extensions", json={"location_id": loc, "number": "30"}), 201
    )
    device = ok(
        api.post(
            f"/customers/{cid}/extensions/{ext['id']}/devices",
            json={"sip_username": f"cred-{tag}"},
        ),
        201,
    )
    # The device's creation is in the change log: a proxy's next poll (every second) drops an
    # entry cached before it, once. Start when every proxy has polled past the creation.
    time.sleep(2.5)
    yield Phone(cid, ext["id"], device["id"], device["sip_username"], device["sip_password"])
    clear_bindings(aor(cid, "30"))
    api.delete(f"/customers/{cid}/extensions/{ext['id']}")


@pytest.fixture
def desk(devices: Devices) -> Iterator[Device]:
    device = devices.start(f"cred-fra-{len(devices.started)}", "fra")
    unban(device.ip)
    yield device
    unban(device.ip)


def refused_within(desk: Device, phone: Phone, password: str) -> float:
    """Seconds from now until both fra proxies (each polls on its own) refuse the phone's
    REGISTER with `password`."""
    start = time.monotonic()
    for proxy in (FRA1, FRA2):

        def refused(proxy: str = proxy) -> bool:
            status = desk.register(phone.username, password, proxy, port=PORT, timeout=5)
            assert status[:3] in ("200", "401", "403"), status
            return status[:3] != "200"

        wait_for(refused, PROMPT_S + 10, what=f"{phone.username} refused at {proxy}")
    return time.monotonic() - start


@pytest.fixture
def open_transaction() -> Iterator[None]:
    """A transaction held open on the primary (a report, a stuck client): it keeps the
    database's snapshot horizon back, which must not make every poll drop the same entries."""
    primary = next(
        db
        for db in DB_CONTAINERS
        if docker("exec", "-u", "postgres", db, "psql", "-h", "/run/postgresql", "-X", "-At",
                  "-c", "SELECT pg_is_in_recovery()").stdout.strip() == "f"
    )  # fmt: skip
    sql = "BEGIN; SELECT pg_current_xact_id(); SELECT pg_sleep(60); COMMIT;"
    psql = ["psql", "-h", "/run/postgresql", "-X", "-d", "pbx"]
    holder = subprocess.Popen(
        ["docker", "exec", "-u", "postgres", "-e", f"PGAPPNAME={OPEN_TX}", primary, *psql,
         "-c", sql],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1)
    yield
    end = (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE application_name = '{OPEN_TX}'"
    )
    docker("exec", "-u", "postgres", primary, *psql, "-c", end)
    holder.wait(10)


def test_a_cached_device_registers_without_the_database(
    open_transaction: None, desk: Device, phone: Phone
) -> None:
    first = desk.register(phone.username, phone.password, FRA1, port=PORT)
    assert first.startswith("200"), first
    assert desk.register(phone.username, phone.password, FRA1, port=PORT).startswith("200")
    assert credentials_cached(FRA1_C, phone.username)
    before = appstats(FRA1_C)
    for _ in range(3):
        status = desk.register(phone.username, phone.password, FRA1, port=PORT)
        assert status.startswith("200"), status
    after = appstats(FRA1_C)
    assert after["cred_hits"] - before["cred_hits"] >= 3
    assert after["cred_misses"] == before["cred_misses"], (before, after)


def test_a_reset_password_and_a_deleted_device_are_refused_within_seconds(
    api: httpx.Client, desk: Device, phone: Phone
) -> None:
    # Both proxies of the site know the phone (each has its own cache).
    for proxy, container in ((FRA1, FRA1_C), (FRA2, FRA2_C)):
        status = desk.register(phone.username, phone.password, proxy, port=PORT)
        assert status.startswith("200"), f"{proxy}: {status}"
        assert credentials_cached(container, phone.username)

    new_password = ok(api.post(f"{phone.url}/password", json={}))["sip_password"]
    assert new_password != phone.password
    old_refused = refused_within(desk, phone, phone.password)
    assert old_refused <= PROMPT_S, f"the old password still worked {old_refused:.1f} s later"
    for proxy in (FRA1, FRA2):
        status = desk.register(phone.username, new_password, proxy, port=PORT)
        assert status.startswith("200"), f"the new password at {proxy}: {status}"

    ok(api.delete(phone.url), 204)
    gone = refused_within(desk, phone, new_password)
    assert gone <= PROMPT_S, f"the deleted device still registered {gone:.1f} s later"
    for container in (FRA1_C, FRA2_C):
        assert not credentials_cached(container, phone.username)


def test_an_unknown_user_is_not_cached_and_still_counts_towards_the_ban(desk: Device) -> None:
    name = f"nobody-{uuid.uuid4().hex[:8]}"
    for attempt in (1, 2):
        status = desk.register(name, "guess", FRA1, port=PORT)
        assert status.startswith("401"), status
        wait_for(
            lambda n=attempt: re.search(rf"value: {n}\b", _authfail(desk.ip)),
            5,
            what=f"failure {attempt} of {desk.ip} counted",
        )
    assert not credentials_cached(FRA1_C, name)


def _authfail(ip: str) -> str:
    return kamcmd(FRA1_C, "htable.get", "authfail", ip, check=False)
