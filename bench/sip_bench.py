"""SIP core benchmark: REGISTERs/s and calls/s through the full stack vs a bare Kamailio relay.

Full stack = a lab proxy (fra-sip-proxy-1): digest auth against PostgreSQL, DMQ replication to
three peers, app routing over HTTP (cached or not: the proxy's runtime switch pbx.route_cache),
rtpengine offer/answer/delete (SDP in the INVITE, the callee answers with SDP), the callee a sipp
UAS registered as a demo device. Baseline = the same pbx/kamailio image with bench/bare-relay.cfg
(stateless, no auth, no registrar, no media), in a throwaway container on the fra network,
measured in the same run on the same machine.

Load: sipp in a throwaway pbx/sipclient container with 19 source addresses (an office of phones),
each a demo device of its own. Each source stays inside the proxies' flood limit, so what is
measured is the stack and not a ban: at most 170 of the 200 requests/s pike allows a source, at
most 4 transactions in flight. REGISTER capacity is found by a short ramp that stops at the first
step the stack does not keep up with (below 95% of the offered rate) or does not carry cleanly
(failures, replication behind, shared memory filling up, a ban); if it never gets there the
figure is a lower bound (sources x flood budget), and the result says so. Call latency is
measured at a moderate fixed rate, call throughput in a burst sized to the media relay's free
ports (it holds them 30 s after the BYE).

The benchmark's own client addresses (labkit.lab.BENCH_HOSTS) and leased demo devices only
(bench/sip_plan.py); bounded counts and timeouts; every container started here is removed; bans
and bindings this run caused are lifted on all proxies; route_cache is always restored to 1.
Load generation: bench/sip_load.py; measurements: bench/sip_measure.py; the result:
bench/sip_result.py. Run it under the lab lock:
    flock /tmp/lab.lock .venv/bin/python -m bench.sip_bench
Writes bench/results/sip_core.json.
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any

from labkit.control import (
    banned,
    clear_bindings,
    kamcmd,
    relay_delete_delay,
    set_route_cache,
    unban,
)
from labkit.lab import REPO, load_tenant

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
    BARE_BURST_CALLS,
    BARE_BURST_RATE,
    BARE_IP,
    BARE_REG_RATE,
    BARE_REG_SECONDS,
    BURST_CALLS_MAX,
    BURST_RATE,
    CALL_EXTRA,
    DEVICES,
    FULL,
    FULL_CONTAINER,
    LATENCY_CALLS,
    LATENCY_RATE,
    LATENCY_SOURCES,
    OWN_IPS,
    PORT_MARGIN,
    REG_DRAIN_SECONDS,
    REG_STEP_SECONDS,
    REG_STEPS,
    RELAY,
    RESULT,
    SOURCES,
    UAS_IP,
    UAS_PORT,
    DemoDevice,
)
from .sip_result import Relay, build_result


def unban_ours() -> None:
    """Bans and failed-auth counters of our addresses, on every proxy (they replicate anyway)."""
    unban(*OWN_IPS)


def our_bans() -> list[str]:
    return banned(FULL_CONTAINER, OWN_IPS)


# ----- REGISTER -----


def register_phase(devices: list[DemoDevice], meters: Meters) -> dict[str, Any]:
    """The bare relay once, then the full stack in steps until one is saturated or not clean."""
    bare = bare_registers(devices, meters)
    peers = dmq_nodes()
    say(f"full-stack proxy's DMQ node list: {peers['entries']} entries for "
        f"{peers['distinct_peers']} peers")  # fmt: skip
    steps: list[dict[str, Any]] = []
    capacity: dict[str, Any] | None = None
    for rate in REG_STEPS:
        step = register_step(rate, devices, meters)
        steps.append(step)
        if step["banned"]:
            unban_ours()
        if not step["problems"] and (
            capacity is None or step["per_second"] > capacity["per_second"]
        ):
            capacity = step
        if step["problems"] or step["saturated"]:
            break
    return {
        "bare": bare,
        "full_steps": steps,
        "full_capacity": capacity,
        "full_saturated": bool(steps and (steps[-1]["problems"] or steps[-1]["saturated"])),
        "full_proxy_dmq_nodes": peers,
    }


def bare_registers(devices: list[DemoDevice], meters: Meters) -> dict[str, Any]:
    say(f"REGISTER, bare relay: {len(devices)} sources x {BARE_REG_RATE}/s, {BARE_REG_SECONDS} s")
    mark = meters.mark()
    bare = load("bare-reg", BARE_IP, "REG", BARE_REG_RATE, BARE_REG_RATE * BARE_REG_SECONDS,
                devices, "-s {user}")  # fmt: skip
    bare.update(meters.since(mark, bare["ok"], full=False))
    show("bare", bare)
    say(f"    CPU per REGISTER: relay {bare['relay_cpu_us_per_op']} us, load generator "
        f"{bare['load_generator_cpu_us_per_op']} us")  # fmt: skip
    return bare


def register_step(rate: int, devices: list[DemoDevice], meters: Meters) -> dict[str, Any]:
    """One step of the ramp: `rate` REGISTER/s per source for a few seconds, then its checks."""
    say(f"REGISTER, full stack: {len(devices)} sources x {rate}/s, {REG_STEP_SECONDS} s")
    watch = ShmWatch()
    watch.start()
    mark = meters.mark()
    step = load(f"full-reg-{rate}", FULL, "REG", rate, rate * REG_STEP_SECONDS, devices,
                "-s {user}")  # fmt: skip
    step.update(meters.since(mark, step["ok"], full=True))
    watch.stop()
    time.sleep(REG_DRAIN_SECONDS)
    step["proxy_shm_peak_mb"] = round(watch.peak_kb / 1024, 1)
    step["proxy_shm_total_mb"] = round(watch.total_kb / 1024, 1)
    aors = [d["aor"] for d in devices]
    step["replicated_aors"] = f"{replicated(aors)}/{len(aors)}"
    if step["replicated_aors"] != f"{len(aors)}/{len(aors)}":
        time.sleep(5)  # lagging or lost?
        step["replicated_aors_5s_later"] = f"{replicated(aors)}/{len(aors)}"
    step["banned"] = our_bans()
    step["problems"] = step_problems(step, watch, f"{len(aors)}/{len(aors)}")
    show("full", step)
    say_step(step)
    return step


def step_problems(step: dict[str, Any], watch: ShmWatch, all_there: str) -> list[str]:
    """Why a step was not carried cleanly (none: clean)."""
    problems = []
    if step["failed"] > 0.01 * step["attempted"] or step["ok"] < 0.99 * step["attempted"]:
        problems.append("failures")
    if step["replicated_aors"] != all_there:
        problems.append("replication behind")
    if watch.total_kb and watch.peak_kb > 0.8 * watch.total_kb:
        problems.append("shared memory nearly full")
    if step["banned"]:
        problems.append("banned")
    return problems


def say_step(step: dict[str, Any]) -> None:
    later = step.get("replicated_aors_5s_later")
    later = f" ({later} 5 s later)" if later else ""
    problems = step["problems"]
    verdict = ", ".join(problems) or ("clean, saturated" if step["saturated"] else "clean")
    say(f"    per REGISTER: {step['dmq_messages_per_op']} DMQ messages, lab CPU "
        f"{step['lab_cpu_us_per_op']} us; shm peak {step['proxy_shm_peak_mb']}/"
        f"{step['proxy_shm_total_mb']} MB; replicated {step['replicated_aors']}{later}: "
        f"{verdict}")  # fmt: skip


# ----- calls -----


def call_phase(tenant: dict[str, Any], meters: Meters) -> dict[str, Any]:
    devices = tenant["devices"]
    callee = devices[DEVICES["callee"]]
    callers = [devices[i] for i in DEVICES.many("callers")]
    ext = callee["extension"]
    say(f"callee {callee['sip_username']} registers from {UAS_IP}:{UAS_PORT}; the UAS answers "
        "all calls")  # fmt: skip
    register_callee(callee)
    start_uas()
    out = bare_calls(callers, ext, meters)
    out["cache_on"] = full_calls(1, callers, ext, meters)
    out["cache_off"] = full_calls(0, callers, ext, meters)
    set_route_cache(FULL_CONTAINER, True)
    return out


def bare_calls(callers: list[DemoDevice], ext: str, meters: Meters) -> dict[str, Any]:
    say(f"calls, bare relay: {LATENCY_SOURCES * LATENCY_RATE}/s for latency, then a burst")
    out: dict[str, Any] = {}
    offers0 = uas_offers()
    out["bare_latency"] = load("bare-lat", BARE_IP, "CALL", LATENCY_RATE, LATENCY_CALLS,
                               callers[:LATENCY_SOURCES], CALL_EXTRA.format(ext=ext))  # fmt: skip
    show("latency", out["bare_latency"])
    mark = meters.mark()
    out["bare_burst"] = load("bare-burst", BARE_IP, "CALL", BARE_BURST_RATE, BARE_BURST_CALLS,
                             callers, CALL_EXTRA.format(ext=ext))  # fmt: skip
    out["bare_burst"].update(meters.since(mark, out["bare_burst"]["ok"], full=False))
    show("burst", out["bare_burst"])
    offers = delta(uas_offers(), offers0)
    relay = relay_state()["address"]
    out["bare_sdp_offers"] = {"via_relay": offers.get(relay, 0),
                              "direct": sum(offers.values()) - offers.get(relay, 0)}  # fmt: skip
    return out


def full_calls(mode: int, callers: list[DemoDevice], ext: str, meters: Meters) -> dict[str, Any]:
    """Latency at a moderate rate, then a burst, with the route cache on (1) or off (0)."""
    say(f"calls, full stack, route cache {'on' if mode else 'off'}")
    set_route_cache(FULL_CONTAINER, bool(mode))
    if mode:
        kamcmd(FULL_CONTAINER, "htable.flush", "approute", check=False)
    relay0 = wait_for_relay_ports(relay_state()["ports"]["totals"] - 100)
    stats0, offers0, mark = appstats(), uas_offers(), meters.mark()
    lat = load(f"full-lat-{mode}", FULL, "CALL", LATENCY_RATE, LATENCY_CALLS,
               callers[:LATENCY_SOURCES], CALL_EXTRA.format(ext=ext))  # fmt: skip
    relay1, stats1 = relay_state(), appstats()
    lat["app_lookup"] = lookup_cost(stats0, stats1, mode)
    show("latency", lat)
    ports_per_call = max(2, math.ceil((relay1["ports"]["used"] - relay0["ports"]["used"])
                                      / max(1, lat["ok"])))  # fmt: skip
    budget = (relay1["ports"]["free"] - PORT_MARGIN) // ports_per_call // len(SOURCES)
    burst = load(f"full-burst-{mode}", FULL, "CALL", BURST_RATE, min(BURST_CALLS_MAX, budget),
                 callers, CALL_EXTRA.format(ext=ext))  # fmt: skip
    costs = meters.since(mark, lat["ok"] + burst["ok"], full=True)
    relay2, stats2, offers = relay_state(), appstats(), delta(uas_offers(), offers0)
    burst["app_lookup"] = lookup_cost(stats1, stats2, mode)
    show("burst", burst)
    result = {
        "latency": lat,
        "burst": burst,
        "app_lookup": lookup_cost(stats0, stats2, mode),
        **costs,
        "relay_offers": relay2["offers"] - relay0["offers"],
        "offers_seen_by_callee": offers,
        "anchored_on_relay": f"{offers.get(relay0['address'], 0)}/{lat['ok'] + burst['ok']}",
        "relay_ports_per_call": ports_per_call,
        "banned": our_bans(),
    }
    say_calls(result, relay0["address"])
    return result


def say_calls(result: dict[str, Any], relay: str) -> None:
    a, costs = result["latency"]["app_lookup"], result
    say(f"    app lookup at {LATENCY_SOURCES * LATENCY_RATE} calls/s: {a['http_lookups']} over "
        f"HTTP (mean {a['mean_http_lookup_us']} us), {a['cache_hits']} cache hits; per call "
        f"{costs['dmq_messages_per_op']} DMQ messages, lab CPU {costs['lab_cpu_us_per_op']} us; "
        f"SDP offers via the relay {relay}: {result['anchored_on_relay']}")  # fmt: skip
    if result["banned"]:
        say(f"  WARNING: banned {result['banned']} - lifting")
        unban_ours()


# ----- the run -----


def run(tenant: dict[str, Any]) -> dict[str, Any]:
    devices = tenant["devices"]
    say("setup: load generator and bare relay containers; our bans and bindings lifted")
    start_containers()
    unban_ours()
    clear_bindings(*our_aors(tenant))
    set_route_cache(FULL_CONTAINER, True)
    say(f"lab idle CPU for {Meters.IDLE_SECONDS} s (subtracted from per-operation costs)")
    meters = Meters()
    regs = register_phase([devices[i] for i in DEVICES.many("registrants")], meters)
    calls = call_phase(tenant, meters)
    relay = Relay(relay_state()["ports"]["totals"], relay_delete_delay(RELAY))
    result = build_result(regs, calls, meters.available, relay)
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    say("relay ports back for the next user of the lab")
    wait_for_relay_ports(relay_state()["ports"]["totals"] - 100)
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
        print(f"  {c['metric']:<34} {c['value']:>10g} {c['unit']:<3} vs {c['baseline']:>10g} "
              f"({c['baseline_label']})")  # fmt: skip
    print(f"-> {RESULT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
