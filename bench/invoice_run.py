"""Benchmark: the monthly invoice run for 1,000 customers with 10 million call records in the
month, through the REST API against PostgreSQL, and the same run again (idempotent: nothing to
issue). Baseline in the same run: one bare SQL pass over the month's records (count and talk
time per customer), the least any run must read.

Run: .venv/bin/python -m bench.invoice_run [customers] [records]
(writes bench/results/invoice_run.json). Uses $PBX_BENCH_DATABASE_URL if set, else a throwaway
PostgreSQL cluster (fsync on).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.local_app import local_app
from labkit.portal import keep_session
from pbx_app.invoicing import next_month, previous_month

ROOT = Path(__file__).resolve().parent.parent
CUSTOMERS = 1_000
RECORDS = 10_000_000
CHUNK = 1_000_000  # records per INSERT ... SELECT, for progress

# One month of calls: every 5th unanswered, the rest to national, mobile, European, world and
# on-net numbers (on-net: an AOR, never rated), talk times 0-600 s.
_FILL = """
INSERT INTO call_records (node, site, call_id, from_tag, started_at, answered_at, ended_at,
    customer_id, callee_customer_id, source, caller, caller_id, dialled, resolved, answered_by,
    diversions, relay, sip_code, reason, received_at)
SELECT 'bench', 'fra', 'bench-' || g, 't',
       %(start)s + (g %% %(seconds)s) * interval '1 second',
       CASE WHEN (g / 3) %% 5 = 0 THEN NULL
            ELSE %(start)s + (g %% %(seconds)s) * interval '1 second' + interval '3 seconds' END,
       %(start)s + (g %% %(seconds)s) * interval '1 second' + interval '3 seconds'
           + ((g * 7919) %% 601) * interval '1 second' + interval '250 milliseconds',
       %(first)s::int + (g %% %(customers)s)::int, NULL, 'device', 'bench', '+49691234100',
       n.number, n.number, '', 0, '', CASE WHEN (g / 3) %% 5 = 0 THEN 486 ELSE 200 END, '', now()
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g,
     LATERAL (SELECT CASE g %% 7
         WHEN 0 THEN '+4917' || lpad(((g * 31) %% 100000000)::text, 8, '0')
         WHEN 1 THEN '+33' || lpad(((g * 17) %% 1000000000)::text, 9, '0')
         WHEN 2 THEN '+1555' || lpad(((g * 13) %% 10000000)::text, 7, '0')
         WHEN 3 THEN 'c' || (%(first)s + (g %% %(customers)s)) || 'x100'
         ELSE '+4969' || lpad(((g * 11) %% 100000000)::text, 8, '0') END AS number) AS n
"""

_BASELINE = """
SELECT customer_id, COUNT(*), SUM(EXTRACT(EPOCH FROM (ended_at - answered_at)))
FROM call_records
WHERE answered_at IS NOT NULL AND resolved LIKE '+%%' AND started_at >= %(start)s
  AND started_at < %(end)s
GROUP BY customer_id
"""


def log(message: str, started: float) -> None:
    print(f"[{time.monotonic() - started:7.1f}s] {message}", flush=True)


def last_month(today: date) -> tuple[date, date]:
    start = previous_month(today)
    return start, next_month(start)


def run(customers: int, records: int) -> dict[str, Any]:
    t0 = time.monotonic()
    start, end = last_month(datetime.now(UTC).date())
    with local_app() as app:
        dsn = app.env["PBX_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://", 1)
        app.cli("migrate")
        operator = json.loads(app.cli("create-operator", "--email", "bench-operator@pbx.test"))
        base = app.serve()
        with httpx.Client(base_url=f"{base}/api/v1", timeout=3600) as c:
            r = c.post(
                "/auth/login", json={"email": operator["email"], "password": operator["password"]}
            )
            r.raise_for_status()
            keep_session(c, r)
            ids = []
            for n in range(customers):
                body = {
                    "name": f"Bench customer {n}",
                    "tariff": ("basic", "standard", "premium")[n % 3],
                    "contract_start": "2020-01-01",
                    "booked_licences": n % 50,
                    "discounts": ["mobile"] if n % 4 == 0 else [],
                    "flat_rate": "national" if n % 2 == 0 else None,
                }
                created = c.post("/customers", json=body)
                created.raise_for_status()
                ids.append(created.json()["id"])
                if (n + 1) % 250 == 0:
                    log(f"customers: {n + 1}/{customers}", t0)
            with psycopg.connect(dsn, autocommit=True) as db:
                for lo in range(1, records + 1, CHUNK):
                    hi = min(records, lo + CHUNK - 1)
                    db.execute(
                        _FILL,
                        {
                            "start": datetime.combine(start, datetime.min.time()),
                            "seconds": (end - start).days * 86400 - 700,
                            "first": ids[0],
                            "customers": customers,
                            "lo": lo,
                            "hi": hi,
                        },
                    )
                    log(f"call records: {hi:,}/{records:,}", t0)
                db.execute("ANALYZE call_records")
                window = {
                    "start": datetime.combine(start, datetime.min.time()),
                    "end": datetime.combine(end, datetime.min.time()),
                }
                b0 = time.monotonic()
                rows = db.execute(_BASELINE, window).fetchall()
                baseline_s = time.monotonic() - b0
                log(f"baseline: one SQL pass, {len(rows)} customers in {baseline_s:.1f}s", t0)
                rated = sum(int(r[1]) for r in rows)
            period = start.isoformat()[:7]
            r0 = time.monotonic()
            first = c.post("/invoice-runs", params={"period": period})
            first.raise_for_status()
            run_s = time.monotonic() - r0
            log(f"invoice run {period}: {first.json()} in {run_s:.1f}s", t0)
            r1 = time.monotonic()
            again = c.post("/invoice-runs", params={"period": period})
            again.raise_for_status()
            again_s = time.monotonic() - r1
            log(f"invoice run again: {again.json()} in {again_s:.1f}s", t0)
            sample = c.get(f"/customers/{ids[0]}/invoices").json()["items"][0]
            pdf0 = time.monotonic()
            pdf = c.get(
                f"/customers/{ids[0]}/invoices/{sample['number']}", params={"format": "pdf"}
            )
            pdf.raise_for_status()
            pdf_ms = (time.monotonic() - pdf0) * 1000
    result: dict[str, Any] = {
        "benchmark": "invoice_run",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "database": app.database,
        "customers": customers,
        "call_records": records,
        "rated_records": rated,
        "period": period,
        "run_seconds": round(run_s, 2),
        "run_result": first.json(),
        "run_again_seconds": round(again_s, 2),
        "run_again_result": again.json(),
        "baseline_sql_pass_seconds": round(baseline_s, 2),
        "records_per_second": round(records / run_s),
        "sample_invoice_lines": len(sample["lines"]),
        "sample_pdf_ms": round(pdf_ms, 1),
        "sample_pdf_bytes": len(pdf.content),
    }
    result["comparisons"] = [
        {
            "metric": f"invoice run, {customers:,} customers, {records / 1e6:g}M CDRs",
            "unit": "s",
            "value": result["run_seconds"],
            "baseline": result["baseline_sql_pass_seconds"],
            "baseline_label": "one SQL pass",
        }
    ]
    return result


def main() -> int:
    customers = int(sys.argv[1]) if len(sys.argv) > 1 else CUSTOMERS
    records = int(sys.argv[2]) if len(sys.argv) > 2 else RECORDS
    result = run(customers, records)
    name = (
        "invoice_run.json"
        if (customers, records) == (CUSTOMERS, RECORDS)
        else (f"invoice_run-{customers}-{records}.json")
    )
    out = ROOT / "bench" / "results" / name
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
