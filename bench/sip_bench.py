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

Lab addresses 172.30.1.180-199 only; demo devices 60-97 only; bounded counts and timeouts; every
container started here is removed; bans and bindings this run caused are lifted on all proxies;
route_cache is always restored to 1. Run it under the lab lock:
    flock /tmp/pbx-lab.lock .venv/bin/python -m bench.sip_bench
Writes bench/results/sip_core.json.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULT = REPO / "bench" / "results" / "sip_core.json"
SCENARIOS = REPO / "tests" / "sip" / "scenarios"
TENANT = REPO / ".lab" / "demo-tenant.json"

NET = "pbx-lab-fra"
CLIENT, BARE = "pbx-bench-client", "pbx-bench-bare"
CLIENT_IP, BARE_IP, UAS_IP = "172.30.1.180", "172.30.1.181", "172.30.1.182"
SOURCES = [f"172.30.1.{i}" for i in range(183, 200)]  # callers
REG_SOURCES = [CLIENT_IP, UAS_IP, *SOURCES]  # the UAS starts after the REGISTER phase
OWN_IPS = [CLIENT_IP, BARE_IP, UAS_IP, *SOURCES]
FULL, FULL_CONTAINER = "172.30.1.11", "pbx-lab-fra-sip-proxy-1"
PROXIES = [f"pbx-lab-{site}-sip-proxy-{n}" for site in ("fra", "ber") for n in (1, 2)]
RELAY = "pbx-lab-fra-media-relay-1"
WORK = "/tmp/bench"  # inside the client container

# Demo devices (indexes into .lab/demo-tenant.json; the tests use the others).
CALLEE = 60
CALLERS = range(61, 61 + len(SOURCES))
REGISTRANTS = range(78, 78 + len(REG_SOURCES))

# Per source: pike bans above 400 requests per 2 s; we send at most 85% of that, with at most 4
# transactions in flight (so retransmissions stay few, and so do open digest challenges).
SOURCE_BUDGET = 0.85 * 400 / 2
IN_FLIGHT = 4
REG_STEPS = (20, 35, 45, 55, 65, 75)  # REGISTER/s per source, 2 requests each (challenge)
REG_STEP_SECONDS = 5
REG_DRAIN_SECONDS = 5  # tm keeps finished DMQ transactions ~5 s: each step starts clean
BARE_REG_RATE, BARE_REG_SECONDS = 600, 3  # per source; the bare relay has no flood limit
CALL_REQS = 5  # INVITE, ACK (407), INVITE (credentials), ACK, BYE from the caller
LATENCY_SOURCES, LATENCY_RATE, LATENCY_CALLS = 4, 5, 20  # 20 calls/s for 4 s
BURST_RATE, BURST_CALLS_MAX = 30, 10  # per source: 510 calls/s offered, at most 170 calls
BARE_BURST_RATE, BARE_BURST_CALLS = 150, 100  # per source
PORT_MARGIN = 40  # relay ports left to everyone else
assert max(REG_STEPS) * 2 <= SOURCE_BUDGET
assert BURST_RATE * CALL_REQS <= SOURCE_BUDGET

CALL_EXTRA = "-s {ext} -set caller {{user}} -set hold 0"

STARTED = time.monotonic()
Device = dict[str, Any]


def say(text: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {text}", flush=True)


def sh(*args: str, timeout: float = 60, check: bool = True) -> str:
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}): {r.stdout}\n{r.stderr}")
    return r.stdout


def in_container(name: str, script: str, timeout: float = 60, check: bool = False) -> str:
    return sh("docker", "exec", name, "sh", "-c", script, timeout=timeout, check=check)


def client(script: str, timeout: float = 60, check: bool = False) -> str:
    return in_container(CLIENT, script, timeout, check)


def wait_until(ready: Callable[[], bool], timeout: float, what: str) -> None:
    """Bounded polling: return once `ready()` holds, fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not ready after {timeout:.0f}s")
        time.sleep(0.2)


def udp_listening(container: str, address: str) -> bool:
    port = address.rsplit(":", 1)[1]
    return address in in_container(container, f"ss -Hlun 'sport = :{port}'")


def kamcmd(*args: str) -> str:
    return sh("docker", "exec", FULL_CONTAINER, "kamcmd", *args, check=False)


# ----- lab hygiene: bans, bindings, containers -----


def lift_bans() -> None:
    """Bans and failed-auth counters of our addresses, on every proxy (they replicate anyway)."""
    script = "; ".join(
        f"kamcmd htable.delete {table} {ip} >/dev/null 2>&1"
        for ip in OWN_IPS
        for table in ("ipban", "authfail")
    )
    for proxy in PROXIES:
        in_container(proxy, script)


def banned() -> list[str]:
    dump = kamcmd("htable.dump", "ipban")
    return [ip for ip in OWN_IPS if f"name: {ip}\n" in dump]


def drop_bindings(aors: list[str]) -> None:
    script = "; ".join(f"kamcmd ul.rm location {aor} >/dev/null 2>&1" for aor in aors)
    for proxy in PROXIES:
        in_container(proxy, script)


def remove_containers() -> None:
    for name in (CLIENT, BARE):
        sh("docker", "rm", "-f", name, check=False)


def start_containers() -> None:
    remove_containers()
    # The client image idles by default; sipp and the shell run in it through `docker exec`.
    sh(*f"docker run -d --name {CLIENT} --network {NET} --ip {CLIENT_IP} --cap-add NET_ADMIN "
       f"-v {SCENARIOS}:/scen:ro pbx/sipclient:lab".split())  # fmt: skip
    addresses = "; ".join(f"ip addr add {ip}/24 dev eth0" for ip in [UAS_IP, *SOURCES])
    client(f"mkdir -p {WORK}; {addresses}", check=True)
    sh(*f"docker run -d --name {BARE} --network {NET} --ip {BARE_IP} "
       f"-v {REPO / 'bench' / 'bare-relay.cfg'}:/etc/kamailio/bare.cfg:ro --entrypoint kamailio "
       f"pbx/kamailio:lab -DD -E -f /etc/kamailio/bare.cfg -l udp:{BARE_IP}:5060".split(),
       "-A", f'BENCH_UAS="sip:{UAS_IP}:5071"')  # fmt: skip
    try:
        wait_until(bare_answers_register, 20, f"bare relay {BARE_IP}:5060")
    except RuntimeError as e:
        logs = subprocess.run(["docker", "logs", BARE], capture_output=True, text=True, check=False)
        raise RuntimeError(f"{e}: {logs.stdout[-2000:]}{logs.stderr[-2000:]}") from e


# One REGISTER over UDP from the client; prints the status line of the answer or "silence".
REGISTER_PROBE = r"""
import socket, sys, uuid
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[2], 0)); s.settimeout(0.5)
me = "%s:%d" % s.getsockname()
s.sendto((f"REGISTER sip:{sys.argv[1]} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK"
          f"{uuid.uuid4().hex};rport\r\nFrom: <sip:probe@{me}>;tag=1\r\nTo: <sip:probe@{me}>\r\n"
          f"Call-ID: {uuid.uuid4().hex}\r\nCSeq: 1 REGISTER\r\nMax-Forwards: 70\r\n"
          "Content-Length: 0\r\n\r\n").encode(), (sys.argv[1], 5060))
try:
    print(s.recv(4096).decode(errors="replace").split("\r\n", 1)[0])
except TimeoutError:
    print("silence")
"""


def bare_answers_register() -> bool:
    running = sh("docker", "inspect", "-f", "{{.State.Running}}", BARE, check=False).strip()
    if running != "true":
        raise RuntimeError("bare relay exited")
    return "SIP/2.0 200" in client(f"python3 -c '{REGISTER_PROBE}' {BARE_IP} {CLIENT_IP}")


# ----- measurements on the side: CPU, shared memory, DMQ, relay, app lookup -----


class Cpu:
    """CPU time (ns) of containers, from the host's cgroup counters (v1 or v2)."""

    def __init__(self, names: list[str]) -> None:
        ids = sh("docker", "inspect", "-f", "{{.Id}}", *names).split()
        found = {n.removeprefix("pbx-lab-"): self._file(i) for n, i in zip(names, ids, strict=True)}
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


def cpu_split(before: dict[str, int], after: dict[str, int], ops: int) -> dict[str, float]:
    """Microseconds of CPU per operation by container, the biggest first (top 6)."""
    spent = sorted(((after[n] - before.get(n, 0), n) for n in after), reverse=True)[:6]
    return {n: round(ns / 1000 / ops, 1) for ns, n in spent if ops}


def kam_values(*args: str) -> dict[str, int]:
    """kamcmd output of 'name: number' lines as a dict."""
    values: dict[str, int] = {}
    for line in kamcmd(*args).splitlines():
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


def dmq_sent() -> int:
    """Transactions the full-stack proxy started itself: DMQ messages to its peers."""
    return kam_values("tm.stats").get("total_local", 0)


def dmq_peers() -> dict[str, int]:
    """DMQ node list of the full-stack proxy: entries vs distinct peers (a duplicate entry gets
    every replication message twice)."""
    hosts = [line.split(":", 1)[1].strip() for line in kamcmd("dmq.list_nodes").splitlines()
             if line.strip().startswith("host:")]  # fmt: skip
    return {"entries": len(hosts) - 1, "distinct_peers": len(set(hosts)) - 1}


def relay_state() -> dict[str, Any]:
    stats = json.loads(sh("docker", "exec", RELAY, "rtpengine-ctl", "list", "jsonstats"))
    public = next(i for i in stats["interfaces"] if i["name"] == "public")
    offers = sum(p.get("offercount", 0) for p in stats["controlstatistics"]["proxies"])
    return {"address": public["address"], "ports": public["ports"], "offers": offers}


def wait_for_ports(needed: int, limit: float = 50) -> dict[str, Any]:
    """The relay holds a call's ports for delete-delay after the BYE: wait until enough are free."""
    deadline = time.monotonic() + limit
    state = relay_state()
    if state["ports"]["free"] < needed:
        say(f"  waiting for relay ports (delete-delay): {state['ports']['free']} free, {needed}")
    while state["ports"]["free"] < needed and time.monotonic() < deadline:
        time.sleep(2)
        state = relay_state()
    return state


def appstats() -> dict[str, int]:
    values: dict[str, int] = {}
    name = None
    for line in kamcmd("htable.dump", "appstats").splitlines():
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


def set_cache(on: int) -> None:
    sh("docker", "exec", FULL_CONTAINER, "kamcmd", "cfg.set_now_int", "pbx", "route_cache", str(on))


def replicated(aors: list[str]) -> int:
    """AORs whose newest binding (Call-ID of the last REGISTER) is the same on every proxy."""
    script = "; ".join(
        f"printf '{aor} '; kamcmd ul.lookup location {aor} 2>&1 | grep -m1 Call-ID || echo none"
        for aor in aors
    )
    seen: dict[str, set[str]] = {aor: set() for aor in aors}
    for proxy in PROXIES:
        for line in in_container(proxy, script).splitlines():
            aor, _, rest = line.partition(" ")
            if aor in seen:
                seen[aor].add(rest.strip())
    return sum(1 for ids in seen.values() if len(ids) == 1 and "none" not in ids)


# ----- load -----


def percentile(sorted_values: list[float], pct: float) -> float:
    return sorted_values[max(0, math.ceil(pct / 100 * len(sorted_values)) - 1)]


def load(
    tag: str, target: str, kind: str, rate: int, count: int, devices: list[Device], extra: str
) -> dict[str, Any]:
    """One sipp per source (and device) in parallel, each at `rate`/s for `count` operations.

    Rate = completed operations / (first request sent .. last operation completed), from the
    scenarios' microsecond timestamps; latency = first request sent .. 200 received.
    """
    scenario, port = ("bench_register.xml", 5070) if kind == "REG" else ("bench_call.xml", 5080)
    sources = REG_SOURCES if kind == "REG" else SOURCES
    commands = []
    for i, dev in enumerate(devices):
        user, log = dev["sip_username"], f"{WORK}/{tag}-{i}"
        commands.append(
            f"sipp {target}:5060 -sf /scen/{scenario} -i {sources[i]} -p {port} -r {rate} "
            f"-m {count} -l {IN_FLIGHT} -au {user} -ap '{dev['sip_password']}' "
            f"{extra.format(user=user)} -nostdin -max_retrans 3 -timeout {count // rate + 15}s "
            f"-trace_stat -stf {log}.csv -trace_logs -log_file {log}.log >/dev/null 2>&1"
        )
    client(f"rm -f {WORK}/{tag}-*; " + " & ".join(commands) + " & wait", timeout=count / rate + 40)
    stamps, garbled = [], []
    fields = 4 if kind == "REG" else 6
    for line in client(f"cat {WORK}/{tag}-*.log 2>/dev/null").splitlines():
        parts = line.split()
        if not parts or parts[0] != kind:
            continue
        try:
            n = [float(x) for x in parts[1:]]
        except ValueError:
            n = []
        if len(n) != fields:
            garbled.append(line)
            continue
        stamps.append([n[i] + n[i + 1] / 1e6 for i in range(0, fields, 2)])
    if garbled:
        say(f"  {len(garbled)} unreadable log lines, e.g. {garbled[0]!r}")
    failed = 0
    stats = client(f"for f in {WORK}/{tag}-*.csv; do head -n1 $f; tail -n1 $f; done").splitlines()
    for header, last in zip(stats[::2], stats[1::2], strict=False):
        names, values = header.split(";"), last.split(";")
        if "FailedCall(C)" in names and len(values) == len(names) and last != header:
            failed += int(values[names.index("FailedCall(C)")])
    result: dict[str, Any] = {
        "offered_per_s": rate * len(devices),
        "attempted": count * len(devices),
        "ok": len(stamps),
        "failed": failed,
        "per_second": 0.0,
    }
    if stamps:
        window = max(s[-1] for s in stamps) - min(s[0] for s in stamps)
        latency = sorted((s[1] - s[0]) * 1000 for s in stamps)
        result["seconds"] = round(window, 2)
        result["per_second"] = round(len(stamps) / window, 1) if window > 0 else 0.0
        result["latency_ms_p50"] = round(percentile(latency, 50), 2)
        result["latency_ms_p99"] = round(percentile(latency, 99), 2)
    result["saturated"] = result["per_second"] < 0.95 * result["offered_per_s"]
    return result


def show(name: str, r: dict[str, Any]) -> None:
    say(f"  {name}: {r['ok']}/{r['attempted']} ok, {r['failed']} failed, {r['per_second']}/s, "
        f"p50 {r.get('latency_ms_p50')} ms, p99 {r.get('latency_ms_p99')} ms")  # fmt: skip


def per_op(amount: int, ops: int, scale: float = 1.0) -> float | None:
    return round(amount / scale / ops, 1) if ops else None


# ----- phases -----


class Meters:
    """CPU of the lab (less its idle load), the bare relay and the load generator; DMQ messages
    the full-stack proxy sent."""

    IDLE_SECONDS = 3

    def __init__(self) -> None:
        lab = [n for n in sh("docker", "ps", "--format", "{{.Names}}").split() if "pbx-lab-" in n]
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

    def since(self, mark: dict[str, dict[str, int]], ops: int, full: bool) -> dict[str, Any]:
        now = self.mark()
        seconds = (now["clock"]["ns"] - mark["clock"]["ns"]) / 1e9
        now["lab"] = {
            n: max(mark["lab"][n], int(v - self.idle.get(n, 0) * seconds))
            for n, v in now["lab"].items()
        }
        used = {k: sum(now[k].values()) - sum(mark[k].values()) for k in now}
        out: dict[str, Any] = {"load_generator_cpu_us_per_op": per_op(used["generator"], ops, 1e3)}
        if full:
            out["lab_cpu_us_per_op"] = per_op(used["lab"], ops, 1e3)
            out["lab_cpu_us_per_op_top"] = cpu_split(mark["lab"], now["lab"], ops)
            out["dmq_messages_per_op"] = per_op(used["dmq"], ops)
        else:
            out["relay_cpu_us_per_op"] = per_op(used["bare"], ops, 1e3)
        return out


def register_phase(devices: list[Device], meters: Meters) -> dict[str, Any]:
    aors = [d["aor"] for d in devices]
    say(f"REGISTER, bare relay: {len(devices)} sources x {BARE_REG_RATE}/s, {BARE_REG_SECONDS} s")
    mark = meters.mark()
    bare = load("bare-reg", BARE_IP, "REG", BARE_REG_RATE, BARE_REG_RATE * BARE_REG_SECONDS,
                devices, "-s {user}")  # fmt: skip
    bare.update(meters.since(mark, bare["ok"], full=False))
    show("bare", bare)
    say(f"    CPU per REGISTER: relay {bare['relay_cpu_us_per_op']} us, load generator "
        f"{bare['load_generator_cpu_us_per_op']} us")  # fmt: skip
    peers = dmq_peers()
    say(f"full-stack proxy's DMQ node list: {peers['entries']} entries for "
        f"{peers['distinct_peers']} peers")  # fmt: skip
    steps: list[dict[str, Any]] = []
    capacity: dict[str, Any] | None = None
    for rate in REG_STEPS:
        say(f"REGISTER, full stack: {len(devices)} sources x {rate}/s, {REG_STEP_SECONDS} s")
        watch = ShmWatch()
        watch.start()
        mark = meters.mark()
        step = load(f"full-reg-{rate}", FULL, "REG", rate, rate * REG_STEP_SECONDS, devices,
                    "-s {user}")  # fmt: skip
        step.update(meters.since(mark, step["ok"], full=True))
        watch.done.set()
        watch.join()
        time.sleep(REG_DRAIN_SECONDS)
        step["proxy_shm_peak_mb"] = round(watch.peak_kb / 1024, 1)
        step["proxy_shm_total_mb"] = round(watch.total_kb / 1024, 1)
        step["replicated_aors"] = f"{replicated(aors)}/{len(aors)}"
        all_there = f"{len(aors)}/{len(aors)}"
        if step["replicated_aors"] != all_there:
            time.sleep(5)  # lagging or lost?
            step["replicated_aors_5s_later"] = f"{replicated(aors)}/{len(aors)}"
        step["banned"] = banned()
        problems = []
        if step["failed"] > 0.01 * step["attempted"] or step["ok"] < 0.99 * step["attempted"]:
            problems.append("failures")
        if step["replicated_aors"] != all_there:
            problems.append("replication behind")
        if watch.total_kb and watch.peak_kb > 0.8 * watch.total_kb:
            problems.append("shared memory nearly full")
        if step["banned"]:
            problems.append("banned")
        step["problems"] = problems
        steps.append(step)
        show("full", step)
        later = step.get("replicated_aors_5s_later")
        later = f" ({later} 5 s later)" if later else ""
        verdict = ", ".join(problems) or ("clean, saturated" if step["saturated"] else "clean")
        say(f"    per REGISTER: {step['dmq_messages_per_op']} DMQ messages, lab CPU "
            f"{step['lab_cpu_us_per_op']} us; shm peak {step['proxy_shm_peak_mb']}/"
            f"{step['proxy_shm_total_mb']} MB; replicated {step['replicated_aors']}{later}: "
            f"{verdict}")  # fmt: skip
        if step["banned"]:
            lift_bans()
        if not problems and (capacity is None or step["per_second"] > capacity["per_second"]):
            capacity = step
        if problems or step["saturated"]:
            break
    return {
        "bare": bare,
        "full_steps": steps,
        "full_capacity": capacity,
        "full_saturated": bool(steps and (steps[-1]["problems"] or steps[-1]["saturated"])),
        "full_proxy_dmq_nodes": peers,
    }


def full_calls(mode: int, callers: list[Device], ext: str, meters: Meters) -> dict[str, Any]:
    """Latency at a moderate rate, then a burst, with the route cache on (1) or off (0)."""
    say(f"calls, full stack, route cache {'on' if mode else 'off'}")
    set_cache(mode)
    if mode:
        kamcmd("htable.flush", "approute")
    relay0 = wait_for_ports(relay_state()["ports"]["totals"] - 100)
    stats0, offers0, mark = appstats(), uas_offers(), meters.mark()
    lat = load(f"full-lat-{mode}", FULL, "CALL", LATENCY_RATE, LATENCY_CALLS,
               callers[:LATENCY_SOURCES], CALL_EXTRA.format(ext=ext))  # fmt: skip
    relay1, stats1 = relay_state(), appstats()
    lat["app_lookup"] = lookup_cost(stats0, stats1, mode)
    show("latency", lat)
    used = relay1["ports"]["used"] - relay0["ports"]["used"]
    ports_per_call = max(2, math.ceil(used / max(1, lat["ok"])))
    budget = (relay1["ports"]["free"] - PORT_MARGIN) // ports_per_call // len(SOURCES)
    per_source = min(BURST_CALLS_MAX, budget)
    burst = load(f"full-burst-{mode}", FULL, "CALL", BURST_RATE, per_source, callers,
                 CALL_EXTRA.format(ext=ext))  # fmt: skip
    ok = lat["ok"] + burst["ok"]
    costs = meters.since(mark, ok, full=True)
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
        "anchored_on_relay": f"{offers.get(relay0['address'], 0)}/{ok}",
        "relay_ports_per_call": ports_per_call,
        "banned": banned(),
    }
    a = lat["app_lookup"]
    say(f"    app lookup at {LATENCY_SOURCES * LATENCY_RATE} calls/s: {a['http_lookups']} over "
        f"HTTP (mean {a['mean_http_lookup_us']} us), {a['cache_hits']} cache hits; per call "
        f"{costs['dmq_messages_per_op']} DMQ messages, lab CPU {costs['lab_cpu_us_per_op']} us; "
        f"SDP offers via the relay {relay0['address']}: {result['anchored_on_relay']}")  # fmt: skip
    if result["banned"]:
        say(f"  WARNING: banned {result['banned']} - lifting")
        lift_bans()
    return result


def uas_offers() -> dict[str, int]:
    """Connection addresses in the SDP offers the callee received, counted."""
    counts: dict[str, int] = {}
    for line in client(f"grep OFFER {WORK}/uas.log 2>/dev/null").splitlines():
        address = line.rsplit(" ", 1)[-1].rstrip("]")
        counts[address] = counts.get(address, 0) + 1
    return counts


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def call_phase(tenant: dict[str, Any], meters: Meters) -> dict[str, Any]:
    devices = tenant["devices"]
    callee, callers = devices[CALLEE], [devices[i] for i in CALLERS]
    ext = callee["extension"]
    say(f"callee {callee['sip_username']} registers from {UAS_IP}:5071; the UAS answers all calls")
    register_callee(callee)
    start_uas()
    out: dict[str, Any] = {}
    say(f"calls, bare relay: {LATENCY_SOURCES * LATENCY_RATE}/s for latency, then a burst")
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
    out["cache_on"] = full_calls(1, callers, ext, meters)
    out["cache_off"] = full_calls(0, callers, ext, meters)
    set_cache(1)
    return out


def register_callee(callee: Device) -> None:
    user = callee["sip_username"]
    out = client(
        f"cd {WORK} && printf 'SEQUENTIAL\\n{user};\\n' > callee.csv && "
        f"sipp {FULL}:5060 -sf /scen/register.xml -inf callee.csv -au {user} "
        f"-ap '{callee['sip_password']}' -set expires 600 -i {UAS_IP} -p 5071 -m 1 -nostdin "
        f"-timeout 10s -trace_logs -log_file {WORK}/callee.log >/dev/null 2>&1; cat callee.log",
        timeout=30,
    )
    if "200 OK" not in out:
        raise RuntimeError(f"callee {user} did not register: {out}")


def start_uas() -> None:
    sh("docker", "exec", "-d", CLIENT, "sh", "-c",
       f"echo $$ > {WORK}/uas.pid; exec sipp -sf /scen/bench_answer.xml -i {UAS_IP} -p 5071 "
       f"-aa -nostdin -trace_logs -log_file {WORK}/uas.log >/dev/null 2>&1")  # fmt: skip
    wait_until(lambda: udp_listening(CLIENT, f"{UAS_IP}:5071"), 10, f"UAS on {UAS_IP}:5071")


def stop_uas() -> None:
    client(f"test -f {WORK}/uas.pid && kill $(cat {WORK}/uas.pid)")


# ----- result -----


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def build_result(regs: dict[str, Any], call: dict[str, Any], cpu_known: bool) -> dict[str, Any]:
    cap = regs["full_capacity"] or {"per_second": 0.0}
    bare_r, bare_burst, bare_lat = regs["bare"], call["bare_burst"], call["bare_latency"]
    on, off = call["cache_on"], call["cache_off"]
    cps, cps_off = on["burst"]["per_second"], off["burst"]["per_second"]
    bare_cps = bare_burst["per_second"]
    lat, lat_off = on["latency"], off["latency"]
    p50, p99 = "latency_ms_p50", "latency_ms_p99"
    look_on, look_off = on["latency"]["app_lookup"], off["latency"]["app_lookup"]
    ports = relay_state()["ports"]["totals"]
    delete_delay = int(
        sh("docker", "exec", RELAY, "rtpengine-ctl", "list", "deletedelay").split()[-1]
    )
    sustained = round(ports / on["relay_ports_per_call"] / delete_delay, 1)
    comparisons = [
        ("REGISTER/s", "1/s", cap["per_second"], bare_r["per_second"], "bare relay"),
        ("calls/s", "1/s", cps, bare_cps, "bare relay"),
        ("call setup p50", "ms", lat.get(p50), bare_lat.get(p50), "bare relay"),
        ("call setup p99", "ms", lat.get(p99), bare_lat.get(p99), "bare relay"),
        ("calls/s, route cache off", "1/s", cps_off, cps, "cache on"),
        ("call setup p50, route cache off", "ms", lat_off.get(p50), lat.get(p50), "cache on"),
        ("app lookup per call, cache off", "us", look_off["mean_lookup_cost_per_call_us"],
         look_on["mean_lookup_cost_per_call_us"], "cache on"),
    ]  # fmt: skip
    return {
        "benchmark": "sip_core",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "note": "load generator, lab and bare relay share these CPUs",
        },
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
            "call_latency_rate_per_s": LATENCY_SOURCES * LATENCY_RATE,
            "call_burst_offered_per_s": BURST_RATE * len(SOURCES),
            "transport": "UDP",
        },
        "registers_per_s": {
            "full": cap["per_second"],
            "bare": bare_r["per_second"],
            "ratio_full_vs_bare": ratio(cap["per_second"], bare_r["per_second"]),
            "full_saturated": regs["full_saturated"],
            "bare_saturated": bare_r["saturated"],
            "full_stopped_by": regs["full_steps"][-1]["problems"] if regs["full_steps"] else [],
            "note": "full = the highest rate of a ramp step carried cleanly (no failures, last "
            "binding replicated to every proxy, shared memory < 80%, no ban); the ramp stops at "
            "the first step below 95% of its offered rate (saturated) or not clean. Unsaturated "
            "figures (bare; full if full_saturated is false) are lower bounds",
        },
        "calls_per_s": {
            "full": cps,
            "full_route_cache_off": cps_off,
            "bare": bare_cps,
            "ratio_full_vs_bare": ratio(cps, bare_cps),
            "ratio_cache_off_vs_on": ratio(cps_off, cps),
            "saturated": {
                "full": on["burst"].get("saturated"),
                "full_route_cache_off": off["burst"].get("saturated"),
                "bare": bare_burst.get("saturated"),
            },
            "full_sustained_limit_by_relay_ports": sustained,
            "note": f"bursts of at most {BURST_CALLS_MAX * len(SOURCES)} calls (sized to the "
            f"relay's free ports); sustained, the relay's {ports} ports at "
            f"{on['relay_ports_per_call']} per call, held {delete_delay} s after the BYE "
            "(delete-delay), cap the full stack at full_sustained_limit_by_relay_ports",
        },
        "call_setup_ms": {
            "measured_at_calls_per_s": LATENCY_SOURCES * LATENCY_RATE,
            "full": {"p50": lat.get(p50), "p99": lat.get(p99)},
            "full_route_cache_off": {"p50": lat_off.get(p50), "p99": lat_off.get(p99)},
            "bare": {"p50": bare_lat.get(p50), "p99": bare_lat.get(p99)},
            "ratio_p50_full_vs_bare": ratio(lat.get(p50), bare_lat.get(p50)),
            "ratio_p99_full_vs_bare": ratio(lat.get(p99), bare_lat.get(p99)),
            "note": "first INVITE sent to 200 received; the full stack's 407 round included",
        },
        "app_lookup": {
            "measured_at_calls_per_s": LATENCY_SOURCES * LATENCY_RATE,
            "cache_on": look_on,
            "cache_off": look_off,
            "under_burst": {
                "cache_on": on["burst"]["app_lookup"],
                "cache_off": off["burst"]["app_lookup"],
            },
            "note": "appstats on the proxy: HTTP lookup time around http_client_query; a cache "
            "hit is an htable read (not timed)",
        },
        "cost_per_op": {
            "cpu_measured": cpu_known,
            "register_lab_cpu_us": cap.get("lab_cpu_us_per_op"),
            "register_bare_relay_cpu_us": bare_r.get("relay_cpu_us_per_op"),
            "register_dmq_messages": cap.get("dmq_messages_per_op"),
            "full_proxy_dmq_nodes": regs["full_proxy_dmq_nodes"],
            "call_lab_cpu_us_cache_on": on["lab_cpu_us_per_op"],
            "call_lab_cpu_us_cache_off": off["lab_cpu_us_per_op"],
            "call_bare_relay_cpu_us": bare_burst.get("relay_cpu_us_per_op"),
            "call_dmq_messages": on["dmq_messages_per_op"],
            "note": "CPU time of all pbx-lab-* containers less their idle load (full) or of the "
            "bare relay container per completed operation (host cgroup counters); DMQ messages = "
            "transactions the full-stack proxy started (tm total_local) per operation",
        },
        "registers": regs,
        "calls": call,
        "comparisons": [
            {"metric": m, "unit": u, "value": v, "baseline": b, "baseline_label": label}
            for m, u, v, b, label in comparisons
            if v and b
        ],
    }


def main() -> int:
    tenant = json.loads(TENANT.read_text())
    devices = tenant["devices"]
    our_aors = [devices[i]["aor"] for i in (CALLEE, *CALLERS, *REGISTRANTS)]
    result: dict[str, Any] = {}
    try:
        say("setup: load generator and bare relay containers; our bans and bindings lifted")
        start_containers()
        lift_bans()
        drop_bindings(our_aors)
        set_cache(1)
        say(f"lab idle CPU for {Meters.IDLE_SECONDS} s (subtracted from per-operation costs)")
        meters = Meters()
        regs = register_phase([devices[i] for i in REGISTRANTS], meters)
        calls = call_phase(tenant, meters)
        result = build_result(regs, calls, meters.available)
        RESULT.parent.mkdir(parents=True, exist_ok=True)
        RESULT.write_text(json.dumps(result, indent=2) + "\n")
        say("relay ports back for the next user of the lab")
        wait_for_ports(relay_state()["ports"]["totals"] - 100)
    finally:
        say("cleanup: route_cache 1, our bans and bindings, containers")
        try:
            set_cache(1)
        finally:
            if sh("docker", "ps", "-q", "-f", f"name=^{CLIENT}$", check=False).strip():
                stop_uas()
            lift_bans()
            drop_bindings(our_aors)
            remove_containers()
    for c in result.get("comparisons", []):
        print(f"  {c['metric']:<34} {c['value']:>10g} {c['unit']:<3} vs {c['baseline']:>10g} "
              f"({c['baseline_label']})")  # fmt: skip
    print(f"-> {RESULT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
