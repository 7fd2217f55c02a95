"""CTI's cost to a call, and how fast its events arrive (issue 17), on the running lab.

The same calls (the other customer's phone calls a demo phone's public number at fra, answered
at once, held 300 ms) twice in one run: without CTI (the baseline) and with CTI Premium and a
CRM that never answers in time (an outside caller: the CRM is asked).
Call setup is the time from starting the caller to the INVITE reaching the callee (sipp's
start-up included, alike in both arms): CTI must not lengthen it. Event latency is the time
from the proxy's timestamp of each event (the 18x, the 2xx, the BYE) to a WebSocket client
receiving it; the ringing event waits for the CRM at most crm.TIMEOUT.

    python -m bench.cti_events [calls]   ->  bench/results/cti_events.json
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from labkit.control import clear_bindings
from labkit.cti import EventStream, start_server
from labkit.devices import Device, Devices, aor_for, device_creds, logged_time
from labkit.lab import SITES, app_base, load_tenant
from pbx_app.crm import TIMEOUT as CRM_TIMEOUT
from tests.sip.site_drills import login

RESULT = Path(__file__).resolve().parent / "results" / "cti_events.json"
FRA1 = SITES["fra"]["proxies"][0]
CALLER, CALLEE = 6, 96  # the other customer's device 6, demo device 96: no test leases them
PORT_CALLEE, PORT_CALLER = 5170, 5171


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def arm(
    phones: tuple[Device, Device], tenant: dict[str, Any], calls: int, stream: EventStream | None
) -> dict[str, Any]:
    callee, caller = phones
    cu, cp = device_creds(tenant, CALLER, key="other_devices")
    target = "0" + tenant["devices"][CALLEE]["did"].removeprefix("+49")
    setup: list[float] = []
    ids = []
    for n in range(calls):
        callee.answer(PORT_CALLEE)
        call_id = f"bench-cti-{time.monotonic_ns()}@{caller.ip}"
        started = time.time()
        status = caller.call(target, cu, cp, FRA1, hold_ms=300, port=PORT_CALLER, call_id=call_id)
        assert status.startswith("200"), status
        arrived = logged_time(callee.answered(PORT_CALLEE), "INVITE") or logged_time(
            callee.answered(PORT_CALLEE), "ARRIVED"
        )
        assert arrived is not None
        setup.append((arrived - started) * 1000)
        ids.append(call_id)
        print(f"    call {n + 1}/{calls}: setup {setup[-1]:.0f} ms", flush=True)
    out: dict[str, Any] = {
        "calls": calls,
        "setup_ms_p50": statistics.median(setup),
        "setup_ms_p95": pct(setup, 0.95),
    }
    if stream is not None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(len(stream.of_call(c)) < 3 for c in ids):
            time.sleep(0.2)
        lat: dict[str, list[float]] = {}
        for c in ids:
            for e in stream.of_call(c):
                at = datetime.fromisoformat(e["occurred_at"].replace("Z", "+00:00")).timestamp()
                lat.setdefault(e["kind"], []).append((e["_received"] - at) * 1000)
        out["event_ms"] = {
            k: {"p50": statistics.median(v), "p95": pct(v, 0.95), "n": len(v)}
            for k, v in lat.items()
        }
    return out


def main() -> None:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    tenant = load_tenant()
    cid = tenant["customer_id"]
    api = login("fra")
    before = api.get(f"/customers/{cid}").json()["cti"]
    devices = Devices()
    try:
        box = devices.start("bench-cti-box", "fra")
        server = start_server(box)
        callee = devices.start("bench-cti-callee", "fra")
        phones = (callee, devices.start("bench-cti-caller", "fra"))
        user, password = device_creds(tenant, CALLEE)
        clear_bindings(aor_for(user))
        assert callee.register(user, password, FRA1, port=PORT_CALLEE).startswith("200")
        print("[1/2] without CTI", flush=True)
        api.patch(f"/customers/{cid}", json={"cti": "none"})
        time.sleep(3)  # cached routing decisions (ttl 2 s) carry no "cti" any more
        baseline = arm(phones, tenant, calls, None)
        print("[2/2] with CTI Premium, a CRM that never answers in time", flush=True)
        api.patch(f"/customers/{cid}", json={"cti": "premium"})
        api.put(f"/customers/{cid}/cti", json={"crm_url_template": f"{server}/slow?n={{number}}"})
        token = api.post("/tokens", json={"name": "bench-cti", "expires_in_days": 1}).json()[
            "token"
        ]
        stream = EventStream(app_base("fra").replace("http://", "ws://") + "/call-events/ws", token)
        time.sleep(3)
        measured = arm(phones, tenant, calls, stream)
        stream.close()
    finally:
        api.put(f"/customers/{cid}/cti", json={"crm_url_template": None})
        api.patch(f"/customers/{cid}", json={"cti": before})
        clear_bindings(aor_for(device_creds(tenant, CALLEE)[0]))
        devices.remove_all()
    result = {
        "benchmark": "cti_events",
        "crm_timeout_s": CRM_TIMEOUT,
        "without_cti": baseline,
        "with_cti": measured,
        "comparisons": [
            {
                "metric": "call setup p50, CTI + dead CRM",
                "unit": "ms",
                "value": measured["setup_ms_p50"],
                "baseline": baseline["setup_ms_p50"],
            },
            {
                "metric": "call setup p95, CTI + dead CRM",
                "unit": "ms",
                "value": measured["setup_ms_p95"],
                "baseline": baseline["setup_ms_p95"],
            },
        ],
    }
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
