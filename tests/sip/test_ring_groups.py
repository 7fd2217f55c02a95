"""Ring groups with real phones (sipp) against the lab: parallel (every member at once), linear
hunt (one after the other, each for the member timeout), round robin (the first member
advances per call), and the final target when nobody answers. A group is reached through an
extension whose unconditional rule forwards to it (groups have no number of their own)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from labkit.devices import Device, Devices
from labkit.leases import lease
from labkit.portal import login

from .rules_kit import RING_TOLERANCE, Pbx, Phone, fresh_bindings, reason

# Every call placed here gets its call record (issue 13; tests/sip/conftest.py).
pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("calls_recorded")]

DEVICES = lease("ring groups", caller=18, entry=19, first=21, second=22, final=23)
T = 5  # member timeout under test (s): the shortest a group may have


@pytest.fixture(scope="module")
def box(devices: Devices) -> Device:
    return devices.start("groups", "fra")


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
    found = {
        role: Phone(box, tenant, DEVICES[role], 5081 + i)
        for i, role in enumerate(("caller", "entry", "first", "second", "final"))
    }
    with fresh_bindings(*found.values()):
        try:
            yield found
        finally:
            pbx.put_back()


def via_group(pbx: Pbx, phones: dict[str, Phone], **group: Any) -> int:
    """A group of the first and second phone's extensions; the entry extension forwards to
    it. The members are registered."""
    group.setdefault("members", [phones["first"].ext, phones["second"].ext])
    group_id = pbx.group(**group)
    pbx.rules(phones["entry"].ext, {"kind": "unconditional", "target": {"group": group_id}})
    for member in ("first", "second"):
        phones[member].register()
    return group_id


def test_parallel_group_rings_every_member_at_once(pbx: Pbx, phones: dict[str, Phone]) -> None:
    caller, first, second = phones["caller"], phones["first"], phones["second"]
    via_group(pbx, phones, strategy="parallel", member_timeout=T)
    first.expect("ring")
    second.expect("answer")

    assert caller.call(phones["entry"].ext).startswith("200")
    rang, answered = first.invited_at(), second.invited_at()
    assert rang, f"the first member did not ring: {first.log()}"
    assert answered, f"the second member did not ring: {second.log()}"
    assert abs(rang - answered) < 1, f"members rang {abs(rang - answered):.2f} s apart"
    assert first.cancelled_at(), "the other member kept ringing after the answer"
    assert reason(second.diversion()) == "unconditional", second.diversion()


def test_hunt_group_tries_the_next_member_after_the_member_timeout(
    pbx: Pbx, phones: dict[str, Phone]
) -> None:
    caller, first, second = phones["caller"], phones["first"], phones["second"]
    via_group(pbx, phones, strategy="hunt", member_timeout=T)
    first.expect("ring")
    second.expect("answer")

    assert caller.call(phones["entry"].ext).startswith("200")
    rang, cancelled, next_member = first.invited_at(), first.cancelled_at(), second.invited_at()
    assert rang, f"the first member did not ring: {first.log()}"
    assert cancelled, f"the first member was not cancelled: {first.log()}"
    assert next_member, f"the second member did not ring: {second.log()}"
    assert abs(cancelled - rang - T) <= RING_TOLERANCE, f"first rang {cancelled - rang:.3f} s"
    assert abs(next_member - rang - T) <= RING_TOLERANCE, (
        f"second member after {next_member - rang:.3f} s, not {T}"
    )


def test_round_robin_group_starts_with_the_next_member_each_call(
    pbx: Pbx, phones: dict[str, Phone]
) -> None:
    """Both members answer at once: whoever rings first takes the call. Two calls in a row
    start at different members."""
    caller, first, second = phones["caller"], phones["first"], phones["second"]
    via_group(pbx, phones, strategy="roundrobin", member_timeout=T)
    answered_by = []
    for _ in range(2):
        first.expect("answer")
        second.expect("answer")
        assert caller.call(phones["entry"].ext).startswith("200")
        took = [p.ext for p in (first, second) if p.invited_at()]
        assert len(took) == 1, f"round robin rang {took} at once"
        answered_by.append(took[0])
    assert answered_by[0] != answered_by[1], f"both calls started at {answered_by[0]}"


def test_final_target_when_no_member_answers(pbx: Pbx, phones: dict[str, Phone]) -> None:
    caller, first, second, final = (phones[r] for r in ("caller", "first", "second", "final"))
    via_group(pbx, phones, strategy="parallel", member_timeout=T, final={"extension": final.ext})
    final.register()
    first.expect("ring")
    second.expect("ring")
    final.expect("answer")

    assert caller.call(phones["entry"].ext).startswith("200")
    rang, reached = first.invited_at(), final.invited_at()
    assert rang, f"the members did not ring: {first.log()}"
    assert reached, f"the final target did not ring: {final.log()}"
    assert first.cancelled_at(), "the first member kept ringing"
    assert second.cancelled_at(), "the second member kept ringing"
    assert abs(reached - rang - T) <= RING_TOLERANCE, f"final target after {reached - rang:.3f} s"
    assert reason(final.diversion()) == "no-answer", final.diversion()


def test_group_without_final_target_ends_with_480(pbx: Pbx, phones: dict[str, Phone]) -> None:
    """No final target: the default, reject 480, once every member failed (here: busy)."""
    caller, first, second = phones["caller"], phones["first"], phones["second"]
    via_group(pbx, phones, strategy="hunt", member_timeout=T)
    first.expect("refuse")
    second.expect("refuse")
    assert caller.call(phones["entry"].ext).startswith("480")
    assert first.invited_at(), first.log()
    assert second.invited_at(), "a busy member did not pass the call on to the next"
