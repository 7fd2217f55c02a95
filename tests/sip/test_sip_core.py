"""SIP core against the running lab: registrar + DMQ, app routing, media through rtpengine, QoS.

Real peers only: sipp (Debian 13, TLS) as devices, the lab's proxies, relays, app and database.
"""

from __future__ import annotations

import itertools
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from labkit.control import clear_bindings, location_contacts, only_binding, relay_calls
from labkit.devices import Device, Devices, device_creds, extension_of
from labkit.docker import docker
from labkit.lab import ALL_PROXIES, PLATFORM, SITES, sip_target
from labkit.leases import OTHER, lease
from labkit.wait import wait_for
from pbx_app import addressing
from pbx_app.limits import max_devices_per_extension

pytestmark = pytest.mark.lab

FRA1, FRA2 = SITES["fra"]["proxies"]
BER1, BER2 = SITES["ber"]["proxies"]
DEVICES = lease(
    "sip core", caller=0, callee=1, udp=10, tcp=11, tls=12, wrong_password=13, fourth_device=20,
    busy_callee=56, busy_caller=57, natted=58,
)  # fmt: skip
OTHERS = lease("sip core", OTHER, second_device=0, moving=1)


@pytest.fixture(scope="module")
def fra_device(devices: Devices) -> Device:
    return devices.start("core-fra", "fra")


@pytest.fixture(scope="module")
def ber_device(devices: Devices) -> Device:
    return devices.start("core-ber", "ber")


@pytest.mark.parametrize("transport", ["u1", "t1", "l1"], ids=["udp", "tcp", "tls"])
def test_register_at_site_a_is_replicated_to_every_proxy(
    fra_device: Device, tenant: dict[str, Any], aor_of: Any, transport: str
) -> None:
    index = DEVICES[{"u1": "udp", "t1": "tcp", "l1": "tls"}[transport]]
    user, password = device_creds(tenant, index)
    port = 5100 + index
    status = fra_device.register(user, password, FRA1, transport=transport, port=port)
    assert status.startswith("200"), f"REGISTER over {transport} at {FRA1}: {status}"
    aor = aor_of(user)
    expected = f"{fra_device.ip}:{port}"
    for proxy in ALL_PROXIES[1:]:  # every proxy but fra-1, where it registered
        contacts = wait_for(
            lambda p=proxy: [c for c in location_contacts(p, aor) if expected in c],
            10,
            what=f"{aor} -> {expected} replicated to {proxy}",
        )
        assert contacts
    # Unregister again so the extension's contact limit is untouched for other tests.
    assert fra_device.register(user, password, FRA1, transport=transport, port=port, expires=0)[
        :3
    ] in ("200",)


def test_wrong_password_is_refused(fra_device: Device, tenant: dict[str, Any]) -> None:
    user, _ = device_creds(tenant, DEVICES["wrong_password"])
    status = fra_device.register(user, "not-the-password", FRA1, port=5113)
    assert status.startswith("401"), status


def test_tls_certificate_chains_to_the_lab_ca(fra_device: Device) -> None:
    r = fra_device.sh(
        f"echo | openssl s_client -connect {sip_target(FRA1, tls=True)} -CAfile /ca.pem "
        "-verify_return_error "
        "-brief 2>&1",
        timeout=20,
    )
    assert "Verification: OK" in r.stdout, r.stdout


def test_unknown_extension_gets_404(ber_device: Device, tenant: dict[str, Any]) -> None:
    user, password = device_creds(tenant, DEVICES["caller"])
    status = ber_device.call("999999", user, password, BER1, port=5090)
    assert status.startswith("404"), status


def test_cross_customer_internal_address_is_refused(
    ber_device: Device, tenant: dict[str, Any]
) -> None:
    """One customer's device cannot reach another customer's extension by its internal AOR."""
    user, password = device_creds(tenant, DEVICES["caller"])
    others = tenant.get("other_devices") or []
    other_aor = re.fullmatch(addressing.AOR_PATTERN, others[0].get("aor") or "") if others else None
    other_customer = int(other_aor.group(1)) if other_aor else int(tenant["customer_id"]) + 1
    target = addressing.aor(other_customer, "100")
    status = ber_device.call(target, user, password, BER1, port=5091)
    assert status.startswith("403"), f"{user} -> {target}: {status}"


def test_device_beyond_the_business_option_limit_is_refused(
    fra_device: Device, tenant: dict[str, Any]
) -> None:
    """Business Option: its device limit per extension (3); the next binding gets the
    registrar's refusal."""
    user, password = device_creds(tenant, DEVICES["fourth_device"])
    allowed = max_devices_per_extension(business_option=True)
    ports = list(range(5120, 5120 + allowed + 1))
    try:
        for port in ports[:allowed]:
            status = fra_device.register(user, password, FRA1, port=port)
            assert status.startswith("200"), f"binding {port}: {status}"
        refused = fra_device.register(user, password, FRA1, port=ports[allowed])
        assert not refused.startswith("200"), f"binding {allowed + 1} accepted: {refused}"
        assert refused.startswith(("403", "503")), refused
    finally:
        for port in ports:
            fra_device.register(user, password, FRA1, port=port, expires=0)


def test_second_device_without_business_option_is_refused(
    fra_device: Device, tenant: dict[str, Any]
) -> None:
    others = tenant.get("other_devices")
    assert others, "demo tenant has no `other_devices` (customer without Business Option)"
    user, password = device_creds(tenant, OTHERS["second_device"], key=OTHER)
    allowed = max_devices_per_extension(business_option=False)
    ports = list(range(5130, 5130 + allowed + 1))
    try:
        for port in ports[:allowed]:
            assert fra_device.register(user, password, FRA1, port=port).startswith("200")
        refused = fra_device.register(user, password, FRA1, port=ports[allowed])
        assert not refused.startswith("200"), f"binding {allowed + 1} accepted: {refused}"
    finally:
        for port in ports:
            fra_device.register(user, password, FRA1, port=port, expires=0)


def test_a_phone_that_moves_replaces_its_binding(
    fra_device: Device, tenant: dict[str, Any], aor_of: Any
) -> None:
    """A phone re-registering from a new address under its Call-ID (another site after a
    failover, a NAT rebinding, a TCP reconnect) replaces its binding on every proxy: a customer
    without the Business Option is not refused their own phone, and the old address stops
    ringing. (A REGISTER under another Call-ID is another device: refused, test above.)"""
    user, password = device_creds(tenant, OTHERS["moving"], key=OTHER)
    aor = aor_of(user)
    clear_bindings(aor)
    call_id = f"moving-{time.time_ns():x}@pbx.test"
    try:
        assert fra_device.register(user, password, FRA1, port=5134, call_id=call_id)[:3] == "200"
        moved = fra_device.register(user, password, FRA2, port=5135, call_id=call_id)
        assert moved.startswith("200"), f"the same phone from a new address: {moved}"
        for proxy in ALL_PROXIES:
            wait_for(
                lambda p=proxy: only_binding(p, aor, ":5135"),
                10,
                what=f"only the new binding of {aor} at {proxy}",
            )
    finally:
        clear_bindings(aor)


def rtp(site: str) -> str:
    """A capture filter for a site's media ports. The relay's control port is left out: a
    proxy's ephemeral port for its ng commands may fall inside a wide media range."""
    low, high = SITES[site]["rtp_ports"]
    return f"udp portrange {low}-{high} and not port {PLATFORM.ports.rtpengine_ng}"


def packets(container: str) -> list[tuple[str, str, str]]:
    """(tos, source ip.port, destination ip.port) of every captured packet."""
    lines = docker("logs", container).stdout.splitlines()
    found = []
    for first, second in itertools.pairwise(lines):
        tos = re.search(r"\(tos (0x[0-9a-f]+)", first)
        addr = re.match(r"\s+(\S+) > (\S+?):", second)
        if tos and addr:
            found.append((tos.group(1), addr.group(1), addr.group(2)))
    return found


def test_call_from_site_b_to_a_flows_through_rtpengine_with_dscp(
    devices: Devices, fra_device: Device, ber_device: Device, tenant: dict[str, Any]
) -> None:
    callee_user, callee_pw = device_creds(tenant, DEVICES["callee"])
    caller_user, caller_pw = device_creds(tenant, DEVICES["caller"])
    assert fra_device.register(callee_user, callee_pw, FRA1, port=5070).startswith("200")
    fra_relay = devices.capture(SITES["fra"]["relay"], "fra-relay", rtp("fra"))
    ber_relay = devices.capture(SITES["ber"]["relay"], "ber-relay", rtp("ber"))
    sip_at_callee = devices.capture(fra_device.name, "fra-dev", "udp port 5070")
    fra_device.answer(port=5070)
    status = ber_device.call(
        extension_of(tenant, DEVICES["callee"]), caller_user, caller_pw, BER1, hold_ms=3000,
        port=5080,
    )  # fmt: skip
    assert status.startswith("200"), f"call {caller_user} (ber) -> {callee_user} (fra): {status}"
    assert "INVITE" in fra_device.answered(5070)

    # Media: both sites' relays carried RTP (device legs on the public side, relay to relay on
    # the backbone), and what the relays sent is marked EF (TOS 0xb8).
    for cap, relay_ip in (
        (fra_relay, SITES["fra"]["relay_ip"]),
        (ber_relay, SITES["ber"]["relay_internal"]),
    ):
        # Wait for the threshold itself: the capture fills while the call's media flows.
        sent = wait_for(
            lambda c=cap, ip=relay_ip: (
                found
                if len(found := [p for p in packets(c) if p[1].startswith(ip + ".")]) >= 20
                else None
            ),
            10,
            what=f"20 RTP packets sent by {relay_ip}",
        )
        assert {tos for tos, _, _ in sent} == {"0xb8"}, f"RTP from {relay_ip} not EF: {sent[:5]}"
    to_callee = [p for p in packets(fra_relay) if p[2].startswith(fra_device.ip + ".")]
    assert to_callee, "the fra relay sent no media to the callee"

    # Signalling from the proxy to the device is marked CS3 (TOS 0x60).
    sip = [p for p in packets(sip_at_callee) if p[1].startswith(FRA1 + ".")]
    assert sip, "no SIP from the proxy captured at the device"
    assert {tos for tos, _, _ in sip} == {"0x60"}, f"SIP from {FRA1} not CS3: {sip[:5]}"


def test_a_refused_call_gives_its_relay_sessions_back_at_once(
    fra_device: Device, ber_device: Device, tenant: dict[str, Any], aor_of: Any
) -> None:
    """A call the callee refuses (486 after ringing) frees its media sessions on both relays as
    soon as it fails, instead of holding their ports until the relays' 60 s media timeout: under
    load, every busy or unanswered call would otherwise pin four ports per relay."""
    callee_user, callee_pw = device_creds(tenant, DEVICES["busy_callee"])
    caller_user, caller_pw = device_creds(tenant, DEVICES["busy_caller"])
    clear_bindings(aor_of(callee_user))
    assert fra_device.register(callee_user, callee_pw, FRA1, port=5156).startswith("200")
    try:
        fra_device.answer(port=5156, scenario="busy")
        relays = [SITES["fra"]["relay"], SITES["ber"]["relay"]]
        call_id = f"busy-{time.time_ns():x}@pbx.test"
        with ThreadPoolExecutor(1) as pool:
            placed = pool.submit(
                ber_device.call, extension_of(tenant, DEVICES["busy_callee"]), caller_user,
                caller_pw, BER1,
                port=5157, call_id=call_id,
            )  # fmt: skip
            # While the callee rings, each site's relay anchors its leg of the call.
            for relay in relays:
                wait_for(
                    lambda r=relay: call_id in relay_calls(r), 10, what=f"{call_id} on {relay}"
                )
            status = placed.result(timeout=60)
        assert status.startswith("486"), f"call to a busy device: {status}"
        assert "INVITE" in fra_device.answered(5156)
        for relay in relays:
            wait_for(
                lambda r=relay: call_id not in relay_calls(r),
                5,
                what=f"{call_id} released on {relay}",
            )
    finally:
        clear_bindings(aor_of(callee_user))


def test_a_natted_phone_is_kept_alive_by_its_own_proxy_only(
    fra_device: Device, tenant: dict[str, Any], aor_of: Any
) -> None:
    """Every proxy holds every binding (DMQ), but only the proxy a UDP phone registered with
    sends it NAT keepalives (through the Path, so they come from that proxy): one OPTIONS per
    30 s ping interval, not one from each of the four proxies."""
    user, password = device_creds(tenant, DEVICES["natted"])
    clear_bindings(aor_of(user))
    port = 5158
    assert fra_device.register(user, password, FRA1, port=port).startswith("200")
    try:
        # One ping interval (30 s) and ten seconds for a loaded machine: one or two keepalives
        # with the filter, at least four (one per proxy) without it.
        heard = fra_device.sh(
            f"timeout 40 tcpdump -i any -nn -l -A 'udp and dst host {fra_device.ip} and dst port "
            f"{port}' 2>/dev/null",
            timeout=60,
        ).stdout
        options = re.findall(r"OPTIONS sip:", heard)
        pings = set(re.findall(r"Call-ID: (\S+)", heard, re.I))
        assert options, "no NAT keepalive reached the phone within one ping interval"
        assert 1 <= len(pings) <= 2, f"{len(pings)} keepalives in 40 s: {sorted(pings)}"
    finally:
        fra_device.register(user, password, FRA1, port=port, expires=0)
