"""Call records (issue 13, item 6) from real calls: the proxy where a call enters the platform
records it (start, answer, end, both parties as dialled and as resolved, cause, site, relay,
tenant), its node's shipper delivers the record to the app, and the tenant reads it through the
API. Answered, busy and unanswerable calls at both sites, a call from the carrier; records
made while the database refuses writes wait on the nodes (also across a proxy restart) and
arrive, once each, when it takes writes again; a shipper that dies is started again."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from labkit.control import clear_bindings
from labkit.devices import Device, Devices, device_creds, scenario_text
from labkit.docker import docker, wait_healthy
from labkit.lab import PLATFORM, SITES, sip_target
from labkit.leases import lease
from labkit.wait import wait_for
from pbx_infra.topology import ServiceKind
from tests.sip.rules_kit import Pbx
from tests.sip.site_drills import DBS, leader, login

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("calls_recorded")]

DEVICES = lease("call records", fra_caller=34, ber_caller=35, callee=36, nobody=37, target=38)
CALLEE_PORT = 5076
HOLD_MS = 1500
# Delivery: Kamailio writes at the call's end, the shipper rotates every 5 s, then posts.
DELIVERY_S = 30
SHIPPER_STATE = "/run/kamailio/pbx-cdr-shipper.json"


@pytest.fixture(scope="module")
def callers(devices: Devices) -> dict[str, Device]:
    return {site: devices.start(f"cdr-{site}", site) for site in SITES}


@pytest.fixture(scope="module")
def callee(devices: Devices, tenant: dict[str, Any], aor_of: Any) -> Iterator[Device]:
    """Registered at ber; each test says how it answers (answer.xml, busy.xml)."""
    phone = devices.start("cdr-callee", "ber")
    user, password = device_creds(tenant, DEVICES["callee"])
    clear_bindings(aor_of(user))
    status = phone.register(user, password, SITES["ber"]["proxies"][0], port=CALLEE_PORT)
    assert status.startswith("200"), status
    yield phone
    clear_bindings(aor_of(user))


@pytest.fixture(scope="module")
def api() -> Iterator[httpx.Client]:
    client = login("fra")
    yield client
    client.close()


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def records(api: httpx.Client, tenant: dict[str, Any], since: str) -> list[dict[str, Any]]:
    """The demo customer's records since `since`, as its admin reads them (JSON)."""
    r = api.get(f"/customers/{tenant['customer_id']}/call-records", params={"from": since})
    return list(r.json()["items"]) if r.status_code == 200 else []


def record_of(
    api: httpx.Client, tenant: dict[str, Any], since: str, call_id: str, timeout: float = DELIVERY_S
) -> dict[str, Any]:
    found = wait_for(
        lambda: [i for i in records(api, tenant, since) if i["call_id"] == call_id],
        timeout,
        1,
        f"the record of {call_id}",
    )
    assert len(found) == 1, found
    return found[0]


def place_call(
    callers: dict[str, Device], tenant: dict[str, Any], site: str, target: str, tag: str
) -> tuple[str, str]:
    """A call from `site`'s caller to `target` through that site's first proxy; returns its
    Call-ID and final status."""
    user, password = device_creds(tenant, DEVICES[f"{site}_caller"])
    call_id = f"cdr-{tag}-{site}-{time.time_ns()}"
    status = callers[site].call(
        target, user, password, SITES[site]["proxies"][0], hold_ms=HOLD_MS,
        port=5086, call_id=call_id,
    )  # fmt: skip
    return call_id, status


def proxy_node(site: str) -> str:
    return PLATFORM.instances(ServiceKind.SIP_PROXY, site)[0].name


def shipper_state(container: str) -> dict[str, Any]:
    r = docker("exec", container, "cat", SHIPPER_STATE)
    return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else {}


def seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize("site", ["fra", "ber"])
def test_an_answered_call_is_recorded_where_it_entered(
    site: str,
    callers: dict[str, Device],
    callee: Device,
    tenant: dict[str, Any],
    api: httpx.Client,
) -> None:
    since = utc_now()
    extension = tenant["devices"][DEVICES["callee"]]["extension"]
    callee.answer(port=CALLEE_PORT)
    call_id, status = place_call(callers, tenant, site, extension, "answered")
    assert status.startswith("200"), status
    record = record_of(api, tenant, since, call_id)
    caller_user = device_creds(tenant, DEVICES[f"{site}_caller"])[0]
    callee_device = tenant["devices"][DEVICES["callee"]]
    fields = (
        "site",
        "node",
        "source",
        "caller",
        "dialled",
        "sip_code",
        "cause",
        "customer_id",
        "callee_customer_id",
        "relay",
        "diversions",
    )
    assert {k: record[k] for k in fields} == {
        "site": site,
        "node": proxy_node(site),
        "source": "device",
        "caller": caller_user,
        "dialled": extension,
        "sip_code": 200,
        "cause": "answered",
        "customer_id": tenant["customer_id"],
        "callee_customer_id": tenant["customer_id"],
        # The caller's proxy anchors the call on its own site's relay.
        "relay": site,
        "diversions": 0,
    }
    # What the plan's step rang when the call was answered.
    assert record["resolved"] == callee_device["aor"], record
    assert record["answered_by"].endswith(f"{callee.ip}:{CALLEE_PORT}"), record
    start, answer, end = (seconds(record[k]) for k in ("started_at", "answered_at", "ended_at"))
    assert start <= answer <= end
    # The caller hangs up HOLD_MS after the answer (sipp's pause; tolerance for the lab).
    assert HOLD_MS / 1000 - 0.2 <= record["duration"] <= HOLD_MS / 1000 + 1.0, record
    assert abs(record["duration"] - (end - answer)) < 0.01


@pytest.mark.parametrize("site", ["fra", "ber"])
def test_a_busy_call_is_recorded_with_the_callees_answer(
    site: str,
    callers: dict[str, Device],
    callee: Device,
    tenant: dict[str, Any],
    api: httpx.Client,
) -> None:
    since = utc_now()
    extension = tenant["devices"][DEVICES["callee"]]["extension"]
    callee.answer(port=CALLEE_PORT, scenario="busy")
    call_id, status = place_call(callers, tenant, site, extension, "busy")
    assert status.startswith("486"), status
    record = record_of(api, tenant, since, call_id)
    assert (record["sip_code"], record["reason"], record["cause"]) == (486, "Busy Here", "busy")
    assert (record["answered_at"], record["duration"], record["answered_by"]) == (None, 0.0, "")
    assert (record["site"], record["node"], record["relay"]) == (site, proxy_node(site), site)
    # busy.xml rings for 3 s before it refuses.
    assert seconds(record["ended_at"]) - seconds(record["started_at"]) >= 2.5, record


def test_a_forwarded_call_is_recorded_as_dialled_and_as_resolved(
    devices: Devices,
    callers: dict[str, Device],
    tenant: dict[str, Any],
    api: httpx.Client,
    aor_of: Any,
) -> None:
    """The callee forwards every call to another extension (a call rule): the record keeps
    the number as dialled, what rang in the end (the target's AOR), the diversion and who
    answered."""
    callee, target = (tenant["devices"][DEVICES[role]] for role in ("callee", "target"))
    phone = devices.start("cdr-target", "fra")
    clear_bindings(aor_of(target["sip_username"]))
    status = phone.register(
        target["sip_username"], target["sip_password"], SITES["fra"]["proxies"][0], port=5077
    )
    assert status.startswith("200"), status
    pbx = Pbx(api, int(tenant["customer_id"]))
    try:
        pbx.rules(
            callee["extension"],
            {"kind": "unconditional", "target": {"extension": target["extension"]}},
        )
        since = utc_now()
        phone.answer(port=5077)
        call_id, status = place_call(callers, tenant, "fra", callee["extension"], "forwarded")
        assert status.startswith("200"), status
        record = record_of(api, tenant, since, call_id)
    finally:
        pbx.put_back()
        clear_bindings(aor_of(target["sip_username"]))
    assert (record["dialled"], record["resolved"], record["diversions"]) == (
        callee["extension"],
        target["aor"],
        1,
    )
    assert record["answered_by"].endswith(f"{phone.ip}:5077"), record
    assert (record["cause"], record["callee_customer_id"]) == ("answered", tenant["customer_id"])


def test_a_call_nobody_can_take_is_recorded(
    callers: dict[str, Device], tenant: dict[str, Any], api: httpx.Client, aor_of: Any
) -> None:
    """No device of the extension is registered: the proxy answers itself, and that answer is
    the record's."""
    nobody = tenant["devices"][DEVICES["nobody"]]
    clear_bindings(aor_of(nobody["sip_username"]))
    since = utc_now()
    call_id, status = place_call(callers, tenant, "fra", nobody["extension"], "nobody")
    assert status.startswith("480"), status
    record = record_of(api, tenant, since, call_id)
    assert (record["sip_code"], record["cause"], record["answered_at"]) == (
        480,
        "unavailable",
        None,
    )
    assert (record["dialled"], record["relay"]) == (nobody["extension"], "")
    # The step that found no device: its AOR.
    assert record["resolved"] == nobody["aor"], record


def test_a_call_from_the_carrier_is_recorded_for_the_called_customer(
    callee: Device, tenant: dict[str, Any], api: httpx.Client
) -> None:
    did = tenant["devices"][DEVICES["callee"]]["did"]
    carrier = SITES["fra"]["carrier"]
    since = utc_now()
    call_id = f"cdr-trunk-{time.time_ns()}"
    callee.answer(port=CALLEE_PORT)
    r = docker(
        "exec", carrier, "sh", "-c",
        f"cat > /tmp/cdr_trunk_call.xml <<'XML'\n{scenario_text('trunk_call')}XML\n"
        f"sipp {sip_target(SITES['fra']['proxy_internals'][0])} -sf /tmp/cdr_trunk_call.xml "
        f"-s '{did}' -i {SITES['fra']['carrier_ip']} -p 5098 -m 1 -nostdin -timeout 20s "
        f"-cid_str {call_id}",
        timeout=40,
    )  # fmt: skip
    assert r.returncode == 0, f"call from the carrier to {did}:\n{r.stdout[-1500:]}{r.stderr}"
    record = record_of(api, tenant, since, call_id)
    assert (record["source"], record["caller"], record["dialled"]) == (
        "trunk",
        "+4940111222333",
        did,
    )
    # The called customer's record, its tenant.
    assert record["customer_id"] == record["callee_customer_id"] == tenant["customer_id"]
    assert (record["site"], record["cause"]) == ("fra", "answered")


def test_the_export_has_the_calls_as_csv(
    callers: dict[str, Device], callee: Device, tenant: dict[str, Any], api: httpx.Client
) -> None:
    since = utc_now()
    callee.answer(port=CALLEE_PORT)
    extension = tenant["devices"][DEVICES["callee"]]["extension"]
    call_id, status = place_call(callers, tenant, "fra", extension, "csv")
    assert status.startswith("200"), status
    record_of(api, tenant, since, call_id)
    r = api.get(
        f"/customers/{tenant['customer_id']}/call-records",
        params={"from": since, "format": "csv"},
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    header, *rows = r.text.splitlines()
    assert header.startswith("id,started_at,answered_at,ended_at,duration,caller,")
    assert [row for row in rows if call_id in row], r.text


def test_a_shipper_that_dies_is_started_again(
    callers: dict[str, Device], callee: Device, tenant: dict[str, Any], api: httpx.Client
) -> None:
    proxy = SITES["fra"]["proxy_containers"][0]
    before = wait_for(lambda: shipper_state(proxy).get("pid"), 30, 1, "the shipper's state")
    assert docker("exec", proxy, "sh", "-c", f"kill -9 {before}").returncode == 0
    wait_for(lambda: shipper_state(proxy).get("pid") not in (None, before), 30, 1, "a new shipper")
    since = utc_now()
    callee.answer(port=CALLEE_PORT)
    extension = tenant["devices"][DEVICES["callee"]]["extension"]
    call_id, status = place_call(callers, tenant, "fra", extension, "restarted")
    assert status.startswith("200"), status
    assert record_of(api, tenant, since, call_id)["node"] == proxy_node("fra")


# --- the database refusing writes ---------------------------------------------------------------
def psql(container: str, sql: str) -> str:
    r = docker(
        "exec", "-u", "postgres", container, "psql", "-h", "/run/postgresql", "-XAtq",
        "-d", "postgres", "-c", sql, timeout=30,
    )  # fmt: skip
    assert r.returncode == 0, f"{sql}: {r.stderr}"
    return r.stdout


def refuse_writes(on: bool) -> None:
    """What a leader that stopped taking writes looks like to the app: every new session of
    database pbx is read-only (the app's open sessions are ended so that they reconnect).
    Kamailio's credential reads and the app's routing reads go on."""
    name = leader()
    assert name, "no database leader"
    container = next(d for d in DBS.values() if d.name == name).container_name(PLATFORM)
    change = (
        "SET default_transaction_read_only = on" if on else "RESET default_transaction_read_only"
    )
    psql(container, f"ALTER DATABASE pbx {change}")
    psql(
        container,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE usename = 'pbx' AND pid <> pg_backend_pid()",
    )


@pytest.mark.disruptive
def test_records_wait_on_the_nodes_while_the_database_refuses_writes(
    callers: dict[str, Device], callee: Device, tenant: dict[str, Any], api: httpx.Client
) -> None:
    """Calls go on while no record can be stored; the records wait in the proxies' spools (on
    a volume: a proxy restarted meanwhile keeps them) and arrive, once each, afterwards."""
    extension = tenant["devices"][DEVICES["callee"]]["extension"]
    since = utc_now()
    proxies = {site: SITES[site]["proxy_containers"][0] for site in SITES}
    calls: dict[str, str] = {}
    refuse_writes(True)
    try:
        for site in SITES:
            callee.answer(port=CALLEE_PORT)
            call_id, status = place_call(callers, tenant, site, extension, "outage")
            assert status.startswith("200"), f"{site}: a call while writes are refused: {status}"
            calls[site] = call_id
        for site, proxy in proxies.items():
            state = wait_for(
                lambda p=proxy: (
                    (s := shipper_state(p)).get("pending_files")
                    and "503" in s.get("last_error", "")
                    and s
                ),
                DELIVERY_S,
                1,
                f"{proxy} keeping its records",
            )
            print(f"\n{site} while writes are refused: {state}")
        # The fra proxy restarts while its record waits: the spool is a volume, and the new
        # container's shipper takes over what the old one kept.
        restarted = time.time()
        docker("restart", proxies["fra"], check=True, timeout=120)
        wait_healthy([proxies["fra"]], 120)
        wait_for(
            lambda: (
                (s := shipper_state(proxies["fra"])).get("updated", 0) > restarted
                and s.get("pending_files")
            ),
            DELIVERY_S,
            1,
            "the restarted proxy's shipper holding the record",
        )
        refused_until = time.monotonic()
    finally:
        refuse_writes(False)
    got = {
        site: record_of(api, tenant, since, call_id, timeout=120) for site, call_id in calls.items()
    }
    waited = round(time.monotonic() - refused_until, 1)
    print(f"records arrived {waited} s after the database took writes again")
    for site, record in got.items():
        assert (record["node"], record["site"], record["cause"]) == (
            proxy_node(site),
            site,
            "answered",
        )
    # Each exactly once (record_of), and the shippers are through.
    for proxy in proxies.values():
        wait_for(
            lambda p=proxy: (
                (s := shipper_state(p)).get("pending_files") == 0 and not s.get("last_error")
            ),
            60,
            1,
            f"{proxy} delivered everything",
        )
