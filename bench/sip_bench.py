"""SIP core benchmark: REGISTERs/s and calls/s through the full stack vs a bare Kamailio relay.

Full stack = a lab proxy (fra-sip-proxy-1): digest auth against PostgreSQL, DMQ replication to
three peers, app routing over HTTP (cached as configured), rtpengine offer/answer/delete.
Baseline = the same pbx/kamailio image with bench/bare-relay.cfg (stateless, no auth, no media),
in a throwaway container on the fra network, measured in the same run on the same machine.
Load: sipp in a throwaway pbx/sipclient container; several source addresses so the proxies'
per-source flood limit (pike) is not what gets measured. Lab addresses only; bounded counts and
timeouts; every container started here is removed. Writes bench/results/sip_core.json.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULT = REPO / "bench" / "results" / "sip_core.json"
SCENARIOS = REPO / "tests" / "sip" / "scenarios"
TENANT = REPO / ".lab" / "demo-tenant.json"

NET = "pbx-lab-fra"
CLIENT, BARE = "pbx-test-bench-client", "pbx-test-bench-bare"
CLIENT_IP, BARE_IP = "172.30.1.180", "172.30.1.181"
SOURCES = ["172.30.1.182", "172.30.1.183", "172.30.1.184", "172.30.1.185"]
UAS_IP = "172.30.1.186"
FULL = "172.30.1.11"
FULL_CONTAINER = "pbx-lab-fra-sip-proxy-1"
REGISTERS_PER_SOURCE = 500
REGISTER_RATE_PER_SOURCE = 150  # under the proxies' flood limit (200/s per source)
CALLS = 300
CALL_RATE = 40


def sh(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)
    if check and r.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {r.stdout}\n{r.stderr}")
    return r


def client(script: str, timeout: float = 200) -> subprocess.CompletedProcess[str]:
    return sh("docker", "exec", CLIENT, "sh", "-c", script, timeout=timeout, check=False)


def setup(tenant: dict) -> None:
    for name in (CLIENT, BARE):
        sh("docker", "rm", "-f", name, check=False)
    sh("docker", "run", "-d", "--name", CLIENT, "--network", NET, "--ip", CLIENT_IP,
       "--cap-add", "NET_ADMIN", "-v", f"{SCENARIOS}:/scen:ro", "pbx/sipclient:lab")  # fmt: skip
    for ip in [*SOURCES, UAS_IP]:
        client(f"ip addr add {ip}/24 dev eth0")
    sh("docker", "run", "-d", "--name", BARE, "--network", NET, "--ip", BARE_IP,
       "-v", f"{REPO / 'bench' / 'bare-relay.cfg'}:/etc/kamailio/bare.cfg:ro",
       "--entrypoint", "kamailio", "pbx/kamailio:lab", "-DD", "-E", "-f", "/etc/kamailio/bare.cfg",
       "-A", f'BENCH_UAS="sip:{UAS_IP}:5071"', "-l", f"udp:{BARE_IP}:5060")  # fmt: skip
    time.sleep(2)
    for ip in [*SOURCES, UAS_IP]:
        unban(ip)


def unban(ip: str) -> None:
    for proxy in ("fra-sip-proxy-1", "fra-sip-proxy-2", "ber-sip-proxy-1", "ber-sip-proxy-2"):
        for table in ("ipban", "authfail"):
            sh("docker", "exec", f"pbx-lab-{proxy}", "kamcmd", "htable.delete", table, ip,
               check=False)  # fmt: skip


def registers(target: str, devices: list[dict]) -> dict:
    """N sipp processes (one source address and one device each) in parallel."""
    procs = []
    for i, ip in enumerate(SOURCES):
        dev = devices[i]
        procs.append(
            f"sipp {target}:5060 -sf /scen/bench_register.xml -s {dev['sip_username']} "
            f"-au {dev['sip_username']} -ap '{dev['sip_password']}' -i {ip} -p 5070 "
            f"-r {REGISTER_RATE_PER_SOURCE} -m {REGISTERS_PER_SOURCE} -l 100 -nostdin "
            f"-timeout 60s -trace_stat -stf /tmp/reg-{i}.csv >/dev/null 2>&1"
        )
    started = time.monotonic()
    client(" & ".join(procs) + " & wait", timeout=120)
    elapsed = time.monotonic() - started
    ok = failed = 0
    for i in range(len(SOURCES)):
        ok += last_stat(f"/tmp/reg-{i}.csv", "SuccessfulCall(C)")
        failed += last_stat(f"/tmp/reg-{i}.csv", "FailedCall(C)")
        client(f"rm -f /tmp/reg-{i}.csv")
    return {"ok": ok, "failed": failed, "seconds": round(elapsed, 2),
            "per_second": round(ok / elapsed, 1)}  # fmt: skip


def last_stat(path: str, column: str) -> int:
    text = client(f"cat {path}").stdout.strip().splitlines()
    if len(text) < 2:
        return 0
    header = text[0].split(";")
    return int(text[-1].split(";")[header.index(column)])


def calls(target: str, caller: dict, callee_ext: str, tag: str) -> dict:
    client(
        f"(timeout 150 sipp -sf /scen/answer.xml -i {UAS_IP} -p 5071 -m {CALLS} -aa -nostdin "
        f"> /dev/null 2>&1 &)"
    )
    time.sleep(0.5)
    started = time.monotonic()
    client(
        f"cd /tmp && rm -f bench_call_*_rtt.csv; timeout 120 sipp {target}:5060 "
        f"-sf /scen/bench_call.xml -s {callee_ext} -set caller {caller['sip_username']} "
        f"-set hold 0 -au {caller['sip_username']} -ap '{caller['sip_password']}' "
        f"-i {SOURCES[0]} -p 5080 -r {CALL_RATE} -m {CALLS} -l 200 -nostdin -timeout 100s "
        f"-trace_rtt -rtt_freq 1 -trace_stat -stf /tmp/call-{tag}.csv >/dev/null 2>&1",
        timeout=150,
    )
    elapsed = time.monotonic() - started
    client("pkill -f answer.xml")
    ok = last_stat(f"/tmp/call-{tag}.csv", "SuccessfulCall(C)")
    failed = last_stat(f"/tmp/call-{tag}.csv", "FailedCall(C)")
    rtts = []
    for line in client("cat /tmp/bench_call_*_rtt.csv").stdout.splitlines()[1:]:
        parts = line.split(";")
        if len(parts) >= 3:
            try:
                rtts.append(float(parts[2]))
            except ValueError:
                continue
    rtts.sort()
    return {
        "ok": ok,
        "failed": failed,
        "seconds": round(elapsed, 2),
        "per_second": round(ok / elapsed, 1),
        "setup_ms_p50": round(statistics.median(rtts), 2) if rtts else None,
        "setup_ms_p99": round(rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))], 2) if rtts else None,
        "samples": len(rtts),
    }


def app_lookup_cost(cache: int) -> dict:
    """Mean cost of the app routing lookup on the full-stack proxy (htable 'appstats')."""
    out = sh("docker", "exec", FULL_CONTAINER, "kamcmd", "htable.dump", "appstats").stdout
    values = {}
    name = None
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("name:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("value:") and name:
            values[name] = int(line.split(":", 1)[1].strip())
    lookups = values.get("lookups", 0)
    return {
        "route_cache": cache,
        "http_lookups": lookups,
        "cache_hits": values.get("cache_hits", 0),
        "mean_http_lookup_ms": round(values.get("lookup_us", 0) / lookups / 1000, 2)
        if lookups
        else None,
    }


def reset_appstats() -> None:
    for key in ("lookups", "lookup_us", "cache_hits"):
        sh("docker", "exec", FULL_CONTAINER, "kamcmd", "htable.delete", "appstats", key,
           check=False)  # fmt: skip
    sh("docker", "exec", FULL_CONTAINER, "kamcmd", "htable.flush", "approute", check=False)


def set_cache(on: int) -> None:
    sh("docker", "exec", FULL_CONTAINER, "kamcmd", "cfg.set_now_int", "pbx", "route_cache",
       str(on))  # fmt: skip


def main() -> int:
    tenant = json.loads(TENANT.read_text())
    devices = tenant["devices"]
    setup(tenant)
    try:
        callee = devices[60]
        caller = devices[61]
        # The callee device's binding for the full stack: contact at the UAS address.
        client(
            f"printf 'SEQUENTIAL\\n{callee['sip_username']};\\n' > /tmp/u.csv; "
            f"sipp {FULL}:5060 -sf /scen/register.xml -inf /tmp/u.csv -au {callee['sip_username']} "
            f"-ap '{callee['sip_password']}' -set expires 600 -i {UAS_IP} -p 5071 -m 1 -nostdin "
            f"-timeout 10s >/dev/null 2>&1"
        )
        result: dict = {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        result["bare_registers"] = registers(BARE_IP, devices[70:74])
        result["full_registers"] = registers(FULL, devices[70:74])
        result["bare_calls"] = calls(BARE_IP, caller, callee["extension"], "bare")
        set_cache(1)
        reset_appstats()
        result["full_calls"] = calls(FULL, caller, callee["extension"], "full")
        result["app_lookup_cached"] = app_lookup_cost(1)
        set_cache(0)
        reset_appstats()
        result["full_calls_no_cache"] = calls(FULL, caller, callee["extension"], "nocache")
        result["app_lookup_uncached"] = app_lookup_cost(0)
        set_cache(1)
        full_r, bare_r = result["full_registers"], result["bare_registers"]
        full_c, bare_c = result["full_calls"], result["bare_calls"]
        result["ratios"] = {
            "registers_per_second_full_vs_bare": round(
                full_r["per_second"] / bare_r["per_second"], 3
            )
            if bare_r["per_second"]
            else None,
            "calls_per_second_full_vs_bare": round(full_c["per_second"] / bare_c["per_second"], 3)
            if bare_c["per_second"]
            else None,
        }
        result["load"] = {
            "register_rate_offered": REGISTER_RATE_PER_SOURCE * len(SOURCES),
            "call_rate_offered": CALL_RATE,
            "note": "offered rates are bounded by the proxies' per-source flood limit; "
            "the bare relay is not the limit at these rates",
        }
        result["comparisons"] = [
            {"metric": "REGISTER/s", "unit": "1/s", "value": full_r["per_second"],
             "baseline": bare_r["per_second"], "baseline_label": "bare relay"},
            {"metric": "calls/s", "unit": "1/s", "value": full_c["per_second"],
             "baseline": bare_c["per_second"], "baseline_label": "bare relay"},
            {"metric": "call setup p50", "unit": "ms", "value": full_c["setup_ms_p50"] or 0,
             "baseline": bare_c["setup_ms_p50"] or 0, "baseline_label": "bare relay"},
            {"metric": "call setup p99", "unit": "ms", "value": full_c["setup_ms_p99"] or 0,
             "baseline": bare_c["setup_ms_p99"] or 0, "baseline_label": "bare relay"},
        ]  # fmt: skip
        RESULT.parent.mkdir(parents=True, exist_ok=True)
        RESULT.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
    finally:
        set_cache(1)
        for ip in [*SOURCES, UAS_IP]:
            unban(ip)
        for name in (CLIENT, BARE):
            sh("docker", "rm", "-f", name, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
