"""The Business Option booked per extension (R4, issue 14) and the browser phone's credentials
(POST /api/v1/me/browser-phone). On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, text

from pbx_app.limits import max_devices_per_extension
from pbx_app.schema import devices as devices_table
from pbx_app.services.access import Role
from tests.app.conftest import Api, client_for, error_code, login, new_user

PHONE = "/api/v1/me/browser-phone"
WSS = ("wss://fra-sip-proxy-1.sip.lab.test:8443", "wss://ber-sip-proxy-1.sip.lab.test:8443")


def _extension(client: TestClient, customer: int, location: int, number: str, **kw: Any) -> int:
    r = client.post(
        f"/api/v1/customers/{customer}/extensions",
        json={"location_id": location, "number": number, **kw},
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _ext_url(customer: int, extension: int) -> str:
    return f"/api/v1/customers/{customer}/extensions/{extension}"


def _add_phone(client: TestClient, customer: int, extension: int) -> Any:
    return client.post(f"{_ext_url(customer, extension)}/devices", json={})


def _user(api: Api, customer: int, role: Role = Role.USER) -> tuple[int, TestClient]:
    email = f"u{uuid.uuid4().hex[:8]}@a.test"
    user_id = new_user(api.db, email, role, customer)
    return user_id, login(client_for(api.db, wss_urls=WSS), email)


def _link(api: Api, customer: int, user: int, *extensions: int) -> None:
    r = api.admin_a.put(
        f"/api/v1/customers/{customer}/users/{user}/extensions",
        json={"extension_ids": list(extensions)},
    )
    assert r.status_code == 200, r.text


# ---- Business Option per extension ------------------------------------------------------------
def test_business_option_is_booked_per_extension_and_sets_its_device_limit(api: Api) -> None:
    booked = _extension(api.admin_a, api.a, api.loc_a, "100", business_option=True)
    plain = _extension(api.admin_a, api.a, api.loc_a, "101")
    assert api.admin_a.get(_ext_url(api.a, booked)).json()["business_option"] is True
    # Left out: what the customer gives new extensions (here: no option).
    assert api.admin_a.get(_ext_url(api.a, plain)).json()["business_option"] is False
    for extension, option in ((booked, True), (plain, False)):
        for _ in range(max_devices_per_extension(option)):
            assert _add_phone(api.admin_a, api.a, extension).status_code == 201
        r = _add_phone(api.admin_a, api.a, extension)
        assert (r.status_code, error_code(r)) == (409, "device_limit_reached"), r.text
    # Booking it later lifts the limit of that extension only.
    r = api.admin_a.patch(_ext_url(api.a, plain), json={"business_option": True})
    assert (r.status_code, r.json()["business_option"]) == (200, True), r.text
    assert _add_phone(api.admin_a, api.a, plain).status_code == 201


def test_unbooking_is_refused_while_the_extension_has_more_than_one_device(api: Api) -> None:
    ext = _extension(api.admin_a, api.a, api.loc_a, "100", business_option=True)
    ids = [_add_phone(api.admin_a, api.a, ext).json()["id"] for _ in range(2)]
    r = api.admin_a.patch(_ext_url(api.a, ext), json={"business_option": False})
    assert (r.status_code, error_code(r)) == (409, "device_limit_reached"), r.text
    assert r.json()["error"]["rule"] == "R4"
    assert api.admin_a.get(_ext_url(api.a, ext)).json()["business_option"] is True
    api.admin_a.delete(f"{_ext_url(api.a, ext)}/devices/{ids[1]}")
    r = api.admin_a.patch(_ext_url(api.a, ext), json={"business_option": False})
    assert (r.status_code, r.json()["business_option"]) == (200, False), r.text


def test_only_admins_book_it_and_only_for_their_customer(api: Api) -> None:
    ext = _extension(api.admin_a, api.a, api.loc_a, "100")
    user, client = _user(api, api.a)
    _link(api, api.a, user, ext)
    r = client.patch(_ext_url(api.a, ext), json={"business_option": True})
    assert (r.status_code, error_code(r)) == (403, "permission_denied"), r.text
    r = api.admin_b.patch(_ext_url(api.a, ext), json={"business_option": True})
    assert (r.status_code, error_code(r)) == (403, "customer_scope_violation"), r.text
    r = api.admin_a.patch(_ext_url(api.a, ext), json={"business_option": "yes"})
    assert r.status_code == 422, r.text
    assert api.admin_a.get(_ext_url(api.a, ext)).json()["business_option"] is False
    client.close()


def test_the_customers_flag_is_the_default_and_a_bulk_switch(api: Api) -> None:
    before = _extension(api.admin_a, api.a, api.loc_a, "100")
    r = api.operator.patch(f"/api/v1/customers/{api.a}", json={"business_option": True})
    assert r.status_code == 200, r.text
    assert api.admin_a.get(_ext_url(api.a, before)).json()["business_option"] is True
    after = _extension(api.admin_a, api.a, api.loc_a, "101")
    assert api.admin_a.get(_ext_url(api.a, after)).json()["business_option"] is True
    # One extension without it, by choice, on a customer that books it for new ones.
    own = _extension(api.admin_a, api.a, api.loc_a, "102", business_option=False)
    assert api.admin_a.get(_ext_url(api.a, own)).json()["business_option"] is False
    # Cancelling for all is refused while one extension has more than 1 device.
    for _ in range(2):
        assert _add_phone(api.admin_a, api.a, after).status_code == 201
    r = api.operator.patch(f"/api/v1/customers/{api.a}", json={"business_option": False})
    assert (r.status_code, error_code(r)) == (409, "device_limit_reached"), r.text
    assert api.admin_a.get(_ext_url(api.a, before)).json()["business_option"] is True
    # The other customer's extensions are untouched by either switch.
    other = _extension(api.admin_b, api.b, api.loc_b, "100")
    assert api.admin_b.get(_ext_url(api.b, other)).json()["business_option"] is False


def test_imported_extensions_get_the_customers_default(api: Api) -> None:
    api.operator.patch(f"/api/v1/customers/{api.a}", json={"business_option": True})
    r = api.admin_a.post(
        f"/api/v1/customers/{api.a}/extensions/import",
        content=f"location_id,number,display_name\n{api.loc_a},300,Imported\n",
        headers={"content-type": "text/csv"},
    )
    assert r.status_code == 201, r.text
    items = api.admin_a.get(f"/api/v1/customers/{api.a}/extensions").json()["items"]
    assert [e["business_option"] for e in items if e["number"] == "300"] == [True]


def test_the_subscriber_view_follows_the_extension(api: Api) -> None:
    booked = _extension(api.admin_a, api.a, api.loc_a, "100", business_option=True)
    plain = _extension(api.admin_a, api.a, api.loc_a, "101")
    users = {
        ext: _add_phone(api.admin_a, api.a, ext).json()["sip_username"] for ext in (booked, plain)
    }
    with api.db.snapshot() as conn:
        rows = {
            r.username: (bool(r.business_option), r.max_contacts)
            for r in conn.execute(
                text("SELECT username, business_option, max_contacts FROM kamailio_subscriber")
            )
        }
    assert rows[users[booked]] == (True, max_devices_per_extension(True))
    assert rows[users[plain]] == (False, max_devices_per_extension(False))


# ---- browser phone credentials ----------------------------------------------------------------
def test_an_admin_gets_stable_credentials_for_a_booked_extension(api: Api) -> None:
    ext = _extension(
        api.admin_a, api.a, api.loc_a, "100", business_option=True, display_name="Reception"
    )
    _, admin = _user(api, api.a, Role.CUSTOMER_ADMIN)
    r = admin.post(PHONE, json={"extension_id": ext})
    assert r.status_code == 200, r.text
    creds = r.json()
    assert set(creds) == {
        "extension_id", "extension", "display_name", "sip_uri", "authorization_user",
        "password", "realm", "ws_servers", "srtp_required",
    }  # fmt: skip
    assert (creds["extension_id"], creds["extension"]) == (ext, "100")
    assert creds["display_name"] == "Reception"
    assert creds["realm"] == "sip.lab.test"
    assert creds["sip_uri"] == f"sip:{creds['authorization_user']}@sip.lab.test"
    assert creds["ws_servers"] == list(WSS)
    assert creds["srtp_required"] is False
    # Every tab gets the same device and password; the device counts against the limit.
    assert admin.post(PHONE, json={"extension_id": ext}).json() == creds
    listed = api.admin_a.get(f"{_ext_url(api.a, ext)}/devices").json()["items"]
    assert [d["sip_username"] for d in listed] == [creds["authorization_user"]]
    assert api.admin_a.get(_ext_url(api.a, ext)).json()["device_count"] == 1
    # Only HA1 is stored, and it fits the password handed out.
    with api.db.snapshot() as conn:
        row = conn.execute(select(devices_table).where(devices_table.c.extension_id == ext)).one()
    user, realm, password = creds["authorization_user"], creds["realm"], creds["password"]
    assert row.kind == "browser"
    assert row.ha1 == hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()
    assert password not in {str(v) for v in row}
    admin.close()


def test_without_the_business_option_there_is_no_browser_phone(api: Api) -> None:
    ext = _extension(api.admin_a, api.a, api.loc_a, "100")
    r = api.admin_a.post(PHONE, json={"extension_id": ext})
    assert (r.status_code, error_code(r)) == (403, "business_option_required"), r.text
    assert r.json()["error"]["rule"] == "R4"
    assert api.admin_a.get(_ext_url(api.a, ext)).json()["device_count"] == 0


def test_a_user_gets_credentials_for_their_own_extensions_only(api: Api) -> None:
    own = _extension(api.admin_a, api.a, api.loc_a, "100", business_option=True)
    not_own = _extension(api.admin_a, api.a, api.loc_a, "101", business_option=True)
    other = _extension(api.admin_b, api.b, api.loc_b, "100", business_option=True)
    user, client = _user(api, api.a)
    _link(api, api.a, user, own)
    assert client.post(PHONE, json={"extension_id": own}).status_code == 200
    for ext in (not_own, other, 999_999):
        r = client.post(PHONE, json={"extension_id": ext})
        assert (r.status_code, error_code(r)) == (403, "customer_scope_violation"), r.text
    # An admin of another customer fares no better; an operator has no browser phone.
    for c in (api.admin_b, api.operator):
        r = c.post(PHONE, json={"extension_id": own})
        assert (r.status_code, error_code(r)) == (403, "customer_scope_violation"), r.text
    assert api.admin_b.get(_ext_url(api.b, other)).json()["device_count"] == 0
    r = client.post(PHONE, json={"extension_id": "1"})
    assert r.status_code == 422, r.text
    client.close()


def test_the_browser_phone_counts_against_the_device_limit(api: Api) -> None:
    ext = _extension(api.admin_a, api.a, api.loc_a, "100", business_option=True)
    for _ in range(max_devices_per_extension(True)):
        assert _add_phone(api.admin_a, api.a, ext).status_code == 201
    r = api.admin_a.post(PHONE, json={"extension_id": ext})
    assert (r.status_code, error_code(r)) == (409, "device_limit_reached"), r.text
    assert api.admin_a.get(_ext_url(api.a, ext)).json()["device_count"] == 3


def test_deleting_the_user_deletes_their_browser_phones(api: Api) -> None:
    ext = _extension(api.admin_a, api.a, api.loc_a, "100", business_option=True)
    user, client = _user(api, api.a)
    _link(api, api.a, user, ext)
    assert client.post(PHONE, json={"extension_id": ext}).status_code == 200
    assert _add_phone(api.admin_a, api.a, ext).status_code == 201
    assert api.admin_a.get(_ext_url(api.a, ext)).json()["device_count"] == 2
    r = api.admin_a.delete(f"/api/v1/customers/{api.a}/users/{user}")
    assert r.status_code == 204, r.text
    listed = api.admin_a.get(f"{_ext_url(api.a, ext)}/devices").json()["items"]
    assert len(listed) == 1
    assert api.admin_a.get(_ext_url(api.a, ext)).json()["device_count"] == 1
    # With one device left the option may be cancelled again.
    r = api.admin_a.patch(_ext_url(api.a, ext), json={"business_option": False})
    assert r.status_code == 200, r.text
    client.close()


def test_unlinking_the_user_from_the_extension_deletes_their_browser_phone(api: Api) -> None:
    """The browser phone is the user's on that extension: once they lose the extension, its
    credentials must stop working and it no longer counts as a device."""
    kept = _extension(api.admin_a, api.a, api.loc_a, "100", business_option=True)
    dropped = _extension(api.admin_a, api.a, api.loc_a, "101", business_option=True)
    user, client = _user(api, api.a)
    _link(api, api.a, user, kept, dropped)
    for ext in (kept, dropped):
        assert client.post(PHONE, json={"extension_id": ext}).status_code == 200
    _link(api, api.a, user, kept)
    assert api.admin_a.get(f"{_ext_url(api.a, dropped)}/devices").json()["items"] == []
    assert api.admin_a.get(_ext_url(api.a, dropped)).json()["device_count"] == 0
    assert api.admin_a.get(_ext_url(api.a, kept)).json()["device_count"] == 1
    r = client.post(PHONE, json={"extension_id": dropped})
    assert (r.status_code, error_code(r)) == (403, "customer_scope_violation"), r.text
    client.close()


def test_a_cookie_session_needs_the_csrf_header(api: Api) -> None:
    ext = _extension(api.admin_a, api.a, api.loc_a, "100", business_option=True)
    _, client = _user(api, api.a, Role.CUSTOMER_ADMIN)
    del client.headers["X-CSRF-Token"]
    r = client.post(PHONE, json={"extension_id": ext})
    assert (r.status_code, error_code(r)) == (403, "csrf_failed"), r.text
    client.close()
