"""baresip over TLS with mandatory SRTP calls another baresip across the sites: the call
connects and what travels on the wire is SRTP, never plain RTP."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest

from labkit.baresip import logs_on_failure, start_baresip
from labkit.control import clear_bindings
from labkit.devices import Devices, device_creds, extension_of
from labkit.docker import docker
from labkit.lab import PORTS, SIP_DOMAIN, SITES
from labkit.leases import lease
from labkit.wait import wait_for

pytestmark = pytest.mark.lab

DEVICES = lease("srtp", caller=30, callee=31, srtp_phone=32, plain_phone=33)
OUTBOUND = f"sip:{SIP_DOMAIN};transport=tls"  # the home site's proxies by DNS SRV

STANDARD_SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")

# G.711 at 20 ms: 160 bytes of audio + 12 bytes RTP header. SRTP adds an authentication tag
# (10 bytes for AES_CM_128_HMAC_SHA1_80, 16 for AEAD_AES_*_GCM), so SRTP is never 172 bytes.
PLAIN_RTP_PCMA = 172
SRTP_PCMA = {PLAIN_RTP_PCMA + 10, PLAIN_RTP_PCMA + 16}


def test_baresip_tls_srtp_call_across_sites(
    devices: Devices, tenant: dict[str, Any], aor_of: Any
) -> None:
    callee_dev = devices.start("srtp-callee", "fra")
    caller_dev = devices.start("srtp-caller", "ber")
    callee_user, callee_pw = device_creds(tenant, DEVICES["callee"])
    caller_user, caller_pw = device_creds(tenant, DEVICES["caller"])
    # Bindings of earlier runs' baresips (dead UAs) would fill max_contacts and get the call.
    for user in (callee_user, caller_user):
        clear_bindings(aor_of(user))
    # Both find their home site's proxies by DNS SRV (_sips._tcp.pbx.lab) and register over TLS.
    callee_log = start_baresip(callee_dev, callee_user, callee_pw, OUTBOUND)
    wait_for(
        lambda: "{0/TLS/v4} 200 OK" in callee_dev.sh(f"cat {callee_log}").stdout,
        15,
        what=f"{callee_user} registered over TLS",
    )
    on_wire = devices.capture(callee_dev.name, "srtp-callee", f"udp and not port {PORTS.dns}")
    caller_log = start_baresip(
        caller_dev,
        caller_user,
        caller_pw,
        OUTBOUND,
        dial=f"sip:{extension_of(tenant, DEVICES['callee'])}@{SIP_DOMAIN}",
        seconds=15,
    )
    with logs_on_failure((caller_dev, caller_log), (callee_dev, callee_log)):
        wait_for(
            lambda: "established" in caller_dev.sh(f"cat {caller_log}").stdout,
            20,
            what="the SRTP call to be established",
        )

        # baresip reports the negotiated suite once the secured stream starts, after
        # "established".
        def secured_log() -> str | None:
            text = caller_dev.sh(f"cat {caller_log}").stdout
            return text if "cryptosuite=" in text else None

        log = wait_for(secured_log, 10, what="an SRTP cryptosuite in the caller's log")
        assert "{0/TLS/v4} 200 OK" in log, log[-2000:]

        relay = SITES["fra"]["relay_ip"]

        def relayed_lengths() -> list[int] | None:
            text = docker("logs", on_wire).stdout
            found = re.findall(rf"{re.escape(relay)}\.\d+ > \S+: UDP, length (\d+)", text)
            return [int(n) for n in found] if len(found) >= 25 else None

        lengths = wait_for(relayed_lengths, 15, what="media from the relay at the callee")
        # The relay offers phones the two suites every SRTP phone has, nothing exotic.
        suite = re.search(r"cryptosuite=(\w+)", callee_dev.sh(f"cat {callee_log}").stdout)
        assert suite, "no SRTP suite in the callee's log"
        assert suite.group(1) in STANDARD_SUITES, f"callee negotiated {suite.group(1)}"
    assert PLAIN_RTP_PCMA not in lengths, f"plain RTP (172-byte G.711) on the wire: {lengths[:20]}"
    # The audio stream is the dominant size; SRTCP reports (smaller) ride on the same ports.
    audio, _ = Counter(lengths).most_common(1)[0]
    assert audio in SRTP_PCMA, f"{audio}-byte audio is not SRTP: {sorted(set(lengths))}"


def test_srtp_phone_and_plain_rtp_phone_are_bridged(
    devices: Devices, tenant: dict[str, Any], aor_of: Any
) -> None:
    """A TLS phone with mandatory SRTP calls a plain RTP phone: the relay bridges the two, so
    the SRTP side sees only SRTP and the plain phone is offered (and sent) plain RTP."""
    plain = devices.start("bridge-plain", "fra")
    secure = devices.start("bridge-srtp", "fra")
    plain_user, plain_pw = device_creds(tenant, DEVICES["plain_phone"])
    secure_user, secure_pw = device_creds(tenant, DEVICES["srtp_phone"])
    for user in (plain_user, secure_user):
        clear_bindings(aor_of(user))
    assert plain.register(plain_user, plain_pw, SITES["fra"]["proxies"][0], port=5075)[:3] == "200"
    plain.answer(port=5075)
    at_secure = devices.capture(secure.name, "bridge-srtp", f"udp and not port {PORTS.dns}")
    at_plain = devices.capture(plain.name, "bridge-plain", "udp portrange 6000-6100")
    log = start_baresip(
        secure, secure_user, secure_pw, OUTBOUND,
        dial=f"sip:{extension_of(tenant, DEVICES['plain_phone'])}@{SIP_DOMAIN}", seconds=12,
    )  # fmt: skip
    with logs_on_failure((secure, log)):
        wait_for(
            lambda: "cryptosuite=" in secure.sh(f"cat {log}").stdout,
            20,
            what="the SRTP phone's call to be secured",
        )
        offered = wait_for(lambda: re.search(r"m=audio \d+ \S+", plain.answered(5075)), 10)
        assert offered.group(0).endswith(" RTP/AVP"), f"plain phone was offered {offered.group(0)}"

        relay = re.escape(SITES["fra"]["relay_ip"])

        def lengths(capture_name: str, enough: int) -> list[int] | None:
            text = docker("logs", capture_name).stdout
            found = [int(n) for n in re.findall(rf"{relay}\.\d+ > \S+: UDP, length (\d+)", text)]
            return found if len(found) >= enough else None

        to_secure = wait_for(lambda: lengths(at_secure, 25), 15, what="media to the SRTP phone")
        to_plain = wait_for(lambda: lengths(at_plain, 25), 15, what="media to the plain phone")
    assert Counter(to_secure).most_common(1)[0][0] in SRTP_PCMA, sorted(set(to_secure))
    assert Counter(to_plain).most_common(1)[0][0] == PLAIN_RTP_PCMA, sorted(set(to_plain))
