"""The SIP benchmark's result (bench/results/sip_core.json): the figures of both phases against
their baselines, with what they mean. A pure function of what the phases measured."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from typing import Any

from .sip_plan import (
    BURST_CALLS_MAX,
    BURST_RATE,
    FULL,
    FULL_CONTAINER,
    IN_FLIGHT,
    LATENCY_RATE,
    LATENCY_SOURCES,
    REG_SOURCES,
    REG_STEPS,
    SOURCE_BUDGET,
    SOURCES,
)

P50, P99 = "latency_ms_p50", "latency_ms_p99"
CALLS_PER_S = LATENCY_SOURCES * LATENCY_RATE  # the rate call setup is measured at


@dataclass(frozen=True)
class Relay:
    """The media relay's facts the result needs: its ports and how long it holds them."""

    ports: int
    delete_delay: int


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def build_result(
    regs: dict[str, Any], call: dict[str, Any], cpu_known: bool, relay: Relay
) -> dict[str, Any]:
    return {
        "benchmark": "sip_core",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "note": "load generator, lab and bare relay share these CPUs",
        },
        **setup(),
        "registers_per_s": registers_per_s(regs),
        "calls_per_s": calls_per_s(call, relay),
        "call_setup_ms": call_setup_ms(call),
        "app_lookup": app_lookup(call),
        "cost_per_op": cost_per_op(regs, call, cpu_known),
        "registers": regs,
        "calls": call,
        "comparisons": comparisons(regs, call),
    }


def setup() -> dict[str, Any]:
    """What was measured against what, under which load."""
    return {
        "full_stack": f"{FULL_CONTAINER} ({FULL}): digest auth (PostgreSQL), DMQ replication to 3 "
        "proxies, app routing over HTTP, rtpengine offer/answer/delete; the callee a sipp UAS "
        "registered as a demo device, answering with SDP",
        "baseline": "bare Kamailio relay (bench/bare-relay.cfg, same image, same run): REGISTER "
        "answered 200 statelessly, calls relayed statelessly to the same UAS",
        "load": {
            "register_sources": len(REG_SOURCES),
            "call_sources": len(SOURCES),
            "per_source_limits": f"at most {SOURCE_BUDGET:.0f} requests/s (pike bans above 400 "
            f"per 2 s) and {IN_FLIGHT} transactions in flight",
            "register_steps_per_source_per_s": list(REG_STEPS),
            "call_latency_rate_per_s": CALLS_PER_S,
            "call_burst_offered_per_s": BURST_RATE * len(SOURCES),
            "transport": "UDP",
        },
    }


def capacity(regs: dict[str, Any]) -> dict[str, Any]:
    return regs["full_capacity"] or {"per_second": 0.0}


def registers_per_s(regs: dict[str, Any]) -> dict[str, Any]:
    full, bare = capacity(regs)["per_second"], regs["bare"]
    return {
        "full": full,
        "bare": bare["per_second"],
        "ratio_full_vs_bare": ratio(full, bare["per_second"]),
        "full_saturated": regs["full_saturated"],
        "bare_saturated": bare["saturated"],
        "full_stopped_by": regs["full_steps"][-1]["problems"] if regs["full_steps"] else [],
        "note": "full = the highest rate of a ramp step carried cleanly (no failures, last "
        "binding replicated to every proxy, shared memory < 80%, no ban); the ramp stops at "
        "the first step below 95% of its offered rate (saturated) or not clean. Unsaturated "
        "figures (bare; full if full_saturated is false) are lower bounds",
    }


def calls_per_s(call: dict[str, Any], relay: Relay) -> dict[str, Any]:
    on, off, bare = call["cache_on"], call["cache_off"], call["bare_burst"]
    cps, cps_off, bare_cps = (
        on["burst"]["per_second"],
        off["burst"]["per_second"],
        bare["per_second"],
    )
    per_call = on["relay_ports_per_call"]
    return {
        "full": cps,
        "full_route_cache_off": cps_off,
        "bare": bare_cps,
        "ratio_full_vs_bare": ratio(cps, bare_cps),
        "ratio_cache_off_vs_on": ratio(cps_off, cps),
        "saturated": {
            "full": on["burst"].get("saturated"),
            "full_route_cache_off": off["burst"].get("saturated"),
            "bare": bare.get("saturated"),
        },
        "full_sustained_limit_by_relay_ports": round(
            relay.ports / per_call / relay.delete_delay, 1
        ),
        "note": f"bursts of at most {BURST_CALLS_MAX * len(SOURCES)} calls (sized to the "
        f"relay's free ports); sustained, the relay's {relay.ports} ports at {per_call} per call, "
        f"held {relay.delete_delay} s after the BYE (delete-delay), cap the full stack at "
        "full_sustained_limit_by_relay_ports",
    }


def call_setup_ms(call: dict[str, Any]) -> dict[str, Any]:
    lat, lat_off = call["cache_on"]["latency"], call["cache_off"]["latency"]
    bare = call["bare_latency"]
    return {
        "measured_at_calls_per_s": CALLS_PER_S,
        "full": {"p50": lat.get(P50), "p99": lat.get(P99)},
        "full_route_cache_off": {"p50": lat_off.get(P50), "p99": lat_off.get(P99)},
        "bare": {"p50": bare.get(P50), "p99": bare.get(P99)},
        "ratio_p50_full_vs_bare": ratio(lat.get(P50), bare.get(P50)),
        "ratio_p99_full_vs_bare": ratio(lat.get(P99), bare.get(P99)),
        "note": "first INVITE sent to 200 received; the full stack's 407 round included",
    }


def app_lookup(call: dict[str, Any]) -> dict[str, Any]:
    on, off = call["cache_on"], call["cache_off"]
    return {
        "measured_at_calls_per_s": CALLS_PER_S,
        "cache_on": on["latency"]["app_lookup"],
        "cache_off": off["latency"]["app_lookup"],
        "under_burst": {
            "cache_on": on["burst"]["app_lookup"],
            "cache_off": off["burst"]["app_lookup"],
        },
        "note": "appstats on the proxy: HTTP lookup time around http_client_query; a cache "
        "hit is an htable read (not timed)",
    }


def cost_per_op(regs: dict[str, Any], call: dict[str, Any], cpu_known: bool) -> dict[str, Any]:
    cap, on = capacity(regs), call["cache_on"]
    return {
        "cpu_measured": cpu_known,
        "register_lab_cpu_us": cap.get("lab_cpu_us_per_op"),
        "register_bare_relay_cpu_us": regs["bare"].get("relay_cpu_us_per_op"),
        "register_dmq_messages": cap.get("dmq_messages_per_op"),
        "full_proxy_dmq_nodes": regs["full_proxy_dmq_nodes"],
        "call_lab_cpu_us_cache_on": on["lab_cpu_us_per_op"],
        "call_lab_cpu_us_cache_off": call["cache_off"]["lab_cpu_us_per_op"],
        "call_bare_relay_cpu_us": call["bare_burst"].get("relay_cpu_us_per_op"),
        "call_dmq_messages": on["dmq_messages_per_op"],
        "note": "CPU time of all pbx-lab-* containers less their idle load (full) or of the "
        "bare relay container per completed operation (host cgroup counters); DMQ messages = "
        "transactions the full-stack proxy started (tm total_local) per operation",
    }


def comparisons(regs: dict[str, Any], call: dict[str, Any]) -> list[dict[str, Any]]:
    """Each figure against its baseline (what bench/__main__.py draws)."""
    on, off = call["cache_on"], call["cache_off"]
    cps, lat, lat_off = on["burst"]["per_second"], on["latency"], off["latency"]
    bare_lat = call["bare_latency"]
    look_on, look_off = lat["app_lookup"], lat_off["app_lookup"]
    rows = [
        ("REGISTER/s", "1/s", capacity(regs)["per_second"], regs["bare"]["per_second"],
         "bare relay"),
        ("calls/s", "1/s", cps, call["bare_burst"]["per_second"], "bare relay"),
        ("call setup p50", "ms", lat.get(P50), bare_lat.get(P50), "bare relay"),
        ("call setup p99", "ms", lat.get(P99), bare_lat.get(P99), "bare relay"),
        ("calls/s, route cache off", "1/s", off["burst"]["per_second"], cps, "cache on"),
        ("call setup p50, route cache off", "ms", lat_off.get(P50), lat.get(P50), "cache on"),
        ("app lookup per call, cache off", "us", look_off["mean_lookup_cost_per_call_us"],
         look_on["mean_lookup_cost_per_call_us"], "cache on"),
    ]  # fmt: skip
    return [
        {"metric": m, "unit": u, "value": v, "baseline": b, "baseline_label": label}
        for m, u, v, b, label in rows
        if v and b
    ]
