"""The path of a call between the sites, message by message, from captures at every proxy.

A phone at ber calls a colleague's phone at fra (labkit/callflow.py traces it; `make callflow`
draws the same trace into docs/call-flow.svg). What the design promises, checked on the wire:
the caller's proxy asks its own site's app how to route, each site's proxy anchors its leg on its
own site's relay, the proxies hand the call to each other, and the hang-up takes the same path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from labkit import callflow
from labkit.callflow import Message, Trace
from labkit.devices import Device, Devices

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def trace(devices: Devices, tenant: dict[str, Any]) -> Trace:
    callee: Device = devices.start("flow-fra", "fra")
    caller: Device = devices.start("flow-ber", "ber")
    return callflow.trace(devices, tenant, callee, caller)


def hops(t: Trace, label: str) -> list[tuple[str, str]]:
    """(from, to) by name of each message whose label starts with `label`, in order."""
    return [(who(t, m.src), who(t, m.dst)) for m in t.messages if m.label.startswith(label)]


def who(t: Trace, address: str) -> str:
    return t.names.get(address, address)


def first(t: Trace, label: str, src: str, dst: str) -> Message:
    return next(
        m
        for m in t.messages
        if m.label.startswith(label) and who(t, m.src) == src and who(t, m.dst) == dst
    )


def test_call_connects(trace: Trace) -> None:
    assert trace.status.startswith("200"), trace.status


def test_invite_and_bye_take_the_path_of_the_bindings(trace: Trace) -> None:
    path = [
        ("phone (ber)", "ber sip-proxy-1"),
        ("ber sip-proxy-1", "fra sip-proxy-1"),
        ("fra sip-proxy-1", "phone (fra)"),
    ]
    authed = hops(trace, "INVITE")[1:]  # the first INVITE is challenged (407)
    assert authed == path, authed
    assert hops(trace, "BYE") == path
    assert hops(trace, "200 OK (BYE)") == [(b, a) for a, b in reversed(path)]


def test_caller_proxy_asks_its_own_sites_app_before_forwarding(trace: Trace) -> None:
    lookups = hops(trace, "route?")
    assert len(lookups) == 1, lookups
    assert lookups[0][0] == "ber sip-proxy-1", lookups
    assert lookups[0][1].startswith("ber pbx-app-"), f"asked another site first: {lookups}"
    asked = first(trace, "route?", "ber sip-proxy-1", lookups[0][1])
    forwarded = first(trace, "INVITE", "ber sip-proxy-1", "fra sip-proxy-1")
    assert asked.time < forwarded.time


def test_each_site_anchors_its_leg_on_its_own_relay(trace: Trace) -> None:
    for site in ("ber", "fra"):
        commands = [
            m.label
            for m in trace.messages
            if m.kind == "ng" and who(trace, m.dst) == f"{site} media-relay-1"
        ]
        assert commands == ["offer", "answer", "delete"], (site, commands)
    # What each phone is told to send media to is its own site's relay; between the proxies the
    # SDP names the relays' backbone side.
    to_callee = first(trace, "INVITE", "fra sip-proxy-1", "phone (fra)")
    to_caller = first(trace, "200 OK (INVITE)", "ber sip-proxy-1", "phone (ber)")
    between = first(trace, "INVITE", "ber sip-proxy-1", "fra sip-proxy-1")
    answer_between = first(trace, "200 OK (INVITE)", "fra sip-proxy-1", "ber sip-proxy-1")
    assert who(trace, to_callee.sdp_address) == "fra media-relay-1", to_callee
    assert who(trace, to_caller.sdp_address) == "ber media-relay-1", to_caller
    assert who(trace, between.sdp_address) == "ber media-relay-1", between
    assert who(trace, answer_between.sdp_address) == "fra media-relay-1", answer_between
    assert between.sdp_address != to_caller.sdp_address, "backbone and site side are one address"


def test_the_picture_names_every_participant(trace: Trace, tmp_path: Path) -> None:
    out = tmp_path / "call-flow.svg"
    callflow.render(trace, out, "test")
    svg = out.read_text()
    for name in {who(trace, a) for m in trace.messages for a in (m.src, m.dst)}:
        assert name.split(" ", 1)[-1] in svg, name
    assert svg.count("route? ") == 1
    assert "BYE" in svg
