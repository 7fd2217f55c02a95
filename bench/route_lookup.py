"""Benchmark: GET /internal/v1/route latency (what Kamailio waits for on every call) against a
real `python -m pbx_app serve` process on PostgreSQL, with the demo tenants seeded.

Run: .venv/bin/python bench/route_lookup.py [N]   (writes bench/results/route_lookup.json)
Uses $PBX_BENCH_DATABASE_URL if set, else a throwaway PostgreSQL cluster (fsync on).
Sequential requests over one keep-alive connection (like a Kamailio worker with http_client);
the mix cycles through every decision: local by extension, local by DID (three formats,
another customer), external, and 403/404 rejects.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "bench" / "results" / "route_lookup.json"
LOOKUPS = 2000
WARMUP = 200
TOKEN = "bench-internal-token"


def _pg_cluster_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "pg_cluster", ROOT / "tests" / "app" / "pg_cluster.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cli(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "pbx_app", *args],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


def _queries(seed: dict[str, Any]) -> list[tuple[str, str, str]]:
    demo, other = seed["devices"], seed["other_devices"]
    other_did = other[3]["did"]
    national = "0" + other_did[3:]
    out: list[tuple[str, str, str]] = []
    for i, dev in enumerate(demo):
        caller = dev["sip_username"]
        peer = demo[(i + 1) % len(demo)]
        out += [
            ("local extension", caller, peer["extension"]),
            ("local own aor", caller, peer["aor"]),
            ("local DID E.164 (other customer)", caller, other_did),
            ("local DID national (other customer)", caller, national),
            ("local DID 00 (other customer)", caller, "00" + other_did[1:]),
            ("external", caller, "030555123"),
            ("reject 403 other aor", caller, other[0]["aor"]),
            ("reject 404 unknown extension", caller, "999"),
        ]
    for dev in other:
        out.append(("reject 404 extension of other customer", dev["sip_username"], "150"))
    return out


def run(lookups: int) -> dict[str, Any]:
    pg = _pg_cluster_module()
    cluster = None
    url = os.environ.get("PBX_BENCH_DATABASE_URL")
    if not url:
        cluster = pg.ThrowawayCluster(durable=True)
        cluster.start()
        url = cluster.url()
    port = pg.free_port()
    env = {
        **os.environ,
        "PBX_DATABASE_URL": url,
        "PBX_LISTEN": f"127.0.0.1:{port}",
        "PBX_SECRET_KEY": "bench",
        "PBX_SIP_DOMAIN": "pbx.lab",
        "PBX_INTERNAL_TOKEN": TOKEN,
        "PYTHONPATH": str(ROOT),
    }
    server: subprocess.Popen[bytes] | None = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            seed_file = Path(tmp) / "seed.json"
            _cli(env, "seed-demo", "--out", str(seed_file))
            seed = json.loads(seed_file.read_text())
        queries = _queries(seed)
        server = subprocess.Popen(
            [sys.executable, "-m", "pbx_app", "serve"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not come up")
            time.sleep(0.1)
        latencies: list[float] = []
        by_kind: dict[str, list[float]] = {}
        actions: Counter[str] = Counter()
        headers = {"X-PBX-Internal-Token": TOKEN}
        with httpx.Client(base_url=base, headers=headers, timeout=10) as c:
            for i in range(WARMUP + lookups):
                kind, caller, target = queries[i % len(queries)]
                t = time.perf_counter()
                r = c.get("/internal/v1/route", params={"caller": caller, "target": target})
                ms = (time.perf_counter() - t) * 1000
                assert r.status_code == 200, r.text
                body = r.json()
                expected = kind.split()[0]
                assert body["action"] == expected, (kind, caller, target, body)
                if i >= WARMUP:
                    latencies.append(ms)
                    by_kind.setdefault(kind, []).append(ms)
                    actions[body["action"]] += 1
            # Baseline, same server and client: an HTTP round trip with one trivial query.
            floor: list[float] = []
            for _ in range(lookups):
                t = time.perf_counter()
                assert c.get("/healthz").status_code == 200
                floor.append((time.perf_counter() - t) * 1000)
        q = statistics.quantiles(latencies, n=100)
        fq = statistics.quantiles(floor, n=100)
        return {
            "benchmark": "route_lookup",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "database": "postgresql (throwaway cluster, fsync on)"
            if cluster
            else "PBX_BENCH_DATABASE_URL",
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "path": "GET /internal/v1/route (real `serve` process, one keep-alive client, "
            "sequential; 2 SQL statements per lookup, autocommit)",
            "lookups": lookups,
            "warmup": WARMUP,
            "actions": dict(actions),
            "p50_ms": round(statistics.median(latencies), 2),
            "p90_ms": round(q[89], 2),
            "p99_ms": round(q[98], 2),
            "max_ms": round(max(latencies), 2),
            "p50_ms_by_kind": {k: round(statistics.median(v), 2) for k, v in by_kind.items()},
            "baseline": {
                "what": "GET /healthz on the same server (HTTP round trip + SELECT 1)",
                "p50_ms": round(statistics.median(floor), 2),
                "p99_ms": round(fq[98], 2),
            },
            "comparisons": [
                {
                    "metric": "route lookup p50",
                    "unit": "ms",
                    "value": round(statistics.median(latencies), 2),
                    "baseline": round(statistics.median(floor), 2),
                    "baseline_label": "/healthz",
                },
                {
                    "metric": "route lookup p99",
                    "unit": "ms",
                    "value": round(q[98], 2),
                    "baseline": round(fq[98], 2),
                    "baseline_label": "/healthz",
                },
            ],
        }
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if cluster is not None:
            cluster.stop()


def main() -> int:
    lookups = int(sys.argv[1]) if len(sys.argv) > 1 else LOOKUPS
    result = run(lookups)
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
