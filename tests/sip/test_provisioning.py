"""Zero-touch provisioning (issue 18) in the lab: phones of three vendors fetch their
configuration as their firmware does (their URL pattern and User-Agent, a device certificate
signed by the stand-in vendor CA, by the provisioning name their site's DNS resolves) and
register over TLS with what they got; every refusal serves nothing and is logged; a second
fetch hands out the same password; rotation changes it and the old one stops registering."""

from __future__ import annotations

import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from labkit.baresip import logs_on_failure, start_baresip
from labkit.control import clear_bindings, unban
from labkit.devices import Device, Devices
from labkit.lab import PLATFORM, PORTS, SIP_DOMAIN
from labkit.portal import operator
from labkit.provisioning import PROVISIONING_URL, device_certificate, fetch, srv_targets
from labkit.wait import wait_for

pytestmark = pytest.mark.lab

PORT = 5185  # the sipp registrations' local port in the device


@dataclass(frozen=True)
class Vendor:
    model: str
    mac: str
    file: str  # what its firmware asks for
    user_agent: str

    @property
    def vendor(self) -> str:
        """As the model catalogue names it (its CA in the lab: pbx_infra.tls.lab_vendor_cas)."""
        return self.model.split("-")[0]


YEALINK = Vendor(
    "yealink-t54w",
    "001565ee0001",
    "001565ee0001.cfg",
    "Yealink SIP-T54W 96.86.0.100 00:15:65:ee:00:01",
)
SNOM = Vendor(
    "snom-d785",
    "000413ee0002",
    "000413EE0002.xml",
    "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413EE0002)",
)
GRANDSTREAM = Vendor(
    "grandstream-ht812",
    "c074adee0003",
    "cfgc074adee0003.xml",
    "Grandstream Model HW HT812 V1.1A SW 1.0.17.5 DevId c074adee0003",
)
VENDORS = (YEALINK, SNOM, GRANDSTREAM)


@dataclass(frozen=True)
class Account:
    user: str
    password: str
    domain: str
    proxy: str  # the home site's SIP name
    prov_user: str
    prov_password: str


def account_of(vendor: Vendor, body: str) -> Account:
    """The SIP account as the vendor's phone reads its file."""
    if vendor is YEALINK:
        conf = dict(
            (k.strip(), v.strip())
            for k, v in (line.split(" = ", 1) for line in body.splitlines() if " = " in line)
        )
        return Account(
            conf["account.1.user_name"],
            conf["account.1.password"],
            conf["account.1.sip_server.1.address"],
            conf["account.1.outbound_proxy.1.address"],
            conf["static.auto_provision.server.username"],
            conf["static.auto_provision.server.password"],
        )
    root = ET.fromstring(body)
    if vendor is SNOM:
        s = root.find("phone-settings")
        assert s is not None
        return Account(
            s.findtext("user_name[@idx='1']") or "",
            s.findtext("user_pass[@idx='1']") or "",
            s.findtext("user_host[@idx='1']") or "",
            (s.findtext("user_outbound[@idx='1']") or "").split(";")[0],
            s.findtext("http_client_user") or "",
            s.findtext("http_client_pass") or "",
        )
    p = root.find("config")
    assert p is not None
    return Account(
        p.findtext("P35") or "",
        p.findtext("P34") or "",
        p.findtext("P47") or "",
        p.findtext("P48") or "",
        p.findtext("P1360") or "",
        p.findtext("P1361") or "",
    )


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.text}"
    return r.json() if status != 204 else None


@dataclass
class Tenant:
    api: httpx.Client
    customer_id: int
    devices: dict[str, tuple[int, int]]  # mac -> (extension id, device id)

    def device_path(self, vendor: Vendor) -> str:
        ext, device = self.devices[vendor.mac]
        return f"/customers/{self.customer_id}/extensions/{ext}/devices/{device}"


@pytest.fixture(scope="module")
def tenant() -> Iterator[Tenant]:
    """A customer of its own in Frankfurt with one phone per vendor, each on an extension."""
    with operator("provisioning-tests@pbx.test") as api:
        tag = uuid.uuid4().hex[:6]
        body = {"name": f"Provisioning {tag}", "tariff": "basic", "contract_start": "2026-01-01"}
        cid = ok(api.post("/customers", json=body), 201)["id"]
        location = {
            "name": "Frankfurt",
            "street": "Mainzer Landstr. 1",
            "postal_code": "60329",
            "city": "Frankfurt",
            "area_code": "069",
        }
        loc = ok(api.post(f"/customers/{cid}/locations", json=location), 201)["id"]
        found: dict[str, tuple[int, int]] = {}
        for n, vendor in enumerate(VENDORS):
            ext = ok(
                api.post(
                    f"/customers/{cid}/extensions",
                    json={"location_id": loc, "number": str(40 + n), "display_name": vendor.model},
                ),
                201,
            )["id"]
            device = ok(
                api.post(
                    f"/customers/{cid}/extensions/{ext}/devices",
                    json={"mac": vendor.mac, "model": vendor.model},
                ),
                201,
            )["id"]
            found[vendor.mac] = (ext, device)
        # The proxies learn of new credentials from the change log (polled every second).
        time.sleep(2.5)
        yield Tenant(api, cid, found)
        for ext, _ in found.values():  # the MACs are free again for the next run
            api.delete(f"/customers/{cid}/extensions/{ext}")


@pytest.fixture(scope="module")
def phone(devices: Devices) -> Iterator[Device]:
    device = devices.start("prov-phone", "fra")
    unban(device.ip)
    yield device
    unban(device.ip)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("device-certs")


def log_reasons(t: Tenant, since: int) -> list[tuple[str, str]]:
    items = ok(t.api.get("/provisioning-log", params={"customer_id": t.customer_id, "limit": 50}))
    return [(e["auth"], e["reason"]) for e in reversed(items["items"]) if e["id"] > since]


def last_log_id(t: Tenant) -> int:
    items = ok(t.api.get("/provisioning-log", params={"limit": 1}))["items"]
    return int(items[0]["id"]) if items else 0


def registers(phone: Device, account: Account) -> str:
    """REGISTER over TLS where the phone's home-site name points first (its SRV records)."""
    targets = srv_targets(phone, account.proxy)
    address, port = targets[0]
    assert port == PORTS.sip_tls
    return phone.register(account.user, account.password, address, transport="l1", port=PORT)


def test_each_vendors_phone_fetches_with_its_certificate_and_registers_over_tls(
    tenant: Tenant, phone: Device, certs: Path
) -> None:
    since = last_log_id(tenant)
    for vendor in VENDORS:
        cert = device_certificate(vendor.mac, certs, vendor.vendor)
        first = fetch(phone, PROVISIONING_URL + vendor.file, vendor.user_agent, cert)
        assert first.status == 200, (vendor.model, first)
        account = account_of(vendor, first.body)
        assert account.domain == SIP_DOMAIN
        assert account.proxy == f"fra.{SIP_DOMAIN}"  # Frankfurt's area code: fra first
        # The home site's name: its SRV records list fra's proxies first, then ber's.
        assert srv_targets(phone, account.proxy) == [
            (str(PLATFORM.sip_vip(site)), PORTS.sip_tls) for site in ("fra", "ber")
        ]
        again = fetch(phone, PROVISIONING_URL + vendor.file, vendor.user_agent, cert)
        assert account_of(vendor, again.body).password == account.password  # not rotated
        if vendor is YEALINK:
            # baresip as the desk phone: it resolves the name's SRV records itself.
            clear_bindings(f"c{tenant.customer_id}x40")  # the extension's AOR
            log = start_baresip(
                phone,
                account.user,
                account.password,
                f"sip:{account.proxy};transport=tls",
                seconds=20,
            )
            with logs_on_failure((phone, log)):
                wait_for(
                    lambda log=log: "{0/TLS/v4} 200 OK" in phone.sh(f"cat {log}").stdout,
                    20,
                    what=f"{vendor.model}'s account registered over TLS",
                )
        else:
            assert registers(phone, account).startswith("200"), vendor.model
    assert log_reasons(tenant, since) == [("certificate", "ok")] * 6


def test_refusals_serve_nothing_and_are_logged(tenant: Tenant, phone: Device, certs: Path) -> None:
    since = last_log_id(tenant)
    url = PROVISIONING_URL + YEALINK.file
    ua = YEALINK.user_agent
    # No certificate, no credentials: asked for them.
    assert fetch(phone, url, ua).status == 401
    # A certificate the vendor CA signed, for another MAC.
    other = device_certificate("001565ee00ff", certs, YEALINK.vendor)
    assert fetch(phone, url, ua, other).status == 403
    # A certificate for this MAC from another vendor's CA (the platform trusts it, for Snom's
    # phones): it does not prove a Yealink.
    snoms = device_certificate(YEALINK.mac, certs, SNOM.vendor)
    assert fetch(phone, url, ua, snoms).status == 403
    # A MAC nobody registered, with its own (valid) certificate.
    unknown = fetch(phone, PROVISIONING_URL + "001565ee00ff.cfg", ua, other)
    assert unknown.status == 404
    # A certificate from a CA the operator did not configure: no handshake at all.
    forged = device_certificate(YEALINK.mac, certs, YEALINK.vendor, trusted=False)
    assert fetch(phone, url, ua, forged).status == 0
    # A claim token works once, for its own device only.
    claim = ok(tenant.api.post(f"{tenant.device_path(SNOM)}/claim-token"), 201)
    assert fetch(phone, claim["url"] + YEALINK.file, ua).status == 403  # another device's MAC
    assert fetch(phone, claim["url"] + SNOM.file, SNOM.user_agent).status == 200
    replay = fetch(phone, claim["url"] + SNOM.file, SNOM.user_agent)
    assert replay.status == 403
    assert "user_pass" not in replay.body
    assert log_reasons(tenant, since) == [
        ("none", "no_credentials"),
        ("certificate", "certificate_for_another_mac"),
        ("certificate", "certificate_of_another_vendor"),
        ("token", "token_for_another_device"),
        ("token", "ok"),
        ("token", "token_unknown_or_used"),
    ]
    everything = ok(tenant.api.get("/provisioning-log", params={"limit": 20}))["items"]
    assert any(e["mac"] == "001565ee00ff" and e["reason"] == "unknown_mac" for e in everything)


def test_rotation_changes_the_password_and_the_old_one_stops_registering(
    tenant: Tenant, phone: Device, certs: Path
) -> None:
    cert = device_certificate(GRANDSTREAM.mac, certs, GRANDSTREAM.vendor)
    url = PROVISIONING_URL + GRANDSTREAM.file
    before = account_of(GRANDSTREAM, fetch(phone, url, GRANDSTREAM.user_agent, cert).body)
    assert registers(phone, before).startswith("200")
    rotated = ok(tenant.api.post(f"{tenant.device_path(GRANDSTREAM)}/password", json={}))
    # The phone's next check (with the password its configuration gave it) gets the new one.
    after = account_of(
        GRANDSTREAM,
        fetch(
            phone, url, GRANDSTREAM.user_agent, basic_auth=(before.prov_user, before.prov_password)
        ).body,
    )
    assert after.password == rotated["sip_password"] != before.password
    # The proxies drop the cached credential within their change-log poll (about a second).
    started = time.monotonic()
    wait_for(lambda: registers(phone, after).startswith("200"), 15, what="new password accepted")
    assert not registers(phone, before).startswith("200")
    print(f"\nnew password in use {time.monotonic() - started:.1f} s after the rotation")
    unban(phone.ip)
