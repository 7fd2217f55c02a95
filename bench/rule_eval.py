"""Benchmark: call rule evaluation per INVITE, in a customer of 100 extensions and in one of
249,000 (the product's limit), against a real `python -m pbx_app serve` on PostgreSQL.

Run: .venv/bin/python -m bench.rule_eval [N]   (writes bench/results/rule_eval.json)

Both customers get the same shape: one location (opening hours, a state for holidays), a head
number, a hunt group of three members spread over the number range, and TARGETS extensions
spread over the range with the same rules (a caller rule that does not match, a schedule rule,
busy -> the group, no answer -> an external number, unavailable -> an extension that forwards
unconditionally to the group). Every lookup builds a whole plan: rules, the group, a chained
extension. The two arms are interleaved request by request (the order alternates), so drift on
the machine hits both alike; the small customer is the baseline. The requirement: p99 at
249,000 within 1.2x of p99 at 100. Two views: GET /internal/v1/route over HTTP (what
Kamailio waits for) and the decision in-process (routing.decide on one connection: the rule
evaluation alone, without HTTP's noise).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.local_app import local_app
from labkit.portal import keep_session
from pbx_app.limits import BASE_PACKAGE_EXTENSIONS

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "bench" / "results" / "rule_eval.json"
SIZES = {"small": 100, "full": 249_000}
FIRST = 100_000  # extension numbers FIRST .. FIRST + size - 1
TARGETS = 20
LOOKUPS = 3000  # per arm
WARMUP = 300
LIMIT_RATIO = 1.2
TOKEN = "bench-internal-token"
ALWAYS_OPEN_BUT_SUNDAY = {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat")}


def _spread(size: int, count: int) -> list[str]:
    """`count` extension numbers spread evenly over the customer's range."""
    return [str(FIRST + (size - 1) * i // max(count - 1, 1)) for i in range(count)]


def _customer(c: httpx.Client, label: str, size: int, head: str) -> dict[str, Any]:
    today = datetime.now(UTC).date().isoformat()
    name = f"Rules {label} {time.time_ns()}"
    body = {"name": name, "tariff": "basic", "contract_start": today}
    body["booked_licences"] = size - BASE_PACKAGE_EXTENSIONS
    cid = _ok(c.post("/customers", json=body))["id"]
    loc = _ok(
        c.post(
            f"/customers/{cid}/locations",
            json={
                "name": "HQ",
                "street": "Unter den Linden 1",
                "postal_code": "10117",
                "city": "Berlin",
                "area_code": "030",
                "opening_hours": ALWAYS_OPEN_BUT_SUNDAY,
                "state": "BE",
            },
        )
    )["id"]
    _ok(
        c.post(
            f"/customers/{cid}/head-numbers",
            json={"location_id": loc, "number": head, "block_size": 1},
        )
    )
    csv_body = "number,location_id,display_name\n" + "".join(
        f"{n},{loc},User {n}\n" for n in range(FIRST, FIRST + size)
    )
    _ok(
        c.post(
            f"/customers/{cid}/extensions/import",
            content=csv_body.encode(),
            headers={"content-type": "text/csv"},
        )
    )
    spread = _spread(size, TARGETS + 6)
    ids = _extension_ids(c, cid, spread)
    device = _ok(c.post(f"/customers/{cid}/extensions/{ids[spread[0]]}/devices", json={}))
    members, final, chained, targets = spread[1:4], spread[4], spread[5], spread[6:]
    group = _ok(
        c.post(
            f"/customers/{cid}/ring-groups",
            json={
                "name": "Sales",
                "strategy": "hunt",
                "member_timeout": 10,
                "members": members,
                "final": {"extension": final},
            },
        )
    )["id"]
    _ok(
        c.put(
            f"/customers/{cid}/extensions/{ids[chained]}/call-rules",
            json={"rules": [{"kind": "unconditional", "target": {"group": group}}]},
        )
    )
    rules = [
        {"kind": "caller", "match": "0171*", "target": {"reject": 603}},
        {"kind": "schedule", "target": {"reject": 480}},
        {"kind": "busy", "target": {"group": group}},
        {"kind": "noanswer", "timeout": 20, "target": {"external": "030555123"}},
        {"kind": "unavailable", "target": {"extension": chained}},
    ]
    for number in targets:
        _ok(c.put(f"/customers/{cid}/extensions/{ids[number]}/call-rules", json={"rules": rules}))
    return {"customer_id": cid, "caller": device["sip_username"], "targets": targets}


def _extension_ids(c: httpx.Client, cid: int, numbers: list[str]) -> dict[str, int]:
    """Ids by number: the import creates the rows in CSV order, so the list (by id) at offset
    number - FIRST holds that number."""
    out = {}
    for number in numbers:
        params = {"limit": 1, "offset": int(number) - FIRST}
        items = _ok(c.get(f"/customers/{cid}/extensions", params=params))["items"]
        assert items, f"extension {number}: none at its offset"
        assert items[0]["number"] == number, f"extension {number}: {items}"
        out[number] = items[0]["id"]
    return out


def _ok(r: httpx.Response) -> Any:
    assert r.status_code < 300, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json()


def _interleaved(
    arms: dict[str, dict[str, Any]], ask: Callable[[str, str], dict[str, Any]]
) -> dict[str, list[float]]:
    """Latency (ms) per arm; requests alternate between the arms, the order flips each round."""
    out: dict[str, list[float]] = {a: [] for a in arms}
    order = list(arms)
    for i in range(WARMUP + LOOKUPS):
        for arm in order if i % 2 else reversed(order):
            spec = arms[arm]
            target = spec["targets"][i % len(spec["targets"])]
            t = time.perf_counter()
            body = ask(spec["caller"], target)
            ms = (time.perf_counter() - t) * 1000
            assert body["action"] == "local", (arm, body)
            assert len(body.get("steps", [])) >= 4, (arm, body)
            if i >= WARMUP:
                out[arm].append(ms)
    return out


def _summary(latencies: dict[str, list[float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for arm, values in latencies.items():
        q = statistics.quantiles(values, n=100)
        out[arm] = {
            "extensions": SIZES[arm],
            "p50_ms": round(statistics.median(values), 3),
            "p90_ms": round(q[89], 3),
            "p99_ms": round(q[98], 3),
        }
    out["p99_ratio"] = round(out["full"]["p99_ms"] / out["small"]["p99_ms"], 3)
    out["within_limit"] = out["p99_ratio"] <= LIMIT_RATIO
    return out


def _in_process(url: str, arms: dict[str, dict[str, Any]]) -> dict[str, list[float]]:
    from sqlalchemy import create_engine

    from pbx_app.services import routing

    engine = create_engine(url)
    with engine.connect() as conn:
        result = _interleaved(
            arms,
            lambda caller, target: routing.decide(conn, caller, target, routing.Context(_now())),
        )
        conn.rollback()
    engine.dispose()
    return result


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def run(lookups: int) -> dict[str, Any]:
    global LOOKUPS
    LOOKUPS = lookups
    with local_app(PBX_INTERNAL_TOKEN=TOKEN) as app:
        app.cli("migrate")
        operator = json.loads(app.cli("create-operator", "--email", "rules-operator@pbx.test"))
        base = app.serve()
        arms: dict[str, dict[str, Any]] = {}
        with httpx.Client(base_url=f"{base}/api/v1", timeout=300) as c:
            login = {"email": operator["email"], "password": operator["password"]}
            r = c.post("/auth/login", json=login)
            r.raise_for_status()
            keep_session(c, r)
            for index, (arm, size) in enumerate(SIZES.items()):
                print(f"  setting up the {arm} customer ({size:,} extensions)", flush=True)
                arms[arm] = _customer(c, arm, size, f"+4930555{index}0000")
        print(f"  {LOOKUPS} lookups per arm over HTTP, interleaved", flush=True)
        headers = {"X-PBX-Internal-Token": TOKEN}
        with httpx.Client(base_url=base, headers=headers, timeout=10) as c:

            def over_http(caller: str, target: str) -> dict[str, Any]:
                r = c.get("/internal/v1/route", params={"caller": caller, "target": target})
                assert r.status_code == 200, r.text
                return dict(r.json())

            http = _summary(_interleaved(arms, over_http))
        print(f"  {LOOKUPS} decisions per arm in-process, interleaved", flush=True)
        local = _summary(_in_process(app.env["PBX_DATABASE_URL"], arms))
        return {
            "benchmark": "rule_eval",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "database": app.database,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "what": "one routing decision with call rules (caller, schedule, busy -> hunt group, "
            "no answer -> external, unavailable -> a forwarding extension) per INVITE; "
            f"{TARGETS} target extensions spread over the customer's range",
            "lookups_per_arm": LOOKUPS,
            "warmup": WARMUP,
            "limit": f"p99 at {SIZES['full']:,} <= {LIMIT_RATIO} x p99 at {SIZES['small']}",
            "http": http,
            "in_process": local,
            "within_limit": http["within_limit"] and local["within_limit"],
            "comparisons": [
                {
                    "metric": f"rule evaluation p99, {SIZES['full']:,} extensions (HTTP)",
                    "unit": "ms",
                    "value": http["full"]["p99_ms"],
                    "baseline": http["small"]["p99_ms"],
                    "baseline_label": f"{SIZES['small']} extensions",
                },
                {
                    "metric": f"rule evaluation p99, {SIZES['full']:,} extensions (in-process)",
                    "unit": "ms",
                    "value": local["full"]["p99_ms"],
                    "baseline": local["small"]["p99_ms"],
                    "baseline_label": f"{SIZES['small']} extensions",
                },
            ],
        }


def main() -> int:
    lookups = int(sys.argv[1]) if len(sys.argv) > 1 else LOOKUPS
    result = run(lookups)
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if result["within_limit"] else 1


if __name__ == "__main__":
    sys.exit(main())
