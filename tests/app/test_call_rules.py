"""Call rules (issue 13): through the API (stored normalised, validated whole, loops refused on
save, each user limited to their own extensions), and what they do to a call: the plan that
GET /internal/v1/route answers, each rule kind at its boundary, with the time injected."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from pbx_app.addressing import CARRIER_CALLER
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
    rules_path,
    user_managing,
)


@pytest.fixture
def tenants(api: Api) -> tuple[Tenant, Tenant]:
    return make_tenants(api)


def test_rules_are_stored_in_order_and_normalised(api: Api, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    group = api.admin_a.post(groups_path(a), json={"name": "Sales", "members": ["102"]}).json()
    rules = [
        {"kind": "caller", "match": "0171*", "target": {"external": "0301234567"}},
        {"kind": "caller", "match": "101", "target": {"reject": 603}},
        {"kind": "caller", "match": "0049691299100", "target": {"extension": "102"}},
        {"kind": "schedule", "target": {"group": group["id"]}},
        {"kind": "busy", "target": {"extension": "101"}},
        {"kind": "noanswer", "target": {"extension": "103"}},
        {"kind": "unavailable", "target": {"external": "+491701234567"}},
    ]
    r = put_rules(api.admin_a, a, "100", *rules)
    assert r.status_code == 200, r.text
    expected = [
        {
            "kind": "caller",
            "match": "+49171*",
            "timeout": None,
            "target": {"external": "+49301234567"},
        },
        {"kind": "caller", "match": "101", "timeout": None, "target": {"reject": 603}},
        {
            "kind": "caller",
            "match": "+49691299100",
            "timeout": None,
            "target": {"extension": "102"},
        },
        {"kind": "schedule", "match": None, "timeout": None, "target": {"group": group["id"]}},
        {"kind": "busy", "match": None, "timeout": None, "target": {"extension": "101"}},
        {"kind": "noanswer", "match": None, "timeout": 20, "target": {"extension": "103"}},
        {
            "kind": "unavailable",
            "match": None,
            "timeout": None,
            "target": {"external": "+491701234567"},
        },
    ]
    assert r.json() == {"extension_id": a.ext["100"], "rules": expected}
    assert api.admin_a.get(rules_path(a, "100")).json()["rules"] == expected
    # replaced whole, and emptied
    r = put_rules(api.admin_a, a, "100", {"kind": "unconditional", "target": {"reject": 486}})
    assert [x["kind"] for x in r.json()["rules"]] == ["unconditional"]
    assert put_rules(api.admin_a, a, "100").json()["rules"] == []


INVALID: list[tuple[list[dict[str, Any]], int, str, str | None]] = [
    (
        [{"kind": "noanswer", "timeout": 4, "target": {"reject": 486}}],
        422,
        "validation_failed",
        None,
    ),
    (
        [{"kind": "noanswer", "timeout": 121, "target": {"reject": 486}}],
        422,
        "validation_failed",
        None,
    ),
    ([{"kind": "busy", "target": {"reject": 487}}], 422, "validation_failed", None),
    (
        [{"kind": "busy", "target": {"reject": 486, "external": "030123456"}}],
        422,
        "validation_failed",
        None,
    ),
    ([{"kind": "sometimes", "target": {"reject": 486}}], 422, "validation_failed", None),
    ([{"kind": "caller", "target": {"reject": 486}}], 422, "validation_failed", None),
    (
        [{"kind": "busy", "match": "0171", "target": {"reject": 486}}],
        422,
        "validation_failed",
        None,
    ),
    (
        [{"kind": "caller", "match": "+", "target": {"reject": 486}}],
        422,
        "validation_failed",
        None,
    ),
    (
        [{"kind": "caller", "match": "00*", "target": {"reject": 486}}],
        422,
        "invalid_call_rule",
        "rules[1].match",
    ),
    (
        [{"kind": "caller", "match": "+4969", "target": {"reject": 486}}],
        422,
        "invalid_call_rule",
        "rules[1].match",
    ),
    (
        [
            {"kind": "busy", "target": {"reject": 486}},
            {"kind": "busy", "target": {"reject": 600}},
        ],
        422,
        "invalid_call_rule",
        "rules[2].kind",
    ),
    ([{"kind": "busy", "target": {"extension": "999"}}], 404, "not_found", None),
    ([{"kind": "busy", "target": {"group": 999999}}], 404, "not_found", None),
    ([{"kind": "busy", "target": {"external": "0"}}], 422, "validation_failed", None),
    ([{"kind": "busy", "target": {"external": "0123"}}], 422, "validation_failed", None),
]


def test_invalid_rules_are_refused_and_nothing_is_written(
    api: Api, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    kept = {"kind": "unconditional", "target": {"reject": 480}}
    assert put_rules(api.admin_a, a, "100", kept).status_code == 200
    for rules, status, code, field in INVALID:
        # a valid rule first: the whole list is refused, not just the bad rule
        valid = {"kind": "unavailable", "target": {"reject": 480}}
        r = put_rules(api.admin_a, a, "100", valid, *rules)
        assert (r.status_code, error_code(r)) == (status, code), (rules, r.text)
        if field is not None:
            assert r.json()["error"]["field"] == field  # counted with the valid rule in front
        stored = api.admin_a.get(rules_path(a, "100")).json()["rules"]
        assert [x["kind"] for x in stored] == ["unconditional"]


def test_targets_are_the_customers_own(api: Api, tenants: tuple[Tenant, Tenant]) -> None:
    a, b = tenants
    b_group = api.admin_b.post(groups_path(b), json={"name": "B", "members": ["100"]}).json()
    r = put_rules(api.admin_a, a, "100", {"kind": "busy", "target": {"group": b_group["id"]}})
    assert (r.status_code, error_code(r)) == (404, "not_found")
    r = put_rules(api.admin_a, a, "100", {"kind": "busy", "target": {"extension": "200"}})
    assert (r.status_code, error_code(r)) == (404, "not_found")  # B's 200, not A's
    # another customer's public number is an external target like any other
    r = put_rules(api.admin_a, a, "100", {"kind": "busy", "target": {"external": "+49691299200"}})
    assert r.status_code == 200, r.text


def _loop(r: Any) -> list[str]:
    assert (r.status_code, error_code(r)) == (409, "rule_loop"), r.text
    cycle: list[str] = r.json()["error"]["cycle"]
    assert cycle[0] == cycle[-1]
    return cycle


def test_a_rule_loop_is_refused_on_save(api: Api, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    assert (
        put_rules(
            api.admin_a, a, "100", {"kind": "busy", "target": {"extension": "101"}}
        ).status_code
        == 200
    )
    assert (
        put_rules(
            api.admin_a, a, "101", {"kind": "noanswer", "target": {"extension": "102"}}
        ).status_code
        == 200
    )
    r = put_rules(
        api.admin_a,
        a,
        "102",
        {"kind": "caller", "match": "0171*", "target": {"reject": 603}},
        {"kind": "unavailable", "target": {"extension": "100"}},
    )
    assert _loop(r) == ["extension 102", "extension 100", "extension 101", "extension 102"]
    assert api.admin_a.get(rules_path(a, "102")).json()["rules"] == []  # nothing half-written
    # to itself
    r = put_rules(api.admin_a, a, "103", {"kind": "unconditional", "target": {"extension": "103"}})
    assert _loop(r) == ["extension 103", "extension 103"]
    # through its own number: 103's implicit DID +49691234103 is 103
    r = put_rules(
        api.admin_a,
        a,
        "103",
        {"kind": "busy", "target": {"external": "069 1234 103".replace(" ", "")}},
    )
    assert _loop(r) == ["extension 103", "extension 103"]


def test_a_loop_through_a_group_is_refused(api: Api, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    group = api.admin_a.post(
        groups_path(a),
        json={"name": "Support", "members": ["101", "102"], "final": {"extension": "100"}},
    ).json()
    r = put_rules(api.admin_a, a, "100", {"kind": "noanswer", "target": {"group": group["id"]}})
    assert _loop(r) == ["extension 100", f"group {group['id']} (Support)", "extension 100"]
    # the other way round: the rule first, then the final target closes the circle
    api.admin_a.patch(f"{groups_path(a)}/{group['id']}", json={"final": None})
    assert (
        put_rules(
            api.admin_a, a, "100", {"kind": "noanswer", "target": {"group": group["id"]}}
        ).status_code
        == 200
    )
    r = api.admin_a.patch(f"{groups_path(a)}/{group['id']}", json={"final": {"extension": "100"}})
    assert _loop(r) == [
        f"group {group['id']} (Support)",
        "extension 100",
        f"group {group['id']} (Support)",
    ]
    assert api.admin_a.get(f"{groups_path(a)}/{group['id']}").json()["final"] == {"reject": 480}
    # members ring directly: a member's own rules are no circle
    r = put_rules(api.admin_a, a, "101", {"kind": "busy", "target": {"extension": "100"}})
    assert r.status_code == 200, r.text


def test_a_user_manages_only_their_own_extensions(api: Api, tenants: tuple[Tenant, Tenant]) -> None:
    a, b = tenants
    user = user_managing(api, a, "100")
    rule = {"kind": "unconditional", "target": {"external": "01701234567"}}
    assert put_rules(user, a, "100", rule).status_code == 200
    assert user.get(rules_path(a, "100")).json()["rules"][0]["target"] == {
        "external": "+491701234567"
    }
    for r in (put_rules(user, a, "101", rule), user.get(rules_path(a, "101"))):
        assert (r.status_code, error_code(r)) == (403, "permission_denied")
    for r in (put_rules(user, b, "100", rule), user.get(rules_path(b, "100"))):
        assert (r.status_code, error_code(r)) == (403, "customer_scope_violation")
    # another customer's admin and user
    for r in (put_rules(api.admin_b, a, "100", rule), api.admin_b.get(rules_path(a, "100"))):
        assert (r.status_code, error_code(r)) == (403, "customer_scope_violation")
    other = user_managing(api, b, "100")
    assert put_rules(other, a, "100", rule).status_code == 403
    # A's extension under B's customer id does not exist there
    wrong = f"/api/v1/customers/{b.customer}/extensions/{a.ext['100']}/call-rules"
    r = api.admin_b.get(wrong)
    assert (r.status_code, error_code(r)) == (404, "not_found")
    # the user may target a colleague's extension and read the groups, not change them
    assert (
        put_rules(user, a, "100", {"kind": "busy", "target": {"extension": "101"}}).status_code
        == 200
    )
    assert user.get(groups_path(a)).status_code == 200
    r = user.post(groups_path(a), json={"name": "Mine", "members": ["100"]})
    assert (r.status_code, error_code(r)) == (403, "permission_denied")
    user.close()
    other.close()


def test_deleting_an_extension_takes_its_rules_and_the_rules_to_it(
    api: Api, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    put_rules(
        api.admin_a,
        a,
        "100",
        {"kind": "busy", "target": {"extension": "101"}},
        {"kind": "noanswer", "target": {"extension": "102"}},
    )
    put_rules(api.admin_a, a, "101", {"kind": "busy", "target": {"extension": "102"}})
    assert (
        api.admin_a.delete(f"/api/v1/customers/{a.customer}/extensions/{a.ext['101']}").status_code
        == 204
    )
    rules = api.admin_a.get(rules_path(a, "100")).json()["rules"]
    assert [r["target"] for r in rules] == [{"extension": "102"}]


# --- caller ID -----------------------------------------------------------------------------------
def test_caller_id_must_be_a_number_the_customer_holds(
    api: Api, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    path = f"/api/v1/customers/{a.customer}/extensions/{a.ext['101']}"
    for held in ("+49691234100", "+49691234999", "+49691234"):
        r = api.admin_a.patch(path, json={"caller_id": held, "clir": True})
        assert r.status_code == 200, r.text
        assert (r.json()["caller_id"], r.json()["clir"]) == (held, True)
    for foreign in ("+49691299100", "+4969123410", "+4930555123", "+496912341000"):
        r = api.admin_a.patch(path, json={"caller_id": foreign})
        assert (r.status_code, error_code(r)) == (422, "caller_id_not_held"), foreign
    r = api.admin_a.patch(path, json={"caller_id": None, "clir": False})
    assert (r.json()["caller_id"], r.json()["clir"]) == (None, False)
    assert api.admin_a.patch(path, json={"clir": "yes"}).status_code == 422

    customer = f"/api/v1/customers/{a.customer}"
    r = api.admin_a.patch(customer, json={"default_caller_id": "+49691234000"})
    assert r.status_code == 200, r.text
    assert r.json()["default_caller_id"] == "+49691234000"
    r = api.admin_a.patch(customer, json={"default_caller_id": "+49691299000"})
    assert (r.status_code, error_code(r)) == (422, "caller_id_not_held")
    r = api.admin_a.patch(customer, json={"default_caller_id": "+49691234001", "name": "X"})
    assert (r.status_code, error_code(r)) == (403, "permission_denied")  # other fields: operator
    r = api.admin_b.patch(customer, json={"default_caller_id": "+49691234001"})
    assert (r.status_code, error_code(r)) == (403, "customer_scope_violation")
    r = api.operator.patch(customer, json={"default_caller_id": None})
    assert r.json()["default_caller_id"] is None


# --- what the rules do to a call ---------------------------------------------------------------
A100 = "+49691234100"  # extension 100's DID: the number it diverts with


def ext_path(t: Tenant, number: str) -> str:
    return f"/api/v1/customers/{t.customer}/extensions/{t.ext[number]}"


def test_a_caller_rule_forwards_a_matching_caller_at_once(
    api: Api, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    put_rules(
        api.admin_a,
        a,
        "100",
        {"kind": "caller", "match": "101", "target": {"extension": "102"}},
        {"kind": "caller", "match": "+496912991*", "target": {"extension": "103"}},
        {"kind": "caller", "match": "0170*", "target": {"reject": 603}},
    )
    follow_me = diversion(A100, "follow-me", 1)
    rings_100 = [ring(aor_of(a, "100"))]
    # within the customer: the caller's extension number
    assert decide(api.db, device(a, "101"), "100") == {
        "action": "local",
        "aor": aor_of(a, "100"),
        "customer_id": a.customer,
        "srtp_required": False,
        "ttl": 0,
        "privacy": False,
        "steps": [ring(aor_of(a, "102"), diversion=follow_me)],
    }
    assert decide(api.db, device(a, "103"), "100")["steps"] == rings_100
    # from another customer: its public number; +49691299100 has the prefix, +49691299200 not
    assert decide(api.db, device(b, "100"), "0691234100")["steps"] == [
        ring(aor_of(a, "103"), diversion=follow_me)
    ]
    assert decide(api.db, device(b, "200"), A100)["steps"] == rings_100
    # from the carrier: its From
    assert decide(api.db, CARRIER_CALLER, A100, from_user="01701234567") == {
        "action": "reject",
        "code": 603,
        "reason": "Decline",
        "ttl": 0,
    }
    assert decide(api.db, CARRIER_CALLER, A100, from_user="+491701234567")["code"] == 603
    for other in ("01711234567", "anonymous", ""):
        assert decide(api.db, CARRIER_CALLER, A100, from_user=other)["steps"] == rings_100


def test_a_withheld_number_matches_no_caller_rule(api: Api, tenants: tuple[Tenant, Tenant]) -> None:
    a, b = tenants
    put_rules(
        api.admin_a,
        a,
        "100",
        {"kind": "caller", "match": "101", "target": {"extension": "102"}},
        {"kind": "caller", "match": "+49691299100", "target": {"extension": "103"}},
    )
    # #31# withholds the number from everyone
    plan = decide(api.db, device(b, "100"), "#31#" + A100)
    assert (plan["steps"], plan["privacy"]) == ([ring(aor_of(a, "100"))], True)
    plan = decide(api.db, device(a, "101"), "#31#100")
    assert (plan["steps"], plan["privacy"]) == ([ring(aor_of(a, "100"))], True)
    # an extension's CLIR withholds it from other customers only
    api.admin_a.patch(ext_path(a, "101"), json={"clir": True})
    plan = decide(api.db, device(a, "101"), "100")
    assert (plan["steps"][0]["ring"], plan["privacy"]) == ([aor_of(a, "102")], False)
    api.admin_b.patch(ext_path(b, "100"), json={"clir": True})
    plan = decide(api.db, device(b, "100"), A100)
    assert (plan["steps"], plan["privacy"]) == ([ring(aor_of(a, "100"))], True)


MON_FRI_8_TO_18 = {d: ["08:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}


@pytest.mark.parametrize(
    ("at", "open_"),
    [
        (datetime(2026, 7, 1, 5, 59, 59), False),  # Wednesday 07:59:59 in Berlin (CEST)
        (datetime(2026, 7, 1, 6, 0), True),  # 08:00
        (datetime(2026, 7, 1, 15, 59, 59), True),  # 17:59:59
        (datetime(2026, 7, 1, 16, 0), False),  # 18:00
        (datetime(2026, 7, 4, 10, 0), False),  # Saturday
    ],
)
def test_a_schedule_rule_forwards_outside_the_opening_hours(
    api: Api, tenants: tuple[Tenant, Tenant], at: datetime, open_: bool
) -> None:
    a, _ = tenants
    location = f"/api/v1/customers/{a.customer}/locations/{a.location}"
    assert api.admin_a.patch(location, json={"opening_hours": MON_FRI_8_TO_18}).status_code == 200
    put_rules(api.admin_a, a, "100", {"kind": "schedule", "target": {"extension": "103"}})
    steps = decide(api.db, device(a, "101"), "100", at=at)["steps"]
    closed = [ring(aor_of(a, "103"), diversion=diversion(A100, "time-of-day", 1))]
    assert steps == ([ring(aor_of(a, "100"))] if open_ else closed)


def test_a_schedule_rule_forwards_on_a_public_holiday_of_the_state(
    api: Api, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    location = f"/api/v1/customers/{a.customer}/locations/{a.location}"
    api.admin_a.patch(location, json={"opening_hours": MON_FRI_8_TO_18, "state": "BY"})
    put_rules(api.admin_a, a, "100", {"kind": "schedule", "target": {"external": "01701234567"}})
    epiphany = datetime(2026, 1, 6, 10, 0)  # Tuesday 11:00: a holiday in Bavaria, not in Berlin
    plan = decide(api.db, device(a, "101"), "100", at=epiphany)
    assert plan["steps"] == [
        {
            "external": "+491701234567",
            "caller_id": A100,
            "privacy": False,
            "diversion": diversion(A100, "time-of-day", 1),
        }
    ]
    api.admin_a.patch(location, json={"state": "BE"})
    plan = decide(api.db, device(a, "101"), "100", at=epiphany)
    assert plan["steps"] == [ring(aor_of(a, "100"))]
    # no opening hours, no state: always open
    api.admin_a.patch(location, json={"opening_hours": None, "state": None})
    for at in (epiphany, datetime(2026, 7, 4, 2, 0)):
        assert decide(api.db, device(a, "101"), "100", at=at)["steps"] == [ring(aor_of(a, "100"))]


def test_entry_rules_in_order_first_match_wins(api: Api, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    put_rules(
        api.admin_a,
        a,
        "100",
        {"kind": "caller", "match": "103", "target": {"extension": "102"}},
        {"kind": "unconditional", "target": {"reject": 486}},
        {"kind": "caller", "match": "101", "target": {"extension": "102"}},  # never reached
        {"kind": "busy", "target": {"extension": "103"}},  # never reached
    )
    assert decide(api.db, device(a, "103"), "100")["steps"][0]["ring"] == [aor_of(a, "102")]
    assert decide(api.db, device(a, "101"), "100") == {
        "action": "reject",
        "code": 486,
        "reason": "Busy Here",
        "ttl": 0,
    }


def test_busy_noanswer_unavailable_continue_a_ringing_extension(
    api: Api, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    put_rules(
        api.admin_a,
        a,
        "100",
        {"kind": "busy", "target": {"extension": "101"}},
        {"kind": "noanswer", "timeout": 25, "target": {"extension": "102"}},
        {"kind": "unavailable", "target": {"external": "+491701234567"}},
    )
    put_rules(api.admin_a, a, "101", {"kind": "noanswer", "timeout": 5, "target": {"reject": 480}})
    put_rules(api.admin_a, a, "102", {"kind": "busy", "target": {"extension": "103"}})
    busy = diversion(A100, "user-busy", 1)
    noanswer = diversion(A100, "no-answer", 1)
    assert decide(api.db, device(a, "103"), "100")["steps"] == [
        ring(aor_of(a, "100"), timeout=25, busy=1, noanswer=3, unavailable=5),
        ring(aor_of(a, "101"), timeout=5, diversion=busy, noanswer=2),
        {"reject": 480, "reason": "Temporarily Unavailable"},
        ring(aor_of(a, "102"), diversion=noanswer, busy=4),
        # diverted twice: both entries, the newest first, counted on
        ring(
            aor_of(a, "103"),
            diversion=f"{diversion('+49691234102', 'user-busy', 2)}, {noanswer}",
        ),
        {
            "external": "+491701234567",
            "caller_id": A100,
            "privacy": False,
            "diversion": diversion(A100, "unavailable", 1),
        },
    ]


def test_a_forward_leaves_with_the_forwarding_extensions_caller_id_and_clir(
    api: Api, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    api.admin_a.patch(ext_path(a, "100"), json={"caller_id": "+49691234999", "clir": True})
    put_rules(api.admin_a, a, "100", {"kind": "unconditional", "target": {"external": "030555123"}})
    # whoever calls, even from another customer: the number is A's, never the caller's
    for caller in (device(b, "200"), device(a, "101")):
        target = A100 if caller.startswith(f"t{b.customer}-") else "100"
        assert decide(api.db, caller, target)["steps"] == [
            {
                "external": "+4930555123",
                "caller_id": "+49691234999",
                "privacy": True,
                "diversion": diversion("+49691234999", "unconditional", 1),
            }
        ]


def test_a_forward_to_a_platform_number_rings_that_extension_with_its_rules(
    api: Api, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    put_rules(api.admin_a, a, "100", {"kind": "busy", "target": {"external": "+49691299200"}})
    put_rules(api.admin_b, b, "200", {"kind": "noanswer", "target": {"reject": 603}})
    assert decide(api.db, device(a, "101"), "100")["steps"] == [
        ring(aor_of(a, "100"), busy=1),
        ring(aor_of(b, "200"), timeout=20, diversion=diversion(A100, "user-busy", 1), noanswer=2),
        {"reject": 603, "reason": "Decline"},
    ]
    # a platform number that nobody answers is no way out to the trunk
    put_rules(api.admin_a, a, "100", {"kind": "busy", "target": {"external": "+49691299999"}})
    steps = decide(api.db, device(a, "101"), "100")["steps"]
    assert steps[1] == {"reject": 404, "reason": "Not Found"}


def test_a_loop_through_other_customers_numbers_is_cut_at_call_time(
    api: Api, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    # each customer's rules are fine on their own; together they loop
    put_rules(api.admin_a, a, "100", {"kind": "busy", "target": {"external": "+49691299100"}})
    put_rules(api.admin_b, b, "100", {"kind": "busy", "target": {"external": A100}})
    assert decide(api.db, device(a, "101"), "100")["steps"] == [
        ring(aor_of(a, "100"), busy=1),
        ring(aor_of(b, "100"), diversion=diversion(A100, "user-busy", 1), busy=2),
        {"reject": 482, "reason": "Loop Detected"},
    ]
    put_rules(api.admin_b, b, "100", {"kind": "unconditional", "target": {"external": A100}})
    put_rules(
        api.admin_a, a, "100", {"kind": "unconditional", "target": {"external": "+49691299100"}}
    )
    loop = {"action": "reject", "code": 482, "reason": "Loop Detected", "ttl": 0}
    assert decide(api.db, device(a, "101"), "100") == loop
    assert decide(api.db, device(b, "200"), "100") == loop
    assert decide(api.db, CARRIER_CALLER, A100) == loop


def test_diversions_are_counted_with_those_the_request_arrived_with(
    api: Api, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    put_rules(api.admin_a, a, "100", {"kind": "busy", "target": {"extension": "101"}})
    at_limit = decide(api.db, CARRIER_CALLER, A100, div=4)
    assert at_limit["steps"][1] == ring(aor_of(a, "101"), diversion=diversion(A100, "user-busy", 5))
    beyond = decide(api.db, CARRIER_CALLER, A100, div=5)
    assert beyond["steps"] == [
        ring(aor_of(a, "100"), busy=1),
        {"reject": 482, "reason": "Loop Detected"},
    ]
    # already diverted more often than allowed: not even the first step
    assert decide(api.db, CARRIER_CALLER, A100, div=6) == {
        "action": "reject",
        "code": 482,
        "reason": "Loop Detected",
        "ttl": 0,
    }
    # a chain of unconditional forwards within the customer stops at the limit too
    for n, to in (("101", "102"), ("102", "103")):
        put_rules(api.admin_a, a, n, {"kind": "unconditional", "target": {"extension": to}})
    put_rules(api.admin_a, a, "100", {"kind": "unconditional", "target": {"extension": "101"}})
    assert decide(api.db, device(a, "103"), "100", div=2)["steps"][0]["ring"] == [aor_of(a, "103")]
    assert decide(api.db, device(a, "103"), "100", div=3)["code"] == 482


def test_the_api_offers_exactly_the_reject_codes_the_rules_allow() -> None:
    """api.models.RejectCode is a Literal for mypy and the OpenAPI document; the service's
    REJECT_CODES is what the rules check. One changed without the other fails here."""
    from typing import get_args

    from pbx_app.api.models import RejectCode
    from pbx_app.services.call_rules import REJECT_CODES

    assert set(get_args(RejectCode)) == set(REJECT_CODES)
