"""The SIP benchmark's result (bench/results/sip_core.json) and its picture (sip_ladders.png):
the figures of both phases against their baselines, the CPU each operation costs per container,
and the issue's goals. A pure function of what the phases measured (plus the drawing)."""

from __future__ import annotations

import os
import platform
import time
from typing import Any

from .sip_plan import (
    CALLS_FULL,
    FULL,
    FULL_CONTAINER,
    HOLD_S,
    MAX_FAILED,
    MIN_ACHIEVED,
    PICTURE,
    PROCESSES,
)

Ladder = dict[str, Any]

# The goals (each measured side by side in one run).
GOAL_REGISTER_CPU = 4.0  # lab CPU per REGISTER at most 4x the bare registrar's
GOAL_CALL_CPU = 10.0  # lab CPU per call at most 10x the bare stateful proxy's
GOAL_REGISTER_RATE = 0.5  # REGISTER/s at least 50 % of the bare registrar's
GOAL_CALL_RATE = 0.3  # calls/s at least 30 % of the bare proxy's
GOAL_SETUP_P99_MS = 50.0  # call setup p99 at half the full stack's maximum


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def sustained_step(ladder: Ladder) -> dict[str, Any]:
    """The highest step that held (empty if none did)."""
    held = [s for s in ladder["steps"] if s.get("holds")]
    return max(held, key=lambda s: s["per_second"]) if held else {}


def build_result(
    regs: dict[str, Ladder], calls: dict[str, Ladder], cpu_known: bool
) -> dict[str, Any]:
    rates = {"register": rate_figures(regs), "call": rate_figures(calls)}
    cpu = {"register": cpu_figures(regs), "call": cpu_figures(calls)}
    half = calls["full"]["at_half"]
    return {
        "benchmark": "sip_core",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "note": "load generator, lab and bare baseline share these CPUs",
        },
        **setup(),
        "rates_per_s": rates,
        "cpu_us_per_op": {**cpu, "measured": cpu_known},
        "call_setup_ms_at_half": {
            "calls_per_s": half.get("offered_per_s"),
            "p50": half.get("latency_ms_p50"),
            "p99": half.get("latency_ms_p99"),
            "route_cache_off": {
                "p50": calls["full"]["at_half_route_cache_off"].get("latency_ms_p50"),
                "p99": calls["full"]["at_half_route_cache_off"].get("latency_ms_p99"),
            },
        },
        "goals": goals(rates, cpu, half),
        "ladders": {"register": regs, "call": calls},
        "comparisons": comparisons(rates, cpu, calls),
    }


def setup() -> dict[str, Any]:
    """What was measured against what, under which load."""
    return {
        "full_stack": f"{FULL_CONTAINER} ({FULL}): digest auth, DMQ replication to 3 proxies, "
        "app routing over HTTP (route cache on unless said), rtpengine on both legs; callees "
        f"are sipp UASs registered as demo devices, answering with SDP; calls held {HOLD_S} s",
        "baseline": "bare Kamailio (bench/bare.cfg, same image, same run): registrar with "
        "digest auth against credentials in memory; stateful proxy with a registrar lookup",
        "load": {
            "processes": PROCESSES,
            "generator_check": "the bare baselines again with one process more",
            "step": f"{CALLS_FULL.seconds} s; holds with under {MAX_FAILED:.0%} failures, at "
            f"least {MIN_ACHIEVED:.0%} of the offered rate, no growing backlog",
            "sources": "the benchmark's client addresses, trusted sources of the lab (no flood "
            "ban, everything else applies)",
            "transport": "UDP",
        },
    }


def rate_figures(ladders: dict[str, Ladder]) -> dict[str, Any]:
    full, bare = ladders["full"], ladders["bare"]
    bound = bare["generator_check"]["generator_bound"]
    return {
        "full": full["sustained_per_s"],
        "bare": bare["sustained_per_s"],
        "bare_generator_bound": bound,
        "ratio_full_vs_bare": None if bound else ratio(full["sustained_per_s"],
                                                        bare["sustained_per_s"]),
        "full_stopped_by": full["stopped_by"],
        "bare_stopped_by": bare["stopped_by"],
    }  # fmt: skip


def cpu_figures(ladders: dict[str, Ladder]) -> dict[str, Any]:
    """CPU per operation at the highest step that held: the lab in total and per container,
    against the bare baseline's."""
    full, bare = sustained_step(ladders["full"]), sustained_step(ladders["bare"])
    return {
        "full": full.get("lab_cpu_us_per_op"),
        "bare": bare.get("bare_cpu_us_per_op"),
        "ratio_full_vs_bare": ratio(full.get("lab_cpu_us_per_op"), bare.get("bare_cpu_us_per_op")),
        "full_by_container": full.get("cpu_us_per_op", {}),
        "full_at_per_s": full.get("per_second"),
        "bare_at_per_s": bare.get("per_second"),
        "load_generator_full": full.get("load_generator_cpu_us_per_op"),
        "load_generator_bare": bare.get("load_generator_cpu_us_per_op"),
        "dmq_messages_full": full.get("dmq_messages_per_op"),
    }


def goals(rates: dict[str, Any], cpu: dict[str, Any], half: dict[str, Any]) -> list[dict[str, Any]]:
    def row(goal: str, measured: float | None, target: float, most: bool) -> dict[str, Any]:
        met = measured is not None and (measured <= target if most else measured >= target)
        return {"goal": goal, "measured": measured, "target": target, "met": met}

    return [
        row("lab CPU per REGISTER / bare registrar's (at most)",
            cpu["register"]["ratio_full_vs_bare"], GOAL_REGISTER_CPU, True),
        row("lab CPU per call / bare stateful proxy's (at most)",
            cpu["call"]["ratio_full_vs_bare"], GOAL_CALL_CPU, True),
        row("REGISTER/s / bare registrar's (at least)",
            rates["register"]["ratio_full_vs_bare"], GOAL_REGISTER_RATE, False),
        row("calls/s / bare stateful proxy's (at least)",
            rates["call"]["ratio_full_vs_bare"], GOAL_CALL_RATE, False),
        row("call setup p99 ms at half the full stack's maximum (at most)",
            half.get("latency_ms_p99"), GOAL_SETUP_P99_MS, True),
    ]  # fmt: skip


def comparisons(
    rates: dict[str, Any], cpu: dict[str, Any], calls: dict[str, Ladder]
) -> list[dict[str, Any]]:
    """Each figure against its baseline (what bench/__main__.py draws)."""
    half, off = calls["full"]["at_half"], calls["full"]["at_half_route_cache_off"]
    rows = [
        ("REGISTER/s sustained", "1/s", rates["register"]["full"], rates["register"]["bare"],
         "bare registrar"),
        ("calls/s sustained", "1/s", rates["call"]["full"], rates["call"]["bare"],
         "bare stateful proxy"),
        ("CPU per REGISTER, whole lab", "us", cpu["register"]["full"], cpu["register"]["bare"],
         "bare registrar"),
        ("CPU per call, whole lab", "us", cpu["call"]["full"], cpu["call"]["bare"],
         "bare stateful proxy"),
        ("call setup p99 at half max", "ms", half.get("latency_ms_p99"), GOAL_SETUP_P99_MS,
         "goal"),
        ("CPU per call, route cache off", "us", off.get("lab_cpu_us_per_op"),
         half.get("lab_cpu_us_per_op"), "cache on"),
    ]  # fmt: skip
    return [
        {"metric": m, "unit": u, "value": v, "baseline": b, "baseline_label": label}
        for m, u, v, b, label in rows
        if v and b
    ]


def draw(result: dict[str, Any]) -> None:
    """Offered vs achieved rate of every ladder step (held: filled, not held: hollow), with the
    p99 latency: where each target stops keeping up."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    for row, kind in enumerate(("register", "call")):
        for target, colour in (("bare", "tab:gray"), ("full", "tab:blue")):
            steps = [s for s in result["ladders"][kind][target]["steps"] if "per_second" in s]
            steps.sort(key=lambda s: s["offered_per_s"])
            offered = [s["offered_per_s"] for s in steps]
            for ax, key in ((axes[row][0], "per_second"), (axes[row][1], "latency_ms_p99")):
                ax.plot(offered, [s.get(key) or 0 for s in steps], "-", color=colour, alpha=0.5)
                for s in steps:
                    ax.plot(s["offered_per_s"], s.get(key) or 0, "o", color=colour,
                            fillstyle="full" if s["holds"] else "none")  # fmt: skip
            axes[row][0].plot([], [], "o-", color=colour, label=f"{target} (hollow: did not hold)")
        unit = "REGISTER/s" if kind == "register" else "calls/s"
        axes[row][0].set(xscale="log", yscale="log", xlabel=f"offered {unit}",
                         ylabel=f"achieved {unit}")  # fmt: skip
        axes[row][1].set(xscale="log", yscale="log", xlabel=f"offered {unit}", ylabel="p99 ms")
        axes[row][0].legend(fontsize=8)
    fig.suptitle(f"make bench: rate ladders, full stack vs bare Kamailio ({result['date']})")
    fig.tight_layout()
    fig.savefig(PICTURE, dpi=100)
    plt.close(fig)
