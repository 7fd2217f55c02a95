"""Benchmark: GET /internal/v1/route latency (what Kamailio waits for on every call) against a
real `python -m pbx_app serve` process on PostgreSQL, with the demo tenants seeded.

Run: .venv/bin/python -m bench.route_lookup [N]   (writes bench/results/route_lookup.json)
Uses $PBX_BENCH_DATABASE_URL if set, else a throwaway PostgreSQL cluster (fsync on).
Sequential requests over one keep-alive connection (like a Kamailio worker with http_client);
the mix cycles through every decision: local by extension, local by DID (three formats,
another customer), external, and 403/404 rejects.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.local_app import local_app

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "bench" / "results" / "route_lookup.json"
LOOKUPS = 2000
WARMUP = 200
TOKEN = "bench-internal-token"


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
    with local_app(PBX_SIP_DOMAIN="pbx.lab", PBX_INTERNAL_TOKEN=TOKEN) as app:
        with tempfile.TemporaryDirectory() as tmp:
            seed_file = Path(tmp) / "seed.json"
            app.cli("seed-demo", "--out", str(seed_file))
            seed = json.loads(seed_file.read_text())
        queries = _queries(seed)
        base = app.serve()
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
            "database": app.database,
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


def main() -> int:
    lookups = int(sys.argv[1]) if len(sys.argv) > 1 else LOOKUPS
    result = run(lookups)
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
