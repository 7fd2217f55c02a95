"""Site failover: site A's proxies and relay stop while a call runs; devices re-register at site B
by DNS SRV, bindings made at B before the stop stay reachable, and new calls connect. Site A is
started again afterwards and its proxies re-learn the location table over DMQ without the
bindings that were removed while they were down.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from labkit.control import clear_bindings, dmq_peers, location_contacts, only_binding
from labkit.devices import Device, Devices, aor_for, device_creds, extension_of, unique_call_id
from labkit.docker import docker, wait_healthy
from labkit.lab import ALL_PROXIES, RELAYS, SIP_DOMAIN, SITES, sip_target, site_of
from labkit.leases import lease
from labkit.wait import wait_for

pytestmark = [pytest.mark.lab, pytest.mark.disruptive]

SITE_A = SITES["fra"]["proxy_containers"] + [SITES["fra"]["relay"]]
DEVICES = lease(
    "site failover", roamer=40, local_b=41, gone=42, no_relay_callee=54, no_relay_caller=55,
    vip_phone=77, vip_callee=78,
)  # fmt: skip
RESULT = {}


def srv_targets(device: Device, dns: str) -> list[str]:
    """_sip._udp.pbx.lab as the device's resolver answers it, best priority first, as IPs."""
    answer = device.sh(f"dig +short @{dns} SRV _sip._udp.{SIP_DOMAIN}").stdout
    records = sorted(
        (int(p), -int(w), t.rstrip("."))
        for p, w, _, t in (line.split() for line in answer.splitlines() if line)
    )
    ips = []
    for _, _, target in records:
        address = device.sh(f"dig +short @{dns} A {target}").stdout.strip()
        assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", address), f"{target}: {address!r}"
        ips.append(address)
    return ips


def register_by_srv(device: Device, user: str, password: str, port: int, call_id: str) -> str:
    """What a phone does: try the SRV targets in order until one answers, keeping the Call-ID
    of its registrations; returns the proxy."""
    for proxy in srv_targets(device, SITES[device.site]["dns"]):
        site = site_of(proxy)
        ip = device.ip if site == device.site else device.extra_ips.get(str(site), "")
        if not ip:
            continue
        status = device.register(user, password, proxy, port=port, ip=ip, timeout=3,
                                 call_id=call_id)  # fmt: skip
        if status.startswith("200"):
            return proxy
    raise AssertionError(f"{user}: no SRV target accepted the registration")


def test_site_a_failover_and_resync(devices: Devices, tenant: dict[str, Any]) -> None:
    # A device "on the internet": home site fra (its DNS prefers fra), can reach ber too.
    roamer = devices.start("fo-roamer", "fra", also=("ber",))
    local_b = devices.start("fo-local-b", "ber")
    roamer_user, roamer_pw = device_creds(tenant, DEVICES["roamer"])
    b_user, b_pw = device_creds(tenant, DEVICES["local_b"])
    gone_user, gone_pw = device_creds(tenant, DEVICES["gone"])
    # Bindings of earlier runs (same addresses, dead UAs) would get the calls forked.
    for user in (roamer_user, b_user, gone_user):
        clear_bindings(aor_for(user))

    roamer_call_id = f"roamer-{time.time_ns():x}@pbx.test"
    assert site_of(register_by_srv(roamer, roamer_user, roamer_pw, 5070, roamer_call_id)) == "fra"
    assert local_b.register(b_user, b_pw, SITES["ber"]["proxies"][0], port=5070).startswith("200")
    # A binding that will be removed while site A is down: must not come back after re-sync.
    assert local_b.register(gone_user, gone_pw, SITES["ber"]["proxies"][0], port=5071)[:3] == "200"

    # A call running through site A (ber device -> roamer registered at fra).
    roamer.answer(port=5070)
    local_b.sh(
        f"cd /tmp && (timeout 60 sipp {sip_target(SITES['ber']['proxies'][0])} "
        f"-sf /scen/call.xml -s {extension_of(tenant, DEVICES['roamer'])} -set caller {b_user} "
        f"-set hold 40000 -au {b_user} "
        f"-ap '{b_pw}' -cid_str {unique_call_id()} -i {local_b.ip} -p 5090 -m 1 -nostdin "
        f"-trace_logs "
        f"-log_file /tmp/running.log >/dev/null 2>&1 &)"
    )
    wait_for(
        lambda: "STATUS 200" in local_b.sh("cat /tmp/running.log 2>/dev/null").stdout,
        15,
        what="the call through site A to be up",
    )

    stopped_at = time.monotonic()
    try:
        for name in SITE_A:
            docker("kill", name, check=True)
        RESULT["site_a_killed_s"] = round(time.monotonic() - stopped_at, 1)
        # The phone's clock starts once site A is gone (killing its containers takes a second).
        stopped_at = time.monotonic()
        # The roamer's registrations now fail over to site B by SRV.
        proxy = register_by_srv(roamer, roamer_user, roamer_pw, 5072, roamer_call_id)
        assert site_of(proxy) == "ber", proxy
        RESULT["registered_at_b_s"] = round(time.monotonic() - stopped_at, 1)
        # Its new binding replaced the one through the dead site on the surviving proxies.
        for name in SITES["ber"]["proxy_containers"]:
            wait_for(
                lambda n=name: only_binding(n, aor_for(roamer_user), ":5072"),
                10,
                what=f"the roamer's binding at {name} moved to site B",
            )
        # A binding made before the stop (at site B) is reachable through site B.
        local_b.answer(port=5070)
        status = roamer.call(
            extension_of(tenant, DEVICES["local_b"]), roamer_user, roamer_pw, proxy,
            hold_ms=200, port=5080, ip=roamer.extra_ips["ber"],
        )  # fmt: skip
        assert status.startswith("200"), f"call after failover: {status}"
        RESULT["stop_to_first_call_s"] = round(time.monotonic() - stopped_at, 1)
        print(f"\nfailover: site A gone to first successful call: {RESULT}")
        # One SRV target per site: the phone spends one transaction timeout (3 s) on site A.
        assert RESULT["registered_at_b_s"] < 5, RESULT
        assert RESULT["stop_to_first_call_s"] < 7, RESULT

        # The re-registered roamer is reachable through site B too (new call towards it).
        roamer.answer(port=5072, ip=roamer.extra_ips["ber"])
        status = local_b.call(
            extension_of(tenant, DEVICES["roamer"]),
            b_user,
            b_pw,
            SITES["ber"]["proxies"][1],
            port=5091,
        )
        assert status.startswith("200"), f"call to the re-registered roamer: {status}"

        # Removed while site A is down.
        assert local_b.register(gone_user, gone_pw, SITES["ber"]["proxies"][0], port=5071,
                                expires=0)[:3] == "200"  # fmt: skip
    finally:
        for name in SITE_A:
            docker("start", name)
    wait_healthy(SITES["fra"]["proxy_containers"], timeout=90)

    # DMQ re-sync: the restarted proxies learn the table again, without the removed binding.
    fra1 = SITES["fra"]["proxy_containers"][0]
    b_aor = wait_for(
        lambda: location_contacts(fra1, aor_for(b_user)), 30, what=f"{b_user} synced to {fra1}"
    )
    assert any(local_b.ip in c for c in b_aor)
    gone = f"{local_b.ip}:5071"
    assert not [c for c in location_contacts(fra1, aor_for(gone_user)) if gone in c], gone
    # The roamer's old binding through site A does not come back either.
    wait_for(lambda: only_binding(fra1, aor_for(roamer_user), ":5072"), 30, what="roamer on fra-1")
    # Every proxy knows every other exactly once again (a duplicated peer would get every
    # replication message twice; the proxies' healthcheck removes one that 6.0.1 may add).
    for proxy in ALL_PROXIES:
        wait_for(lambda p=proxy: dmq_peers_once(p), 30, 2, f"{proxy} lists each DMQ peer once")
    # Clean up the bindings this test made.
    local_b.register(b_user, b_pw, SITES["ber"]["proxies"][0], port=5070, expires=0)


def vip_holder(site: str) -> str | None:
    """The proxy of `site` that holds the site's shared SIP address now."""
    vip = SITES[site]["vip"]
    for name in SITES[site]["proxy_containers"]:
        shown = docker("exec", name, "ip", "-o", "-4", "addr", "show", timeout=10).stdout
        if f" {vip}/" in shown:
            return name
    return None


def test_losing_the_proxy_that_holds_the_sites_address(
    devices: Devices, tenant: dict[str, Any]
) -> None:
    """A phone knows its site by one address. When the proxy holding it dies, the site's other
    proxy takes the address over (VRRP): the phone's next REGISTER and call go to the same
    address and succeed, without a DNS lookup or a change of site."""
    phone, callee = devices.start("vip-phone", "fra"), devices.start("vip-callee", "fra")
    user, pw = device_creds(tenant, DEVICES["vip_phone"])
    callee_user, callee_pw = device_creds(tenant, DEVICES["vip_callee"])
    for u in (user, callee_user):
        clear_bindings(aor_for(u))
    vip = SITES["fra"]["vip"]
    holder = wait_for(lambda: vip_holder("fra"), 20, what="a holder of the fra address")
    assert phone.register(user, pw, vip, port=5070, call_id="vip-" + unique_call_id())[:3] == "200"
    killed_at = time.monotonic()
    docker("kill", holder, check=True)
    try:
        taken = wait_for(
            lambda: (h := vip_holder("fra")) and h != holder and h,
            10,
            0.2,
            "the address taken over",
        )
        result = {"taken_over_s": round(time.monotonic() - killed_at, 1), "by": taken}
        status = ""
        while time.monotonic() - killed_at < 15:
            status = phone.register(user, pw, vip, port=5071, timeout=2)
            if status.startswith("200"):
                break
        assert status.startswith("200"), f"REGISTER to {vip} after the takeover: {status}"
        result["registered_s"] = round(time.monotonic() - killed_at, 1)
        assert callee.register(callee_user, callee_pw, vip, port=5070)[:3] == "200"
        callee.answer(port=5070)
        status = phone.call(
            extension_of(tenant, DEVICES["vip_callee"]), user, pw, vip, hold_ms=300, port=5080
        )
        assert status.startswith("200"), f"call through {vip} after the takeover: {status}"
        result["first_call_s"] = round(time.monotonic() - killed_at, 1)
        print(f"\nsite address takeover: {result}")
        assert result["first_call_s"] < 5, result
    finally:
        docker("start", holder)
    wait_healthy([holder], timeout=90)
    # It does not take the address back (no second interruption for TCP/TLS phones).
    assert vip_holder("fra") == taken
    for u in (user, callee_user):
        clear_bindings(aor_for(u))


def dmq_peers_once(proxy: str) -> list[str] | None:
    peers = dmq_peers(proxy)
    return peers if len(peers) == len(set(peers)) == len(ALL_PROXIES) - 1 else None


def relays_enabled_everywhere() -> bool:
    """Every proxy uses both relays again (a relay that failed is skipped for a while)."""
    for proxy in ALL_PROXIES:
        out = docker("exec", proxy, "kamcmd", "rtpengine.show", "all", timeout=20).stdout
        if re.findall(r"disabled: (\d+)", out) != ["0", "0"]:
            return False
    return True


def test_call_without_any_media_relay_is_refused(devices: Devices, tenant: dict[str, Any]) -> None:
    """Media always goes through a relay: with none reachable a call is refused (503), never
    connected around the relays."""
    callee, caller = devices.start("nr-callee", "fra"), devices.start("nr-caller", "fra")
    callee_user, callee_pw = device_creds(tenant, DEVICES["no_relay_callee"])
    caller_user, caller_pw = device_creds(tenant, DEVICES["no_relay_caller"])
    clear_bindings(aor_for(callee_user))
    proxy = SITES["fra"]["proxies"][0]
    assert callee.register(callee_user, callee_pw, proxy, port=5074).startswith("200")
    callee.answer(port=5074)
    relays = RELAYS
    try:
        for relay in relays:
            docker("stop", "-t", "1", relay, check=True)
        status = caller.call(
            extension_of(tenant, DEVICES["no_relay_callee"]), caller_user, caller_pw, proxy,
            port=5085,
        )  # fmt: skip
        assert status.startswith("503"), f"call without media relays: {status}"
        assert "INVITE" not in callee.answered(5074), "the callee rang without a media relay"
    finally:
        for relay in relays:
            docker("start", relay)
        clear_bindings(aor_for(callee_user))
    wait_healthy(relays, timeout=60)
    # The proxies ping their relays every 5 s: a relay that is back is used again at once.
    wait_for(relays_enabled_everywhere, 20, 1, "both relays back in use on every proxy")
