"""Full size (issue 15): one customer with 249,000 extensions and a registered binding for each,
measured on the running lab, against a 100-extension customer measured in the same run.

  a. shared memory per proxy (kamcmd core.shmmem real_used on all four, before and after the
     bindings; bytes per binding: what pbx_infra.topology.SHM_BYTES_PER_BINDING is set from);
  b. the refresh load of 249,000 devices re-registering every 600 s (415 REGISTER/s, digest
     auth) for REFRESH_SECONDS: p50/p99, failures, lab CPU per REGISTER (cgroup CPU time less
     the lab's idle load);
  c. how long a restarted proxy takes to have every binding back over DMQ (dmq_usrloc sync):
     from `docker restart` until its usrloc contact count reaches its peers';
  d. route lookup (the app's GET /internal/v1/route, as the proxies call it: token header,
     keep-alive, sequential) and call setup (INVITE to 200 through a fra proxy, sipp caller and
     a sipp UAS registered as one of the customer's devices; the proxy's route cache off, so
     every call asks the app) p50/p99 at 249,000 extensions vs at 100.

Data: both customers, their locations and extensions through the app's API (operator session,
the bulk import endpoint). The app has no bulk path for devices and 249,000 single creates are
no benchmark, so the devices (one per extension, SIP username fs<customer>-<extension>, unique
on the platform, a per-run password) are written with one INSERT ... SELECT in the lab's primary
PostgreSQL, ha1/ha1b computed as pbx_app.security does (md5 of "user:realm:password" and
"user@domain:realm:password"), and each extension's device_count raised to 1.

Bindings: sipp in a throwaway pbx/sipclient container (pbx-fullsize-client) with the 20
benchmark client addresses of fra (labkit.lab.BENCH_HOSTS: pbx:platform.trusted_sources, so the
proxies' flood limit, pike, does not count them; digest auth applies as to any phone), sent to
fra's SIP address like phones do. Expires EXPIRES_S. The run stops (and cleans up) when a proxy
does not answer its contact count, or when the devices did not get (or the proxies did not
replicate) their bindings: no figure is measured on a table that is not full.

Clean-up, also after a failure: every binding made is removed by a REGISTER with Expires: 0
from the same device (replicated over DMQ like a phone's); any the un-REGISTER misses expires
by itself within EXPIRES_S. Then both customers are deleted (their extensions and devices go
with them), the client container is removed, bans of the bench addresses lifted and the
proxy's route cache switched back on.

Run it under the lab lock:
    flock /tmp/lab.lock .venv/bin/python -m bench.full_size [EXTENSIONS]
Writes bench/results/full_size.json (EXTENSIONS other than 249,000: a trial run, written to
bench/results/full_size-<n>.json).
"""

from __future__ import annotations

import json
import math
import random
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from labkit.control import kamcmd, set_route_cache, unban
from labkit.devices import build_sipclient
from labkit.docker import container_state, docker, remove, running, shell
from labkit.lab import (
    ALL_PROXIES,
    BENCH_HOSTS,
    CA_FILE,
    DB_CONTAINERS,
    LAB_DIR,
    PLATFORM,
    REPO,
    SCENARIOS,
    SIP_DOMAIN,
    SIPCLIENT_IMAGE,
    SITES,
    app_base,
    client_address,
    container,
    instances,
    sip_target,
)
from labkit.portal import keep_session
from labkit.wait import wait_for
from pbx_app.addressing import SIP_USERNAME_PATTERN
from pbx_app.limits import MAX_EXTENSIONS_PER_CUSTOMER
from pbx_infra.topology import SHM_BASE_MB, SHM_BYTES_PER_BINDING, ServiceKind

from .sip_measure import Cpu

FULL = MAX_EXTENSIONS_PER_CUSTOMER  # R14: 249,000
SMALL = 100
SITE = "fra"
PREFIX = "pbx-fullsize"
CLIENT = f"{PREFIX}-client"
HOSTS = [client_address(SITE, h) for h in BENCH_HOSTS]
SOURCES = HOSTS  # the client's own address is the first
CLIENT_IP = HOSTS[0]
CALLER_IP = HOSTS[-1]
UAS_PORT, REG_PORT, CALL_PORT = 5071, 5070, 5080
TARGET = SITES[SITE]["vip"]  # where phones register: the site's SIP address
CALL_PROXY, CALL_PROXY_CONTAINER = SITES[SITE]["proxies"][0], SITES[SITE]["proxy_containers"][0]
SCEN_DIR = REPO / "bench" / "full_size"
WORK = "/work"  # in the client container: a host directory of this run

EXPIRES_S = 1800  # longer than the rest of the run after the first binding is made
# REGISTER/s per source (trusted sources: pike does not apply). The 2-core lab answered ~370/s
# of the 800/s offered by 40 per source, with retransmissions; 18 (360/s) stays below that.
REG_RATE = 18
UNREG_RATE = 50
REG_IN_FLIGHT = 40
# The full run's bulk REGISTER went at ~375/s of the 800/s offered (the 2-core lab saturated):
# sipp's global -timeout and the watchdog allow SLOWER times the planned time; a run with no
# 200 for STALL_S is stopped.
SLOWER, STALL_S = 3, 60.0
MIN_REGISTERED = 0.999  # share of the devices bound (after one retry), on every proxy, or stop
REFRESH_PERIOD_S = 600
REFRESH_SECONDS = 70
SYNC_GOAL_S = 60.0
SYNC_LIMIT_S = 300.0
LOOKUPS, LOOKUP_WARMUP = 1000, 100
CALLS, CALL_RATE = 80, 4  # per customer; the relay holds 4 ports per call for 30 s
P99_GOAL_MS = 50.0
RATIO_GOAL = 1.2
STARTED = time.monotonic()


def say(text: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {text}", flush=True)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def latency(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "p50_ms": round(statistics.median(values), 2),
        "p99_ms": round(percentile(values, 99), 2),
        "max_ms": round(max(values), 2),
    }


# ----- data: customers (API), devices (SQL) -----


class Tenant:
    """A customer this run created: its extensions and devices (username, password, number)."""

    def __init__(self, label: str, cid: int, numbers: list[str], password: str) -> None:
        self.label, self.id, self.numbers = label, cid, numbers
        self.password = password

    def user(self, number: str) -> str:
        return f"fs{self.id}-{number}"

    def secret(self, number: str) -> str:
        return f"{self.password}{number}"

    @property
    def callee(self) -> str:
        return self.numbers[-1]  # registered by the UAS, not by the bulk sources

    @property
    def caller(self) -> str:
        return self.numbers[0]


def operator_client() -> httpx.Client:
    app = container(instances(ServiceKind.PBX_APP, SITE)[0])
    r = docker(
        "exec", "--user", "pbx", app, "python3", "-m", "pbx_app", "create-operator",
        "--email", "full-size-bench@pbx.test", timeout=60, check=True,
    )  # fmt: skip
    client = httpx.Client(base_url=app_base(SITE), timeout=600)
    login = client.post(
        "/auth/login",
        json={"email": "full-size-bench@pbx.test", "password": json.loads(r.stdout)["password"]},
    )
    assert login.status_code == 200, login.text
    keep_session(client, login)
    return client


def create_customer(api: httpx.Client, label: str, first: int, count: int) -> Tenant:
    """A customer with `count` extensions (numbers from `first`), through the API."""
    r = api.post(
        "/customers",
        json={
            "name": f"Full size {label} {time.time_ns()}",
            "tariff": "basic",
            "contract_start": datetime.now(UTC).date().isoformat(),
            "booked_licences": count - 5,  # R16: the base package holds 5
        },
    )
    assert r.status_code == 201, r.text
    cid = int(r.json()["id"])
    CREATED.append(cid)
    r = api.post(
        f"/customers/{cid}/locations",
        json={
            "name": "HQ",
            "street": "Mainzer Landstrasse 1",
            "postal_code": "60329",
            "city": "Frankfurt",
            "area_code": "069",
        },
    )
    assert r.status_code == 201, r.text
    loc = r.json()["id"]
    numbers = [str(n) for n in range(first, first + count)]
    body = "number,location_id,display_name\n" + "".join(f"{n},{loc},User {n}\n" for n in numbers)
    t0 = time.perf_counter()
    r = api.post(
        f"/customers/{cid}/extensions/import",
        content=body.encode(),
        headers={"content-type": "text/csv"},
    )
    assert r.status_code in (200, 201), r.text
    assert r.json()["extension_count"] == count, r.text
    say(f"{label}: customer {cid}, {count} extensions imported in {time.perf_counter() - t0:.1f}s")
    return Tenant(label, cid, numbers, secrets.token_hex(6))


CREATED: list[int] = []  # customers to delete at the end
CALLEES: list[tuple[str, str]] = []  # registered from the UAS's port


def primary_db() -> str:
    for db in DB_CONTAINERS:
        if psql(db, "SELECT pg_is_in_recovery()", check=False).strip() == "f":
            return db
    raise RuntimeError(f"no primary among {DB_CONTAINERS}")


def psql(db: str, sql: str, check: bool = True, timeout: float = 600) -> str:
    r = docker(
        "exec", "-u", "postgres", db, "psql", "-h", "/run/postgresql", "-X", "-At",
        "-v", "ON_ERROR_STOP=1", "-d", "pbx", "-c", sql, timeout=timeout,
    )  # fmt: skip
    assert r.returncode == 0 or not check, f"psql on {db}: {r.stderr}"
    return r.stdout


def create_devices(tenants: list[Tenant]) -> float:
    """One device per extension of each tenant, in one transaction (see the docstring)."""
    pattern = re.compile(SIP_USERNAME_PATTERN)
    for t in tenants:
        assert pattern.fullmatch(t.user(t.numbers[-1])), t.user(t.numbers[-1])
    selects = " UNION ALL ".join(
        f"SELECT e.id, e.customer_id, 'fs' || e.customer_id || '-' || e.number AS name, "
        f"'{t.password}' || e.number AS pw FROM extensions e WHERE e.customer_id = {t.id}"
        for t in tenants
    )
    ids = ",".join(str(t.id) for t in tenants)
    realm = SIP_DOMAIN
    sql = (
        "BEGIN; "
        "INSERT INTO devices (customer_id, extension_id, sip_username, realm, ha1, ha1b, "
        "created_at, kind) "
        f"SELECT s.customer_id, s.id, s.name, '{realm}', "
        f"md5(s.name || ':{realm}:' || s.pw), md5(s.name || '@{realm}:{realm}:' || s.pw), "
        f"now() AT TIME ZONE 'UTC', 'phone' FROM ({selects}) s; "
        f"UPDATE extensions SET device_count = device_count + 1 WHERE customer_id IN ({ids}); "
        "COMMIT;"
    )
    t0 = time.perf_counter()
    psql(primary_db(), sql)
    took = time.perf_counter() - t0
    count = psql(
        primary_db(),
        f"SELECT count(*) FROM kamailio_subscriber s JOIN devices d "
        f"ON d.sip_username = s.username WHERE d.customer_id IN ({ids})",
    )
    expected = sum(len(t.numbers) for t in tenants)
    assert int(count.strip()) == expected, f"{count.strip()} devices in the view, not {expected}"
    say(f"{expected} devices written in {took:.1f}s (one INSERT ... SELECT)")
    return took


def delete_customers(api: httpx.Client | None) -> None:
    if not CREATED:
        return
    ids = ",".join(str(c) for c in CREATED)
    # The API has no customer deletion; extensions, devices, locations go with the row.
    psql(
        primary_db(),
        f"BEGIN; DELETE FROM devices WHERE customer_id IN ({ids}); "
        f"DELETE FROM extensions WHERE customer_id IN ({ids}); "
        f"DELETE FROM locations WHERE customer_id IN ({ids}); "
        f"DELETE FROM customers WHERE id IN ({ids}); COMMIT;",
    )
    say(f"customers {ids} deleted")
    CREATED.clear()


# ----- the client container and sipp -----


def start_client(workdir: Path) -> None:
    remove(CLIENT)
    docker(
        "run", "-d", "--name", CLIENT, "--network", SITES[SITE]["net"], "--ip", CLIENT_IP,
        "--dns", SITES[SITE]["dns"], "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW",
        "-v", f"{SCENARIOS}:/scen:ro", "-v", f"{SCEN_DIR}:/fs:ro", "-v", f"{CA_FILE}:/ca.pem:ro",
        "-v", f"{workdir}:{WORK}", SIPCLIENT_IMAGE, check=True,
    )  # fmt: skip
    extra = "; ".join(f"ip addr add {ip}/24 dev eth0" for ip in SOURCES[1:])
    shell(CLIENT, extra, check=True)
    unban(*HOSTS)


def run_sipp_register(
    workdir: Path,
    tag: str,
    users: list[list[tuple[str, str]]],
    rate: float,
    expires: int,
    progress: Callable[[], str] | None = None,
    port: int = REG_PORT,
) -> dict[str, Any]:
    """One sipp per source (users[i] from SOURCES[i]), each at `rate` REGISTER/s over its
    users once; a progress line every 5 s. Latencies from the scenario's timestamps."""
    commands = []
    cid = f"%u-%p-{time.time_ns():x}-{tag}@%s"
    # -r calls per -rp milliseconds: fractional rates too
    r_arg = f"-r {round(rate * 100)} -rp 100000"
    for i, mine in enumerate(users):
        if not mine:
            continue
        (workdir / f"{tag}-{i}.csv").write_text(
            "SEQUENTIAL\n"
            + "".join(f"{u};[authentication username={u} password={p}];\n" for u, p in mine)
        )
        commands.append(
            f"sipp {sip_target(TARGET)} -sf /fs/register.xml -inf {WORK}/{tag}-{i}.csv "
            f"-i {SOURCES[i]} -p {port} {r_arg} -m {len(mine)} -l {REG_IN_FLIGHT} "
            f"-set expires {expires} -cid_str {cid} -nostdin -max_retrans 4 "
            f"-recv_timeout 10000 -timeout {int(len(mine) / rate * SLOWER) + 120}s "
            f"-trace_logs -log_file {WORK}/{tag}-{i}.log "
            f"-trace_err -error_file {WORK}/{tag}-{i}.err >/dev/null 2>&1"
        )
    total = sum(len(u) for u in users)
    seconds = max(len(u) for u in users) / rate
    pids = f"{WORK}/{tag}.pids"
    script = (
        f"rm -f {WORK}/{tag}-*.log {WORK}/{tag}-*.err {pids}; "
        + "".join(f"{c} & echo $! >> {pids}; " for c in commands)
        + "wait"
    )
    proc = subprocess.Popen(
        ["docker", "exec", CLIENT, "sh", "-c", script],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    t0 = time.monotonic()
    last_done, last_gain = 0, 0.0
    try:
        while proc.poll() is None:
            try:
                proc.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                pass
            done = count_lines(workdir, tag)
            took = time.monotonic() - t0
            line = f"  {tag}: {done}/{total} answered 200 ({done / took:.0f}/s)"
            say(line + (f", {progress()}" if progress else ""))
            if done > last_done:
                last_done, last_gain = done, took
            if took - last_gain > STALL_S:
                raise RuntimeError(f"{tag}: no REGISTER answered for {STALL_S:.0f}s ({done} done)")
            if took > seconds * SLOWER + 180:
                raise RuntimeError(f"{tag}: sipp still running after {took:.0f}s")
            if done == 0 and took >= 20:
                raise RuntimeError(
                    f"{tag}: no REGISTER answered 200 in {took:.0f}s; " + first_error(workdir, tag)
                )
    finally:
        if proc.poll() is None:
            proc.kill()
            shell(CLIENT, f"kill $(cat {pids}) 2>/dev/null")  # this run's sipps, by PID
    stamps, ok_users = read_log(workdir, tag)
    lat = [(s[1] - s[0]) * 1000 for s in stamps]
    window = (max(s[1] for s in stamps) - min(s[0] for s in stamps)) if stamps else 0.0
    result = {
        "attempted": total,
        "ok": len(stamps),
        "failed": total - len(stamps),
        "offered_per_s": round(rate * len(users), 1),
        "per_second": round(len(stamps) / window, 1) if window else 0.0,
        "seconds": round(window, 1),
        **{f"latency_{k}": v for k, v in latency(lat).items() if k != "count"},
    }
    if result["failed"]:
        result["first_error"] = first_error(workdir, tag, 600)
    result["_ok_users"] = ok_users
    return result


def first_error(workdir: Path, tag: str, chars: int = 1200) -> str:
    """The start of the first non-empty sipp error log of a run (what the proxy answered)."""
    for path in sorted(workdir.glob(f"{tag}-*.err")):
        text = path.read_text(errors="replace").strip()
        if text:
            return f"{path.name}: {text[:chars]}"
    return "no sipp error log"


def require_counts() -> dict[str, int]:
    """Every proxy's contact count; a proxy that does not answer it stops the run."""
    counts = {p: contacts(p) for p in ALL_PROXIES}
    silent = [p for p, c in counts.items() if c is None]
    if silent:
        raise RuntimeError(f"no usrloc location_contacts statistic from {silent}")
    return {p: c for p, c in counts.items() if c is not None}


def count_lines(workdir: Path, tag: str) -> int:
    return sum(
        p.read_bytes().count(b"\nREG ") + p.read_bytes().startswith(b"REG ")
        for p in workdir.glob(f"{tag}-*.log")
    )


def read_log(workdir: Path, tag: str) -> tuple[list[tuple[float, float]], dict[str, int]]:
    """The answered REGISTERs' timestamps, and each answered user's source (SOURCES index, from
    the log's name: a binding is removed or refreshed only from the address that made it)."""
    stamps, users = [], {}
    for path in workdir.glob(f"{tag}-*.log"):
        source = int(path.stem.rpartition("-")[2])
        for line in path.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) != 6 or parts[0] != "REG":
                continue
            try:
                n = [float(x) for x in parts[2:]]
            except ValueError:
                continue
            stamps.append((n[0] + n[1] / 1e6, n[2] + n[3] / 1e6))
            users[parts[1]] = source
    return stamps, users


def by_source(devices: list[tuple[str, str]], made: dict[str, int]) -> list[list[tuple[str, str]]]:
    """The devices with a binding, grouped by the source that made it."""
    parts: list[list[tuple[str, str]]] = [[] for _ in SOURCES]
    for user, password in devices:
        if user in made:
            parts[made[user]].append((user, password))
    return parts


def split(items: list[tuple[str, str]], parts: int) -> list[list[tuple[str, str]]]:
    return [items[i::parts] for i in range(parts)]


# ----- proxy state -----


def kam_values(proxy: str, *args: str) -> dict[str, int]:
    values: dict[str, int] = {}
    out = kamcmd(proxy, *args, check=False, timeout=30)
    for line in out.splitlines():
        line = line.strip()
        key, sep, value = line.rpartition(" = ") if " = " in line else line.partition(":")
        if sep and value.strip().lstrip("-").isdigit():
            values[key.strip()] = int(value.strip())
    return values


def contacts(proxy: str) -> int | None:
    # The statistic is "location_contacts" (group usrloc); "usrloc:location-contacts" matched
    # nothing, so every count read None.
    values = kam_values(proxy, "stats.get_statistics", "location_contacts")
    found = [v for k, v in values.items() if k.endswith("location_contacts")]
    return found[0] if found else None


def shm(proxy: str) -> dict[str, int]:
    return kam_values(proxy, "core.shmmem")


def proxy_counts() -> dict[str, int | None]:
    return {p.removeprefix(f"{PLATFORM.name}-"): contacts(p) for p in ALL_PROXIES}


def counts_line() -> str:
    return "contacts " + ", ".join(f"{k} {v}" for k, v in proxy_counts().items())


def settle(expected: int, limit: float = 120) -> dict[str, int | None]:
    """Wait (bounded) until every proxy holds at least `expected` contacts (DMQ replication
    catching up), then a few seconds for finished transactions to leave shared memory."""
    deadline = time.monotonic() + limit
    counts = proxy_counts()
    while time.monotonic() < deadline and any((c or 0) < expected for c in counts.values()):
        time.sleep(2)
        counts = proxy_counts()
    time.sleep(8)  # tm keeps finished (DMQ) transactions ~5 s
    return proxy_counts()


def vip_holder(site: str) -> str | None:
    for proxy in SITES[site]["proxy_containers"]:
        if f"inet {SITES[site]['vip']}/" in shell(proxy, "ip -o -4 addr").stdout:
            return proxy
    return None


# ----- b. refresh load -----


class LabCpu:
    """CPU time of the lab's containers (cgroups), less their idle load."""

    def __init__(self) -> None:
        names = docker("ps", "--format", "{{.Names}}").stdout.split()
        self.cpu = Cpu([n for n in names if n.startswith(f"{PLATFORM.name}-")])
        before, t0 = self.cpu.each(), time.monotonic()
        time.sleep(5)
        after, took = self.cpu.each(), time.monotonic() - t0
        self.idle_ns_per_s = sum(after.values()) - sum(before.values())
        self.idle_ns_per_s = int(self.idle_ns_per_s / took)
        self.mark: tuple[float, dict[str, int]] = (time.monotonic(), after)

    def start(self) -> None:
        self.mark = (time.monotonic(), self.cpu.each())

    def since(self, ops: int) -> dict[str, Any]:
        t0, before = self.mark
        after, took = self.cpu.each(), time.monotonic() - t0
        spent = sum(after.values()) - sum(before.values())
        busy = spent - self.idle_ns_per_s * took
        top = sorted(((after[n] - before.get(n, 0), n) for n in after), reverse=True)[:5]
        return {
            "available": self.cpu.available,
            "lab_cpu_us_per_register": round(busy / 1000 / ops, 1) if ops else None,
            "lab_cpu_cores_busy": round(busy / 1e9 / took, 2),
            "idle_cores": round(self.idle_ns_per_s / 1e9, 2),
            "top_us_per_register": {n: round(ns / 1000 / ops, 1) for ns, n in top if ops},
        }


# ----- c. restart sync -----


def restart_sync(proxy: str) -> dict[str, Any]:
    peers = [p for p in ALL_PROXIES if p != proxy]
    counts = require_counts()
    expected = min(counts[p] for p in peers)
    say(f"restarting {proxy}; its peers hold >= {expected} contacts")
    t0 = time.monotonic()
    docker("restart", "-t", "10", proxy, timeout=120, check=True)
    restarted = time.monotonic() - t0
    timeline: list[tuple[float, int]] = []
    first_rpc: float | None = None
    last_say = 0.0
    while True:
        now = time.monotonic() - t0
        have = contacts(proxy)
        if have is not None:
            first_rpc = first_rpc if first_rpc is not None else now
            if not timeline or now - timeline[-1][0] >= 1:
                timeline.append((round(now, 1), have))
            if have >= expected:
                break
        if now - last_say >= 5:
            say(f"  {proxy}: {have} of {expected} contacts after {now:.0f}s")
            last_say = now
        if now > SYNC_LIMIT_S:
            break
        time.sleep(0.5)
    took = time.monotonic() - t0
    complete = (have or 0) >= expected
    say(f"  {proxy}: {have}/{expected} contacts {took:.1f}s after the restart command")
    wait_for(lambda: container_state(proxy) == "running healthy", 120, 1, f"{proxy} healthy")
    return {
        "proxy": proxy.removeprefix(f"{PLATFORM.name}-"),
        "expected_contacts": expected,
        "contacts": have,
        "complete": complete,
        "seconds_from_restart_command": round(took, 1),
        "docker_restart_seconds": round(restarted, 1),
        "first_rpc_answer_s": first_rpc,
        "seconds_from_first_rpc": round(took - first_rpc, 1) if first_rpc is not None else None,
        "goal_seconds": SYNC_GOAL_S,
        "within_goal": complete and took <= SYNC_GOAL_S,
        "timeline": timeline[:: max(1, len(timeline) // 40)],
        "shm_after": shm(proxy),
    }


# ----- d. route lookup and call setup -----


def internal_token() -> str:
    return str(json.loads((LAB_DIR / "secrets.json").read_text())["internalApiToken"])


def route_lookups(tenants: dict[str, Tenant]) -> dict[str, Any]:
    """Interleaved: a lookup for each customer in turn, random caller and target extension."""
    base = app_base(SITE).removesuffix("/api/v1")
    rng = random.Random(15)
    times: dict[str, list[float]] = {k: [] for k in tenants}
    with httpx.Client(
        base_url=base, headers={"X-PBX-Internal-Token": internal_token()}, timeout=10
    ) as c:
        for i in range(LOOKUP_WARMUP + LOOKUPS):
            for key, t in tenants.items():
                caller, target = rng.sample(t.numbers, 2)
                start = time.perf_counter()
                r = c.get(
                    "/internal/v1/route",
                    params={"caller": t.user(caller), "target": target, "div": "0"},
                )
                ms = (time.perf_counter() - start) * 1000
                assert r.status_code == 200, r.text
                assert r.json()["action"] == "local", r.text
                if i >= LOOKUP_WARMUP:
                    times[key].append(ms)
    return {key: latency(v) for key, v in times.items()}


def calls(workdir: Path, tenants: dict[str, Tenant]) -> dict[str, Any]:
    """The UAS registered as each customer's callee device, then CALLS calls per customer
    (alternating blocks of 20) from one of its devices, through CALL_PROXY."""
    callees = [(t.user(t.callee), t.secret(t.callee)) for t in tenants.values()]
    CALLEES[:] = callees
    reg = run_sipp_register(workdir, "callee", [callees], 2, EXPIRES_S, port=UAS_PORT)
    assert reg["ok"] == len(callees), f"callees not registered: {reg}"
    docker(
        "exec", "-d", CLIENT, "sh", "-c",
        f"echo $$ > {WORK}/uas.pid; exec sipp -sf /scen/bench_answer.xml -i {CLIENT_IP} "
        f"-p {UAS_PORT} -aa -nostdin -trace_logs -log_file {WORK}/uas.log >/dev/null 2>&1",
        check=True,
    )  # fmt: skip
    time.sleep(1)
    times: dict[str, list[float]] = {k: [] for k in tenants}
    failed = dict.fromkeys(tenants, 0)
    block = 20
    try:
        for round_ in range(CALLS // block):
            for key, t in tenants.items():
                tag = f"call-{key}-{round_}"
                log = f"{WORK}/{tag}.log"
                r = shell(
                    CLIENT,
                    f"sipp {sip_target(CALL_PROXY)} -sf /scen/bench_call.xml -s {t.callee} "
                    f"-set caller {t.user(t.caller)} -d 0 -au {t.user(t.caller)} "
                    f"-ap '{t.secret(t.caller)}' -i {CALLER_IP} -p {CALL_PORT} -r {CALL_RATE} "
                    f"-m {block} -l 4 -cid_str %u-%p-{time.time_ns():x}@%s -nostdin "
                    f"-max_retrans 3 -timeout 60s -trace_logs -log_file {log} >/dev/null 2>&1; "
                    f"cat {log}",
                    timeout=90,
                )
                got = 0
                for line in r.stdout.splitlines():
                    parts = line.split()
                    if len(parts) == 7 and parts[0] == "CALL":
                        n = [float(x) for x in parts[1:]]
                        times[key].append(((n[2] + n[3] / 1e6) - (n[0] + n[1] / 1e6)) * 1000)
                        got += 1
                failed[key] += block - got
            say(f"  calls: round {round_ + 1}: " + ", ".join(
                f"{k} {len(v)} ok" for k, v in times.items()))  # fmt: skip
    finally:
        shell(CLIENT, f"test -f {WORK}/uas.pid && kill $(cat {WORK}/uas.pid)")
    if not all(times.values()):  # no figure from calls that never connected
        raise RuntimeError(f"calls: none connected for {[k for k, v in times.items() if not v]}")
    return {k: {**latency(v), "failed": failed[k]} for k, v in times.items()}


# ----- the run -----


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def run(extensions: int) -> dict[str, Any]:
    result: dict[str, Any] = {
        "benchmark": "full_size",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "extensions": extensions,
        "small_extensions": SMALL,
        "sources": len(SOURCES),
        "register_target": sip_target(TARGET),
        "proxy_shm_mb_configured": PLATFORM.proxy_shm_mb,
        "planned_bindings": PLATFORM.planned_bindings,
    }
    api: httpx.Client | None = None
    workdir = Path(tempfile.mkdtemp(prefix="pbx-fullsize-"))
    bulk: list[tuple[str, str]] = []
    made: dict[str, int] = {}
    try:
        build_sipclient()
        api = operator_client()
        big = create_customer(api, "full", 100_000, extensions)
        small = create_customer(api, "small", 1000, SMALL)
        tenants = {"full": big, "small": small}
        result["devices_sql_seconds"] = round(create_devices([big, small]), 1)
        start_client(workdir)

        # a. shared memory before/after every binding
        before = {p: shm(p) for p in ALL_PROXIES}
        count0 = require_counts()
        small_shm = {
            p: v.get("total", 0) // 2**20
            for p, v in before.items()
            if v.get("total", 0) < PLATFORM.proxy_shm_mb * 2**20
        }
        if small_shm:
            # The 2026-12-02 run met a lab deployed without PBX_SHM_MB (-m 512): the registering
            # proxy ran out of shared memory at ~165,000 bindings.
            raise RuntimeError(
                f"proxies run with less shared memory (MB) than the topology's "
                f"{PLATFORM.proxy_shm_mb}: {small_shm}; deploy the lab from this branch (make lab)"
            )
        say("shm real_used before: " + ", ".join(
            f"{p.removeprefix(PLATFORM.name + '-')} {v.get('real_used', 0) / 2**20:.0f} MB"
            for p, v in before.items()))  # fmt: skip
        bulk = [(t.user(n), t.secret(n)) for t in (small, big) for n in t.numbers[:-1]]
        say(f"registering {len(bulk)} devices from {len(SOURCES)} sources at "
            f"{REG_RATE * len(SOURCES)}/s")  # fmt: skip
        reg = run_sipp_register(
            workdir, "bulk", split(bulk, len(SOURCES)), REG_RATE, EXPIRES_S, counts_line
        )
        made = reg.pop("_ok_users")
        missing = [(u, p) for u, p in bulk if u not in made]
        if missing:
            say(f"  {len(missing)} not registered: once more")
            again = run_sipp_register(
                workdir, "retry", split(missing, len(SOURCES)), 10, EXPIRES_S, counts_line
            )
            made |= again.pop("_ok_users")
            reg["retried"] = again
        result["register"] = reg
        need = math.ceil(MIN_REGISTERED * len(bulk))
        if len(made) < need:
            raise RuntimeError(
                f"registration failed: {len(made)} of {len(bulk)} devices got a 200 "
                f"(at least {need} needed); {counts_line()}; "
                + first_error(workdir, "retry" if missing else "bulk")
            )
        after_counts = settle(max(count0.values()) + len(made))
        short = {
            p: c
            for p, c in after_counts.items()
            if (c or 0) - count0[f"{PLATFORM.name}-{p}"] < MIN_REGISTERED * len(made)
        }
        if short:
            raise RuntimeError(
                f"{len(made)} bindings made, but these proxies hold fewer (DMQ replication): "
                f"{short}, before {count0}"
            )
        after = {p: shm(p) for p in ALL_PROXIES}
        memory = {}
        for p in ALL_PROXIES:
            name = p.removeprefix(f"{PLATFORM.name}-")
            added = (after_counts[name] or 0) - count0[p]
            grew = after[p].get("real_used", 0) - before[p].get("real_used", 0)
            memory[name] = {
                "real_used_before_mb": round(before[p].get("real_used", 0) / 2**20, 1),
                "real_used_after_mb": round(after[p].get("real_used", 0) / 2**20, 1),
                "total_mb": round(after[p].get("total", 0) / 2**20, 1),
                "contacts_added": added,
                "bytes_per_binding": round(grew / added) if added > 0 else None,
            }
        per = [m["bytes_per_binding"] for m in memory.values() if m["bytes_per_binding"]]
        result["shared_memory"] = {
            "per_proxy": memory,
            "bytes_per_binding_max": max(per) if per else None,
            "topology_bytes_per_binding": SHM_BYTES_PER_BINDING,
            "topology_base_mb": SHM_BASE_MB,
        }
        say(f"shared memory: {json.dumps(memory)}")

        # b. refresh load: 415 REGISTER/s for REFRESH_SECONDS
        rate = extensions / REFRESH_PERIOD_S
        per_source = rate / len(SOURCES)
        count = math.ceil(per_source * REFRESH_SECONDS)
        refresh_users = [part[:count] for part in by_source(bulk, made)]
        cpu = LabCpu()
        cpu.start()
        say(f"refresh: {rate:.0f} REGISTER/s for {REFRESH_SECONDS}s")
        refresh = run_sipp_register(
            workdir, "refresh", refresh_users, per_source, EXPIRES_S, counts_line
        )
        refresh.pop("_ok_users")
        refresh["cpu"] = cpu.since(refresh["ok"])
        refresh["rate_model"] = f"{extensions} devices / {REFRESH_PERIOD_S} s"
        refresh["p99_goal_ms"] = P99_GOAL_MS
        refresh["within_goal"] = (
            refresh["failed"] == 0 and refresh.get("latency_p99_ms", 1e9) < P99_GOAL_MS
        )
        result["refresh"] = refresh
        say(f"refresh: {json.dumps(refresh)}")

        # c. a restarted proxy's bindings back over DMQ
        holder = vip_holder(SITE)
        restart = next(p for p in SITES[SITE]["proxy_containers"] if p != holder)
        settle(max(count0.values()) + len(made), 30)
        result["restart_sync"] = restart_sync(restart)

        # d. route lookup and call setup, full vs small
        result["route_lookup"] = route_lookups(tenants)
        say(f"route lookup: {json.dumps(result['route_lookup'])}")
        set_route_cache(CALL_PROXY_CONTAINER, False)
        try:
            result["call_setup"] = calls(workdir, tenants)
        finally:
            set_route_cache(CALL_PROXY_CONTAINER, True)
        say(f"call setup: {json.dumps(result['call_setup'])}")
    finally:
        cleanup(workdir, bulk, api, result)
    return finish(result)


def cleanup(
    workdir: Path, bulk: list[tuple[str, str]], api: httpx.Client | None, result: dict[str, Any]
) -> None:
    """Bindings this run made (whatever phase it got to: from the sipp logs), customers, the
    client container, bans. A second TERM cuts the un-REGISTER short (the bindings expire
    within EXPIRES_S), never the rest."""
    try:
        made = read_log(workdir, "bulk")[1] | read_log(workdir, "retry")[1]
        # running(), not container_state(): the client image has no health check, and
        # container_state()'s template fails on it ("missing"), which skipped the un-REGISTER.
        if made and running(CLIENT):
            gone = by_source(bulk, made)
            say(f"clean-up: un-REGISTER (Expires: 0) of {len(made)} bindings")
            try:
                unreg = run_sipp_register(workdir, "unreg", gone, UNREG_RATE, 0, counts_line)
                unreg.pop("_ok_users")
                result["unregister"] = {k: unreg[k] for k in ("attempted", "ok", "failed")}
                result["unregister"]["contacts_after"] = proxy_counts()
                if CALLEES:
                    run_sipp_register(workdir, "unreg-callee", [CALLEES], 2, 0, port=UAS_PORT)
            except Exception as e:
                say(f"  un-REGISTER failed ({e}); the rest expire within {EXPIRES_S}s")
    finally:
        try:
            if running(CLIENT):
                shell(CLIENT, f"rm -rf {WORK}/*")
            remove(CLIENT)
            unban(*HOSTS)
            delete_customers(api)
        finally:
            if api is not None:
                api.close()
            subprocess.run(["rm", "-rf", str(workdir)], check=False)


def finish(result: dict[str, Any]) -> dict[str, Any]:
    rl, cs = result["route_lookup"], result["call_setup"]
    result["route_lookup_p99_ratio"] = ratio(rl["full"]["p99_ms"], rl["small"]["p99_ms"])
    result["call_setup_p99_ratio"] = ratio(cs["full"]["p99_ms"], cs["small"]["p99_ms"])
    result["ratio_goal"] = RATIO_GOAL
    mem = result["shared_memory"]["per_proxy"]
    base_mb = min(m["real_used_before_mb"] for m in mem.values())
    full_mb = max(m["real_used_after_mb"] for m in mem.values())
    refresh = result["refresh"]
    result["comparisons"] = [
        {
            "metric": f"proxy shm with {result['extensions']:,} bindings",
            "unit": "MB",
            "value": full_mb,
            "baseline": base_mb,
            "baseline_label": "before",
        },
        {
            "metric": "route lookup p99 at full size",
            "unit": "ms",
            "value": rl["full"]["p99_ms"],
            "baseline": rl["small"]["p99_ms"],
            "baseline_label": f"{SMALL} ext.",
        },
        {
            "metric": "call setup p99 at full size",
            "unit": "ms",
            "value": cs["full"]["p99_ms"],
            "baseline": cs["small"]["p99_ms"],
            "baseline_label": f"{SMALL} ext.",
        },
        {
            "metric": "refresh REGISTER p99 (415/s)",
            "unit": "ms",
            "value": refresh.get("latency_p99_ms", 0),
            "baseline": P99_GOAL_MS,
            "baseline_label": "goal",
        },
        {
            "metric": "restarted proxy: bindings back",
            "unit": "s",
            "value": result["restart_sync"]["seconds_from_restart_command"],
            "baseline": SYNC_GOAL_S,
            "baseline_label": "goal",
        },
    ]
    return result


def main() -> int:
    # A TERM (someone ending the run) still removes what the run created (the finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    extensions = int(sys.argv[1]) if len(sys.argv) > 1 else FULL
    assert 200 <= extensions <= FULL, f"1 customer holds at most {FULL} extensions (R14)"
    result = run(extensions)
    name = "full_size.json" if extensions == FULL else f"full_size-{extensions}.json"
    out = REPO / "bench" / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
