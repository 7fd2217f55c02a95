"""CTI (issue 17) with real peers: call events over a WebSocket in order with the caller's CRM
record, a CRM that never answers, signed webhooks with a delivery log, customers kept apart,
click-to-dial between a baresip phone and a sipp phone with its call record, and a client that
resumes on the other site after its own site is killed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from labkit.baresip import logs_on_failure, start_baresip
from labkit.control import clear_bindings
from labkit.cti import EventStream, deliveries, start_server
from labkit.devices import Device, Devices, device_creds, extension_of
from labkit.docker import wait_healthy
from labkit.lab import SIP_DOMAIN, SITES, app_base
from labkit.leases import lease
from labkit.portal import operator
from labkit.wait import wait_for
from pbx_app.crm import TIMEOUT as CRM_TIMEOUT
from pbx_app.webhooks import SIGNATURE_HEADER, verify
from tests.sip.site_drills import healthy_pair, kill_site, login, site_containers, start_site

pytestmark = pytest.mark.lab

DEVICES = lease("cti", callee=90, colleague=91, phone=92, target=93, ber_caller=94, ber_callee=95)
OTHER = lease("cti other customer", key="other_devices", caller=5)
FRA1 = SITES["fra"]["proxies"][0]
BER1 = SITES["ber"]["proxies"][0]
CALLEE_PORT, CALLER_PORT = 5160, 5161
# The events of a call reach the app every 200 ms (route[CTI_SEND]) and a client within the
# hub's poll (250 ms); stated bound for "the event is there": 3 s after the SIP message.
EVENT_S = 3.0


def ws_base(site: str) -> str:
    return app_base(site).replace("http://", "ws://") + "/call-events/ws"


def national(did: str) -> str:
    return "0" + did.removeprefix("+49")


@pytest.fixture(scope="module")
def admin(tenant: dict[str, Any]) -> Iterator[httpx.Client]:
    """The demo customer's admin with CTI Premium booked; everything set is put back."""
    client = login("fra")
    cid = tenant["customer_id"]
    before = client.get(f"/customers/{cid}").json()["cti"]
    r = client.patch(f"/customers/{cid}", json={"cti": "premium"})
    assert r.status_code == 200, r.text
    yield client
    for hook in client.get(f"/customers/{cid}/webhooks").json()["items"]:
        client.delete(f"/customers/{cid}/webhooks/{hook['id']}")
    client.put(f"/customers/{cid}/cti", json={"crm_url_template": None})
    client.patch(f"/customers/{cid}", json={"cti": before})
    client.close()


@pytest.fixture(scope="module")
def token(admin: httpx.Client) -> str:
    r = admin.post("/tokens", json={"name": "cti-lab-test", "expires_in_days": 1})
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


@pytest.fixture(scope="module")
def box(devices: Devices) -> Device:
    return devices.start("cti-box", "fra")


@pytest.fixture(scope="module")
def server(box: Device) -> str:
    return start_server(box)


@pytest.fixture(scope="module")
def phones(devices: Devices, tenant: dict[str, Any], aor_of: Any) -> Iterator[dict[str, Device]]:
    """The demo callee and the other customer's caller, registered at fra."""
    callee = devices.start("cti-callee", "fra")
    caller = devices.start("cti-caller", "fra")
    user, password = device_creds(tenant, DEVICES["callee"])
    clear_bindings(aor_of(user))
    assert callee.register(user, password, FRA1, port=CALLEE_PORT).startswith("200")
    yield {"callee": callee, "caller": caller}
    clear_bindings(aor_of(user))


@pytest.fixture
def stream(token: str) -> Iterator[EventStream]:
    s = EventStream(ws_base("fra"), token, after=0)
    wait_for(lambda: s.hello is not None, 10, what="the stream's hello")
    assert s.hello is not None
    # Only what happens from now on; the backlog of earlier runs is not this test's.
    s.events.clear()
    yield s
    s.close()


def _cross_call(
    phones: dict[str, Device], tenant: dict[str, Any], hold_ms: int = 1000
) -> tuple[str, float]:
    """The other customer's phone calls the demo callee's DID; (Call-ID, time it was placed)."""
    caller_user, caller_pw = device_creds(tenant, OTHER["caller"], key="other_devices")
    did = tenant["devices"][DEVICES["callee"]]["did"]
    phones["callee"].answer(CALLEE_PORT)
    placed = time.time()
    call_id = f"cti-{time.monotonic_ns()}@{phones['caller'].ip}"
    status = phones["caller"].call(
        national(did), caller_user, caller_pw, FRA1, hold_ms=hold_ms, port=CALLER_PORT,
        call_id=call_id,
    )  # fmt: skip
    assert status.startswith("200"), status
    return call_id, placed


def _when(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00")).timestamp()


def test_events_in_order_with_the_callers_crm_record(
    admin: httpx.Client, tenant: dict[str, Any], server: str, box: Device,
    phones: dict[str, Device], stream: EventStream,
) -> None:  # fmt: skip
    cid = tenant["customer_id"]
    r = admin.put(
        f"/customers/{cid}/cti", json={"crm_url_template": f"{server}/crm?number={{number}}"}
    )
    assert r.status_code == 200, r.text
    call_id, _ = _cross_call(phones, tenant)
    stream.wait(
        lambda: [e["kind"] for e in stream.of_call(call_id)] == ["ringing", "answered", "ended"],
        EVENT_S + 5,
        what="ringing, answered, ended of the call",
    )
    ringing, answered, ended = stream.of_call(call_id)
    assert ringing["seq"] < answered["seq"] < ended["seq"]
    assert ringing["direction"] == "inbound"
    assert ringing["customer_id"] == cid
    assert ringing["crm"] == {
        "name": "Erika Mustermann",
        "company": "Beispiel GmbH",
        "link": f"https://crm.example/contacts/{ringing['from_number']}",
    }, ringing
    assert ringing["from_number"].startswith("+49"), ringing  # the caller's number, E.164
    callee_ext = extension_of(tenant, DEVICES["callee"])
    assert ringing["to_number"] == national(tenant["devices"][DEVICES["callee"]]["did"])
    ext = admin.get(f"/customers/{cid}/extensions", params={"limit": 1000}).json()["items"]
    by_number = {e["number"]: e["id"] for e in ext}
    assert answered["callee_extension_id"] == by_number[callee_ext]
    # The other customer's extension is not the demo customer's business.
    assert all(e["caller_extension_id"] is None for e in stream.of_call(call_id))
    # Resume: the same events again after any acknowledged seq, from the HTTP API too.
    again = admin.get("/call-events", params={"after": ringing["seq"] - 1}).json()["items"]
    assert [e["kind"] for e in again if e["call_id"] == call_id][:3] == [
        "ringing",
        "answered",
        "ended",
    ]


def test_a_crm_that_never_answers_does_not_delay_the_call(
    admin: httpx.Client, tenant: dict[str, Any], server: str,
    phones: dict[str, Device], stream: EventStream,
) -> None:  # fmt: skip
    cid = tenant["customer_id"]
    r = admin.put(f"/customers/{cid}/cti", json={"crm_url_template": f"{server}/slow?n={{number}}"})
    assert r.status_code == 200, r.text
    call_id, placed = _cross_call(phones, tenant)
    stream.wait(lambda: len(stream.of_call(call_id)) >= 3, EVENT_S + CRM_TIMEOUT + 5, what="events")
    ringing = stream.of_call(call_id)[0]
    assert ringing["kind"] == "ringing", ringing
    assert ringing["crm"] is None, ringing
    # The phone rang at once: the proxy never waits for the CRM (180 within 1 s of the INVITE).
    assert _when(ringing) - placed < 1.0, (placed, ringing)


def test_a_call_that_fails_ends_with_its_cause(
    tenant: dict[str, Any], phones: dict[str, Device], stream: EventStream
) -> None:
    caller_user, caller_pw = device_creds(tenant, OTHER["caller"], key="other_devices")
    did = tenant["devices"][DEVICES["callee"]]["did"]
    phones["callee"].answer(CALLEE_PORT, scenario="busy")
    call_id = f"cti-busy-{time.monotonic_ns()}@{phones['caller'].ip}"
    status = phones["caller"].call(
        national(did), caller_user, caller_pw, FRA1, port=CALLER_PORT, call_id=call_id
    )
    assert status.startswith("486"), status
    stream.wait(
        lambda: any(e["kind"] == "ended" for e in stream.of_call(call_id)),
        EVENT_S + 5,
        what="the busy call's end",
    )
    ended = stream.of_call(call_id)[-1]
    assert (ended["kind"], ended["code"], ended["reason"]) == ("ended", 486, "Busy Here"), ended


def test_webhooks_are_signed_retried_and_logged(
    admin: httpx.Client, tenant: dict[str, Any], server: str, box: Device,
    phones: dict[str, Device],
) -> None:  # fmt: skip
    cid = tenant["customer_id"]
    admin.put(f"/customers/{cid}/cti", json={"crm_url_template": None})
    r = admin.post(f"/customers/{cid}/webhooks", json={"url": f"{server}/hook"})
    assert r.status_code == 201, r.text
    hook = r.json()
    assert hook["secret"].startswith("whsec_")
    assert "secret" not in admin.get(f"/customers/{cid}/webhooks").json()["items"][0]
    # The platform's own addresses are refused as targets.
    refused = admin.post(f"/customers/{cid}/webhooks", json={"url": f"http://{FRA1}:8000/x"})
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "url_refused"
    call_id, _ = _cross_call(phones, tenant)

    def mine() -> list[dict[str, Any]]:
        return [d for d in deliveries(box) if json.loads(d["body"])["call_id"] == call_id]

    wait_for(lambda: len(mine()) >= 3, 20, what="three webhook deliveries of the call")
    got = mine()
    assert [json.loads(d["body"])["kind"] for d in got] == ["ringing", "answered", "ended"]
    for d in got:
        headers = {k.lower(): v for k, v in d["headers"].items()}
        assert verify(
            hook["secret"], d["body"].encode(), headers[SIGNATURE_HEADER.lower()], time.time()
        )
        # A receiver detects any change to the body, and another customer's secret.
        tampered = d["body"].replace('"ringing"', '"ended"').replace('"answered"', '"held"')
        assert not verify(
            hook["secret"], tampered.encode() + b" ", headers[SIGNATURE_HEADER.lower()], time.time()
        )
        assert not verify(
            "whsec_other", d["body"].encode(), headers[SIGNATURE_HEADER.lower()], time.time()
        )
    log = admin.get(f"/customers/{cid}/webhooks/{hook['id']}/deliveries").json()["items"]
    seqs = {json.loads(d["body"])["seq"] for d in got}
    done = [d for d in log if d["event_seq"] in seqs]
    assert len(done) == 3
    assert all(d["status"] == "delivered" for d in done), done
    assert all(d["last_code"] == 200 for d in done), done


def test_customers_never_see_each_others_events(
    admin: httpx.Client, tenant: dict[str, Any], phones: dict[str, Device], stream: EventStream,
) -> None:  # fmt: skip
    other = tenant["other_customer_id"]
    with operator("cti-tests@pbx.test") as op:
        assert op.patch(f"/customers/{other}", json={"cti": "standard"}).status_code == 200
        try:
            r = op.post("/tokens", json={"name": "cti-op", "expires_in_days": 1})
            theirs = EventStream(ws_base("ber"), r.json()["token"], customer_id=other)
            wait_for(lambda: theirs.hello is not None, 10, what="the other stream's hello")
            theirs.events.clear()
            call_id, _ = _cross_call(phones, tenant)
            stream.wait(lambda: len(stream.of_call(call_id)) >= 3, EVENT_S + 5, what="ours")
            theirs.wait(lambda: len(theirs.of_call(call_id)) >= 3, EVENT_S + 5, what="theirs")
            assert {e["customer_id"] for e in theirs.events} == {other}
            assert {e["customer_id"] for e in stream.events} == {tenant["customer_id"]}
            assert all(e["direction"] == "outbound" for e in theirs.of_call(call_id))
            assert all(e["callee_extension_id"] is None for e in theirs.of_call(call_id))
            # The demo customer's stream cannot be opened for the other customer.
            r = admin.get("/call-events", params={"customer_id": other})
            assert r.status_code == 403, r.text
            theirs.close()
        finally:
            op.patch(f"/customers/{other}", json={"cti": "none"})


def test_click_to_dial_connects_the_users_phone_to_the_target(
    admin: httpx.Client, tenant: dict[str, Any], devices: Devices, aor_of: Any,
    stream: EventStream,
) -> None:  # fmt: skip
    cid = tenant["customer_id"]
    phone_user, phone_pw = device_creds(tenant, DEVICES["phone"])
    target_user, target_pw = device_creds(tenant, DEVICES["target"])
    for user in (phone_user, target_user):
        clear_bindings(aor_of(user))
    target = devices.start("cti-target", "fra")
    assert target.register(target_user, target_pw, FRA1, port=CALLEE_PORT).startswith("200")
    ext = {
        e["number"]: e["id"]
        for e in admin.get(f"/customers/{cid}/extensions", params={"limit": 1000}).json()["items"]
    }
    target_ext = extension_of(tenant, DEVICES["target"])

    desk = devices.start("cti-desk", "fra")
    # The target hangs up after a while: the call ends and its record is written.
    target.answer(CALLEE_PORT, scenario="answer_hangup")
    # No recording: click-to-dial re-INVITEs the phone that answered first, and baresip 1.1's
    # file player crashes when that restarts it (labkit/baresip.py).
    desk_log = start_baresip(
        desk, phone_user, phone_pw, f"sip:{SIP_DOMAIN};transport=tls", seconds=40,
        record=False,
    )  # fmt: skip
    wait_for(lambda: "200 OK" in desk.sh(f"cat {desk_log}").stdout, 15, what="registered")
    r = admin.post(
        "/click-to-dial",
        json={"target": target_ext, "extension_id": ext[extension_of(tenant, DEVICES["phone"])]},
    )
    assert r.status_code == 202, r.text
    ctd = r.json()

    def final() -> dict[str, Any] | None:
        state = admin.get(f"/click-to-dial/{ctd['id']}").json()
        return state if state["status"] in ("connected", "failed") else None

    with logs_on_failure((desk, desk_log)):
        state = wait_for(final, 45, what="click-to-dial to connect")
        assert state["status"] == "connected", state
        # The phone placed the call itself, as its own extension.
        answered = target.answered(CALLEE_PORT)
        phone_ext = extension_of(tenant, DEVICES["phone"])
        assert f"From: <sip:{phone_ext}@" in answered, answered[-1500:]

    # The call the phone placed is an ordinary call of the phone: its record shows it.
    def record() -> dict[str, Any] | None:
        items = admin.get(f"/customers/{cid}/call-records", params={"limit": 50}).json()["items"]
        return next(
            (c for c in items if c["caller"] == phone_user and c["dialled"] == target_ext), None
        )

    cdr = wait_for(record, 40, what="the click-to-dial call's record")
    assert cdr["answered_at"] is not None, cdr
    assert cdr["sip_code"] == 200, cdr
    for user in (phone_user, target_user):
        clear_bindings(aor_of(user))


def test_click_to_dial_refuses_what_it_cannot_do(admin: httpx.Client) -> None:
    r = admin.post("/click-to-dial", json={"target": "030 1234"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "target_invalid", r.text
    r = admin.post("/click-to-dial", json={"target": "0301234"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "extension_required", r.text


@pytest.mark.disruptive
def test_a_client_resumes_on_the_other_site_after_its_site_is_killed(
    admin: httpx.Client, tenant: dict[str, Any], token: str, devices: Devices, aor_of: Any,
) -> None:  # fmt: skip
    caller_user, caller_pw = device_creds(tenant, DEVICES["ber_caller"])
    callee_user, callee_pw = device_creds(tenant, DEVICES["ber_callee"])
    for user in (caller_user, callee_user):
        clear_bindings(aor_of(user))
    caller = devices.start("cti-ber-caller", "ber")
    callee = devices.start("cti-ber-callee", "ber")
    assert callee.register(callee_user, callee_pw, BER1, port=CALLEE_PORT).startswith("200")
    callee_ext = extension_of(tenant, DEVICES["ber_callee"])

    def call() -> str:
        callee.answer(CALLEE_PORT)
        call_id = f"cti-resume-{time.monotonic_ns()}@{caller.ip}"
        status = caller.call(
            callee_ext, caller_user, caller_pw, BER1, hold_ms=500, port=CALLER_PORT,
            call_id=call_id,
        )  # fmt: skip
        assert status.startswith("200"), status
        return call_id

    first = EventStream(ws_base("fra"), token)
    wait_for(lambda: first.hello is not None, 10, what="hello")
    first_call = call()
    first.wait(lambda: len(first.of_call(first_call)) >= 3, EVENT_S + 5, what="the first call")
    acked = first.last_seq
    kill_site("fra")
    try:
        wait_for(lambda: first.closed is not None, 15, what="the stream to notice its site died")
        # While the client is away, calls go on at the other site.
        missed = call()

        def resumed() -> EventStream | None:
            """A stream the other site greeted: until its database has a leader again, it
            closes new streams with 1013 (try again later), as clients expect."""
            try:
                stream = EventStream(ws_base("ber"), token, after=acked)
            except Exception:
                return None
            greeted = wait_for(lambda: stream.hello or stream.closed, 10, what="an answer")
            if stream.hello is None:
                assert stream.closed is not None
                assert stream.closed[0] == 1013, greeted
                stream.close()
                return None
            return stream

        second = wait_for(resumed, 90, what="the stream at ber")
        second.wait(lambda: len(second.of_call(missed)) >= 3, 60, what="the missed call's events")
        assert [e["kind"] for e in second.of_call(missed)] == ["ringing", "answered", "ended"]
        assert all(e["seq"] > acked for e in second.events)
        assert not second.of_call(first_call), "events acknowledged before were sent again"
        second.close()
    finally:
        start_site("fra")
        wait_healthy(site_containers("fra"), timeout=180)
        wait_for(healthy_pair, 120, 1, "a leader and a synchronous standby")
        for user in (caller_user, callee_user):
            clear_bindings(aor_of(user))
