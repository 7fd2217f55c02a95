"""The lab test kit without the lab: its addresses are the topology's, device leases do not
overlap, the stand-in hosts have one source, and the SIP benchmark's result is a pure function
of what it measured."""

from __future__ import annotations

import importlib
import ipaddress
import json
import re
import subprocess
import sys

import pytest

from labkit import hosts, lab
from labkit.leases import REGISTRY, LeaseConflict, Registry
from pbx_infra.inventory import LAB_STAND_INS, ansible_inventory
from pbx_infra.topology import ServiceKind

REPO = lab.REPO


def _claimants() -> list[str]:
    """Every module of tests/, bench/ and labkit/ that leases demo devices."""
    found = []
    for top in ("tests", "bench", "labkit"):
        for path in sorted((REPO / top).rglob("*.py")):
            if re.search(r"^\S.*= lease\(", path.read_text(), re.M):
                found.append(".".join(path.relative_to(REPO).with_suffix("").parts))
    return found


def test_every_suite_leases_demo_devices_of_its_own() -> None:
    claimants = _claimants()
    assert {"bench.sip_plan", "labkit.callflow", "tests.sip.test_sip_core"} <= set(claimants)
    for module in claimants:
        importlib.import_module(module)  # a device claimed twice is a LeaseConflict here
    purposes = {purpose for purpose, _ in REGISTRY.held.values()}
    assert len(purposes) >= len(claimants)


def test_a_device_claimed_by_a_second_suite_fails_loudly() -> None:
    registry = Registry()
    registry.claim("drills", "devices", {"caller": 70, "callee": [71, 72]})
    registry.claim("drills", "devices", {"caller": 70, "callee": [71, 72]})  # imported again
    registry.claim("other customer", "other_devices", {"phone": 70})  # another tenant key
    with pytest.raises(LeaseConflict, match=r"devices\[71\]: 'drills' \(callee\) and 'bench'"):
        registry.claim("bench", "devices", {"callers": range(71, 75)})
    with pytest.raises(LeaseConflict, match="twice"):
        registry.claim("careless", "devices", {"a": 1, "b": 1})
    registry.release("drills")
    assert registry.claim("bench", "devices", {"callers": range(71, 75)}).many("callers") == (
        71,
        72,
        73,
        74,
    )


def test_lab_addresses_are_the_topologys() -> None:
    platform = lab.PLATFORM
    for site, info in lab.SITES.items():
        proxies = platform.instances(ServiceKind.SIP_PROXY, site)
        assert info["proxies"] == [str(p.address) for p in proxies]
        assert info["proxy_internals"] == [str(p.internal) for p in proxies]
        assert info["vip"] == str(platform.sip_vip(site))
        assert info["net"] == platform.network_name(site)
        assert lab.site_of(info["proxies"][0]) == site
        assert lab.site_of(info["relay_internal"]) is None  # the backbone
    assert lab.sip_target(lab.SITES["fra"]["proxies"][0], tls=True).endswith(
        f":{platform.ports.sip_tls}"
    )


def test_client_addresses_are_free_in_the_topology() -> None:
    taken = {a for i in lab.PLATFORM.instances() for _, a in i.networks}
    for site in lab.SITES:
        clients = {lab.client_address(site, h) for h in (*lab.TEST_HOSTS, *lab.BENCH_HOSTS)}
        assert not {ipaddress.IPv4Address(c) for c in clients} & taken
    with pytest.raises(AssertionError):
        lab.client_address("fra", 11)  # a proxy's


def test_the_stand_in_script_reads_the_inventorys_hosts() -> None:
    script = (REPO / "scripts" / "labhosts.sh").read_text()
    assert not re.search(r"\d+\.\d+\.\d+\.\d+", script), "an address typed into labhosts.sh"
    shown = subprocess.run(
        ["bash", "-c", 'eval "$(' + sys.executable + ' -m labkit.hosts)"; echo "$NETWORK $SUBNET"; '
         'for s in "${SITES[@]}"; do echo "$s ${NAME[$s]} ${ADDRESS[$s]}"; done'],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert shown[0] == f"{hosts.NETWORK} {hosts.SUBNET}"
    assert shown[1:] == [f"{s} {n} {a}" for s, (n, a) in LAB_STAND_INS.items()]
    inventory, _ = ansible_inventory(lab.PLATFORM)
    voice = inventory["all"]["children"]["voice_hosts"]["hosts"]
    assert sorted(voice) == sorted(hosts.STAND_INS.values())
    for address in hosts.ADDRESSES.values():
        assert ipaddress.IPv4Address(address) in ipaddress.IPv4Network(hosts.SUBNET)


def test_sip_result_is_rebuilt_from_its_own_measurements() -> None:
    """build_result, given the ladders the committed run measured, writes the committed result
    again (but for the date and the machine): figures, CPU table and goals come from the steps."""
    from bench.sip_result import build_result

    committed = json.loads((REPO / "bench" / "results" / "sip_core.json").read_text())
    ladders = committed["ladders"]
    rebuilt = build_result(
        ladders["register"], ladders["call"], committed["cpu_us_per_op"]["measured"]
    )
    for key in ("date", "machine"):
        rebuilt.pop(key), committed.pop(key)
    assert json.dumps(rebuilt, indent=2) == json.dumps(committed, indent=2)
