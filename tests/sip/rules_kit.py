"""What the call-rule, ring-group and caller-ID lab tests share: demo phones on ports of one
test container, the tenant's REST API for rules, groups, locations and caller IDs (everything
set is put back), and the call timing the scenarios log.

A phone is a demo device (an index into the demo tenant) registered from its own port of a test
container; `expect()` arms what it does with the next call (scenarios answer, ring, refuse).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from labkit.control import clear_bindings
from labkit.devices import Device, logged_diversion, logged_time, scenario_text
from labkit.docker import docker
from labkit.lab import SITES, sip_target

FRA1 = SITES["fra"]["proxies"][0]
FRA1_INTERNAL = SITES["fra"]["proxy_internals"][0]
CARRIER, CARRIER_IP = SITES["fra"]["carrier"], SITES["fra"]["carrier_ip"]
BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# How exactly a ring step ends after its timeout, seen at the device: Kamailio's timers tick
# every 1/16 s, measured 4.94-5.00 s for 5 s (the INVITE reaches the phone a few ms after the
# step starts). Stated tolerance: +-0.25 s.
RING_TOLERANCE = 0.25
# A phone's second device registers from its port + SECOND_PORT.
SECOND_PORT = 100


@dataclass
class Phone:
    """Demo device `index` of `key` ("devices" or "other_devices") on `port` of `box`."""

    box: Device
    tenant: dict[str, Any]
    index: int
    port: int
    key: str = "devices"

    @property
    def entry(self) -> dict[str, str]:
        entry: dict[str, str] = self.tenant[self.key][self.index]
        return entry

    @property
    def user(self) -> str:
        return self.entry["sip_username"]

    @property
    def password(self) -> str:
        return self.entry["sip_password"]

    @property
    def ext(self) -> str:
        return self.entry["extension"]

    @property
    def aor(self) -> str:
        return self.entry["aor"]

    @property
    def did(self) -> str:
        return self.entry["did"]

    def register(self, port: int = 0) -> None:
        status = self.box.register(self.user, self.password, FRA1, port=port or self.port)
        assert status.startswith("200"), f"{self.user} on {port or self.port}: {status}"

    def expect(self, scenario: str, port: int = 0) -> None:
        """The next call on `port` (default: the phone's): answer, ring (never answers) or
        refuse (486). One still waiting there from before is ended first."""
        self.box.stop_answering(port or self.port)
        self.box.answer(port or self.port, scenario=scenario)

    def stop(self, *ports: int) -> None:
        """End what still waits for a call on the phone's port (and `ports`)."""
        for port in (self.port, *ports):
            self.box.stop_answering(port)

    def call(
        self, target: str, scenario: str = "call", timeout: float = 30, hold_ms: int = 300,
        **sets: str,
    ) -> str:  # fmt: skip
        """Call `target` from this phone (scenario call; call_claim with claim=...; call_cancel,
        which hangs up `hold_ms` after the 180); the INVITE's final status line."""
        return self.box.call(
            target, self.user, self.password, FRA1, hold_ms=hold_ms, port=self.port,
            timeout=timeout, scenario=scenario, sets=sets,
        )  # fmt: skip

    def log(self, port: int = 0) -> str:
        return self.box.answered(port or self.port)

    def invited_at(self, port: int = 0) -> float | None:
        """When the last call reached this phone (answer/ring/refuse), or None."""
        log = self.log(port)
        return logged_time(log, "INVITE") or logged_time(log, "ARRIVED")

    def cancelled_at(self, port: int = 0) -> float | None:
        return logged_time(self.log(port), "CANCEL")

    def diversion(self, port: int = 0) -> str:
        return logged_diversion(self.log(port))


@contextmanager
def fresh_bindings(*phones: Phone) -> Iterator[None]:
    """No binding of these phones' extensions before (stale contacts would be forked to) and
    after (the next suite's)."""
    aors = sorted({p.aor for p in phones})
    clear_bindings(*aors)
    try:
        yield
    finally:
        for phone in phones:
            phone.stop(phone.port + SECOND_PORT)
        clear_bindings(*aors)


def reason(diversion: str) -> str:
    """The reason parameter of a Diversion header value ('' without one)."""
    for param in diversion.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.lower() == "reason":
            return value.strip('"')
    return ""


@dataclass
class Pbx:
    """A customer's REST API as its admin (or an operator) uses it; put_back() restores every
    rule, group, extension field and location field a test changed."""

    api: httpx.Client
    customer_id: int
    _ext_ids: dict[str, int] = field(default_factory=dict)
    _rules_set: set[str] = field(default_factory=set)
    _groups: list[int] = field(default_factory=list)
    _extension_fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    _location_fields: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"/customers/{self.customer_id}"

    def ext_id(self, number: str) -> int:
        if not self._ext_ids:
            offset = 0
            while True:
                r = self.api.get(f"{self.base}/extensions", params={"limit": 100, "offset": offset})
                assert r.status_code == 200, r.text
                items = r.json()["items"]
                self._ext_ids |= {e["number"]: e["id"] for e in items}
                if len(items) < 100:
                    break
                offset += 100
        return self._ext_ids[number]

    def extension(self, number: str) -> dict[str, Any]:
        r = self.api.get(f"{self.base}/extensions/{self.ext_id(number)}")
        assert r.status_code == 200, r.text
        ext: dict[str, Any] = r.json()
        return ext

    # ---- call rules ----------------------------------------------------------------------

    def put_rules(self, number: str, rules: list[dict[str, Any]]) -> httpx.Response:
        self._rules_set.add(number)
        return self.api.put(
            f"{self.base}/extensions/{self.ext_id(number)}/call-rules", json={"rules": rules}
        )

    def rules(self, number: str, *rules: dict[str, Any]) -> None:
        r = self.put_rules(number, list(rules))
        assert r.status_code == 200, f"rules of {number}: {r.status_code} {r.text}"

    # ---- ring groups ---------------------------------------------------------------------

    def group(self, **body: Any) -> int:
        body.setdefault("name", f"test-{time.time_ns()}")
        r = self.api.post(f"{self.base}/ring-groups", json=body)
        assert r.status_code == 201, r.text
        group_id = int(r.json()["id"])
        self._groups.append(group_id)
        return group_id

    # ---- extension and location fields ---------------------------------------------------

    def patch_extension(self, number: str, **changes: Any) -> httpx.Response:
        before = self.extension(number)
        self._extension_fields.setdefault(number, {k: before.get(k) for k in changes})
        return self.api.patch(f"{self.base}/extensions/{self.ext_id(number)}", json=changes)

    def patch_location_of(self, number: str, **changes: Any) -> None:
        location_id = int(self.extension(number)["location_id"])
        r = self.api.get(f"{self.base}/locations/{location_id}")
        assert r.status_code == 200, r.text
        self._location_fields.setdefault(location_id, {k: r.json().get(k) for k in changes})
        r = self.api.patch(f"{self.base}/locations/{location_id}", json=changes)
        assert r.status_code == 200, f"location {location_id}: {r.status_code} {r.text}"

    def put_back(self) -> None:
        problems = []
        for number in sorted(self._rules_set):
            r = self.put_rules(number, [])
            if r.status_code != 200:
                problems.append(f"rules of {number}: {r.text}")
        for group_id in reversed(self._groups):
            r = self.api.delete(f"{self.base}/ring-groups/{group_id}")
            if r.status_code not in (204, 404):
                problems.append(f"group {group_id}: {r.text}")
        for number, fields in self._extension_fields.items():
            r = self.api.patch(f"{self.base}/extensions/{self.ext_id(number)}", json=fields)
            if r.status_code != 200:
                problems.append(f"extension {number}: {r.text}")
        for location_id, fields in self._location_fields.items():
            r = self.api.patch(f"{self.base}/locations/{location_id}", json=fields)
            if r.status_code != 200:
                problems.append(f"location {location_id}: {r.text}")
        self._rules_set.clear()
        self._groups.clear()
        self._extension_fields.clear()
        self._location_fields.clear()
        assert not problems, "could not put the tenant back:\n" + "\n".join(problems)


# ---- opening hours relative to now (Europe/Berlin) ------------------------------------------


def _hhmm(minutes: int) -> str:
    return "24:00" if minutes >= 24 * 60 else f"{minutes // 60:02d}:{minutes % 60:02d}"


def hours_today(open_now: bool, now: datetime | None = None) -> dict[str, list[str]]:
    """Opening hours for today only (Europe/Berlin), with now two minutes inside an interval
    (`open_now`) or one to two minutes past its end (the other side of the edge; shortly after
    midnight, two minutes before the start instead). Other weekdays are closed."""
    now = (now or datetime.now(BERLIN)).astimezone(BERLIN)
    # Whole minutes; a test lasts seconds, so the edge stays where it was put.
    minute = now.hour * 60 + now.minute
    if open_now:
        interval = f"{_hhmm(max(0, minute - 2))}-{_hhmm(min(24 * 60, minute + 3))}"
    elif minute >= 3:
        interval = f"{_hhmm(max(0, minute - 60))}-{_hhmm(minute - 1)}"
    else:
        interval = f"{_hhmm(minute + 2)}-{_hhmm(minute + 60)}"
    return {WEEKDAYS[now.weekday()]: [interval]}


def minutes_to_midnight(now: datetime | None = None) -> float:
    now = (now or datetime.now(BERLIN)).astimezone(BERLIN)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - now).total_seconds() / 60


def call_from_outside(number: str, scenario: str = "trunk_call") -> tuple[int, str]:
    """The carrier's interconnect of fra calls `number` (a DID) at FRA1's internal address,
    From +4940111222333 (scenarios/trunk_call*.xml); sipp's exit code and its log."""
    text = scenario_text(scenario)
    log = f"/tmp/{scenario}-{time.monotonic_ns()}.log"
    r = docker(
        "exec", CARRIER, "sh", "-c",
        f"cat > /tmp/{scenario}.xml <<'XML'\n{text}XML\n"
        f"sipp {sip_target(FRA1_INTERNAL)} -sf /tmp/{scenario}.xml -s '{number}' -i {CARRIER_IP} "
        f"-p 5098 -m 1 -nostdin -timeout 20s -trace_logs -log_file {log} >/dev/null 2>&1; "
        f"rc=$?; cat {log} 2>/dev/null; exit $rc",
        timeout=40,
    )  # fmt: skip
    return r.returncode, r.stdout
