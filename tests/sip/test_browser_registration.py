"""Browser phones at the proxies (issue 14): WSS registrations need the extension's Business
Option (R4), and a client that uses GRUUs as browsers (JsSIP) and Linphone do gets one on the
address it registered as (RFC 5627), with the requests of its dialogs resolved to the contact it
registered, so that calls to and from it work both ways and end from either side.

labkit.wsphone with ``gruu=True`` applies JsSIP 3.13's Request-URI check: on a proxy that hands
out GRUUs on the internal AOR (sip:c1x180@...), the browser refuses the BYE and ignores the ACK.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest

from labkit.control import clear_bindings
from labkit.devices import Device, Devices, device_creds, extension_of
from labkit.lab import CA_FILE, PLATFORM, PORTS, SIP_DOMAIN, SITES, instances
from labkit.leases import OTHER, lease
from labkit.portal import login
from labkit.wait import wait_for
from labkit.wsphone import Message, WsPhone, webrtc_sdp
from pbx_infra.topology import ServiceKind

pytestmark = pytest.mark.lab

FRA1 = SITES["fra"]["proxies"][0]
BER1 = SITES["ber"]["proxies"][0]
WSS_FRA = f"wss://{FRA1}:{PORTS.sip_wss}"
REFUSAL = "SIP/2.0 403 Business Option required for browser phones"
# JsSIP's INVITE transaction gives up on an answer nobody ACKs after 64*T1 = 32 s.
ACK_TIMEOUT_S = 32
# The demo tenant has no device left to spare: this suite shares the browser phone's
# (tests/browser/test_phone.py, the same claim), and both clear their bindings first.
DEVICES = lease("browser phone", browser_extension=39, desk=43, transfer_target=28)
PORTAL = lease("browser registration", portal=29)
# The other customer has no Business Option on its extensions.
OTHERS = lease("browser registration", OTHER, plain=7)


@pytest.fixture(scope="module")
def desk(devices: Devices) -> Device:
    return devices.start("gruu-desk-ber", "ber")


def ruri_user(request: Message) -> str:
    ruri = request.first_line.split(" ")[1]
    return re.sub(r"^sips?:", "", ruri).split("@", 1)[0]


def test_without_the_business_option_a_browser_is_refused(
    desk: Device, tenant: dict[str, Any], aor_of: Any
) -> None:
    """Refused over WSS after the digest, with an answer that says why; a browser that skips
    REGISTER gets the same for its INVITE; the same credentials register over UDP and TLS."""
    user, password = device_creds(tenant, OTHERS["plain"], OTHER)
    clear_bindings(aor_of(user))
    with WsPhone(WSS_FRA, user, password, str(CA_FILE), gruu=True) as browser:
        assert browser.register().first_line == REFUSAL
        answer, _ = browser.invite(extension_of(tenant, OTHERS["plain"], OTHER), webrtc_sdp())
        assert answer.first_line == REFUSAL
    assert desk.register(user, password, BER1, port=5091).startswith("200")
    clear_bindings(aor_of(user))
    assert desk.register(user, password, BER1, transport="l1", port=5092).startswith("200")
    clear_bindings(aor_of(user))


def test_a_gruu_client_gets_a_gruu_on_the_address_it_registered(
    tenant: dict[str, Any], aor_of: Any
) -> None:
    user, password = device_creds(tenant, DEVICES["browser_extension"])
    aor = aor_of(user)
    clear_bindings(aor)
    with WsPhone(WSS_FRA, user, password, str(CA_FILE), gruu=True) as browser:
        answer = browser.register()
        assert answer.status == 200, answer.first_line
        instance = browser.instance.strip("<>")
        assert browser.pub_gruu == f"sip:{user}@{SIP_DOMAIN};gr={instance}", answer.get("Contact")
        # The registrar's own form, <ruid>-<AOR hash in hex>, which lookup() resolves.
        assert re.fullmatch(
            rf"sip:[^@;]+-[0-9a-f]+@{re.escape(SIP_DOMAIN)};gr", browser.temp_gruu
        ), browser.temp_gruu
        assert aor not in "".join(answer.all("Contact")), "the internal AOR was handed out"
        assert browser.register(expires=0).status == 200
    clear_bindings(aor)


def test_desk_phone_calls_a_gruu_browser_that_stays_up_past_32_s(
    desk: Device, tenant: dict[str, Any], aor_of: Any
) -> None:
    """The ACK to the browser's 200 reaches it addressed to its registered contact (so JsSIP
    takes it, and does not end the call after 32 s), and the desk phone's BYE after 34 s too."""
    user, password = device_creds(tenant, DEVICES["browser_extension"])
    desk_user, desk_password = device_creds(tenant, DEVICES["desk"])
    clear_bindings(aor_of(user), aor_of(desk_user))
    with WsPhone(WSS_FRA, user, password, str(CA_FILE), gruu=True) as browser:
        assert browser.register().status == 200
        seen: dict[str, Any] = {}
        errors: list[BaseException] = []

        def browser_side() -> None:
            try:
                invite = browser.next_request("INVITE", timeout=30)
                mid = re.search(r"^a=mid:(\S+)", invite.body, re.M)
                browser.answer(invite, webrtc_sdp(setup="active", mid=mid[1] if mid else "0"))
                seen["answered"] = time.monotonic()
                seen["ack"] = browser.next_request("ACK", timeout=ACK_TIMEOUT_S)
                seen["bye"] = browser.next_request("BYE", timeout=60)
                seen["bye_at"] = time.monotonic()
                browser.reply(seen["bye"], "200 OK")
            except BaseException as e:  # reported by the main thread
                errors.append(e)

        side = threading.Thread(target=browser_side, daemon=True)
        side.start()
        status = desk.call(
            extension_of(tenant, DEVICES["browser_extension"]),
            desk_user,
            desk_password,
            BER1,
            hold_ms=34_000,
            port=5093,
            timeout=70,
        )
        side.join(70)
        refused = [m.first_line for m in browser.refused]
        assert not errors, (errors, refused, status)
        assert status.startswith("200"), status
        assert not refused, refused
        # Resolved at the proxy to the contact the browser registered (RFC 5627).
        assert ruri_user(seen["ack"]) == browser.contact_user, seen["ack"].first_line
        assert ruri_user(seen["bye"]) == browser.contact_user, seen["bye"].first_line
        assert seen["bye_at"] - seen["answered"] > ACK_TIMEOUT_S
        assert browser.register(expires=0).status == 200
    clear_bindings(aor_of(user), aor_of(desk_user))


def test_a_gruu_browser_calls_a_desk_phone_and_either_side_hangs_up(
    desk: Device, tenant: dict[str, Any], aor_of: Any
) -> None:
    user, password = device_creds(tenant, DEVICES["browser_extension"])
    callee, callee_password = device_creds(tenant, DEVICES["transfer_target"])
    clear_bindings(aor_of(user), aor_of(callee))
    target = extension_of(tenant, DEVICES["transfer_target"])
    with WsPhone(WSS_FRA, user, password, str(CA_FILE), gruu=True) as browser:
        assert browser.register().status == 200
        # The desk phone hangs up: its BYE goes to the browser's Contact, the pub-gruu.
        assert desk.register(callee, callee_password, BER1, port=5094).startswith("200")
        desk.answer(port=5094, scenario="answer_hangup")
        answer, dialog = browser.invite(target, webrtc_sdp())
        assert answer.status == 200, answer.first_line
        dialog.ack()
        try:
            bye = browser.next_request("BYE", timeout=20)
        except TimeoutError:
            shown = desk.sh("tail -c 3000 /tmp/ans-5094.log; tail -c 3000 /tmp/*errors.log")
            raise AssertionError(f"no BYE from the desk phone:\n{shown.stdout}") from None
        browser.reply(bye, "200 OK")
        assert ruri_user(bye) == browser.contact_user, bye.first_line
        hangup = wait_for(lambda: re.search(r"HANGUP (\d+)", desk.answered(5094)), 15)
        assert hangup.group(1) == "200", desk.answered(5094)[-1500:]
        # An anonymous call (JsSIP's Contact is then the temp-gruu): the desk's BYE too.
        desk.answer(port=5094, scenario="answer_hangup")
        answer, dialog = browser.invite(target, webrtc_sdp(), anonymous=True)
        assert answer.status == 200, answer.first_line
        dialog.ack()
        bye = browser.next_request("BYE", timeout=20)
        browser.reply(bye, "200 OK")
        assert ruri_user(bye) == browser.contact_user, bye.first_line
        hangup = wait_for(lambda: re.search(r"HANGUP (\d+)", desk.answered(5094)), 15)
        assert hangup.group(1) == "200", desk.answered(5094)[-1500:]
        # The browser hangs up.
        desk.answer(port=5094)
        answer, dialog = browser.invite(target, webrtc_sdp())
        assert answer.status == 200, answer.first_line
        dialog.ack()
        assert dialog.bye().status == 200
        assert not browser.refused, [m.first_line for m in browser.refused]
        assert browser.register(expires=0).status == 200
    clear_bindings(aor_of(user), aor_of(callee))


def test_credentials_from_the_portal_api_register(tenant: dict[str, Any], aor_of: Any) -> None:
    """POST /api/v1/me/browser-phone: what a logged-in admin gets registers over WSS at the
    first (home site) proxy it names, and the GRUU is on the sip_uri it was given."""
    number = extension_of(tenant, PORTAL["portal"])
    with login(tenant["admin_email"], tenant["admin_password"]) as api:
        items = api.get(f"/customers/{tenant['customer_id']}/extensions?limit=1000").json()
        ext = next(e for e in items["items"] if e["number"] == number)
        r = api.post("/me/browser-phone", json={"extension_id": ext["id"]})
        assert r.status_code == 200, r.text
        creds = r.json()
        assert api.post("/me/browser-phone", json={"extension_id": ext["id"]}).json() == creds
    names = {p.fqdn(PLATFORM): str(p.address) for p in instances(ServiceKind.SIP_PROXY)}
    host, port = creds["ws_servers"][0].removeprefix("wss://").rsplit(":", 1)
    assert (host in names, port) == (True, str(PORTS.sip_wss)), creds["ws_servers"]
    assert host.startswith("fra-"), "the home site's proxies come first"
    user = creds["authorization_user"]
    clear_bindings(aor_of(user))
    url = f"wss://{names[host]}:{port}"
    with WsPhone(
        url, user, creds["password"], str(CA_FILE), domain=creds["realm"], gruu=True
    ) as browser:
        assert browser.register().status == 200
        assert browser.pub_gruu.startswith(creds["sip_uri"] + ";gr=")
        assert browser.register(expires=0).status == 200
    clear_bindings(aor_of(user))
