"""Zero-touch provisioning (R10): phones fetch their configuration by MAC with a vendor
certificate, a one-time claim token or their provisioning password; every refusal is logged and
serves nothing; the SIP password survives re-provisioning and changes only when rotated."""

from __future__ import annotations

import base64
import hashlib
import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import get_args

import pytest
from cryptography import x509
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from labkit.provisioning import device_certificate
from pbx_app import provisioning, provisioning_formats
from pbx_app.app import RedactSecretsInAccessLog
from pbx_app.db import Database, utcnow
from pbx_app.provisioning_formats import parse_file, posix_tz
from pbx_app.schema import devices as devices_table
from pbx_app.schema import login_throttle
from pbx_app.services import devices
from pbx_app.services.access import SYSTEM
from pbx_app.settings import Settings
from pbx_app.vault import Vault, VaultError
from pbx_infra.tls import lab_vendor_cas

from .conftest import Api, client_for, error_code, make_settings

YEALINK_UA = "Yealink SIP-T54W 96.86.0.100 00:15:65:aa:bb:01"
SNOM_UA = "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413AABB02)"
GRANDSTREAM_UA = "Grandstream Model HW HT812 V1.1A SW 1.0.17.5 DevId c074adaabb03"


@dataclass
class Phone:
    """A device an admin of customer A set up, and what the admin was shown."""

    mac: str
    model: str
    extension_id: int
    device_id: int
    sip_username: str
    sip_password: str

    @property
    def base(self) -> str:
        return f"/extensions/{self.extension_id}/devices/{self.device_id}"


def cfg(text: str) -> dict[str, str]:
    """A Yealink .cfg as the phone reads it: key = value lines."""
    pairs = (line.split(" = ", 1) for line in text.splitlines() if " = " in line)
    return {k.strip(): v.strip() for k, v in pairs}


def add_phone(
    api: Api, client: TestClient, customer: int, location: int, mac: str, model: str
) -> Phone:
    base = f"/api/v1/customers/{customer}/extensions"
    number = str(200 + int(mac[-2:], 16))
    ext = client.post(
        base, json={"location_id": location, "number": number, "display_name": "Anna"}
    )
    assert ext.status_code == 201, ext.text
    r = client.post(f"{base}/{ext.json()['id']}/devices", json={"mac": mac, "model": model})
    assert r.status_code == 201, r.text
    d = r.json()
    return Phone(d["mac"], model, ext.json()["id"], d["id"], d["sip_username"], d["sip_password"])


def claim(client: TestClient, customer: int, phone: Phone) -> str:
    r = client.post(f"/api/v1/customers/{customer}{phone.base}/claim-token")
    assert r.status_code == 201, r.text
    assert r.json()["url"].endswith(f"/prov/t/{r.json()['token']}/")
    return str(r.json()["token"])


def basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def log_of(api: Api, customer: int) -> list[dict[str, object]]:
    r = api.operator.get("/api/v1/provisioning-log", params={"customer_id": customer})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


@pytest.fixture
def phone_client(db: Database) -> Iterator[TestClient]:
    """A phone: no session, no token; only what it proves."""
    with client_for(db) as c:
        yield c


def test_a_yealink_phone_claims_once_then_comes_back_with_its_own_password(
    api: Api, phone_client: TestClient
) -> None:
    phone = add_phone(api, api.admin_a, api.a, api.loc_a, "00:15:65:aa:bb:01", "yealink-t54w")
    token = claim(api.admin_a, api.a, phone)
    ua = {"user-agent": YEALINK_UA}
    # What a Yealink asks for on boot: its boot and common files first (not ours), then its own.
    assert phone_client.get(f"/prov/t/{token}/001565aabb01.boot", headers=ua).status_code == 404
    assert phone_client.get(f"/prov/t/{token}/y000000000096.cfg", headers=ua).status_code == 404
    first = phone_client.get(f"/prov/t/{token}/001565aabb01.cfg", headers=ua)
    assert first.status_code == 200, first.text
    conf = cfg(first.text)
    assert conf["account.1.user_name"] == conf["account.1.auth_name"] == phone.sip_username
    assert conf["account.1.password"] == phone.sip_password  # the one the admin was shown
    assert conf["account.1.sip_server.1.address"] == "sip.lab.test"
    assert conf["account.1.sip_server.1.transport_type"] == "2"  # TLS
    # Frankfurt's area code: home site fra first, then ber.
    assert conf["account.1.outbound_proxy.1.address"] == "fra.sip.lab.test"
    assert conf["account.1.outbound_proxy.2.address"] == "ber.sip.lab.test"
    assert conf["local_time.time_zone_name"] == "Germany(Berlin)"
    assert conf["lang.gui"] == "German"
    assert conf["static.auto_provision.server.url"] == "http://127.0.0.1:8000/prov/"
    # The token is spent: the same URL again is refused, and logged.
    again = phone_client.get(f"/prov/t/{token}/001565aabb01.cfg", headers=ua)
    assert again.status_code == 403
    assert phone.sip_password not in again.text
    # From now on the phone comes back with the credentials its configuration gave it.
    user = conf["static.auto_provision.server.username"]
    password = conf["static.auto_provision.server.password"]
    back = phone_client.get("/prov/001565aabb01.cfg", headers=ua | basic(user, password))
    assert back.status_code == 200
    assert cfg(back.text)["account.1.password"] == phone.sip_password  # no rotation
    entries = log_of(api, api.a)
    assert [(e["outcome"], e["reason"], e["auth"]) for e in reversed(entries)] == [
        ("served", "ok", "token"),
        ("refused", "token_unknown_or_used", "token"),
        ("served", "ok", "password"),
    ]
    assert entries[0]["user_agent"] == YEALINK_UA
    assert {e["mac"] for e in entries} == {"001565aabb01"}


def test_without_credentials_or_with_wrong_ones_a_phone_gets_nothing(
    api: Api, phone_client: TestClient
) -> None:
    phone = add_phone(api, api.admin_a, api.a, api.loc_a, "00:15:65:aa:bb:01", "yealink-t54w")
    bare = phone_client.get("/prov/001565aabb01.cfg")
    assert bare.status_code == 401
    assert bare.headers["www-authenticate"] == 'Basic realm="pbx provisioning"'
    wrong = phone_client.get("/prov/001565aabb01.cfg", headers=basic("001565aabb01", "guess"))
    assert wrong.status_code == 401
    for r in (bare, wrong):
        assert phone.sip_password not in r.text
        assert phone.sip_username not in r.text
    reasons = [e["reason"] for e in log_of(api, api.a)]
    assert reasons == ["wrong_password", "no_credentials"]


def test_refusals_unknown_mac_other_customer_replay_other_mac_and_expired(
    api: Api, phone_client: TestClient, db: Database
) -> None:
    mine = add_phone(api, api.admin_a, api.a, api.loc_a, "00:15:65:aa:bb:01", "yealink-t54w")
    theirs = add_phone(api, api.admin_b, api.b, api.loc_b, "00:15:65:aa:bb:02", "yealink-t54w")
    token = claim(api.admin_a, api.a, mine)
    # An unknown MAC, and customer B's phone asked for with customer A's token: alike.
    unknown = phone_client.get(f"/prov/t/{token}/001565aabbff.cfg")
    other = phone_client.get(f"/prov/t/{token}/001565aabb02.cfg")
    assert (unknown.status_code, unknown.text) == (other.status_code, other.text)
    assert other.status_code == 403
    assert theirs.sip_password not in other.text
    bare = [phone_client.get(f"/prov/001565aabb{n}.cfg") for n in ("ff", "02")]
    assert [(r.status_code, r.text) for r in bare] == [(401, bare[0].text)] * 2
    # Neither spent the token: the phone it belongs to still gets its configuration once.
    assert phone_client.get(f"/prov/t/{token}/001565aabb01.cfg").status_code == 200
    assert phone_client.get(f"/prov/t/{token}/001565aabb01.cfg").status_code == 403
    # A token past its time.
    late = claim(api.admin_a, api.a, mine)
    with db.transaction() as conn:
        conn.execute(
            update(devices_table)
            .where(devices_table.c.id == mine.device_id)
            .values(claim_expires_at=utcnow() - timedelta(seconds=1))
        )
    assert phone_client.get(f"/prov/t/{late}/001565aabb01.cfg").status_code == 403
    # B sees the attempt on its phone; A sees its own; neither sees the other's.
    a_reasons = [e["reason"] for e in log_of(api, api.a)]
    assert a_reasons == ["token_expired", "token_unknown_or_used", "ok"]
    b_reasons = [e["reason"] for e in log_of(api, api.b)]
    assert b_reasons == ["no_credentials", "token_for_another_device"]
    everything = api.operator.get("/api/v1/provisioning-log").json()["items"]
    unknown = [e for e in everything if e["mac"] == "001565aabbff"]
    assert [(e["reason"], e["customer_id"]) for e in unknown] == [("unknown_mac", None)] * 2
    assert api.admin_a.get("/api/v1/provisioning-log").status_code == 403
    r = api.admin_a.get("/api/v1/provisioning-log", params={"customer_id": api.b})
    assert error_code(r) == "customer_scope_violation"


def test_a_vendor_certificate_proves_the_mac_it_names_for_its_own_vendor_only(
    db: Database, api: Api, tmp_path: Path
) -> None:
    add_phone(api, api.admin_a, api.a, api.loc_a, "00:04:13:aa:bb:02", "snom-d785")
    # The vendor CAs as the lab makes them, laid out as the app node gets them (<vendor>.pem).
    vendors = tmp_path / "vendors"
    vendors.mkdir()
    for vendor, pem in lab_vendor_cas(tmp_path).items():
        (vendors / f"{vendor}.pem").write_text(pem)
    settings = make_settings(db, vendor_ca_dir=str(vendors))
    vault = Vault.from_setting(settings.effective_credential_keys)

    def certificate(mac: str, vendor: str, common_name: str = "") -> x509.Certificate:
        path, _ = device_certificate(mac, tmp_path, vendor, common_name=common_name, cas=tmp_path)
        return x509.load_pem_x509_certificate(path.read_bytes())

    def fetch(cert: x509.Certificate) -> provisioning.Served:
        req = provisioning.Request("000413AABB02.xml", "10.0.0.9", SNOM_UA, certificate=cert)
        return provisioning.serve(db, vault, settings, req, utcnow())

    def refusal(cert: x509.Certificate) -> tuple[int, str]:
        with pytest.raises(provisioning.Refused) as refused:
            fetch(cert)
        return refused.value.status, refused.value.reason

    served = fetch(certificate("000413aabb02", "snom"))  # Snom's: CN = the MAC
    root = ET.fromstring(served.body)
    assert root.findtext("phone-settings/user_name[@idx='1']")
    assert refusal(certificate("000413aabb03", "snom")) == (403, "certificate_for_another_mac")
    # Yealink's CA is trusted (for Yealink's phones), and the MAC is right: still no Snom.
    assert refusal(certificate("000413aabb02", "yealink", "00:04:13:AA:BB:02")) == (
        403,
        "certificate_of_another_vendor",
    )
    assert [e["auth"] for e in log_of(api, api.a)] == ["certificate"] * 3


def test_hardware_only_models_get_nothing_and_the_list_is_the_operators(
    api: Api, phone_client: TestClient
) -> None:
    body = {"vendor": "acme", "label": "Acme 1", "format": "generic", "certified": False}
    assert error_code(api.admin_a.put("/api/v1/device-models/acme-1", json=body)) == (
        "permission_denied"
    )
    assert api.operator.put("/api/v1/device-models/acme-1", json=body).status_code == 200
    phone = add_phone(api, api.admin_a, api.a, api.loc_a, "00:15:65:aa:bb:05", "acme-1")
    r = api.admin_a.post(f"/api/v1/customers/{api.a}{phone.base}/claim-token")
    assert error_code(r) == "device_not_certified"
    listed = api.admin_a.get(f"/api/v1/customers/{api.a}/extensions/{phone.extension_id}/devices")
    assert [d["certified"] for d in listed.json()["items"]] == [False]
    # Certified later by the operator: now it is provisioned (generic JSON).
    assert (
        api.operator.put(
            "/api/v1/device-models/acme-1", json=body | {"certified": True}
        ).status_code
        == 200
    )
    token = claim(api.admin_a, api.a, phone)
    got = phone_client.get(f"/prov/t/{token}/001565aabb05.json")
    assert got.status_code == 200
    assert got.json()["accounts"][0]["password"] == phone.sip_password
    assert error_code(api.operator.delete("/api/v1/device-models/acme-1")) == "device_model_in_use"
    # Withdrawn again: the phone's next fetch gets nothing, even with its own password.
    api.operator.put("/api/v1/device-models/acme-1", json=body)
    user, password = got.json()["provisioning_user"], got.json()["provisioning_password"]
    again = phone_client.get("/prov/001565aabb05.json", headers=basic(user, password))
    assert again.status_code == 404
    assert log_of(api, api.a)[0]["reason"] == "not_certified"


def test_rotation_is_explicit_and_the_next_fetch_hands_out_the_new_password(
    api: Api, phone_client: TestClient, db: Database
) -> None:
    phone = add_phone(api, api.admin_a, api.a, api.loc_a, "c0:74:ad:aa:bb:03", "grandstream-ht812")
    token = claim(api.admin_a, api.a, phone)
    first = phone_client.get(
        f"/prov/t/{token}/cfgc074adaabb03.xml", headers={"user-agent": GRANDSTREAM_UA}
    )
    p = ET.fromstring(first.text).find("config")
    assert p is not None
    assert p.findtext("P34") == phone.sip_password
    assert (p.findtext("P35"), p.findtext("P130"), p.findtext("P103")) == (
        phone.sip_username,
        "2",
        "1",
    )
    assert p.findtext("P64") == posix_tz("Europe/Berlin") == "CET-1CEST,M3.5.0,M10.5.0/3"
    auth = basic(p.findtext("P1360") or "", p.findtext("P1361") or "")
    rotated = api.admin_a.post(f"/api/v1/customers/{api.a}{phone.base}/password", json={})
    assert rotated.status_code == 200
    new_password = rotated.json()["sip_password"]
    assert new_password != phone.sip_password
    again = ET.fromstring(phone_client.get("/prov/cfgc074adaabb03.xml", headers=auth).text)
    assert again.findtext("config/P34") == new_password
    with db.snapshot() as conn:
        row = conn.execute(select(devices_table).where(devices_table.c.id == phone.device_id)).one()
    realm = row.realm
    assert (
        row.ha1 == hashlib.md5(f"{phone.sip_username}:{realm}:{new_password}".encode()).hexdigest()
    )
    assert new_password not in (row.sip_secret or "")  # sealed, not stored in the clear


def test_the_customers_time_zone_language_and_srtp_policy_reach_each_format(
    api: Api, phone_client: TestClient
) -> None:
    r = api.admin_a.patch(
        f"/api/v1/customers/{api.a}", json={"time_zone": "Europe/London", "language": "en"}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["time_zone"], r.json()["language"]) == ("Europe/London", "en")
    bad = api.admin_a.patch(f"/api/v1/customers/{api.a}", json={"time_zone": "Mars/Olympus"})
    assert error_code(bad) == "validation_failed"
    api.operator.patch(f"/api/v1/customers/{api.a}", json={"srtp_required": True})
    firmware = "https://firmware.example/snom/d785-10.1.200.bin"
    api.operator.put(
        "/api/v1/device-models/snom-d785",
        json={
            "vendor": "snom",
            "label": "Snom D785",
            "format": "snom",
            "certified": True,
            "firmware_url": firmware,
        },
    )
    snom = add_phone(api, api.admin_a, api.a, api.loc_a, "00:04:13:aa:bb:02", "snom-d785")
    yealink = add_phone(api, api.admin_a, api.a, api.loc_a, "00:15:65:aa:bb:01", "yealink-t54w")
    s = ET.fromstring(
        phone_client.get(f"/prov/t/{claim(api.admin_a, api.a, snom)}/000413AABB02.xml").text
    ).find("phone-settings")
    assert s is not None
    assert (s.findtext("timezone"), s.findtext("language")) == ("GBR-0", "English")
    assert s.findtext("user_savp[@idx='1']") == "mandatory"
    assert s.findtext("user_pass[@idx='1']") == snom.sip_password
    assert s.findtext("user_outbound[@idx='1']") == "fra.sip.lab.test;transport=tls"
    assert s.findtext("firmware") == firmware
    assert s.findtext("setting_server") == "http://127.0.0.1:8000/prov/000413AABB02.xml"
    y = cfg(phone_client.get(f"/prov/t/{claim(api.admin_a, api.a, yealink)}/001565aabb01.cfg").text)
    assert (y["local_time.time_zone"], y["local_time.time_zone_name"]) == (
        "+0",
        "United Kingdom(London)",
    )
    assert y["account.1.srtp_encryption"] == "2"
    assert "static.firmware.url" not in y


def test_a_display_name_cannot_smuggle_settings_into_a_config(
    api: Api, phone_client: TestClient
) -> None:
    """Every value is escaped for its format: XML is escaped, key = value lines keep to one line."""
    phone = add_phone(api, api.admin_a, api.a, api.loc_a, "00:04:13:aa:bb:02", "snom-d785")
    name = '</user_realname><user_pass idx="1">x</user_pass>'
    r = api.admin_a.patch(
        f"/api/v1/customers/{api.a}/extensions/{phone.extension_id}", json={"display_name": name}
    )
    assert r.status_code == 200, r.text
    body = phone_client.get(f"/prov/t/{claim(api.admin_a, api.a, phone)}/000413AABB02.xml").text
    settings = ET.fromstring(body).find("phone-settings")
    assert settings is not None
    assert settings.findtext("user_realname[@idx='1']") == name
    assert [e.text for e in settings.findall("user_pass")] == [phone.sip_password]


def test_a_device_made_before_passwords_were_sealed_gets_one_new_password_once(
    db: Database, api: Api, phone_client: TestClient
) -> None:
    ext = api.admin_a.post(
        f"/api/v1/customers/{api.a}/extensions", json={"location_id": api.loc_a, "number": "300"}
    ).json()["id"]
    with db.transaction() as conn:  # no vault: what devices made before this had
        made = devices.create(
            conn,
            SYSTEM,
            api.a,
            ext,
            devices.NewDevice(
                mac="001565aabb09", model="yealink-t58w", sip_password="old-password-123"
            ),
            utcnow(),
            "sip.lab.test",
        )
    phone = Phone(
        "001565aabb09", "yealink-t58w", ext, made.device["id"], made.device["sip_username"], ""
    )
    first = cfg(
        phone_client.get(f"/prov/t/{claim(api.admin_a, api.a, phone)}/001565aabb09.cfg").text
    )
    assert first["account.1.password"] != "old-password-123"
    auth = basic(
        first["static.auto_provision.server.username"],
        first["static.auto_provision.server.password"],
    )
    second = cfg(phone_client.get("/prov/001565aabb09.cfg", headers=auth).text)
    assert second["account.1.password"] == first["account.1.password"]


def test_claim_tokens_never_reach_the_access_log() -> None:
    token = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdl"
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("10.0.0.9", "GET", f"/prov/t/{token}/001565aabb01.cfg", "1.1", 200),
        None,
    )
    RedactSecretsInAccessLog().filter(record)
    assert token not in record.getMessage()
    assert "/prov/t/[redacted]/001565aabb01.cfg" in record.getMessage()


# --- the vault ---------------------------------------------------------------------------------
def test_sealed_values_open_only_for_their_row_and_keys_rotate() -> None:
    old = Vault.from_setting("k1:" + "a" * 40)
    sealed = old.seal("s3cret", "device:x:sip")
    assert sealed.startswith("k1$")
    assert "s3cret" not in sealed
    assert old.open(sealed, "device:x:sip") == "s3cret"
    with pytest.raises(VaultError):
        old.open(sealed, "device:y:sip")  # copied into another device's row
    rotated = Vault.from_setting("k2:" + "b" * 40 + ",k1:" + "a" * 40)
    assert rotated.open(sealed, "device:x:sip") == "s3cret"
    assert rotated.needs_rekey(sealed)
    resealed = rotated.seal("s3cret", "device:x:sip")
    assert resealed.startswith("k2$")
    with pytest.raises(VaultError):
        Vault.from_setting("k2:" + "b" * 40).open(sealed, "device:x:sip")  # k1 dropped too early
    for bad, named in (("k1:short", "32"), ("K1:" + "a" * 40, "id"), ("", "no key")):
        with pytest.raises(ValueError, match=named):
            Vault.from_setting(bad)


def test_rekey_reseals_every_device_under_the_new_key(db: Database, api: Api) -> None:
    add_phone(api, api.admin_a, api.a, api.loc_a, "00:15:65:aa:bb:01", "yealink-t54w")
    settings = make_settings(db)
    current = settings.effective_credential_keys
    new = Vault.from_setting("k9:" + "z" * 40 + "," + current)
    assert provisioning.rekey(db, new) == 1
    assert provisioning.rekey(db, new) == 0
    with db.snapshot() as conn:
        sealed = conn.execute(select(devices_table.c.sip_secret)).scalars().all()
    assert [s.split("$")[0] for s in sealed if s] == ["k9"]


def test_file_names_as_each_vendor_asks_for_them() -> None:
    assert parse_file("001565aabb01.cfg") == ("yealink", "001565aabb01")
    assert parse_file("000413AABB02.xml") == ("snom", "000413aabb02")
    assert parse_file("cfgc074adaabb03.xml") == ("grandstream", "c074adaabb03")
    assert parse_file("cfgc074adaabb03") == ("grandstream", "c074adaabb03")
    assert parse_file("001565aabb01.json") == ("generic", "001565aabb01")
    for common in (
        "y000000000096.cfg",
        "001565aabb01.boot",
        "cfg.xml",
        "../etc/passwd",
        "snomD785.htm",
    ):
        assert parse_file(common) is None


def test_home_site_is_the_locations_else_spread_by_customer() -> None:
    settings = Settings(sip_domain="sip.lab.test", sip_sites=("fra:069", "ber:030"))

    def hosts(area: str, customer_id: int) -> list[str]:
        return [s.host for s in provisioning.proxies(settings, area, customer_id)]

    assert hosts("069", 1) == ["fra.sip.lab.test", "ber.sip.lab.test"]
    assert hosts("030", 2) == ["ber.sip.lab.test", "fra.sip.lab.test"]
    assert hosts("089", 2) == ["fra.sip.lab.test", "ber.sip.lab.test"]
    assert hosts("089", 3) == ["ber.sip.lab.test", "fra.sip.lab.test"]


def test_a_source_refused_again_and_again_is_throttled_without_filling_the_log(
    api: Api, phone_client: TestClient, db: Database
) -> None:
    phone = add_phone(api, api.admin_a, api.a, api.loc_a, "00:15:65:aa:bb:01", "yealink-t54w")
    free = provisioning.REFUSALS.free_failures
    statuses = []
    for n in range(free + 40):
        r = phone_client.get("/prov/001565aabb01.cfg", headers=basic("001565aabb01", f"g{n}"))
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1
            break
    assert statuses[: free + 1] == [401] * (free + 1)
    assert statuses[-1] == 429
    # The log holds the refusals that were looked at, not a row per throttled request.
    assert len(log_of(api, api.a)) == statuses.count(401)
    # While the source is blocked, not even the right credentials are looked at.
    token = claim(api.admin_a, api.a, phone)
    with db.snapshot() as conn:
        blocked_until = conn.execute(select(func.max(login_throttle.c.blocked_until))).scalar()
    assert blocked_until is not None
    settings = make_settings(db)
    vault = Vault.from_setting(settings.effective_credential_keys)
    req = provisioning.Request("001565aabb01.cfg", "testclient", YEALINK_UA, token=token)
    with pytest.raises(provisioning.Refused) as refused:
        provisioning.serve(db, vault, settings, req, blocked_until - timedelta(milliseconds=100))
    assert refused.value.status == 429
    served = provisioning.serve(db, vault, settings, req, blocked_until + timedelta(seconds=1))
    assert phone.sip_password in served.body


def test_every_zone_and_language_the_api_accepts_has_each_vendors_name() -> None:
    """What the API accepts (TimeZoneName, LanguageCode) is what the files can say: a value
    without its vendor names would fail the fetch, not fall back to Berlin and German."""
    assert get_args(provisioning_formats.TimeZoneName) == tuple(provisioning_formats.TIME_ZONES)
    assert get_args(provisioning_formats.LanguageCode) == tuple(provisioning_formats.LANGUAGES)


def test_the_api_names_every_format_the_files_know() -> None:
    assert get_args(provisioning_formats.FormatName) == provisioning_formats.FORMATS
    for fmt in provisioning_formats.FORMATS:
        name = provisioning_formats.file_name(fmt, "001565aabb01")
        assert provisioning_formats.parse_file(name) == (fmt, "001565aabb01"), name
