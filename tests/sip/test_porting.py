"""A completed port rings (R12, issue 13), in the lab, through the REST API and the trunk.

Two fresh customers at a Berlin location: the donor holds a single number, its extension's
public number; the new customer asks to port that number (this platform is the donor) to its
extension 20, dated today. The operator confirms; the app completes the port by itself (its
scheduler, woken by the confirmation). A call from the carrier to the number rang the donor's
phone before and rings the new customer's phone after, without any other step.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from labkit.control import clear_bindings, location_contacts
from labkit.devices import Device, Devices, scenario_text
from labkit.docker import docker
from labkit.lab import SITES, app_base, container, instances, sip_target
from labkit.portal import keep_session
from labkit.wait import wait_for
from pbx_app.addressing import aor
from pbx_infra.topology import ServiceKind

pytestmark = pytest.mark.lab

BER1 = SITES["ber"]["proxies"][0]
BER1_INTERNAL = SITES["ber"]["proxy_internals"][0]
BER_PROXIES = SITES["ber"]["proxy_containers"]
CARRIER, CARRIER_IP = SITES["fra"]["carrier"], SITES["fra"]["carrier_ip"]
FRA_APP = container(instances(ServiceKind.PBX_APP, "fra")[0])
OPERATOR = "porting-tests@pbx.test"
DONOR_PORT, NEW_PORT = 5076, 5077  # the phones' SIP ports
CARRIER_SIPP_PORT = 5097
BERLIN = ZoneInfo("Europe/Berlin")


@dataclass
class Phone:
    customer: int
    extension_id: int
    username: str
    password: str


@pytest.fixture(scope="module")
def operator(tenant: dict[str, Any]) -> Iterator[httpx.Client]:
    created = subprocess.run(
        ["docker", "exec", FRA_APP, "python3", "-m", "pbx_app", "create-operator",
         "--email", OPERATOR],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    password = json.loads(created.stdout)["password"]
    with httpx.Client(base_url=app_base("fra"), timeout=15) as api:
        login = api.post("/auth/login", json={"email": OPERATOR, "password": password})
        assert login.status_code == 200, login.text
        keep_session(api, login)
        yield api


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.text}"
    return r.json()


def customer_with_phone(api: httpx.Client, role: str, extension: str, geo: str = "") -> Phone:
    """A customer at a Berlin location with one extension and its device; ``geo``: a single
    number the customer holds, the extension's public number."""
    tag = uuid.uuid4().hex[:8]
    cid = ok(
        api.post(
            "/customers",
            json={
                "name": f"Porting {role} {tag}",
                "tariff": "basic",
                "contract_start": "2026-01-01",
            },
        ),
        201,
    )["id"]
    loc = ok(
        api.post(
            f"/customers/{cid}/locations",
            json={
                "name": "Berlin",
                "street": "Unter den Linden 1",
                "postal_code": "10117",
                "city": "Berlin",
                "area_code": "030",
            },
        ),
        201,
    )["id"]
    body: dict[str, Any] = {"location_id": loc, "number": extension}
    if geo:
        ok(
            api.post(
                f"/customers/{cid}/head-numbers",
                json={"location_id": loc, "number": geo, "block_size": 1},
            ),
            201,
        )
        body["geo_number"] = geo
    ext = ok(api.post(f"/customers/{cid}/extensions", json=body), 201)["id"]
    username = f"port-{role}-{tag}"
    device = ok(
        api.post(f"/customers/{cid}/extensions/{ext}/devices", json={"sip_username": username}),
        201,
    )
    return Phone(cid, ext, username, device["sip_password"])


def remove(api: httpx.Client, phone: Phone) -> None:
    """The test's numbers and phones go again (customers cannot be deleted)."""
    api.delete(f"/customers/{phone.customer}/extensions/{phone.extension_id}")
    for head in api.get(f"/customers/{phone.customer}/head-numbers").json().get("items", []):
        api.delete(f"/customers/{phone.customer}/head-numbers/{head['id']}")


def call_from_carrier(number: str) -> subprocess.CompletedProcess[str]:
    """The carrier's side: one call from the trunk address to a ber proxy's internal socket."""
    scenario = scenario_text("trunk_call")
    return docker(
        "exec", CARRIER, "sh", "-c",
        f"cat > /tmp/porting_call.xml <<'XML'\n{scenario}XML\n"
        f"sipp {sip_target(BER1_INTERNAL)} -sf /tmp/porting_call.xml -s '{number}' "
        f"-i {CARRIER_IP} -p {CARRIER_SIPP_PORT} -m 1 -nostdin -timeout 20s",
        timeout=40,
    )  # fmt: skip


def invites(callee: Device, port: int) -> int:
    """INVITEs the answerer on ``port`` received (answer.xml logs a line for each)."""
    return len(re.findall(r"^INVITE ", callee.answered(port), re.M))


def answer_as(callee: Device, phone: Phone, port: int) -> None:
    assert callee.register(phone.username, phone.password, BER1, port=port).startswith("200")
    callee.answer(port=port)


def test_a_completed_port_rings_the_new_customers_phone(
    devices: Devices, operator: httpx.Client
) -> None:
    number = f"+49305{time.time_ns() % 10**7:07d}"
    donor = customer_with_phone(operator, "donor", "100", geo=number)
    new = customer_with_phone(operator, "new", "20")
    new_aor = aor(new.customer, "20")
    # One answering sipp per container (each binds the same media port for its echo).
    donor_phone = devices.start("porting-donor", "ber")
    new_phone = devices.start("porting-new", "ber")
    try:
        # Before: the number is the donor's.
        answer_as(donor_phone, donor, DONOR_PORT)
        r = call_from_carrier(number)
        assert r.returncode == 0, f"call to {number} before the port:\n{r.stdout[-1500:]}"
        assert invites(donor_phone, DONOR_PORT) == 1

        today = datetime.now(UTC).astimezone(BERLIN).date().isoformat()
        base = f"/customers/{new.customer}/porting-requests"
        locations = ok(operator.get(f"/customers/{new.customer}/locations"))["items"]
        body = {
            "location_id": locations[0]["id"],
            "numbers": [number],
            "extensions": {number: "20"},
            "donor_carrier": "this platform",
            "requested_date": today,
        }
        rid = ok(operator.post(base, json=body), 201)["id"]
        for step in ("submitted", "confirmed"):
            ok(operator.post(f"{base}/{rid}/transitions", json={"to_state": step}))
        started = time.monotonic()

        def completed() -> Any:
            request = ok(operator.get(f"{base}/{rid}"))
            return request if request["state"] == "completed" else None

        # Woken by the confirmation; at the latest, the next poll (60 s) of any app node.
        done = wait_for(completed, 75, what="the port completed by the app")
        assert "by the scheduler" in done["events"][-1]["note"], done["events"]
        print(f"port completed {time.monotonic() - started:.1f} s after the confirmation")

        # After: the same call rings the new customer's phone. A proxy may answer from its
        # cache of the app's decisions for a while (kamailio.cfg: 30 s in htable approute, the
        # decision's ttl once the proxies honour it): until then the call still goes the old
        # way.
        answer_as(new_phone, new, NEW_PORT)
        attempts: list[str] = []

        def rang() -> bool:
            r = call_from_carrier(number)
            attempts.append(f"rc={r.returncode} {r.stdout[-600:]} {r.stderr[-300:]}")
            return r.returncode == 0 and invites(new_phone, NEW_PORT) >= 1

        try:
            wait_for(rang, 60, interval=2, what=f"a carrier call to {number} ringing")
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\ncompletion: {done['events'][-1]['note']}\nlast attempt: {attempts[-1]}"
                f"\nnew phone: {new_phone.answered(NEW_PORT)[-800:]}"
                f"\nits bindings: {[location_contacts(p, new_aor) for p in BER_PROXIES]}"
            ) from exc
        assert invites(new_phone, NEW_PORT) == 1, new_phone.answered(NEW_PORT)
        print(f"rang the new phone {time.monotonic() - started:.1f} s after the confirmation")
    finally:
        clear_bindings(aor(donor.customer, "100"), new_aor)
        remove(operator, donor)
        remove(operator, new)
