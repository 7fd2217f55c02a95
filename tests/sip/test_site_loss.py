"""Losing a whole datacentre, as an operator would lose it: every container of one site killed
at once (proxies, relay, app nodes, database member, etcd member, DNS, mail, carrier link) while
a call runs and writers store a numbered sequence through the API at both sites. The other site
must carry on alone: new calls within seconds, writes once the database has promoted, nothing
acknowledged lost, no registration lost. Then the site comes back and rejoins by itself.

Each drill first makes the doomed site's member the database leader: the worst case.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from labkit import monitoring
from labkit.control import bindings, clear_bindings, location_contacts
from labkit.devices import Devices, aor_for, device_creds, extension_of, unique_call_id
from labkit.docker import docker, wait_healthy
from labkit.lab import ALL_PROXIES, PLATFORM, SITES, sip_target
from labkit.leases import lease
from labkit.wait import wait_for

from .site_drills import (
    DBS,
    Writer,
    cut_backbone,
    heal_backbone,
    healthy_pair,
    kill_site,
    lead_from,
    leader,
    remove_sequence,
    start_site,
    stored_names,
    writable,
)

pytestmark = [pytest.mark.lab, pytest.mark.disruptive]

OTHER = {"fra": "ber", "ber": "fra"}
DEVICES = lease(
    "site-loss drills", caller=70, callee=71, remote=72, cut_phone=73, majority_phone=74,
    cut_peer=75, majority_peer=76, db_phone=79,
)  # fmt: skip
CALLER, CALLEE, REMOTE = DEVICES["caller"], DEVICES["callee"], DEVICES["remote"]
GOAL_CALL_S, GOAL_WRITE_S = 5, 30


def first_call(caller, callee_ext: str, user: str, pw: str, proxy: str, since: float,
               port: int, limit: float = 60) -> float:  # fmt: skip
    """Place calls until one connects; seconds from `since` to that answer."""
    deadline = time.monotonic() + limit
    last = ""
    while time.monotonic() < deadline:
        last = caller.call(callee_ext, user, pw, proxy, hold_ms=200, port=port, timeout=8)
        if last.startswith("200"):
            return round(time.monotonic() - since, 1)
        time.sleep(0.2)
    raise AssertionError(f"no call from {caller.name} to {callee_ext} connected: {last}")


@pytest.mark.parametrize("lost", ["fra", "ber"])
def test_whole_site_loss_and_return(
    lost: str, devices: Devices, tenant: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    survivor = OTHER[lost]
    proxy = SITES[survivor]["proxies"][0]
    caller = devices.start(f"sl-{lost}-caller", survivor)
    callee = devices.start(f"sl-{lost}-callee", survivor)
    remote = devices.start(f"sl-{lost}-remote", lost)  # a phone at the doomed site
    (c_user, c_pw), (e_user, e_pw), (r_user, r_pw) = (
        device_creds(tenant, i) for i in (CALLER, CALLEE, REMOTE)
    )
    for user in (c_user, e_user, r_user):
        clear_bindings(aor_for(user))
    assert callee.register(e_user, e_pw, proxy, port=5070).startswith("200")
    assert caller.register(c_user, c_pw, SITES[survivor]["proxies"][1], port=5071)[:3] == "200"
    assert remote.register(r_user, r_pw, SITES[lost]["proxies"][0], port=5070)[:3] == "200"
    callee.answer(port=5070)
    # Everything the survivor knows before the loss (its phones and the doomed site's).
    survivor_proxies = SITES[survivor]["proxy_containers"]
    wait_for(
        lambda: location_contacts(survivor_proxies[0], aor_for(r_user)),
        10,
        what="the doomed site's phone replicated to the survivor",
    )
    ours = {aor_for(u) for u in (c_user, e_user, r_user)}

    def our_bindings(proxy_name: str) -> set[tuple[str, str]]:
        return {b for b in bindings(proxy_name) if b[0].split("@")[0] in ours}

    known = {p: our_bindings(p) for p in survivor_proxies}
    assert all(len(k) == 3 for k in known.values()), known

    lead_from(lost)
    tag = f"seq{time.time_ns() % 10**9}"
    writers = {site: Writer(site, tag) for site in (lost, survivor)}
    for writer in writers.values():
        writer.start()
    # A call in progress between the survivor's phones, across the loss.
    caller.sh(
        f"cd /tmp && (timeout 60 sipp {sip_target(proxy)} -sf /scen/call.xml -s "
        f"{extension_of(tenant, CALLEE)} -set caller {c_user} -set hold 15000 -au {c_user} "
        f"-ap '{c_pw}' -cid_str {unique_call_id()} -i {caller.ip} -p 5090 -m 1 -nostdin "
        f"-trace_logs -log_file /tmp/running.log >/dev/null 2>&1; "
        f"echo EXIT $? >> /tmp/running.log) &"
    )
    wait_for(lambda: "STATUS 200" in caller.sh("cat /tmp/running.log").stdout, 15, what="call up")
    time.sleep(2)  # writers under way at both sites

    result: dict[str, Any] = {"lost": lost, "leader_before": leader()}
    # The survivor's monitor (each watches both sites) raises the site's loss.
    site_down = monitoring.AlertWatch(survivor, "SiteDown", site=lost)
    killed_at = kill_site(lost)
    site_down.start(killed_at)
    try:
        result["kill_s"] = round(time.monotonic() - killed_at, 1)
        # The survivor's phones: a new call between them, then one to the carrier.
        callee_ext = extension_of(tenant, CALLEE)
        result["first_call_s"] = first_call(
            caller, callee_ext, c_user, c_pw, proxy, killed_at, port=5080
        )
        national = f"0305559{time.time_ns() % 10**5:05d}"
        result["first_carrier_call_s"] = first_call(
            caller, national, c_user, c_pw, proxy, killed_at, port=5081
        )
        # The database: the survivor's member takes over; writes there resume.
        wait_for(lambda: leader(survivor) == DBS[survivor].name, 60, 0.5, "promotion")
        result["promoted_s"] = round(time.monotonic() - killed_at, 1)
        wait_for(lambda: writers[survivor].first_ack_after(killed_at + 0.5), 60, 0.5, "a write")
        result["first_write_s"] = round(writers[survivor].first_ack_after(killed_at + 0.5), 1)
        # The call that ran across the loss ended normally (its BYE answered).
        running = wait_for(
            lambda: "EXIT" in (log := caller.sh("cat /tmp/running.log").stdout) and log,
            40,
            what="the running call to end",
        )
        assert "EXIT 0" in running, f"the call in progress failed across the loss: {running}"
        wait_for(lambda: site_down.fired_s is not None, 60, 1, f"SiteDown {lost} at {survivor}")
        result["site_down_alert_s"] = site_down.stop()
        # The survivor's metrics outlive the lost site, its history of the lost site included.
        history = f'max_over_time(kamailio_usrloc_registered_users{{site="{lost}"}}[10m])'
        assert monitoring.values(survivor, history), f"{survivor} lost {lost}'s history"
        now = f'kamailio_usrloc_registered_users{{site="{survivor}"}}'
        assert len(monitoring.values(survivor, now)) == len(survivor_proxies)
    finally:
        site_down.stop()
        for writer in writers.values():
            writer.finish()
        start_site(lost)
    # Nothing acknowledged is missing, at either site's API.
    acked = {name for w in writers.values() for _, name in w.acked}
    stored = stored_names(survivor, tag)
    result["acked_writes"] = len(acked)
    result["lost_writes"] = len(acked - stored)
    result["refused"] = {s: w.refused for s, w in writers.items()}
    # The survivor's API answers every write promptly, 201 or 503, never hanging.
    result["survivor_slowest_answer_s"] = round(writers[survivor].slowest_s, 1)
    # No registration lost on the survivor's proxies.
    result["lost_bindings"] = sum(len(known[p] - our_bindings(p)) for p in survivor_proxies)
    print(f"\nwhole-site loss: {result}")
    request.config.cache.set(f"pbx/site_loss/{lost}", result)
    assert result["lost_writes"] == 0, sorted(acked - stored)[:10]
    assert not any("500" in k for w in writers.values() for k in w.refused), result["refused"]
    assert result["lost_bindings"] == 0, {p: known[p] - our_bindings(p) for p in known}
    assert result["first_call_s"] <= GOAL_CALL_S, result
    assert result["first_write_s"] <= GOAL_WRITE_S, result
    assert result["survivor_slowest_answer_s"] < 8, result

    # The site returns: its member rejoins as the synchronous replica by itself.
    returned = time.monotonic()
    wait_healthy(SITES[lost]["proxy_containers"], timeout=120)
    result["site_down_cleared_s"] = monitoring.wait_cleared(
        survivor, "SiteDown", returned, 60, site=lost
    )
    request.config.cache.set(f"pbx/site_loss/{lost}", result)
    members = wait_for(healthy_pair, 120, 1, f"{DBS[lost].name} back as a replica")
    assert members[DBS[lost].name]["role"] == "sync_standby", members
    assert stored_names(lost, tag) == stored, "the returning site reads another history"
    # Its proxies re-learn the registrations, each exactly once.
    for proxy_name in SITES[lost]["proxy_containers"]:
        contacts = wait_for(
            lambda p=proxy_name: location_contacts(p, aor_for(e_user)),
            30,
            what=f"the survivor's phone synced to {proxy_name}",
        )
        assert len(contacts) == 1, f"{proxy_name}: duplicated binding {contacts}"
    # Calls both ways: the returning site's phone registers again and reaches the survivor,
    # and the survivor's phone reaches it.
    assert remote.register(r_user, r_pw, SITES[lost]["proxies"][0], port=5072)[:3] == "200"
    callee.answer(port=5070)
    status = remote.call(extension_of(tenant, CALLEE), r_user, r_pw, SITES[lost]["proxies"][0],
                         hold_ms=500, port=5082)  # fmt: skip
    assert status.startswith("200"), f"{lost} -> {survivor} after the return: {status}"
    remote.answer(port=5072)
    status = caller.call(extension_of(tenant, REMOTE), c_user, c_pw, proxy, hold_ms=500,
                         port=5083)  # fmt: skip
    assert status.startswith("200"), f"{survivor} -> {lost} after the return: {status}"
    for user in (c_user, e_user, r_user):
        clear_bindings(aor_for(user))
    remove_sequence(survivor, tag)


def test_database_leader_killed_alone(devices: Devices, tenant: dict[str, Any], request) -> None:
    """Only the leading database member dies: the other is promoted, the apps of both sites
    reconnect by themselves, phones of its site still register (their proxies read the other
    site's member meanwhile), and the old leader rejoins as a replica when it is back."""
    wait_for(healthy_pair, 120, 1, "a leader and a synchronous standby")
    old = leader()
    assert old, "no leader"
    site = next(s for s, d in DBS.items() if d.name == old)
    other = OTHER[site]
    tag = f"dbk{time.time_ns() % 10**9}"
    writers = {s: Writer(s, tag) for s in DBS}
    for writer in writers.values():
        writer.start()
    time.sleep(2)
    phone = devices.start(f"dbk-{site}", site)
    user, pw = device_creds(tenant, DEVICES["db_phone"])
    clear_bindings(aor_for(user))
    killed_at = time.monotonic()
    docker("kill", DBS[site].container_name(PLATFORM), check=True)
    try:
        status = ""
        for port in range(5070, 5080):
            status = phone.register(user, pw, SITES[site]["proxies"][0], port=port, timeout=4)
            if status.startswith("200"):
                break
        assert status.startswith("200"), f"REGISTER at {site} without its database: {status}"
        registered_s = round(time.monotonic() - killed_at, 1)
        wait_for(lambda: leader(other) == DBS[other].name, 60, 0.5, "promotion")
        promoted_s = round(time.monotonic() - killed_at, 1)
        for s, writer in writers.items():
            wait_for(lambda w=writer: w.first_ack_after(killed_at + 0.5), 60, 0.5, f"write at {s}")
        first = {s: round(w.first_ack_after(killed_at + 0.5) or -1, 1) for s, w in writers.items()}
    finally:
        for writer in writers.values():
            writer.finish()
        docker("start", DBS[site].container_name(PLATFORM))
    acked = {name for w in writers.values() for _, name in w.acked}
    lost = acked - stored_names(other, tag)
    result = {"registered_s": registered_s, "promoted_s": promoted_s, "first_write_s": first,
              "lost_writes": len(lost),
              "refused": {s: w.refused for s, w in writers.items()}}  # fmt: skip
    print(f"\ndatabase leader killed: {result}")
    request.config.cache.set("pbx/site_loss/db_leader", result)
    assert not lost, sorted(lost)[:10]
    assert max(first.values()) <= GOAL_WRITE_S, result
    members = wait_for(healthy_pair, 120, 1, f"{old} back as a replica")
    assert members[old]["role"] == "sync_standby", members
    clear_bindings(aor_for(user))
    remove_sequence(other, tag)


def test_backbone_partition_fences_the_cut_off_side(
    devices: Devices, tenant: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    """The leader's site loses the backbone (the witness stays with the other site): it must
    stop accepting writes, the majority side takes over, both keep serving calls and
    registrations, and after healing they converge without duplicating or losing anything."""
    cut, majority = "ber", "fra"
    lead_from(cut)
    phones = {site: devices.start(f"pt-{site}", site) for site in (cut, majority)}
    peers = {site: devices.start(f"pt-{site}-peer", site) for site in (cut, majority)}
    phone_of = {cut: DEVICES["cut_phone"], majority: DEVICES["majority_phone"]}
    peer_of = {cut: DEVICES["cut_peer"], majority: DEVICES["majority_peer"]}
    creds = {site: device_creds(tenant, index) for site, index in phone_of.items()}
    peer_creds = {site: device_creds(tenant, index) for site, index in peer_of.items()}
    for user, _ in (*creds.values(), *peer_creds.values()):
        clear_bindings(aor_for(user))
    for site in (cut, majority):  # each site's callee, registered before the partition
        user, pw = peer_creds[site]
        assert peers[site].register(user, pw, SITES[site]["proxies"][0])[:3] == "200"
        peers[site].answer(port=5070)

    tag = f"pt{time.time_ns() % 10**9}"
    writers = {site: Writer(site, tag) for site in (cut, majority)}
    for writer in writers.values():
        writer.start()
    time.sleep(2)
    result: dict[str, Any] = {"cut": cut}
    members = cut_backbone(cut)
    cut_at = time.monotonic()
    try:
        # Never two members accepting writes; the cut-off one stops, the other takes over.
        both_seen = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = {site: writable(site) for site in DBS}
            both_seen |= all(states.values())
            if states[majority] and not states[cut]:
                break
            time.sleep(0.3)
        assert not both_seen, "both sides accepted writes at once (split brain)"
        assert writable(majority), "the majority side did not take over"
        assert not writable(cut), "the cut-off side still accepts writes"
        result["takeover_s"] = round(time.monotonic() - cut_at, 1)
        wait_for(lambda: writers[majority].first_ack_after(cut_at + 0.5), 60, 0.5, "a write")
        result["majority_first_write_s"] = round(writers[majority].first_ack_after(cut_at + 0.5), 1)
        time.sleep(3)
        # The cut-off side refuses writes cleanly (503, never a 500, never hanging for long).
        refused_at_cut = dict(writers[cut].refused)
        assert any(k.startswith("503") for k in refused_at_cut), refused_at_cut
        assert not any("500" in k for k in refused_at_cut), refused_at_cut
        # Calls and registrations inside each site keep working.
        for site in (cut, majority):
            user, pw = creds[site]
            proxy = SITES[site]["proxies"][1]
            assert phones[site].register(user, pw, proxy, port=5072)[:3] == "200", site
            target = extension_of(tenant, peer_of[site])
            status = phones[site].call(target, user, pw, proxy, hold_ms=300, port=5080)
            assert status.startswith("200"), f"call inside {site} during the partition: {status}"
            peers[site].answer(port=5070)
    finally:
        for writer in writers.values():
            writer.finish()
        heal_backbone(members)
    healed_at = time.monotonic()
    result["cut_side_slowest_answer_s"] = round(writers[cut].slowest_s, 1)
    result["refused"] = {s: w.refused for s, w in writers.items()}
    # Converged: the cut-off member follows the new leader, nothing acknowledged is lost.
    pair = wait_for(healthy_pair, 120, 1, "the cut-off member back as the synchronous replica")
    assert pair[DBS[cut].name]["role"] == "sync_standby", pair
    result["db_rejoined_s"] = round(time.monotonic() - healed_at, 1)
    acked = {name for w in writers.values() for _, name in w.acked}
    for site in (cut, majority):
        stored = stored_names(site, tag)
        assert acked <= stored, f"{site} misses acknowledged writes: {sorted(acked - stored)[:5]}"
    # Registrations made on each side during the partition reach the other, once each.
    for site in (cut, majority):
        aor = aor_for(creds[site][0])
        for proxy in ALL_PROXIES:
            contacts = wait_for(
                lambda p=proxy, a=aor: location_contacts(p, a), 60, 1, f"{aor} known at {proxy}"
            )
            assert len(contacts) == 1, f"{proxy}: {aor} bound {len(contacts)} times: {contacts}"
    result["bindings_converged_s"] = round(time.monotonic() - healed_at, 1)
    # And a call across the healed backbone reaches the phone registered on the other side.
    phones[cut].answer(port=5072)
    user, pw = creds[majority]
    proxy = SITES[majority]["proxies"][0]
    status = phones[majority].call(extension_of(tenant, phone_of[cut]), user, pw, proxy, port=5081)
    assert status.startswith("200"), f"{majority} -> {cut} after healing: {status}"
    print(f"\nbackbone partition: {result}")
    request.config.cache.set("pbx/site_loss/partition", result)
    for user, _ in (*creds.values(), *peer_creds.values()):
        clear_bindings(aor_for(user))
    remove_sequence(majority, tag)
