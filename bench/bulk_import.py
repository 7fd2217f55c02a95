"""Benchmark: bulk import of 249,000 extensions for one customer through the REST API against
PostgreSQL (budget: 60 s on a 2-core machine), plus single-create latency p50/p99.

Run: .venv/bin/python -m bench.bulk_import   (writes bench/results/bulk_import.json)
Uses $PBX_BENCH_DATABASE_URL if set, else a throwaway PostgreSQL cluster (fsync on).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.local_app import local_app
from labkit.portal import keep_session

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "bench" / "results" / "bulk_import.json"
EXTENSIONS = 249_000
SINGLE_CREATES = 500
BUDGET_S = 60.0


def run() -> dict[str, Any]:
    with local_app() as app:
        url = app.env["PBX_DATABASE_URL"]
        app.cli("migrate")
        operator = json.loads(app.cli("create-operator", "--email", "bench-operator@pbx.test"))
        base = app.serve()
        with httpx.Client(base_url=f"{base}/api/v1", timeout=120) as c:
            r = c.post(
                "/auth/login", json={"email": operator["email"], "password": operator["password"]}
            )
            r.raise_for_status()
            keep_session(c, r)
            today = datetime.now(UTC).date().isoformat()
            cust = c.post(
                "/customers",
                json={
                    "name": f"Bench {time.time_ns()}",
                    "tariff": "basic",
                    "contract_start": today,
                    "booked_licences": EXTENSIONS - 5,
                },
            ).json()
            cid = cust["id"]
            loc = c.post(
                f"/customers/{cid}/locations",
                json={
                    "name": "HQ",
                    "street": "Mainzer Landstrasse 1",
                    "postal_code": "60329",
                    "city": "Frankfurt",
                    "area_code": "069",
                },
            ).json()["id"]
            csv_body = "number,location_id,display_name\n" + "".join(
                f"{n},{loc},User {n}\n" for n in range(100_000, 100_000 + EXTENSIONS)
            )
            t0 = time.perf_counter()
            r = c.post(
                f"/customers/{cid}/extensions/import",
                content=csv_body.encode(),
                headers={"content-type": "text/csv"},
            )
            bulk_s = time.perf_counter() - t0
            r.raise_for_status()
            assert r.json()["extension_count"] == EXTENSIONS, r.text
            # the 249,001st is refused
            over = c.post(
                f"/customers/{cid}/extensions", json={"location_id": loc, "number": "99999"}
            )
            assert over.status_code == 409, over.text

            cust2 = c.post(
                "/customers",
                json={
                    "name": f"Bench single {time.time_ns()}",
                    "tariff": "basic",
                    "contract_start": today,
                    "booked_licences": SINGLE_CREATES,
                },
            ).json()["id"]
            loc2 = c.post(
                f"/customers/{cust2}/locations",
                json={
                    "name": "HQ",
                    "street": "S 1",
                    "postal_code": "10117",
                    "city": "Berlin",
                    "area_code": "030",
                },
            ).json()["id"]
            latencies = []
            for n in range(SINGLE_CREATES):
                t = time.perf_counter()
                r = c.post(
                    f"/customers/{cust2}/extensions",
                    json={"location_id": loc2, "number": str(1000 + n)},
                )
                latencies.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 201, r.text
        baseline = _raw_database_baseline(url, csv_body)
        q = statistics.quantiles(latencies, n=100)
        return {
            "benchmark": "bulk_import",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "database": app.database,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "path": "POST /api/v1/customers/{id}/extensions/import (text/csv), "
            "one transaction, COPY",
            "bulk_extensions": EXTENSIONS,
            "bulk_seconds": round(bulk_s, 2),
            "bulk_budget_seconds": BUDGET_S,
            "bulk_within_budget": bulk_s <= BUDGET_S,
            "bulk_rows_per_second": round(EXTENSIONS / bulk_s),
            "single_create_requests": SINGLE_CREATES,
            "single_create_p50_ms": round(statistics.median(latencies), 2),
            "single_create_p99_ms": round(q[98], 2),
            # Same run, same cluster: what the database alone costs for the same work.
            "baseline": baseline,
            "bulk_vs_raw_copy_ratio": round(bulk_s / baseline["raw_copy_seconds"], 2),
            "single_create_vs_raw_insert_p50_ratio": round(
                statistics.median(latencies) / baseline["raw_insert_p50_ms"], 2
            ),
            # Common shape for bench/summary.png: measured value vs its same-run baseline.
            "comparisons": [
                {
                    "metric": "import 249k extensions",
                    "unit": "s",
                    "value": round(bulk_s, 2),
                    "baseline": baseline["raw_copy_seconds"],
                    "baseline_label": "raw COPY",
                },
                {
                    "metric": "create one extension p50",
                    "unit": "ms",
                    "value": round(statistics.median(latencies), 2),
                    "baseline": baseline["raw_insert_p50_ms"],
                    "baseline_label": "raw INSERT",
                },
            ],
        }


def _raw_database_baseline(url: str, csv_body: str) -> dict[str, Any]:
    """COPY the same CSV into a bare table and time single INSERT round trips: the floor."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        # A logged table (WAL + fsync like the app's), dropped afterwards.
        conn.execute("DROP TABLE IF EXISTS bench_raw")
        conn.execute("CREATE TABLE bench_raw (number text, location_id int, display_name text)")
        t0 = time.perf_counter()
        with (
            conn.transaction(),
            conn.cursor().copy("COPY bench_raw FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
        ):
            copy.write(csv_body)
        copy_s = time.perf_counter() - t0
        inserts = []
        for n in range(SINGLE_CREATES):
            t = time.perf_counter()
            conn.execute("INSERT INTO bench_raw VALUES (%s, 1, 'x')", (str(n),))
            inserts.append((time.perf_counter() - t) * 1000)
        conn.execute("DROP TABLE bench_raw")
    q = statistics.quantiles(inserts, n=100)
    return {
        "what": "psycopg COPY of the same CSV into a bare logged table; autocommit INSERTs",
        "raw_copy_seconds": round(copy_s, 3),
        "raw_insert_p50_ms": round(statistics.median(inserts), 3),
        "raw_insert_p99_ms": round(q[98], 3),
    }


def main() -> int:
    result = run()
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if result["bulk_within_budget"] else 1


if __name__ == "__main__":
    sys.exit(main())
