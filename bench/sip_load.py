"""The SIP benchmark's load: the load generator and bare baseline containers, sipp runs from
several source addresses at once (one process each), the callee (a sipp UAS), and what each
run achieved."""

from __future__ import annotations

import math
import time
from typing import Any

from labkit.devices import Device, Devices, unique_call_id
from labkit.docker import docker, running, shell
from labkit.lab import BENCH_HOSTS, KAMAILIO_IMAGE, SITES, sip_target
from labkit.wait import TimedOut, wait_for

from .sip_plan import (
    BACKLOG_FACTOR,
    BACKLOG_SLACK_MS,
    BARE_CONFIG,
    BARE_IP,
    CLIENT_IP,
    MAX_FAILED,
    MIN_ACHIEVED,
    SITE,
    SOURCES,
    UAS_IP,
    UAS_PORT,
    WORK,
    DemoDevice,
)

STARTED = time.monotonic()
POOL = Devices(prefix="pbx-bench", hosts=BENCH_HOSTS)
CLIENT, BARE = f"{POOL.prefix}-client", f"{POOL.prefix}-bare"
GENERATOR = Device(CLIENT, SITE, CLIENT_IP)  # the load generator


def say(text: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {text}", flush=True)


def client(script: str, timeout: float = 60, check: bool = False) -> str:
    """A shell script in the load generator; its standard output."""
    return shell(CLIENT, script, timeout=timeout, check=check).stdout


# ----- containers -----


def start_containers() -> None:
    """The load generator (idle; sipp runs in it through `docker exec`) with every source
    address, and the bare baseline, answering."""
    assert POOL.start("client", SITE, ip=CLIENT_IP) == GENERATOR
    addresses = "; ".join(f"ip addr add {ip}/24 dev eth0" for ip in [UAS_IP, *SOURCES])
    client(f"mkdir -p {WORK}; {addresses}", check=True)
    docker(
        "run", "-d", "--name", POOL.claim("bare"), "--network", SITES[SITE]["net"],
        "--ip", BARE_IP, "-v", f"{BARE_CONFIG}:/etc/kamailio/bare.cfg:ro",
        "--entrypoint", "kamailio", KAMAILIO_IMAGE, "-DD", "-E", "-f", "/etc/kamailio/bare.cfg",
        "-l", f"udp:{sip_target(BARE_IP)}", "-m", "256", check=True,
    )  # fmt: skip
    try:
        wait_for(bare_challenges, 20, 0.2, f"bare baseline {sip_target(BARE_IP)}")
    except TimedOut as e:
        logs = docker("logs", BARE)
        raise RuntimeError(f"{e}: {logs.stdout[-2000:]}{logs.stderr[-2000:]}") from e


def remove_containers() -> None:
    POOL.remove_all()


# One REGISTER over UDP from the client; prints the status line of the answer or "silence".
# argv: target, its SIP port, own address.
REGISTER_PROBE = r"""
import socket, sys, uuid
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[3], 0)); s.settimeout(0.5)
me = "%s:%d" % s.getsockname()
s.sendto((f"REGISTER sip:{sys.argv[1]} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK"
          f"{uuid.uuid4().hex};rport\r\nFrom: <sip:probe@{me}>;tag=1\r\nTo: <sip:probe@{me}>\r\n"
          f"Call-ID: {uuid.uuid4().hex}\r\nCSeq: 1 REGISTER\r\nMax-Forwards: 70\r\n"
          "Content-Length: 0\r\n\r\n").encode(), (sys.argv[1], int(sys.argv[2])))
try:
    print(s.recv(4096).decode(errors="replace").split("\r\n", 1)[0])
except TimeoutError:
    print("silence")
"""


def bare_challenges() -> bool:
    if not running(BARE):
        raise RuntimeError("bare baseline exited")
    target, port = sip_target(BARE_IP).split(":")
    return "SIP/2.0 401" in client(f"python3 -c '{REGISTER_PROBE}' {target} {port} {CLIENT_IP}")


# ----- load -----


def load(
    tag: str, target: str, kind: str, rate: float, seconds: int, devices: list[DemoDevice],
    extra: str,
) -> dict[str, Any]:  # fmt: skip
    """`rate` operations/s for `seconds`, shared by one sipp per device (each from its own
    source address), all at once. `extra`: more sipp arguments, formatted with the device's
    fields (sip_username, callee).

    Achieved rate = completed operations / (first request sent .. last operation completed),
    from the scenarios' microsecond timestamps; latency = first request sent .. 200 received.
    """
    per_process = rate / len(devices)
    count = max(1, round(per_process * seconds))
    run_sipp(tag, target, kind, per_process, count, devices, extra)
    stamps = read_stamps(tag, kind)
    return summary(stamps, failed_calls(tag), rate, count * len(devices))


def run_sipp(
    tag: str, target: str, kind: str, rate: float, count: int, devices: list[DemoDevice],
    extra: str,
) -> None:  # fmt: skip
    scenario, port = ("bench_register.xml", 5070) if kind == "REG" else ("bench_call.xml", 5080)
    # In flight at most half a second of requests (calls: their hold time too): a stack that
    # falls behind shows as a lower rate, not as an unbounded queue in the generator.
    limit = max(4, round(rate * (0.5 if kind == "REG" else 0.5 + hold_of(extra))))
    commands = []
    for i, dev in enumerate(devices):
        user, log = dev["sip_username"], f"{WORK}/{tag}-{i}"
        commands.append(
            f"sipp {sip_target(target)} -sf /scen/{scenario} -i {SOURCES[i]} -p {port} "
            f"-r {rate:.3f} -rp 1000 -m {count} -l {limit} -au {user} "
            f"-ap '{dev['sip_password']}' {extra.format(**dev)} -nostdin -max_retrans 3 "
            f"-cid_str '{unique_call_id()}' -timeout {count / rate + 30:.0f}s "
            f"-trace_stat -stf {log}.csv -trace_logs -log_file {log}.log >/dev/null 2>&1"
        )
    client(f"rm -f {WORK}/{tag}-*; " + " & ".join(commands) + " & wait",
           timeout=count / rate + 60)  # fmt: skip


def hold_of(extra: str) -> float:
    """The call hold time (s) in sipp's extra arguments (-set hold <ms>)."""
    parts = extra.split()
    return int(parts[parts.index("hold") + 1]) / 1000 if "hold" in parts else 0.0


def read_stamps(tag: str, kind: str) -> list[list[float]]:
    """(sent, ok[, ...]) times in seconds of each completed operation, from the sipp logs."""
    stamps, garbled = [], []
    fields = 4 if kind == "REG" else 6
    for line in client(f"cat {WORK}/{tag}-*.log 2>/dev/null", timeout=120).splitlines():
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
    return stamps


def failed_calls(tag: str) -> int:
    """Failed "calls" (sipp's FailedCall counter) over every source's statistics file."""
    failed = 0
    stats = client(f"for f in {WORK}/{tag}-*.csv; do head -n1 $f; tail -n1 $f; done").splitlines()
    for header, last in zip(stats[::2], stats[1::2], strict=False):
        names, values = header.split(";"), last.split(";")
        if "FailedCall(C)" in names and len(values) == len(names) and last != header:
            failed += int(values[names.index("FailedCall(C)")])
    return failed


def percentile(sorted_values: list[float], pct: float) -> float:
    return sorted_values[max(0, math.ceil(pct / 100 * len(sorted_values)) - 1)]


def summary(
    stamps: list[list[float]], failed: int, offered: float, attempted: int
) -> dict[str, Any]:
    """What a step achieved, and whether it held (sip_plan: failures, rate, backlog)."""
    result: dict[str, Any] = {
        "offered_per_s": round(offered, 1),
        "attempted": attempted,
        "ok": len(stamps),
        "failed": failed,
        "per_second": 0.0,
    }
    problems = []
    if stamps:
        window = max(s[1] for s in stamps) - min(s[0] for s in stamps)
        latency = sorted((s[1] - s[0]) * 1000 for s in stamps)
        result["seconds"] = round(window, 2)
        result["per_second"] = round(len(stamps) / window, 1) if window > 0 else 0.0
        result["latency_ms_p50"] = round(percentile(latency, 50), 2)
        result["latency_ms_p99"] = round(percentile(latency, 99), 2)
        first, last = backlog(stamps)
        result["latency_ms_p50_first_fifth"], result["latency_ms_p50_last_fifth"] = first, last
        if last > max(first * BACKLOG_FACTOR, first + BACKLOG_SLACK_MS):
            problems.append("backlog growing")
    if failed > MAX_FAILED * attempted or len(stamps) < (1 - MAX_FAILED) * attempted:
        problems.append("failures")
    if result["per_second"] < MIN_ACHIEVED * offered:
        problems.append("rate not reached")
    result["problems"] = problems
    result["holds"] = not problems
    return result


def backlog(stamps: list[list[float]]) -> tuple[float, float]:
    """Median latency (ms) of the operations sent in the first and in the last fifth."""
    ordered = sorted(stamps, key=lambda s: s[0])
    fifth = max(1, len(ordered) // 5)

    def median(part: list[list[float]]) -> float:
        return round(percentile(sorted((s[1] - s[0]) * 1000 for s in part), 50), 2)

    return median(ordered[:fifth]), median(ordered[-fifth:])


def show(name: str, r: dict[str, Any]) -> None:
    verdict = "holds" if r["holds"] else "does not hold: " + ", ".join(r["problems"])
    say(f"  {name}: {r['ok']}/{r['attempted']} ok, {r['failed']} failed, {r['per_second']}/s of "
        f"{r['offered_per_s']}/s, p50 {r.get('latency_ms_p50')} ms, p99 "
        f"{r.get('latency_ms_p99')} ms: {verdict}")  # fmt: skip


# ----- the callee -----


def register_callee(callee: DemoDevice, target: str, port: int) -> None:
    """A UAS's binding (its port) as `callee` on `target` (the full stack's proxy or the
    baseline)."""
    user = callee["sip_username"]
    out = client(
        f"cd {WORK} && printf 'SEQUENTIAL\\n{user};\\n' > callee.csv && "
        f"sipp {sip_target(target)} -sf /scen/register.xml -inf callee.csv -au {user} "
        f"-ap '{callee['sip_password']}' -set expires 600 -i {UAS_IP} -p {port} -m 1 "
        f"-cid_str '{unique_call_id()}' -nostdin -timeout 10s -trace_logs "
        f"-log_file {WORK}/callee.log >/dev/null 2>&1; cat callee.log; rm -f callee.log",
        timeout=30,
    )
    if "200 OK" not in out:
        raise RuntimeError(f"callee {user} did not register: {out}")


def start_uas(count: int) -> None:
    """`count` answering UAS processes (callee i on port UAS_PORT + i): one per load process,
    so that no single answering process limits the call rate."""
    for i in range(count):
        docker("exec", "-d", CLIENT, "sh", "-c",
               f"echo $$ > {WORK}/uas-{i}.pid; exec sipp -sf /scen/bench_answer.xml -i {UAS_IP} "
               f"-p {UAS_PORT + i} -aa -nostdin -trace_logs -log_file {WORK}/uas-{i}.log "
               ">/dev/null 2>&1", check=True)  # fmt: skip
    addresses = [f"{UAS_IP}:{UAS_PORT + i}" for i in range(count)]
    wait_for(lambda: all(GENERATOR.udp_bound(a) for a in addresses), 10, 0.2,
             f"UAS on {', '.join(addresses)}")  # fmt: skip


def stop_uas() -> None:
    if running(CLIENT):
        client(f"for f in {WORK}/uas-*.pid; do test -f $f && kill $(cat $f); done; "
               f"rm -f {WORK}/uas-*.pid")  # fmt: skip


def uas_offers() -> dict[str, int]:
    """Connection addresses in the SDP offers the callee received, counted."""
    counts: dict[str, int] = {}
    for line in client(f"grep -h OFFER {WORK}/uas-*.log 2>/dev/null", timeout=120).splitlines():
        address = line.rsplit(" ", 1)[-1].rstrip("]")
        counts[address] = counts.get(address, 0) + 1
    return counts
