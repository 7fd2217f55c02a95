"""Users <-> extensions (issue 13): an admin links a user to extensions; the user then manages
the call rules of those only. On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from pbx_app import errors
from pbx_app.db import utcnow
from pbx_app.services.access import Actor, Role
from pbx_app.services.user_extensions import manageable_extension
from tests.app.conftest import Api, client_for, error_code, login, new_user


def _extension(client: TestClient, customer: int, location: int, number: str) -> int:
    r = client.post(
        f"/api/v1/customers/{customer}/extensions",
        json={"location_id": location, "number": number},
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _user(api: Api, customer: int) -> tuple[int, TestClient]:
    email = f"u{uuid.uuid4().hex[:8]}@a.test"
    user_id = new_user(api.db, email, Role.USER, customer)
    return user_id, login(client_for(api.db), email)


def _links(customer: int, user: int) -> str:
    return f"/api/v1/customers/{customer}/users/{user}/extensions"


def test_admin_links_extensions_and_the_user_sees_them(api: Api) -> None:
    e100 = _extension(api.admin_a, api.a, api.loc_a, "100")
    e101 = _extension(api.admin_a, api.a, api.loc_a, "101")
    user, client = _user(api, api.a)
    assert client.get("/api/v1/me").json()["extension_ids"] == []

    r = api.admin_a.put(_links(api.a, user), json={"extension_ids": [e101, e100, e101]})
    assert r.status_code == 200, r.text
    assert r.json() == {"user_id": user, "extension_ids": sorted([e100, e101])}
    assert api.admin_a.get(_links(api.a, user)).json()["extension_ids"] == sorted([e100, e101])
    assert client.get("/api/v1/me").json()["extension_ids"] == sorted([e100, e101])
    assert client.get(_links(api.a, user)).json()["extension_ids"] == sorted([e100, e101])
    # an operator may, too; replacing shrinks the list
    r = api.operator.put(_links(api.a, user), json={"extension_ids": [e100]})
    assert r.json()["extension_ids"] == [e100]
    # deleting an extension removes its link
    api.admin_a.delete(f"/api/v1/customers/{api.a}/extensions/{e100}")
    assert client.get("/api/v1/me").json()["extension_ids"] == []
    assert api.admin_a.get("/api/v1/me").json()["extension_ids"] == []
    client.close()


def test_links_stay_inside_the_customer(api: Api) -> None:
    own = _extension(api.admin_a, api.a, api.loc_a, "100")
    foreign = _extension(api.admin_b, api.b, api.loc_b, "100")
    user, client = _user(api, api.a)
    r = api.admin_a.put(_links(api.a, user), json={"extension_ids": [own, foreign]})
    assert (r.status_code, error_code(r)) == (404, "not_found")
    assert api.admin_a.get(_links(api.a, user)).json()["extension_ids"] == []  # nothing written
    # another customer's admin: neither reads nor writes A's users
    r = api.admin_b.get(_links(api.a, user))
    assert (r.status_code, error_code(r)) == (403, "customer_scope_violation")
    r = api.admin_b.put(_links(api.a, user), json={"extension_ids": []})
    assert (r.status_code, error_code(r)) == (403, "customer_scope_violation")
    # a user of B addressed under B's customer id does not exist there
    r = api.admin_b.get(_links(api.b, user))
    assert (r.status_code, error_code(r)) == (404, "not_found")
    client.close()


def test_a_user_cannot_link_or_read_others(api: Api) -> None:
    own = _extension(api.admin_a, api.a, api.loc_a, "100")
    user, client = _user(api, api.a)
    other, other_client = _user(api, api.a)
    r = client.put(_links(api.a, user), json={"extension_ids": [own]})
    assert (r.status_code, error_code(r)) == (403, "permission_denied")
    r = client.get(_links(api.a, other))
    assert (r.status_code, error_code(r)) == (403, "permission_denied")
    for body in ({"extension_ids": [0]}, {"extension_ids": ["1"]}, {}, {"extension_ids": None}):
        assert api.admin_a.put(_links(api.a, user), json=body).status_code == 422
    client.close()
    other_client.close()


def test_who_manages_an_extensions_rules(api: Api) -> None:
    own = _extension(api.admin_a, api.a, api.loc_a, "100")
    colleague = _extension(api.admin_a, api.a, api.loc_a, "101")
    foreign = _extension(api.admin_b, api.b, api.loc_b, "100")
    user, client = _user(api, api.a)
    api.admin_a.put(_links(api.a, user), json={"extension_ids": [own]})
    client.close()
    me = Actor(user_id=user, customer_id=api.a, role=Role.USER)
    admin = Actor(user_id=None, customer_id=api.a, role=Role.CUSTOMER_ADMIN)
    operator = Actor(user_id=None, customer_id=None, role=Role.OPERATOR)
    now = utcnow()
    with api.db.transaction() as conn:
        for write in (False, True):
            assert manageable_extension(conn, me, api.a, own, now, write=write)["id"] == own
            assert manageable_extension(conn, admin, api.a, colleague, now, write=write)
            assert manageable_extension(conn, operator, api.b, foreign, now, write=write)
            with pytest.raises(errors.PermissionDenied):
                manageable_extension(conn, me, api.a, colleague, now, write=write)
            with pytest.raises(errors.CustomerScopeViolation):
                manageable_extension(conn, me, api.b, foreign, now, write=write)
            with pytest.raises(errors.CustomerScopeViolation):
                manageable_extension(conn, admin, api.b, foreign, now, write=write)
            with pytest.raises(errors.NotFound):  # B's extension under A's customer id
                manageable_extension(conn, admin, api.a, foreign, now, write=write)
