"""Caller ID, CLIR and emergency calls as the carrier sees them (a capture at the simulated
carrier's interconnect): the number shown is one the customer holds, never what the device
claims; CLIR (per extension, per call with #31#) hides it in From (Privacy: id, PAI kept);
110/112 always go out: for a customer without any number (PAI from the location's area, its
routing data in X-PBX-Emergency-Location), from a banned address, and without the app."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from labkit.control import banned, kamcmd, unban
from labkit.devices import Device, Devices
from labkit.docker import docker, wait_healthy
from labkit.lab import PORTS, SITES, container, instances
from labkit.leases import lease
from labkit.portal import login, operator
from labkit.wait import wait_for
from pbx_app.addressing import EMERGENCY_NUMBERS
from pbx_infra.topology import ServiceKind

from .rules_kit import FRA1, Pbx, Phone, fresh_bindings

# Every call placed here gets its call record (issue 13; tests/sip/conftest.py).
pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("calls_recorded")]

DEVICES = lease("caller id", caller=24, callee=25)
CARRIER = SITES["fra"]["carrier"]
SOS = max(EMERGENCY_NUMBERS)  # 112
CLIR_PREFIX = "%2331%23"  # #31#, as phones send it
# A customer of its own, without any number: only what its location says about where it is.
NUMBERLESS = "Numberless Emergency Test GmbH"
NUMBERLESS_SITE = {
    "name": "Berlin office",
    "street": "Invalidenstrasse 1",
    "postal_code": "10115",
    "city": "Berlin",
    "area_code": "030",
}
NUMBERLESS_EXTENSION = "100"
NUMBERLESS_DEVICE = "nonum-sos-100"


@pytest.fixture(scope="module")
def box(devices: Devices) -> Device:
    return devices.start("callerid", "fra")


@pytest.fixture(scope="module")
def pbx(tenant: dict[str, Any]) -> Iterator[Pbx]:
    with login(tenant["admin_email"], tenant["admin_password"]) as api:
        admin = Pbx(api, int(tenant["customer_id"]))
        try:
            yield admin
        finally:
            admin.put_back()


@pytest.fixture
def caller(box: Device, tenant: dict[str, Any], pbx: Pbx) -> Iterator[Phone]:
    try:
        yield Phone(box, tenant, DEVICES["caller"], 5091)
    finally:
        pbx.put_back()


@pytest.fixture
def trunk(devices: Devices) -> str:
    """SIP as the carrier receives it from now on (text: headers readable)."""
    return devices.capture(CARRIER, f"trunk-{time.monotonic_ns()}", f"udp port {PORTS.sip}",
                           "-A", "-s", "0")  # fmt: skip


def invite_at_carrier(capture: str, number: str) -> str:
    """Headers of the INVITE for `number` (as the trunk gets it) the carrier received, or ''."""
    text = docker("logs", capture).stdout
    for block in re.split(r"\n(?=\d\d:\d\d:\d\d\.\d+ )", text):
        if re.search(rf"INVITE sip:{re.escape(number)}@", block):
            return block.split("\n\n", 1)[0]
    return ""


def header(invite: str, name: str) -> str:
    m = re.search(rf"^{name}: (.*)$", invite, re.M | re.I)
    return m.group(1).strip() if m else ""


def fresh_number() -> tuple[str, str]:
    """A national number nobody else dials in this run, and the trunk's E.164 form of it."""
    subscriber = f"{time.time_ns() % 10**7:07d}"
    return f"030555{subscriber}", f"+4930555{subscriber}"


def test_the_trunk_shows_a_number_the_customer_holds_never_the_devices_claim(
    pbx: Pbx, caller: Phone, trunk: str
) -> None:
    head = "+49699876"  # the demo customer's Frankfurt head number
    r = pbx.patch_extension(caller.ext, caller_id=head)
    assert r.status_code == 200, r.text
    dialled, e164 = fresh_number()
    forged = "+4930999999"
    status = caller.call(dialled, scenario="call_claim", claim=forged)
    assert status.startswith("200"), status
    invite = wait_for(lambda: invite_at_carrier(trunk, e164), 10, what="the INVITE at the carrier")
    assert re.search(rf"<sip:{re.escape(head)}@", header(invite, "From")), invite
    assert header(invite, "P-Asserted-Identity").startswith(f"<sip:{head}@"), invite
    assert forged not in invite, f"the device's claim reached the carrier:\n{invite}"
    assert not header(invite, "P-Preferred-Identity"), invite
    assert not header(invite, "Privacy"), invite


def test_a_caller_id_the_customer_does_not_hold_is_refused(pbx: Pbx, caller: Phone) -> None:
    r = pbx.patch_extension(caller.ext, caller_id="+4930123456789")
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "caller_id_not_held", r.text


def assert_anonymous(invite: str, number: str) -> None:
    assert header(invite, "From").startswith('"Anonymous" <sip:anonymous@anonymous.invalid>'), (
        invite
    )
    assert header(invite, "Privacy") == "id", invite
    assert header(invite, "P-Asserted-Identity").startswith(f"<sip:{number}@"), invite


def test_clir_per_extension_hides_the_number_in_from(pbx: Pbx, caller: Phone, trunk: str) -> None:
    r = pbx.patch_extension(caller.ext, clir=True)
    assert r.status_code == 200, r.text
    dialled, e164 = fresh_number()
    assert caller.call(dialled).startswith("200")
    assert_anonymous(wait_for(lambda: invite_at_carrier(trunk, e164), 10), caller.did)


def test_clir_per_call_with_the_prefix(caller: Phone, trunk: str) -> None:
    dialled, e164 = fresh_number()
    assert caller.call(CLIR_PREFIX + dialled).startswith("200")
    invite = wait_for(lambda: invite_at_carrier(trunk, e164), 10, what="the INVITE")
    assert_anonymous(invite, caller.did)


def test_clir_prefix_to_an_extension_hides_the_caller_from_it(
    caller: Phone, box: Device, tenant: dict[str, Any]
) -> None:
    """#31# withholds the number on this call from everyone, colleagues included."""
    callee = Phone(box, tenant, DEVICES["callee"], 5093)
    with fresh_bindings(callee):
        callee.register()
        callee.expect("answer")
        assert caller.call(CLIR_PREFIX + callee.ext).startswith("200")
        shown = re.search(r"^INVITE (?:From|f): (.*?) m=audio", callee.log(), re.M)
        assert shown, callee.log()
        assert "anonymous@anonymous.invalid" in shown.group(1), shown.group(1)
        assert caller.user not in shown.group(1), shown.group(1)


def test_clir_never_applies_to_emergency_calls(pbx: Pbx, caller: Phone, trunk: str) -> None:
    r = pbx.patch_extension(caller.ext, clir=True)
    assert r.status_code == 200, r.text
    assert caller.call(CLIR_PREFIX + SOS).startswith("200")
    invite = wait_for(lambda: invite_at_carrier(trunk, SOS), 10, what="the emergency INVITE")
    assert "anonymous" not in header(invite, "From").lower(), invite
    assert not header(invite, "Privacy"), invite
    assert header(invite, "P-Asserted-Identity").startswith(f"<sip:{caller.did}@"), invite
    assert header(invite, "X-PBX-Emergency-Location").startswith("069;"), invite


# ---- the customer without numbers --------------------------------------------------------


def _numberless_device(api: httpx.Client) -> tuple[str, str]:
    """The numberless customer's device (created once, found again later): username and a
    fresh password."""
    r = api.get("/customers", params={"limit": 100})
    assert r.status_code == 200, r.text
    found = [c for c in r.json()["items"] if c["name"] == NUMBERLESS]
    if found:
        customer = int(found[0]["id"])
    else:
        r = api.post(
            "/customers",
            json={"name": NUMBERLESS, "tariff": "basic", "contract_start": "2026-01-01"},
        )
        assert r.status_code == 201, r.text
        customer = int(r.json()["id"])
    base = f"/customers/{customer}"
    r = api.get(f"{base}/locations")
    assert r.status_code == 200, r.text
    sites = r.json()["items"]
    if not sites:
        r = api.post(f"{base}/locations", json=NUMBERLESS_SITE)
        assert r.status_code == 201, r.text
        sites = [r.json()]
    r = api.get(f"{base}/extensions")
    assert r.status_code == 200, r.text
    extensions = [e for e in r.json()["items"] if e["number"] == NUMBERLESS_EXTENSION]
    if not extensions:
        r = api.post(
            f"{base}/extensions",
            json={"location_id": sites[0]["id"], "number": NUMBERLESS_EXTENSION},
        )
        assert r.status_code == 201, r.text
        extensions = [r.json()]
    devices_url = f"{base}/extensions/{extensions[0]['id']}/devices"
    r = api.get(devices_url)
    assert r.status_code == 200, r.text
    mine = [d for d in r.json()["items"] if d["sip_username"] == NUMBERLESS_DEVICE]
    if mine:
        r = api.post(f"{devices_url}/{mine[0]['id']}/password", json={})
        assert r.status_code == 200, r.text
    else:
        r = api.post(devices_url, json={"sip_username": NUMBERLESS_DEVICE})
        assert r.status_code == 201, r.text
    return NUMBERLESS_DEVICE, str(r.json()["sip_password"])


@pytest.fixture(scope="module")
def numberless() -> tuple[str, str]:
    with operator("caller-id-tests@pbx.test") as api:
        return _numberless_device(api)


def test_numberless_customers_emergency_call_reaches_the_carrier(
    box: Device, numberless: tuple[str, str], trunk: str
) -> None:
    """The case of the issue: no number at all, so no caller ID; 112 still goes out, with the
    location's area as PAI (what the carrier routes to the emergency centre by) and the
    location itself. Its other external calls are refused (no number to show)."""
    user, password = numberless
    status = box.call(SOS, user, password, FRA1, hold_ms=300, port=5092)
    assert status.startswith("200"), f"numberless customer's {SOS}: {status}"
    invite = wait_for(lambda: invite_at_carrier(trunk, SOS), 10, what="the emergency INVITE")
    assert header(invite, "P-Asserted-Identity") == "<sip:+4930@pbx.lab;user=phone>", invite
    location = header(invite, "X-PBX-Emergency-Location")
    assert location.startswith("030;"), invite
    assert NUMBERLESS_SITE["street"] in location, invite
    assert NUMBERLESS_SITE["postal_code"] in location, invite
    assert user not in header(invite, "From"), invite

    dialled, e164 = fresh_number()
    status = box.call(dialled, user, password, FRA1, hold_ms=300, port=5092)
    assert status.startswith("403"), f"numberless customer's external call: {status}"
    assert not invite_at_carrier(trunk, e164), "an external call without a number went out"


def test_emergency_call_passes_a_ban_of_its_address(caller: Phone, trunk: str) -> None:
    """A phone behind an address another device got banned: its calls are dropped, 112 is
    not (it still authenticates)."""
    kamcmd(SITES["fra"]["proxy_containers"][0], "htable.seti", "ipban", caller.box.ip, "1")
    try:
        assert banned(SITES["fra"]["proxy_containers"][0], [caller.box.ip])
        dialled, e164 = fresh_number()
        status = caller.call(dialled, timeout=5)
        assert not status[:3].isdigit(), f"a banned address got an answer: {status}"
        assert caller.call(SOS).startswith("200")
        assert wait_for(lambda: invite_at_carrier(trunk, SOS), 10, what="the emergency INVITE")
        assert not invite_at_carrier(trunk, e164)
    finally:
        unban(caller.box.ip)


def test_emergency_call_goes_out_when_no_app_node_answers(caller: Phone, trunk: str) -> None:
    """Every app node of both sites stopped answering (paused): 112 still reaches the carrier,
    with this site's area (Frankfurt, 069) as PAI and routing data, after the proxy gave up
    asking (1 s per node)."""
    apps = [container(a) for a in instances(ServiceKind.PBX_APP)]
    docker("pause", *apps, check=True)
    try:
        status = caller.call(SOS, timeout=20)
    finally:
        docker("unpause", *apps)
        wait_healthy(apps, timeout=60)
    assert status.startswith("200"), f"{SOS} without the app: {status}"
    invite = wait_for(lambda: invite_at_carrier(trunk, SOS), 10, what="the emergency INVITE")
    assert header(invite, "P-Asserted-Identity") == "<sip:+4969@pbx.lab;user=phone>", invite
    assert header(invite, "X-PBX-Emergency-Location").startswith("069;"), invite
