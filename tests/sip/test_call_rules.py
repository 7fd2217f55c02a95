"""Call rules carried out by the proxies, with real phones (sipp) against the lab: the app
decides a plan (GET /internal/v1/route), Kamailio walks it (kamailio.cfg PLAN_WALK,
failure_route[PLAN_FAILURE]). Each rule kind at its boundary: a caller match and a non-match, no
answer after exactly N s, busy only when every device is busy, unavailable without a binding,
opening hours on either side of the edge, a public holiday, a reject with a chosen answer, a
loop refused on save and one cut at call time. The callee sees why a call came (Diversion)."""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from labkit.control import kamcmd
from labkit.devices import Device, Devices
from labkit.lab import SITES
from labkit.leases import OTHER, lease
from labkit.portal import login, operator
from pbx_app.services.calendar import STATES

from .rules_kit import (
    BERLIN,
    RING_TOLERANCE,
    SECOND_PORT,
    WEEKDAYS,
    Pbx,
    Phone,
    call_from_outside,
    fresh_bindings,
    hours_today,
    minutes_to_midnight,
    reason,
)

# Every call placed here gets its call record (issue 13; tests/sip/conftest.py).
pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("calls_recorded")]

DEVICES = lease("call rules", caller=14, callee=15, target=16, other_caller=17)
# The other customer's extension that closes a forwarding circle through public numbers.
OTHERS = lease("call rules", OTHER, loop_back=4)
N = 5  # the no-answer timeout under test (s): the shortest a rule may have


@pytest.fixture(scope="module")
def box(devices: Devices) -> Device:
    return devices.start("rules", "fra")


@pytest.fixture(scope="module")
def pbx(tenant: dict[str, Any]) -> Iterator[Pbx]:
    with login(tenant["admin_email"], tenant["admin_password"]) as api:
        admin = Pbx(api, int(tenant["customer_id"]))
        try:
            yield admin
        finally:
            admin.put_back()


@pytest.fixture
def phones(box: Device, tenant: dict[str, Any], pbx: Pbx) -> Iterator[dict[str, Phone]]:
    """The suite's phones, without bindings; every rule a test set is removed after it."""
    found = {
        role: Phone(box, tenant, DEVICES[role], 5071 + i)
        for i, role in enumerate(("caller", "callee", "target", "other_caller"))
    }
    with fresh_bindings(*found.values()):
        try:
            yield found
        finally:
            pbx.put_back()


def forward_to(phone: Phone) -> dict[str, str]:
    return {"extension": phone.ext}


def test_caller_rule_forwards_the_matching_caller_only(pbx: Pbx, phones: dict[str, Phone]) -> None:
    """The seed's source-based forwarding: a call from the matched caller goes to the target at
    once (Diversion reason follow-me), a call from anyone else rings the extension."""
    caller, callee, target = phones["caller"], phones["callee"], phones["target"]
    other = phones["other_caller"]
    pbx.rules(callee.ext, {"kind": "caller", "match": caller.ext, "target": forward_to(target)})
    callee.register()
    target.register()

    callee.expect("answer")
    target.expect("answer")
    assert caller.call(callee.ext).startswith("200")
    assert target.invited_at(), "the matched caller's call did not reach the target"
    assert callee.invited_at() is None, "the matched caller's call rang the extension too"
    assert reason(target.diversion()) == "follow-me", target.diversion()
    assert callee.did in target.diversion() or callee.ext in target.diversion(), (
        f"Diversion does not name the forwarding extension: {target.diversion()}"
    )

    callee.expect("answer")
    target.expect("answer")
    assert other.call(callee.ext).startswith("200")
    assert callee.invited_at(), "another caller's call did not ring the extension"
    assert target.invited_at() is None, "another caller's call was forwarded"
    assert callee.diversion() == "", callee.diversion()


def test_caller_rule_matches_a_call_from_outside_by_number_prefix(
    pbx: Pbx, phones: dict[str, Phone]
) -> None:
    """A call from the carrier to the extension's public number: the rule sees the caller's
    number (the carrier's From, which Kamailio passes to the app)."""
    callee, target = phones["callee"], phones["target"]
    callee.register()
    target.register()
    for prefix, rings in (("+4940111*", target), ("+4940999*", callee)):
        pbx.rules(callee.ext, {"kind": "caller", "match": prefix, "target": forward_to(target)})
        callee.expect("answer")
        target.expect("answer")
        code, log = call_from_outside(callee.did)
        assert code == 0, f"carrier call to {callee.did}: {log[-1500:]}"
        assert rings.invited_at(), f"match {prefix}: {rings.ext} did not ring"
        other = callee if rings is target else target
        assert other.invited_at() is None, f"match {prefix}: {other.ext} rang"


def test_a_call_that_arrives_diverted_too_often_is_cut(phones: dict[str, Phone]) -> None:
    """Six Diversion entries on the carrier's INVITE (two headers): counted by the proxy (div),
    more than the app allows (5): 482 before anything rings."""
    callee = phones["callee"]
    callee.register()
    callee.expect("answer")
    code, log = call_from_outside(callee.did, "trunk_call_diverted")
    assert "STATUS 482" in log, f"code {code}: {log[-1500:]}"
    assert callee.invited_at() is None, "a call diverted too often rang the extension"


def test_no_answer_forwards_after_exactly_n_seconds_though_one_device_is_busy(
    pbx: Pbx, phones: dict[str, Phone]
) -> None:
    """Two devices of the extension: one answers 486 at once, the other rings. Not busy (not
    every device is): after exactly N s the no-answer rule forwards."""
    caller, callee, target = phones["caller"], phones["callee"], phones["target"]
    pbx.rules(
        callee.ext,
        {"kind": "busy", "target": {"reject": 600}},
        {"kind": "noanswer", "timeout": N, "target": forward_to(target)},
    )
    ringing = callee.port + SECOND_PORT
    callee.register()
    callee.register(port=ringing)
    target.register()
    callee.expect("refuse")
    callee.expect("ring", port=ringing)
    target.expect("answer")

    assert caller.call(callee.ext).startswith("200")
    rang, cancelled, forwarded = (
        callee.invited_at(ringing),
        callee.cancelled_at(ringing),
        target.invited_at(),
    )
    assert rang, f"the ringing device got no INVITE: {callee.log(ringing)}"
    assert cancelled, f"the ringing device was not cancelled: {callee.log(ringing)}"
    assert forwarded, f"the no-answer target got no INVITE: {target.log()}"
    assert abs(cancelled - rang - N) <= RING_TOLERANCE, f"rang {cancelled - rang:.3f} s, not {N}"
    assert abs(forwarded - rang - N) <= RING_TOLERANCE, f"forwarded after {forwarded - rang:.3f} s"
    assert reason(target.diversion()) == "no-answer", target.diversion()


def test_caller_hanging_up_ends_the_plan(pbx: Pbx, phones: dict[str, Phone]) -> None:
    """The caller cancels while the extension rings: the call ends there (487), its no-answer
    target never rings."""
    caller, callee, target = phones["caller"], phones["callee"], phones["target"]
    pbx.rules(callee.ext, {"kind": "noanswer", "timeout": N, "target": forward_to(target)})
    callee.register()
    target.register()
    callee.expect("ring")
    target.expect("answer")
    status = caller.call(callee.ext, scenario="call_cancel", hold_ms=1500)
    assert status.startswith("487"), f"a cancelled call ended with {status}"
    assert callee.cancelled_at(), f"the extension kept ringing: {callee.log()}"
    time.sleep(N)  # past the no-answer timeout
    assert target.invited_at() is None, "the plan went on after the caller hung up"


def test_busy_when_every_device_answers_486(pbx: Pbx, phones: dict[str, Phone]) -> None:
    caller, callee, target = phones["caller"], phones["callee"], phones["target"]
    pbx.rules(
        callee.ext,
        {"kind": "busy", "target": forward_to(target)},
        {"kind": "noanswer", "timeout": N, "target": {"reject": 600}},
    )
    second = callee.port + SECOND_PORT
    callee.register()
    callee.register(port=second)
    target.register()
    callee.expect("refuse")
    callee.expect("refuse", port=second)
    target.expect("answer")

    assert caller.call(callee.ext).startswith("200")
    rang, forwarded = callee.invited_at(), target.invited_at()
    assert rang, f"the first device got no INVITE: {callee.log()}"
    assert callee.invited_at(second), f"the second device got no INVITE: {callee.log(second)}"
    assert forwarded, f"the busy target got no INVITE: {target.log()}"
    assert forwarded - rang < 2, f"busy forwarded only after {forwarded - rang:.1f} s"
    assert reason(target.diversion()) == "user-busy", target.diversion()


def test_unavailable_without_a_binding(pbx: Pbx, phones: dict[str, Phone]) -> None:
    caller, callee, target = phones["caller"], phones["callee"], phones["target"]
    pbx.rules(callee.ext, {"kind": "unavailable", "target": forward_to(target)})
    target.register()
    target.expect("answer")
    assert caller.call(callee.ext).startswith("200")
    assert target.invited_at(), target.log()
    assert reason(target.diversion()) == "unavailable", target.diversion()

    # Without the rule an extension without a registered device is 480. (In this order: a
    # decision without rules may be cached for a moment, one with rules never is.)
    pbx.rules(callee.ext)
    assert caller.call(callee.ext).startswith("480")


def cached_for(proxy: str, key: str) -> float | None:
    """Seconds the proxy's app-route cache keeps `key` from now, None if it holds none."""
    out = kamcmd(proxy, "htable.get", "approute", key, check=False)
    m = re.search(r"expire: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", out)
    if not m:
        return None
    until = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return (until - datetime.now(UTC)).total_seconds()


def test_route_cache_holds_a_decision_only_for_its_ttl(pbx: Pbx, phones: dict[str, Phone]) -> None:
    """A decision the app marks ttl 0 (the callee has rules) is never cached; one without
    rules for the few seconds the app allows (Settings: 2 s), so a rule set later counts at
    once for the first and within seconds for the second."""
    caller, callee = phones["caller"], phones["callee"]
    proxy = SITES["fra"]["proxy_containers"][0]  # where the caller's calls go (FRA1)
    key = f"caller={caller.user}&target={callee.ext}&div=0"
    pbx.rules(callee.ext, {"kind": "unconditional", "target": {"reject": 403}})
    kamcmd(proxy, "htable.delete", "approute", key, check=False)
    assert caller.call(callee.ext).startswith("403")
    assert cached_for(proxy, key) is None, "a decision with rules was cached"

    pbx.rules(callee.ext)
    try:
        assert caller.call(callee.ext).startswith("480")
        held = cached_for(proxy, key)
        assert held is not None, "a decision without rules was not cached"
        assert held <= 3, f"cached for {held:.0f} s more, the app allows 2"
    finally:
        # The next test sets a rule and calls at once: this test's cached decision (2 s, as
        # designed) must not answer that call in the rule's place.
        kamcmd(proxy, "htable.delete", "approute", key, check=False)


def test_unconditional_rule_rejects_with_the_chosen_answer(
    pbx: Pbx, phones: dict[str, Phone]
) -> None:
    caller, callee = phones["caller"], phones["callee"]
    pbx.rules(callee.ext, {"kind": "unconditional", "target": {"reject": 603}})
    callee.register()
    callee.expect("answer")
    assert caller.call(callee.ext).startswith("603")
    assert callee.invited_at() is None, "a rejected call rang the extension"


@pytest.mark.parametrize("open_now", [True, False], ids=["inside-hours", "just-after-closing"])
def test_opening_hours_either_side_of_the_edge(
    pbx: Pbx, phones: dict[str, Phone], open_now: bool
) -> None:
    """Hours set relative to now (Europe/Berlin): within them the extension rings; a minute
    after they ended the schedule rule forwards (Diversion reason time-of-day)."""
    if minutes_to_midnight() < 2:  # hours relative to now need today to last the test
        time.sleep(minutes_to_midnight() * 60 + 1)
    caller, callee, target = phones["caller"], phones["callee"], phones["target"]
    pbx.patch_location_of(callee.ext, opening_hours=hours_today(open_now), state=None)
    pbx.rules(callee.ext, {"kind": "schedule", "target": forward_to(target)})
    callee.register()
    target.register()
    callee.expect("answer")
    target.expect("answer")

    assert caller.call(callee.ext).startswith("200")
    rings, forwarded = (callee, target) if open_now else (target, callee)
    assert rings.invited_at(), f"{rings.ext} did not ring: {rings.log()}"
    assert forwarded.invited_at() is None, f"{forwarded.ext} rang too: {forwarded.log()}"
    if not open_now:
        assert reason(target.diversion()) == "time-of-day", target.diversion()


def _states_by_holiday(today: date) -> tuple[list[str], list[str]]:
    """German states for which today is / is not a public holiday (python holidays, pinned as
    the app's calendar uses it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import holidays
    off = [s for s in sorted(STATES) if today in holidays.Germany(subdiv=s, years=today.year)]
    return off, [s for s in sorted(STATES) if s not in off]


def test_public_holiday_of_the_locations_state(pbx: Pbx, phones: dict[str, Phone]) -> None:
    """Open all day, and the location's state decides: where today is a German public holiday
    (the pinned calendar the app uses), the schedule rule forwards; where it is not, the
    extension rings. Both states are tried on days that are a holiday in some states only; on
    any other day the one kind of state there is (the app's calendar tests cover holiday dates
    with an injected clock: tests/app/test_calendar.py, test_call_rules.py)."""
    today = datetime.now(BERLIN).date()
    off, working = _states_by_holiday(today)
    cases = ([(off[0], True)] if off else []) + ([(working[0], False)] if working else [])
    caller, callee, target = phones["caller"], phones["callee"], phones["target"]
    always = {day: ["00:00-24:00"] for day in WEEKDAYS}
    pbx.rules(callee.ext, {"kind": "schedule", "target": forward_to(target)})
    callee.register()
    target.register()
    for state, holiday in cases:
        pbx.patch_location_of(callee.ext, opening_hours=always, state=state)
        callee.expect("answer")
        target.expect("answer")
        assert caller.call(callee.ext).startswith("200")
        rings, silent = (target, callee) if holiday else (callee, target)
        assert rings.invited_at(), f"{today} in {state}: {rings.ext} did not ring"
        assert silent.invited_at() is None, f"{today} in {state}: {silent.ext} rang"
        if holiday:
            assert reason(target.diversion()) == "time-of-day", target.diversion()
        callee.stop()
        target.stop()


def test_rule_loop_is_refused_on_save(pbx: Pbx, phones: dict[str, Phone]) -> None:
    callee, target = phones["callee"], phones["target"]
    pbx.rules(callee.ext, {"kind": "busy", "target": forward_to(target)})
    r = pbx.put_rules(
        target.ext, [{"kind": "noanswer", "timeout": N, "target": forward_to(callee)}]
    )
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "rule_loop", error
    assert any(callee.ext in step for step in error.get("cycle", [])), error


@pytest.fixture
def other_admin(tenant: dict[str, Any]) -> Iterator[Pbx]:
    """The other customer, as a platform operator manages it."""
    with operator("call-rules-tests@pbx.test") as api:
        other = Pbx(api, int(tenant["other_customer_id"]))
        try:
            yield other
        finally:
            other.put_back()


def test_loop_through_public_numbers_is_cut_at_call_time(
    pbx: Pbx, other_admin: Pbx, phones: dict[str, Phone], tenant: dict[str, Any]
) -> None:
    """Two customers forward to each other's public number: neither save sees the other's
    rules, so the circle exists; a call into it ends with 482 at the caller, and the phone of
    neither extension rings more than once (the app cuts the chain, Kamailio answers)."""
    caller, callee = phones["caller"], phones["callee"]
    loop_back = Phone(caller.box, tenant, OTHERS["loop_back"], 5079, key=OTHER)
    pbx.rules(callee.ext, {"kind": "unconditional", "target": {"external": loop_back.did}})
    other_admin.rules(loop_back.ext, {"kind": "unconditional", "target": {"external": callee.did}})
    status = caller.call(callee.ext, timeout=20)
    assert status.startswith("482"), f"a call into the circle: {status}"
