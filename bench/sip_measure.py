"""The SIP benchmark's measurements on the side of the load: CPU of the containers, the full-stack
proxy's shared memory, DMQ messages and app lookups, the media relay's ports, replication."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from labkit.control import dmq_peers, kamcmd, relay_stats
from labkit.docker import docker, shell
from labkit.lab import ALL_PROXIES, PLATFORM

from .sip_load import BARE, CLIENT, say
from .sip_plan import FULL_CONTAINER, RELAY


class Cpu:
    """CPU time (ns) of containers, from the host's cgroup counters (v1 or v2)."""

    def __init__(self, names: list[str]) -> None:
        ids = docker("inspect", "-f", "{{.Id}}", *names, check=True).stdout.split()
        prefix = f"{PLATFORM.name}-"
        found = {n.removeprefix(prefix): self._file(i) for n, i in zip(names, ids, strict=True)}
        self.files = {n: p for n, p in found.items() if p is not None}
        self.available = len(self.files) == len(names)

    @staticmethod
    def _file(cid: str) -> Path | None:
        for path in (
            Path(f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage"),
            Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat"),
            Path(f"/sys/fs/cgroup/docker/{cid}/cpu.stat"),
        ):
            if path.exists():
                return path
        return None

    def each(self) -> dict[str, int]:
        out = {}
        for name, path in self.files.items():
            text = path.read_text()
            if path.name == "cpu.stat":
                out[name] = int(text.split("usage_usec", 1)[1].split()[0]) * 1000
            else:
                out[name] = int(text.strip())
        return out


def per_op(amount: float, ops: int, scale: float = 1.0) -> float | None:
    return round(amount / scale / ops, 1) if ops else None


class Meters:
    """CPU time of every lab container (less its idle load), of the bare baseline and of the
    load generator; DMQ messages the full-stack proxy sent."""

    IDLE_SECONDS = 3

    def __init__(self) -> None:
        names = docker("ps", "--format", "{{.Names}}").stdout.split()
        lab = [n for n in names if f"{PLATFORM.name}-" in n]
        self.cpu = {"lab": Cpu(lab), "bare": Cpu([BARE]), "generator": Cpu([CLIENT])}
        self.available = all(c.available for c in self.cpu.values())
        before = self.cpu["lab"].each()
        time.sleep(self.IDLE_SECONDS)
        after = self.cpu["lab"].each()
        self.idle = {n: (after[n] - before[n]) / self.IDLE_SECONDS for n in after}  # ns per s

    def mark(self) -> dict[str, dict[str, int]]:
        marks = {name: cpu.each() for name, cpu in self.cpu.items()}
        marks["dmq"] = {"sent": dmq_sent()}
        marks["clock"] = {"ns": time.monotonic_ns()}
        return marks

    def since(self, mark: dict[str, dict[str, int]], ops: int) -> dict[str, Any]:
        """Per operation since `mark`: CPU (us) of each lab container, the lab's total, the bare
        baseline's and the generator's; DMQ messages of the full-stack proxy."""
        now = self.mark()
        seconds = (now["clock"]["ns"] - mark["clock"]["ns"]) / 1e9
        lab = {
            n: max(0.0, v - mark["lab"][n] - self.idle.get(n, 0) * seconds)
            for n, v in now["lab"].items()
        }
        used = {k: sum(now[k].values()) - sum(mark[k].values()) for k in ("bare", "generator")}
        return {
            "lab_cpu_us_per_op": per_op(sum(lab.values()), ops, 1e3),
            "cpu_us_per_op": {
                n: per_op(ns, ops, 1e3) for n, ns in sorted(lab.items()) if ns >= 1e3 * ops
            },
            "bare_cpu_us_per_op": per_op(used["bare"], ops, 1e3),
            "load_generator_cpu_us_per_op": per_op(used["generator"], ops, 1e3),
            "dmq_messages_per_op": per_op(now["dmq"]["sent"] - mark["dmq"]["sent"], ops),
        }


# ----- the full-stack proxy -----


def kam_values(*args: str) -> dict[str, int]:
    """kamcmd output of 'name: number' lines as a dict."""
    values: dict[str, int] = {}
    for line in kamcmd(FULL_CONTAINER, *args, check=False).splitlines():
        key, _, value = line.strip().partition(":")
        if value.strip().lstrip("-").isdigit():
            values[key.strip()] = int(value.strip())
    return values


class ShmWatch(threading.Thread):
    """Peak shared memory in use on the full-stack proxy while a load step runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.done = threading.Event()
        self.peak_kb = self.total_kb = 0

    def run(self) -> None:
        while not self.done.is_set():
            values = kam_values("core.shmmem", "k")
            self.total_kb = values.get("total", self.total_kb)
            self.peak_kb = max(self.peak_kb, values.get("real_used", 0))
            self.done.wait(0.5)

    def stop(self) -> None:
        self.done.set()
        self.join()


def dmq_sent() -> int:
    """Transactions the full-stack proxy started itself: DMQ messages to its peers."""
    return kam_values("tm.stats").get("total_local", 0)


def dmq_nodes() -> dict[str, int]:
    """DMQ node list of the full-stack proxy: entries vs distinct peers (a duplicate entry gets
    every replication message twice)."""
    peers = dmq_peers(FULL_CONTAINER)
    return {"entries": len(peers), "distinct_peers": len(set(peers))}


def appstats() -> dict[str, int]:
    """The proxy's route lookup counters: HTTP lookups, their time, route cache hits."""
    values: dict[str, int] = {}
    name = None
    for line in kamcmd(FULL_CONTAINER, "htable.dump", "appstats", check=False).splitlines():
        key, _, value = line.strip().partition(":")
        if key == "name":
            name = value.strip()
        elif key == "value" and name:
            values[name] = int(value.strip())
    return {k: values.get(k, 0) for k in ("lookups", "lookup_us", "cache_hits")}


def lookup_cost(before: dict[str, int], after: dict[str, int], cache: int) -> dict[str, Any]:
    lookups = after["lookups"] - before["lookups"]
    hits = after["cache_hits"] - before["cache_hits"]
    spent = after["lookup_us"] - before["lookup_us"]
    return {
        "route_cache": cache,
        "http_lookups": lookups,
        "cache_hits": hits,
        "mean_http_lookup_us": round(spent / lookups, 1) if lookups else None,
        "mean_lookup_cost_per_call_us": round(spent / (lookups + hits), 1) if lookups else None,
    }


def replicated(aors: list[str]) -> int:
    """AORs whose newest binding (Call-ID of the last REGISTER) is the same on every proxy."""
    script = "; ".join(
        f"printf '{aor} '; kamcmd ul.lookup location {aor} 2>&1 | grep -m1 Call-ID || echo none"
        for aor in aors
    )
    seen: dict[str, set[str]] = {aor: set() for aor in aors}
    for proxy in ALL_PROXIES:
        for line in shell(proxy, script).stdout.splitlines():
            aor, _, rest = line.partition(" ")
            if aor in seen:
                seen[aor].add(rest.strip())
    return sum(1 for ids in seen.values() if len(ids) == 1 and "none" not in ids)


# ----- the media relay -----


def relay_state() -> dict[str, Any]:
    stats = relay_stats(RELAY)
    public = next(i for i in stats["interfaces"] if i["name"] == "public")
    offers = sum(p.get("offercount", 0) for p in stats["controlstatistics"]["proxies"])
    return {"address": public["address"], "ports": public["ports"], "offers": offers}


def wait_for_relay_ports(needed: int, limit: float = 50) -> dict[str, Any]:
    """The relay holds a call's ports for delete-delay after the BYE: wait until enough are free
    (at most `limit` s; the state as it is then)."""
    deadline = time.monotonic() + limit
    state = relay_state()
    if state["ports"]["free"] < needed:
        say(f"  waiting for relay ports (delete-delay): {state['ports']['free']} free, {needed}")
    while state["ports"]["free"] < needed and time.monotonic() < deadline:
        time.sleep(2)
        state = relay_state()
    return state


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
