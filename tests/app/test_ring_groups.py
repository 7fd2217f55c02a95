"""Ring groups (issue 13): managed by the customer's admin through the API, and how each
strategy rings (the plan GET /internal/v1/route answers)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from pbx_app.schema import ring_groups
from tests.app.conftest import Api, error_code
from tests.app.rules_world import (
    Tenant,
    aor_of,
    decide,
    device,
    diversion,
    groups_path,
    make_tenants,
    put_rules,
    ring,
)


@pytest.fixture
def tenants(api: Api) -> tuple[Tenant, Tenant]:
    return make_tenants(api)


def test_ring_group_crud(api: Api, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    r = api.admin_a.post(
        groups_path(a),
        json={
            "name": "Sales",
            "strategy": "hunt",
            "member_timeout": 15,
            "members": ["102", "101"],
            "final": {"external": "01701234567"},
        },
    )
    assert r.status_code == 201, r.text
    group = r.json()
    assert group == {
        "id": group["id"],
        "name": "Sales",
        "strategy": "hunt",
        "member_timeout": 15,
        "members": ["102", "101"],
        "final": {"external": "+491701234567"},
    }
    path = f"{groups_path(a)}/{group['id']}"
    assert api.admin_a.get(path).json() == group
    assert api.admin_a.get(groups_path(a)).json() == {"items": [group]}
    # defaults
    r = api.admin_a.post(groups_path(a), json={"name": "Empty"})
    assert r.json()["strategy"] == "parallel"
    assert (r.json()["member_timeout"], r.json()["members"]) == (20, [])
    assert r.json()["final"] == {"reject": 480}

    r = api.admin_a.patch(
        path, json={"strategy": "roundrobin", "members": ["100", "101", "102"], "final": None}
    )
    assert r.status_code == 200, r.text
    assert r.json()["members"] == ["100", "101", "102"]
    assert (r.json()["strategy"], r.json()["final"]) == ("roundrobin", {"reject": 480})
    assert r.json()["name"] == "Sales"
    r = api.admin_a.patch(path, json={"final": {"group": r.json()["id"]}})
    assert (r.status_code, error_code(r)) == (409, "rule_loop")  # its own final target

    # deleting a member extension removes it from the group
    api.admin_a.delete(f"/api/v1/customers/{a.customer}/extensions/{a.ext['101']}")
    assert api.admin_a.get(path).json()["members"] == ["100", "102"]

    assert api.admin_a.delete(path).status_code == 204
    assert api.admin_a.get(path).status_code == 404


def test_ring_group_validation(api: Api, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    api.admin_a.post(groups_path(a), json={"name": "Sales"})
    cases = [
        ({"name": "Sales"}, 409, "ring_group_name_in_use"),
        ({"name": "X", "members": ["100", "100"]}, 422, "invalid_call_rule"),
        ({"name": "X", "members": ["200"]}, 404, "not_found"),  # B has 200, A not
        ({"name": "X", "strategy": "random"}, 422, "validation_failed"),
        ({"name": "X", "member_timeout": 4}, 422, "validation_failed"),
        ({"name": "X", "final": {"reject": 200}}, 422, "validation_failed"),
        ({"name": "X", "final": {"extension": "999"}}, 404, "not_found"),
        ({"name": ""}, 422, "validation_failed"),
    ]
    for body, status, code in cases:
        r = api.admin_a.post(groups_path(a), json=body)
        assert (r.status_code, error_code(r)) == (status, code), (body, r.text)
    assert [g["name"] for g in api.admin_a.get(groups_path(a)).json()["items"]] == ["Sales"]


def test_a_group_in_use_cannot_be_deleted(api: Api, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    first = api.admin_a.post(groups_path(a), json={"name": "First", "members": ["101"]}).json()
    second = api.admin_a.post(
        groups_path(a), json={"name": "Second", "final": {"group": first["id"]}}
    ).json()
    put_rules(api.admin_a, a, "100", {"kind": "busy", "target": {"group": first["id"]}})
    r = api.admin_a.delete(f"{groups_path(a)}/{first['id']}")
    assert (r.status_code, error_code(r)) == (409, "ring_group_in_use")
    assert "extension 100" in r.json()["error"]["message"]
    assert f"group {second['id']}" in r.json()["error"]["message"]
    put_rules(api.admin_a, a, "100")
    api.admin_a.delete(f"{groups_path(a)}/{second['id']}")
    assert api.admin_a.delete(f"{groups_path(a)}/{first['id']}").status_code == 204


def test_ring_groups_stay_inside_the_customer(api: Api, tenants: tuple[Tenant, Tenant]) -> None:
    a, b = tenants
    group = api.admin_a.post(groups_path(a), json={"name": "A"}).json()
    path = f"{groups_path(a)}/{group['id']}"
    for r in (
        api.admin_b.get(path),
        api.admin_b.get(groups_path(a)),
        api.admin_b.patch(path, json={"name": "mine"}),
        api.admin_b.delete(path),
        api.admin_b.post(groups_path(a), json={"name": "B"}),
    ):
        assert (r.status_code, error_code(r)) == (403, "customer_scope_violation")
    r = api.admin_b.get(f"{groups_path(b)}/{group['id']}")
    assert (r.status_code, error_code(r)) == (404, "not_found")
    assert api.admin_a.get(path).json()["name"] == "A"


# --- how the groups ring -------------------------------------------------------------------------
A100 = "+49691234100"


def _group(api: Api, a: Tenant, strategy: str, **extra: Any) -> int:
    body = {"name": strategy, "strategy": strategy, "member_timeout": 15, **extra}
    r = api.admin_a.post(groups_path(a), json={"members": ["101", "102", "103"], **body})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_parallel_rings_all_members_then_the_final_target(
    api: Api, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    group = _group(api, a, "parallel", final={"external": "01701234567"})
    put_rules(api.admin_a, a, "100", {"kind": "noanswer", "target": {"group": group}})
    into = diversion(A100, "no-answer", 1)
    members = [aor_of(a, n) for n in ("101", "102", "103")]
    plan = decide(api.db, device(a, "103"), "100")
    assert plan["ttl"] == 0
    assert plan["steps"] == [
        ring(aor_of(a, "100"), timeout=20, noanswer=1),
        ring(*members, timeout=15, diversion=into, busy=2, noanswer=2, unavailable=2),
        {
            "external": "+491701234567",
            "caller_id": A100,
            "privacy": False,
            "diversion": f"{diversion(A100, 'no-answer', 2)}, {into}",
        },
    ]


def test_hunt_rings_one_member_after_another(api: Api, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    group = _group(api, a, "hunt")
    put_rules(api.admin_a, a, "100", {"kind": "unconditional", "target": {"group": group}})
    into = diversion(A100, "unconditional", 1)
    plan = decide(api.db, device(a, "103"), "100")
    assert plan["aor"] == aor_of(a, "100")  # the number dialled
    assert plan["steps"] == [
        ring(aor_of(a, "101"), timeout=15, diversion=into, busy=1, noanswer=1, unavailable=1),
        ring(aor_of(a, "102"), timeout=15, diversion=into, busy=2, noanswer=2, unavailable=2),
        ring(aor_of(a, "103"), timeout=15, diversion=into, busy=3, noanswer=3, unavailable=3),
        {"reject": 480, "reason": "Temporarily Unavailable"},  # the default final target
    ]


def _first_rung(api: Api, a: Tenant) -> str:
    steps = decide(api.db, device(a, "103"), "100")["steps"]
    return str(steps[0]["ring"][0])


def test_round_robin_starts_one_member_further_per_call(
    api: Api, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    group = _group(api, a, "roundrobin")
    put_rules(api.admin_a, a, "100", {"kind": "unconditional", "target": {"group": group}})
    starts = [_first_rung(api, a) for _ in range(4)]
    assert starts == [aor_of(a, n) for n in ("101", "102", "103", "101")]
    plan = decide(api.db, device(a, "103"), "100")  # the fifth call: 102, 103, 101
    assert [s.get("ring") for s in plan["steps"]] == [
        [aor_of(a, "102")],
        [aor_of(a, "103")],
        [aor_of(a, "101")],
        None,
    ]
    assert plan["ttl"] == 0
    with api.db.transaction() as conn:
        after = conn.execute(select(ring_groups.c.rr_next).where(ring_groups.c.id == group))
        assert after.scalar() == 2  # the next call starts with 103
    # changing the members starts over
    api.admin_a.patch(f"{groups_path(a)}/{group}", json={"members": ["103", "102"]})
    assert [_first_rung(api, a) for _ in range(3)] == [
        aor_of(a, "103"),
        aor_of(a, "102"),
        aor_of(a, "103"),
    ]


def test_members_ring_their_devices_not_their_rules(
    api: Api, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    group = _group(api, a, "parallel")
    put_rules(api.admin_a, a, "101", {"kind": "unconditional", "target": {"reject": 603}})
    put_rules(api.admin_a, a, "100", {"kind": "busy", "target": {"group": group}})
    steps = decide(api.db, device(a, "103"), "100")["steps"]
    assert steps[1]["ring"] == [aor_of(a, n) for n in ("101", "102", "103")]
