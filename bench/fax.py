"""Benchmark: concurrent fax calls on one fax gateway node, and the CPU a fax minute costs.

Run: .venv/bin/python -m bench.fax   (writes bench/results/fax.json and fax.png)

Two gateways (pbx_efax.gateway) on loopback, each the other's proxy, exchange real faxes in real
time: a one-page letter per call over G.711 (V.17 14,400 bit/s with ECM, about 35 s of line
time), N calls at once, for rising N. Both ends run on this machine, so each fax costs two
ends' work; the figures are per end (one gateway's share). The baseline, measured in the same
run, is one call alone: what a fax minute costs when nothing else runs. Every call of a level
must end with its page delivered, or the level counts as failed and the run stops there.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from labkit.fax import SIMILARITY_THRESHOLD, letter, similarity
from pbx_efax.documents import fax_pages
from pbx_efax.gateway import Config, Gateway, Outcome, Received

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LEVELS = (1, 8, 24, 48)
IP = "127.0.0.1"


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def level(calls: int, pages: Path, spool: Path, sip_port: int) -> dict[str, Any]:
    received: list[Received] = []

    async def keep(fax: Received) -> None:
        received.append(fax)

    async def ignore(fax: Received) -> None:
        return None

    def config(name: str, port: int, peer: int, media: int) -> Config:
        return Config(
            host=IP,
            sip_port=port,
            proxies=[(IP, peer)],
            media_ports=range(media, media + 400),
            domain="bench",
            token="",
            spool=spool / name,
            t38="accept",
        )

    # Ports of their own per level: the last level's sockets close on the next loop turn.
    receiver = Gateway(config("rx", sip_port, sip_port + 1, 50000), keep)
    sender = Gateway(config("tx", sip_port + 1, sip_port, 51000), ignore)
    await receiver.start()
    await sender.start()
    cpu_children, cpu_self, started = _cpu_children(), _cpu_self(), time.monotonic()
    try:
        outcomes: list[Outcome] = await asyncio.gather(
            *(sender.send(f"+4930{i:04d}", "+4989555", pages) for i in range(calls))
        )
        await asyncio.sleep(1)  # the receiving side hands its faxes over after the BYE
    finally:
        await sender.close()
        await receiver.close()
    wall = time.monotonic() - started
    cpu = (_cpu_children() - cpu_children) + (_cpu_self() - cpu_self)
    ok = [o for o in outcomes if o.status == "ok" and o.pages == 1]
    alike = sum(
        1
        for fax in received
        if fax.outcome.status == "ok" and min(similarity(pages, fax.tiff)) >= SIMILARITY_THRESHOLD
    )
    fax_minutes = sum(o.seconds for o in outcomes) / 60
    return {
        "calls": calls,
        "delivered": len(ok),
        "pages_alike": alike,
        "wall_s": round(wall, 1),
        "mean_call_s": round(sum(o.seconds for o in outcomes) / calls, 1),
        "cpu_s_both_ends": round(cpu, 2),
        # per end: both gateways ran here
        "cpu_s_per_fax_minute": round(cpu / 2 / fax_minutes, 3) if fax_minutes else None,
        "cpu_cores_per_end": round(cpu / 2 / wall, 3),
        "all_delivered": len(ok) == calls and alike == calls,
    }


async def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fax-bench-") as tmp:
        pages = Path(tmp) / "page.tif"
        fax_pages(letter(1, title="Benchmark"), pages)
        results = []
        for index, calls in enumerate(LEVELS):
            print(f"  {calls} concurrent fax call(s) ...", flush=True)
            result = await level(calls, pages, Path(tmp) / f"level-{calls}", 47160 + 2 * index)
            print(
                f"    {result['delivered']}/{calls} delivered, {result['cpu_s_per_fax_minute']} "
                f"CPU s per fax minute per end, {result['cpu_cores_per_end']} cores per end",
                flush=True,
            )
            results.append(result)
            if not result["all_delivered"]:
                break
    return {"levels": results}


def draw(levels: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    x = [lv["calls"] for lv in levels]
    ax.plot(x, [lv["cpu_cores_per_end"] for lv in levels], "o-", label="CPU cores per gateway")
    ax.set_xlabel("concurrent fax calls (G.711, 14,400 bit/s)")
    ax.set_ylabel("CPU cores used by one gateway")
    ax2 = ax.twinx()
    ax2.plot(
        x, [lv["cpu_s_per_fax_minute"] for lv in levels], "s--", color="tab:orange",
             label="CPU s per fax minute")  # fmt: skip
    ax2.set_ylabel("CPU seconds per fax minute")
    ax.set_title(f"eFax gateway on {os.cpu_count()} cores: all calls delivered up to {x[-1]}")
    fig.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    measured = asyncio.run(run())
    levels = measured["levels"]
    base, top = (
        levels[0],
        max((lv for lv in levels if lv["all_delivered"]), key=lambda lv: lv["calls"]),
    )
    result = {
        "benchmark": "fax",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "what": "one-page letters over G.711 between two gateways on loopback, N at once",
        **measured,
        "comparisons": [
            {
                "metric": "fax calls at once, every page delivered",
                "unit": "calls",
                "value": top["calls"],
                "baseline": base["calls"],
                "baseline_label": "one call",
            },
            {
                "metric": f"CPU per fax minute at {top['calls']} calls",
                "unit": "CPU s",
                "value": top["cpu_s_per_fax_minute"],
                "baseline": base["cpu_s_per_fax_minute"],
                "baseline_label": "one call alone",
            },
        ],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fax.json").write_text(json.dumps(result, indent=2) + "\n")
    draw(levels, RESULTS / "fax.png")
    print(json.dumps(result["comparisons"], indent=2))


if __name__ == "__main__":
    main()
