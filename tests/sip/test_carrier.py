"""The trunk to the (simulated) carrier: calls to public numbers and emergency calls leave with
the caller's public number, and a public number (DID) called from outside rings its extension."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from labkit.control import clear_bindings
from labkit.devices import Device, Devices, device_creds, extension_of, scenario_text
from labkit.docker import docker
from labkit.lab import PORTS, SITES, sip_target
from labkit.leases import lease
from labkit.wait import wait_for
from pbx_app.addressing import EMERGENCY_NUMBERS

# Every call placed here gets its call record (issue 13; tests/sip/conftest.py).
pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("calls_recorded")]

FRA1 = SITES["fra"]["proxies"][0]
BER1 = SITES["ber"]["proxies"][0]
BER1_INTERNAL = SITES["ber"]["proxy_internals"][0]
CARRIER, CARRIER_IP = SITES["fra"]["carrier"], SITES["fra"]["carrier_ip"]
DEVICES = lease("carrier trunk", national=51, emergency=52, did_callee=53)


@pytest.fixture(scope="module")
def caller(devices: Devices) -> Device:
    return devices.start("trunk-fra", "fra")


@pytest.fixture(scope="module")
def trunk_capture(devices: Devices) -> str:
    """SIP as the carrier receives it (text, so the headers can be read)."""
    return devices.capture(CARRIER, "carrier", f"udp port {PORTS.sip}", "-A", "-s", "0")


def invite_at_carrier(capture: str, number: str) -> str:
    """The INVITE for `number` the carrier received (its headers), or ''."""
    text = docker("logs", capture).stdout
    for block in re.split(r"\n(?=\d\d:\d\d:\d\d\.\d+ )", text):
        # The trunk gets national numbers in E.164 (+49...), short codes as dialled.
        if re.search(rf"INVITE sip:(\+49|0)?{re.escape(number.lstrip('0'))}@", block):
            return block
    return ""


@pytest.mark.parametrize(
    ("number", "index"),
    [("030555123456", DEVICES["national"]), (max(EMERGENCY_NUMBERS), DEVICES["emergency"])],
    ids=["national", "emergency"],
)
def test_call_leaves_through_the_trunk_with_the_callers_did(
    caller: Device, trunk_capture: str, tenant: dict[str, Any], number: str, index: int
) -> None:
    user, password = device_creds(tenant, index)
    did = tenant["devices"][index]["did"]
    status = caller.call(number, user, password, FRA1, hold_ms=500, port=5084 + index % 10)
    assert status.startswith("200"), f"{user} -> {number} through the trunk: {status}"
    invite = wait_for(lambda: invite_at_carrier(trunk_capture, number), 10, what="the INVITE")
    assert re.search(rf"^From: .*<sip:{re.escape(did)}@", invite, re.M), invite
    assert re.search(rf"^P-Asserted-Identity: <sip:{re.escape(did)}@", invite, re.M), invite
    identities = re.findall(r"^(?:From|P-Asserted-Identity): .*$", invite, re.M)
    assert not [i for i in identities if user in i], f"caller's username shown: {identities}"


def test_did_called_from_outside_rings_its_extension(
    devices: Devices, tenant: dict[str, Any], aor_of: Any
) -> None:
    callee = devices.start("did-callee", "ber")
    index = DEVICES["did_callee"]
    user, password = device_creds(tenant, index)
    did = tenant["devices"][index]["did"]
    assert did.endswith(extension_of(tenant, index)), f"demo data: {did} is not {user}'s DID"
    clear_bindings(aor_of(user))
    assert callee.register(user, password, BER1, port=5073).startswith("200")
    callee.answer(port=5073)
    # The carrier's side: a call from the trunk address to a ber proxy's internal socket.
    scenario = scenario_text("trunk_call")
    r = docker(
        "exec", CARRIER, "sh", "-c",
        f"cat > /tmp/trunk_call.xml <<'XML'\n{scenario}XML\n"
        f"sipp {sip_target(BER1_INTERNAL)} -sf /tmp/trunk_call.xml -s '{did}' -i {CARRIER_IP} "
        "-p 5099 -m 1 -nostdin -timeout 20s",
        timeout=40,
    )  # fmt: skip
    assert r.returncode == 0, f"inbound call to {did} failed:\n{r.stdout[-1500:]}{r.stderr}"
    invite = wait_for(lambda: re.search(r"INVITE [^\n]*", callee.answered(5073)), 10)
    assert "RTP/AVP" in invite.group(0), invite.group(0)
    clear_bindings(aor_of(user))


# A request that claims to belong to a dialog (it has a To tag) and names the proxy as its loose
# route, aimed at the trunk: what a toll fraudster sends to make a proxy call out for free.
# argv: proxy, its SIP port, Request-URI, Route parameters, own address. Prints the first
# answer's status line, or "silence".
FORGED_IN_DIALOG = r"""
import socket, sys, uuid
proxy, port, ruri, params, me = sys.argv[1:6]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((me, 0))
own_port = s.getsockname()[1]
sdp = f"v=0\r\no=- 1 1 IN IP4 {me}\r\ns=-\r\nc=IN IP4 {me}\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8\r\n"
s.sendto((
    f"INVITE {ruri} SIP/2.0\r\n"
    f"Via: SIP/2.0/UDP {me}:{own_port};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
    f"Route: <sip:{proxy};lr{params}>\r\n"
    f"From: <sip:fraud@{me}>;tag=f{uuid.uuid4().hex[:8]}\r\n"
    f"To: <{ruri}>;tag=t{uuid.uuid4().hex[:8]}\r\n"
    f"Call-ID: {uuid.uuid4().hex}\r\nCSeq: 2 INVITE\r\nMax-Forwards: 70\r\n"
    f"Contact: <sip:fraud@{me}:{own_port}>\r\nContent-Type: application/sdp\r\n"
    f"Content-Length: {len(sdp)}\r\n\r\n{sdp}"
).encode(), (proxy, int(port)))
s.settimeout(3)
try:
    while True:
        line = s.recv(65535).decode(errors="replace").split("\r\n", 1)[0]
        if not line.startswith("SIP/2.0 1"):
            break
except TimeoutError:
    line = "silence"
print(line)
"""


@pytest.mark.parametrize(
    "route_params",
    ["", ";ftag=f00d;pbxsig=" + "A" * 43],
    ids=["unsigned-route", "forged-signature"],
)
def test_a_forged_in_dialog_request_does_not_reach_the_trunk(
    caller: Device, trunk_capture: str, route_params: str
) -> None:
    """In-dialog requests follow the Record-Route set without a new authentication, so the
    proxies only accept a route set they signed themselves; a forged one is refused before
    anything is sent on."""
    number = f"+4930{time.time_ns() % 10**8:08d}"
    r = caller.sh(
        f"python3 -c '{FORGED_IN_DIALOG}' {FRA1} {PORTS.sip} "
        f"'sip:{number}@{sip_target(CARRIER_IP)}' '{route_params}' {caller.ip}",
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    answer = r.stdout.strip()
    assert answer.startswith("SIP/2.0 403"), f"forged in-dialog INVITE got: {answer}"
    # Had the proxy relayed it, the carrier would have seen it before we got an answer.
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        assert not invite_at_carrier(trunk_capture, number), "the forged INVITE reached the trunk"
        time.sleep(0.2)
