"""SIP core benchmark: sustained REGISTERs/s and calls/s of the platform against bare Kamailio,
and the CPU each operation costs in every container.

Full stack = a lab proxy (fra-sip-proxy-1): digest auth, DMQ replication to three peers, app
routing over HTTP (route cache on, and one step off), rtpengine on both legs (SDP in the INVITE,
the callee answers with SDP), calls held HOLD_S seconds. Baseline = bench/bare.cfg in the same
pbx/kamailio image, in a throwaway container on the fra network, in the same run: a registrar
with digest auth against credentials in memory, and a stateful proxy with a registrar lookup.

Each figure is the highest rate a rate ladder sustains (bench/sip_ladder.py: 20 s steps, under
1 % failures, no growing backlog; the full stack's REGISTER steps also need every binding
replicated, shared memory below 80 % and no ban). Load: one sipp per source address and device
(PROCESSES), from the benchmark's client addresses, which the lab lists as trusted sources (no
flood ban; everything else applies). The bare baselines are run once more with one process
more: if that raises them by more than 10 %, the result says they are bound by the generator and
gives no ratio. CPU per operation: cgroup CPU time of every container over each step, less its
idle load.

The benchmark's own client addresses (labkit.lab.BENCH_HOSTS) and leased demo devices only;
bounded counts and timeouts; every container started here is removed; bans and bindings this run
caused are lifted on all proxies; route_cache is always restored to 1. Run it under the lab
lock:
    flock /tmp/lab.lock .venv/bin/python -m bench.sip_bench
Writes bench/results/sip_core.json and bench/results/sip_ladders.png.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from labkit.control import banned, clear_bindings, kamcmd, set_route_cache, unban
from labkit.lab import REPO, load_tenant

from .sip_ladder import climb, generator_check
from .sip_load import (
    load,
    register_callee,
    remove_containers,
    say,
    show,
    start_containers,
    start_uas,
    stop_uas,
    uas_offers,
)
from .sip_measure import (
    Meters,
    ShmWatch,
    appstats,
    delta,
    dmq_nodes,
    lookup_cost,
    relay_state,
    replicated,
    wait_for_relay_ports,
)
from .sip_plan import (
    BARE_CALLEES,
    BARE_IP,
    BARE_USERS,
    CALL_EXTRA,
    CALLS_BARE,
    CALLS_FULL,
    DEVICES,
    DRAIN_S,
    FULL,
    FULL_CONTAINER,
    HOLD_S,
    OWN_IPS,
    PORT_MARGIN,
    PORTS_PER_CALL,
    PROCESSES,
    REGISTER_BARE,
    REGISTER_FULL,
    RESULT,
    UAS_PORT,
    DemoDevice,
)
from .sip_result import build_result, draw

REG_EXTRA = "-s {sip_username}"


def unban_ours() -> None:
    """Bans and failed-auth counters of our addresses, on every proxy (they replicate anyway)."""
    unban(*OWN_IPS)


def our_bans() -> list[str]:
    return banned(FULL_CONTAINER, OWN_IPS)


# ----- REGISTER -----


def register_phase(tenant: dict[str, Any], meters: Meters) -> dict[str, Any]:
    registrants = [tenant["devices"][i] for i in DEVICES.many("registrants")]
    say(f"REGISTER, bare baseline: ladder from {REGISTER_BARE.start}/s, {PROCESSES} processes")
    bare = climb(REGISTER_BARE, lambda r: bare_register_step(r, BARE_USERS[:PROCESSES], meters))
    say(f"  bare sustained {bare['sustained_per_s']}/s; generator check ({PROCESSES} and "
        f"{PROCESSES + 1} processes)")  # fmt: skip
    bare["generator_check"] = generator_check(
        bare,
        lambda r: bare_register_step(r, BARE_USERS[:PROCESSES], meters),
        lambda r: bare_register_step(r, BARE_USERS, meters),
    )
    say(f"  {bare['generator_check']['note']}")
    peers = dmq_nodes()
    say(f"REGISTER, full stack: ladder from {REGISTER_FULL.start}/s; DMQ node list: "
        f"{peers['entries']} entries for {peers['distinct_peers']} peers")  # fmt: skip
    full = climb(REGISTER_FULL, lambda r: full_register_step(r, registrants[:PROCESSES], meters))
    full["dmq_nodes"] = peers
    return {"bare": bare, "full": full}


def bare_register_step(rate: float, users: list[DemoDevice], meters: Meters) -> dict[str, Any]:
    mark = meters.mark()
    step = load(f"bare-reg-{rate:.0f}", BARE_IP, "REG", rate, REGISTER_BARE.seconds, users,
                REG_EXTRA)  # fmt: skip
    step.update(meters.since(mark, step["ok"]))
    show(f"bare {rate:.0f}/s x {len(users)}", step)
    time.sleep(DRAIN_S)
    return step


def full_register_step(rate: float, devices: list[DemoDevice], meters: Meters) -> dict[str, Any]:
    watch = ShmWatch()
    watch.start()
    mark = meters.mark()
    step = load(f"full-reg-{rate:.0f}", FULL, "REG", rate, REGISTER_FULL.seconds, devices,
                REG_EXTRA)  # fmt: skip
    step.update(meters.since(mark, step["ok"]))
    watch.stop()
    time.sleep(DRAIN_S)
    aors = [d["aor"] for d in devices]
    step["replicated_aors"] = f"{replicated(aors)}/{len(aors)}"
    step["proxy_shm_peak_mb"] = round(watch.peak_kb / 1024, 1)
    step["proxy_shm_total_mb"] = round(watch.total_kb / 1024, 1)
    step["banned"] = our_bans()
    if step["replicated_aors"] != f"{len(aors)}/{len(aors)}":
        step["problems"].append("replication behind")
    if watch.total_kb and watch.peak_kb > 0.8 * watch.total_kb:
        step["problems"].append("shared memory nearly full")
    if step["banned"]:
        step["problems"].append("banned")
        unban_ours()
    step["holds"] = not step["problems"]
    show(f"full {rate:.0f}/s", step)
    say(f"    lab CPU {step['lab_cpu_us_per_op']} us/REGISTER, {step['dmq_messages_per_op']} "
        f"DMQ messages; replicated {step['replicated_aors']}; shm peak "
        f"{step['proxy_shm_peak_mb']}/{step['proxy_shm_total_mb']} MB")  # fmt: skip
    return step


# ----- calls -----


def call_phase(tenant: dict[str, Any], meters: Meters) -> dict[str, Any]:
    devices = tenant["devices"]
    callers = [dict(devices[i]) for i in DEVICES.many("callers")]
    callees = [devices[i] for i in DEVICES.many("callees")]
    bare_callers = [dict(c) for c in callers]
    pairs = zip(callers, bare_callers, callees, BARE_CALLEES, strict=True)
    for i, (caller, bare_caller, callee, bare_callee) in enumerate(pairs):
        register_callee(callee, FULL, UAS_PORT + i)
        register_callee(bare_callee, BARE_IP, UAS_PORT + i)
        caller["callee"], bare_caller["callee"] = callee["extension"], bare_callee["sip_username"]
    say(f"{len(callees)} callees registered (on the full stack and on the baseline), each a "
        "sipp UAS answering every call")  # fmt: skip
    start_uas(len(callees))
    extra = CALL_EXTRA.format(hold=HOLD_S * 1000)
    say(f"calls, bare baseline: ladder from {CALLS_BARE.start}/s, {PROCESSES} processes, "
        f"hold {HOLD_S} s")  # fmt: skip
    offers0 = uas_offers()
    bare = climb(CALLS_BARE, lambda r: bare_call_step(r, bare_callers[:PROCESSES], extra, meters))
    bare["generator_check"] = generator_check(
        bare,
        lambda r: bare_call_step(r, bare_callers[:PROCESSES], extra, meters),
        lambda r: bare_call_step(r, bare_callers, extra, meters),
    )
    say(f"  {bare['generator_check']['note']}")
    bare["sdp_offers_seen_by_callees"] = delta(uas_offers(), offers0)
    say(f"calls, full stack: ladder from {CALLS_FULL.start}/s, hold {HOLD_S} s")
    set_route_cache(FULL_CONTAINER, True)
    full = climb(CALLS_FULL, lambda r: full_call_step(r, callers[:PROCESSES], extra, meters, 1))
    half = max(1, round(full["sustained_per_s"] / 2))
    say(f"calls, full stack at half its sustained rate ({half}/s): call setup latency, then the "
        "same with the route cache off")  # fmt: skip
    full["at_half"] = full_call_step(half, callers[:PROCESSES], extra, meters, 1, True)
    full["at_half_route_cache_off"] = full_call_step(
        half, callers[:PROCESSES], extra, meters, 0, True
    )
    set_route_cache(FULL_CONTAINER, True)
    return {"bare": bare, "full": full}


def bare_call_step(
    rate: float, callers: list[DemoDevice], extra: str, meters: Meters
) -> dict[str, Any]:
    mark = meters.mark()
    step = load(f"bare-call-{rate:.0f}", BARE_IP, "CALL", rate, CALLS_BARE.seconds, callers,
                extra)  # fmt: skip
    step.update(meters.since(mark, step["ok"]))
    show(f"bare {rate:.0f}/s x {len(callers)}", step)
    time.sleep(DRAIN_S)
    return step


def full_call_step(
    rate: float,
    callers: list[DemoDevice],
    extra: str,
    meters: Meters,
    cache: int,
    fresh_relay: bool = False,
) -> dict[str, Any]:
    """One step of calls through the full stack: the relay must have the ports it takes (4 per
    call, kept for delete-delay after the BYE, a quarter more for retransmitted offers),
    otherwise the lab's port range is the limit, and the step says so. `fresh_relay`: wait
    until the earlier steps' ports are all back (a latency measurement must not meet them)."""
    set_route_cache(FULL_CONTAINER, bool(cache))
    if cache:
        kamcmd(FULL_CONTAINER, "htable.flush", "approute", check=False)
    total = relay_state()["ports"]["totals"]
    needed = round(rate * CALLS_FULL.seconds * PORTS_PER_CALL * 1.25) + PORT_MARGIN
    if fresh_relay:
        needed = max(needed, total - PORT_MARGIN)
    relay0 = wait_for_relay_ports(needed, limit=60)
    if relay0["ports"]["free"] < needed:
        say(f"  {rate:.0f}/s needs {needed} relay ports, {relay0['ports']['free']} free")
        return {"offered_per_s": rate, "holds": False, "problems": ["relay ports"],
                "relay_ports": relay0["ports"]}  # fmt: skip
    stats0, offers0, mark = appstats(), uas_offers(), meters.mark()
    step = load(f"full-call-{rate:.0f}-{cache}", FULL, "CALL", rate, CALLS_FULL.seconds,
                callers, extra)  # fmt: skip
    step.update(meters.since(mark, step["ok"]))
    relay1, offers = relay_state(), delta(uas_offers(), offers0)
    step["route_cache"] = cache
    step["app_lookup"] = lookup_cost(stats0, appstats(), cache)
    step["relay_offers"] = relay1["offers"] - relay0["offers"]
    step["anchored_on_relay"] = f"{offers.get(relay0['address'], 0)}/{step['ok']}"
    step["banned"] = our_bans()
    if offers.get(relay0["address"], 0) < step["ok"]:
        step["problems"].append("media not anchored")
    if step["banned"]:
        step["problems"].append("banned")
        unban_ours()
    step["holds"] = not step["problems"]
    show(f"full {rate:.0f}/s, route cache {'on' if cache else 'off'}", step)
    say(f"    lab CPU {step['lab_cpu_us_per_op']} us/call; app lookups "
        f"{step['app_lookup']['http_lookups']} over HTTP, {step['app_lookup']['cache_hits']} "
        f"cached; SDP offers via the relay {step['anchored_on_relay']}")  # fmt: skip
    time.sleep(DRAIN_S)
    return step


# ----- the run -----


def run(tenant: dict[str, Any]) -> dict[str, Any]:
    say("setup: load generator and bare baseline containers; our bans and bindings lifted")
    start_containers()
    unban_ours()
    clear_bindings(*our_aors(tenant))
    set_route_cache(FULL_CONTAINER, True)
    say(f"lab idle CPU for {Meters.IDLE_SECONDS} s (subtracted from per-operation costs)")
    meters = Meters()
    regs = register_phase(tenant, meters)
    calls = call_phase(tenant, meters)
    result = build_result(regs, calls, meters.available)
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    draw(result)
    return result


def our_aors(tenant: dict[str, Any]) -> list[str]:
    return [tenant["devices"][i]["aor"] for i in DEVICES.indexes]


def cleanup(tenant: dict[str, Any]) -> None:
    say("cleanup: route_cache 1, our bans and bindings, containers")
    try:
        set_route_cache(FULL_CONTAINER, True)
    finally:
        try:
            stop_uas()
            unban_ours()
            clear_bindings(*our_aors(tenant))
        finally:
            remove_containers()


def main() -> int:
    tenant = load_tenant()
    result: dict[str, Any] = {}
    try:
        result = run(tenant)
    finally:
        cleanup(tenant)
    for c in result.get("comparisons", []):
        print(f"  {c['metric']:<40} {c['value']:>10g} {c['unit']:<3} vs {c['baseline']:>10g} "
              f"({c['baseline_label']})")  # fmt: skip
    for goal in result.get("goals", []):
        print(f"  goal: {goal['goal']:<58} {goal['measured']!s:>8}  "
              f"{'met' if goal['met'] else 'NOT met'}")  # fmt: skip
    print(f"-> {RESULT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
