"""Media profiles the proxies negotiate through rtpengine: browsers (WSS + DTLS-SRTP, ICE) meet
desk phones (plain RTP) in both directions, and a customer's "SRTP required" policy refuses a
plain RTP offer with 488."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from labkit.control import clear_bindings
from labkit.devices import Device, Devices, device_creds, extension_of
from labkit.lab import CA_FILE, PORTS, SITES, app_base, container, instances
from labkit.leases import OTHER, lease
from labkit.portal import keep_session
from labkit.wait import wait_for
from labkit.wsphone import Message, WsPhone, webrtc_sdp
from pbx_infra.topology import ServiceKind

pytestmark = pytest.mark.lab

FRA1 = SITES["fra"]["proxies"][0]
BER1 = SITES["ber"]["proxies"][0]
WSS_PORT = PORTS.sip_wss
FRA_APP = container(instances(ServiceKind.PBX_APP, "fra")[0])
DEVICES = lease(
    "media policy", desk_callee=44, browser_caller=45, desk_caller=46, browser_callee=47
)
# The other customer's: "SRTP required" is switched on for that customer.
OTHERS = lease("media policy", OTHER, plain_caller=3, callee=2)


def sdp_facts(sdp: str) -> dict[str, Any]:
    m = re.search(r"^m=audio (\d+) (\S+)", sdp, re.M)
    return {
        "proto": m.group(2) if m else "",
        "port": int(m.group(1)) if m else 0,
        "fingerprint": "a=fingerprint:" in sdp,
        "setup": (re.search(r"^a=setup:(\w+)", sdp, re.M) or [None, ""])[1],
        "ice": "a=ice-ufrag:" in sdp,
        "candidates": re.findall(r"^a=candidate:\S+ \d udp \d+ (\S+) (\d+)", sdp, re.M | re.I),
        "crypto": "a=crypto:" in sdp,
        "rtcp_mux": "a=rtcp-mux" in sdp,
    }


@pytest.fixture(scope="module")
def desk(devices: Devices) -> Device:
    return devices.start("desk-ber", "ber")


def test_browser_calls_a_desk_phone(
    devices: Devices, desk: Device, tenant: dict[str, Any], aor_of: Any
) -> None:
    """WebRTC offer over WSS at fra -> plain RTP desk phone at ber: the phone gets RTP/AVP
    without ICE or DTLS, the browser gets a DTLS-SRTP answer with ICE candidates on the relay."""
    phone_user, phone_pw = device_creds(tenant, DEVICES["desk_callee"])
    browser_user, browser_pw = device_creds(tenant, DEVICES["browser_caller"])
    for user in (phone_user, browser_user):
        clear_bindings(aor_of(user))
    assert desk.register(phone_user, phone_pw, BER1, port=5072).startswith("200")
    desk.answer(port=5072)
    with WsPhone(f"wss://{FRA1}:{WSS_PORT}", browser_user, browser_pw, str(CA_FILE)) as browser:
        assert browser.register().status == 200
        answer, dialog = browser.invite(extension_of(tenant, DEVICES["desk_callee"]), webrtc_sdp())
        assert answer.status == 200, answer.first_line
        dialog.ack()
        got = sdp_facts(answer.body)
        assert got["proto"] == "UDP/TLS/RTP/SAVPF", answer.body
        assert got["fingerprint"], answer.body
        assert got["ice"], answer.body
        assert got["rtcp_mux"], "browsers require RTCP multiplexing"
        assert got["setup"] in ("active", "passive"), answer.body
        assert (SITES["fra"]["relay_ip"], str(got["port"])) in got["candidates"], answer.body
        assert dialog.bye().status == 200
        browser.register(expires=0)
    offered = wait_for(lambda: re.search(r"m=audio \d+ \S+", desk.answered(5072)), 10)
    assert offered.group(0).endswith(" RTP/AVP"), f"desk phone was offered {offered.group(0)}"
    clear_bindings(aor_of(phone_user))


def test_desk_phone_calls_a_browser(
    devices: Devices, desk: Device, tenant: dict[str, Any], aor_of: Any
) -> None:
    """Plain RTP from a desk phone at ber -> browser registered over WSS at fra: the browser is
    offered DTLS-SRTP with ICE (rtpengine's candidates), and the call connects."""
    phone_user, phone_pw = device_creds(tenant, DEVICES["desk_caller"])
    browser_user, browser_pw = device_creds(tenant, DEVICES["browser_callee"])
    for user in (phone_user, browser_user):
        clear_bindings(aor_of(user))
    with WsPhone(f"wss://{FRA1}:{WSS_PORT}", browser_user, browser_pw, str(CA_FILE)) as browser:
        assert browser.register().status == 200
        offers: list[Message] = []
        errors: list[BaseException] = []
        stage: list[str] = []

        def browser_side() -> None:
            try:
                invite = browser.next_request("INVITE", timeout=30)
                offers.append(invite)
                mid = re.search(r"^a=mid:(\S+)", invite.body, re.M)
                browser.answer(invite, webrtc_sdp(setup="active", mid=mid[1] if mid else "0"))
                stage.append("answered")
                browser.next_request("ACK", timeout=15)
                stage.append("acked")
                browser.reply(browser.next_request("BYE", timeout=30), "200 OK")
            except BaseException as e:  # reported by the main thread
                errors.append(e)

        side = threading.Thread(target=browser_side, daemon=True)
        side.start()
        status = desk.call(
            extension_of(tenant, DEVICES["browser_callee"]),
            phone_user,
            phone_pw,
            BER1,
            hold_ms=1000,
            port=5082,
        )
        side.join(30)
        assert not errors, (stage, errors, status)
        assert status.startswith("200"), f"desk -> browser: {status}"
        assert offers, "the browser never received the INVITE"
        got = sdp_facts(offers[0].body)
        assert got["proto"] == "UDP/TLS/RTP/SAVPF", offers[0].body
        assert got["fingerprint"], offers[0].body
        assert got["ice"], offers[0].body
        assert got["candidates"], offers[0].body
        assert got["rtcp_mux"], offers[0].body
        assert not got["crypto"], "SDES keys offered to a browser"
        browser.register(expires=0)


# ---- SRTP required ------------------------------------------------------------------------


@pytest.fixture
def srtp_required(tenant: dict[str, Any]) -> Iterator[int]:
    """The other customer's operator turns on "SRTP required" (and off again afterwards)."""
    created = subprocess.run(
        ["docker", "exec", FRA_APP, "python3", "-m", "pbx_app",
         "create-operator", "--email", "sre-tests@pbx.test"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    password = json.loads(created.stdout)["password"]
    customer = int(tenant["other_customer_id"])
    with httpx.Client(base_url=app_base("fra"), timeout=10) as api:
        login = api.post("/auth/login", json={"email": "sre-tests@pbx.test", "password": password})
        assert login.status_code == 200, login.text
        keep_session(api, login)
        on = api.patch(f"/customers/{customer}", json={"srtp_required": True})
        assert on.status_code == 200, on.text
        assert on.json()["srtp_required"] is True, on.text
        try:
            yield customer
        finally:
            off = api.patch(f"/customers/{customer}", json={"srtp_required": False})
            assert off.status_code == 200, off.text


def test_plain_rtp_offer_is_refused_when_srtp_is_required(
    srtp_required: int, desk: Device, tenant: dict[str, Any]
) -> None:
    caller, password = device_creds(tenant, OTHERS["plain_caller"], key=OTHER)
    target = extension_of(tenant, OTHERS["callee"], key=OTHER)
    status = desk.call(target, caller, password, BER1, port=5083)
    assert status.startswith("488"), f"plain RTP offer under 'SRTP required': {status}"
