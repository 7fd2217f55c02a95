"""baresip over TLS with mandatory SRTP calls another baresip across the sites: the call
connects and what travels on the wire is SRTP, never plain RTP."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest

from .conftest import (
    SITES,
    Devices,
    clear_bindings,
    device_creds,
    docker,
    extension_of,
    start_baresip,
    wait_for,
)
from .test_sip_core import capture

pytestmark = pytest.mark.lab

# G.711 at 20 ms: 160 bytes of audio + 12 bytes RTP header. SRTP adds an authentication tag
# (10 bytes for AES_CM_128_HMAC_SHA1_80, 16 for AEAD_AES_*_GCM), so SRTP is never 172 bytes.
PLAIN_RTP_PCMA = 172
SRTP_PCMA = {PLAIN_RTP_PCMA + 10, PLAIN_RTP_PCMA + 16}


def test_baresip_tls_srtp_call_across_sites(
    devices: Devices, tenant: dict[str, Any], aor_of: Any
) -> None:
    callee_dev = devices.start("srtp-callee", "fra")
    caller_dev = devices.start("srtp-caller", "ber")
    callee_user, callee_pw = device_creds(tenant, 31)
    caller_user, caller_pw = device_creds(tenant, 30)
    # Bindings of earlier runs' baresips (dead UAs) would fill max_contacts and get the call.
    for user in (callee_user, caller_user):
        clear_bindings(aor_of(user))
    # Both find their home site's proxies by DNS SRV (_sips._tcp.pbx.lab) and register over TLS.
    callee_log = start_baresip(callee_dev, callee_user, callee_pw, "sip:pbx.lab;transport=tls")
    wait_for(
        lambda: "{0/TLS/v4} 200 OK" in callee_dev.sh(f"cat {callee_log}").stdout,
        15,
        what=f"{callee_user} registered over TLS",
    )
    on_wire = capture(callee_dev.name, "srtp-callee", "udp and not port 53", devices)
    caller_log = start_baresip(
        caller_dev,
        caller_user,
        caller_pw,
        "sip:pbx.lab;transport=tls",
        dial=f"sip:{extension_of(tenant, 31)}@pbx.lab",
        seconds=15,
    )
    established = wait_for(
        lambda: re.search(
            r"Call established|call: established|established",
            caller_dev.sh(f"cat {caller_log}").stdout,
        ),
        20,
        what="the SRTP call to be established",
    )
    assert established

    # baresip reports the negotiated suite once the secured stream starts, after "established".
    def secured_log() -> str | None:
        text = caller_dev.sh(f"cat {caller_log}").stdout
        return text if "cryptosuite=" in text else None

    log = wait_for(
        secured_log,
        10,
        what="an SRTP cryptosuite in the caller's log",
    )
    assert "{0/TLS/v4} 200 OK" in log, log[-2000:]

    relay = SITES["fra"]["relay_ip"]

    def relayed_lengths() -> list[int] | None:
        text = docker("logs", on_wire).stdout
        found = re.findall(rf"{re.escape(relay)}\.\d+ > \S+: UDP, length (\d+)", text)
        return [int(n) for n in found] if len(found) >= 25 else None

    lengths = wait_for(relayed_lengths, 15, what="media from the relay at the callee")
    assert PLAIN_RTP_PCMA not in lengths, f"plain RTP (172-byte G.711) on the wire: {lengths[:20]}"
    # The audio stream is the dominant size; SRTCP reports (smaller) ride on the same ports.
    audio, _ = Counter(lengths).most_common(1)[0]
    assert audio in SRTP_PCMA, f"{audio}-byte audio is not SRTP: {sorted(set(lengths))}"
