"""One call across the sites, captured at every proxy and drawn as a ladder diagram.

A phone on site ber calls an extension whose phone is registered on site fra. tcpdump runs in each
proxy's network namespace and records SIP, the proxies' route lookups at the app (HTTP) and their
rtpengine control messages (ng). The captures are merged into the call's message sequence: a
message seen leaving one proxy and entering another counts once, at the earlier time; all
namespaces share this machine's clock.

    make callflow    -> docs/call-flow.svg (needs the running lab)

tests/sip/test_call_flow.py asserts the path on the same trace.

    python -m labkit.callflow docs/call-flow.svg
"""

from __future__ import annotations

import json
import re
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import dpkt

from pbx_infra.ladder import Message, Trace, render, sip_message

from .control import kamcmd
from .devices import Device, Devices, device_creds, extension_of
from .docker import docker
from .lab import ALL_PROXIES, PLATFORM, PORTS, SITES, load_tenant
from .leases import lease

DEVICES = lease("call flow (make callflow, tests/sip/test_call_flow.py)", caller=48, callee=49)
CALLER_PROXY, CALLEE_PROXY = SITES["ber"]["proxies"][0], SITES["fra"]["proxies"][0]
CALLER_PROXY_CONTAINER = SITES["ber"]["proxy_containers"][0]
SIP_PORT, NG_PORT, APP_PORT = PORTS.sip, PORTS.rtpengine_ng, PORTS.app
CAPTURE_FILTER = f"port {SIP_PORT} or port {NG_PORT} or port {APP_PORT}"


# ---- capture ----------------------------------------------------------------------------------


def start_captures(devices: Devices, directory: Path) -> list[str]:
    """tcpdump (pcap, Linux cooked v1 for every interface) in each proxy's network namespace.
    Immediate mode: packets still in a kernel buffer block would be lost when tcpdump stops."""
    tcpdump = ["-i", "any", "-y", "LINUX_SLL", "--immediate-mode", "-U", "-Z", "root", "-nn"]
    return [
        devices.tcpdump(
            f"flow-{proxy.removeprefix(PLATFORM.name + '-')}",
            proxy,
            *tcpdump,
            "-w",
            f"/cap/{proxy}.pcap",
            CAPTURE_FILTER,
            volumes=(f"{directory}:/cap",),
        )
        for proxy in ALL_PROXIES
    ]


def read_pcap(path: Path) -> list[tuple[float, str, int, str, int, bytes]]:
    """(time, source, source port, destination, destination port, payload) per packet."""
    packets = []
    with path.open("rb") as f:
        for ts, buf in dpkt.pcap.Reader(f):
            ip = dpkt.sll.SLL(buf).data
            if not isinstance(ip, dpkt.ip.IP) or not isinstance(
                ip.data, dpkt.udp.UDP | dpkt.tcp.TCP
            ):
                continue
            seg = ip.data
            if seg.data:
                packets.append(
                    (ts, socket.inet_ntoa(ip.src), seg.sport, socket.inet_ntoa(ip.dst), seg.dport,
                     bytes(seg.data))
                )  # fmt: skip
    return packets


# ---- decoding ---------------------------------------------------------------------------------


def _bencoded(text: str, key: str) -> str:
    """The string value of `key` in a flat bencoded dictionary ("" when absent)."""
    m = re.search(rf"{len(key)}:{key}(\d+):", text)
    return text[m.end() : m.end() + int(m.group(1))] if m else ""


def ng_message(payload: bytes) -> tuple[str, str, str]:
    """(cookie, label, call-id) of an rtpengine ng request or reply (bencoded)."""
    cookie, _, body = payload.partition(b" ")
    text = body.decode(errors="replace")
    # A reply's result can sit beyond the first IP fragment (a delete's statistics are long).
    label = _bencoded(text, "command") or f"→ {_bencoded(text, 'result') or 'reply'}"
    return cookie.decode(errors="replace"), label, _bencoded(text, "call-id")


def decode(packets: list[tuple[float, str, int, str, int, bytes]]) -> list[Message]:
    """Every SIP, ng and route-lookup message once, in time order."""
    first_seen: dict[tuple[str, int, str, int, bytes], float] = {}
    for ts, src, sport, dst, dport, payload in packets:
        key = (src, sport, dst, dport, payload)
        first_seen[key] = min(ts, first_seen.get(key, ts))
    messages = []
    ng_calls: dict[str, str] = {}  # cookie -> call-id: replies carry only the cookie
    for (src, sport, dst, dport, payload), ts in sorted(first_seen.items(), key=lambda i: i[1]):
        if SIP_PORT in (sport, dport):
            text = payload.decode(errors="replace")
            if not re.match(r"^(SIP/2\.0 \d{3}|[A-Z]+ \S+ SIP/2\.0)", text):
                continue  # keepalives
            label, call_id, sdp = sip_message(text)
            messages.append(Message(ts, src, dst, "sip", label, call_id, sdp))
        elif NG_PORT in (sport, dport):
            cookie, label, call_id = ng_message(payload)
            call_id = ng_calls.setdefault(cookie, call_id) or call_id
            messages.append(Message(ts, src, dst, "ng", label, call_id))
        elif APP_PORT in (sport, dport):
            line = payload.split(b"\r\n", 1)[0].decode(errors="replace")
            if line.startswith("GET "):
                target = re.search(r"[?&]target=([^& ]+)", line)
                label = f"route? {target.group(1) if target else line[4:40]}"
                connection = f"{src}:{sport}>{dst}:{dport}"
            elif line.startswith("HTTP/"):
                body = payload.split(b"\r\n\r\n", 1)[-1].decode(errors="replace")
                action = re.search(r'"action"\s*:\s*"([^"]+)"', body)
                label = f"{line.split(' ', 2)[1]} {action.group(1) if action else ''}".strip()
                connection = f"{dst}:{dport}>{src}:{sport}"
            else:
                continue
            # A lookup is tied to its call by time and target; a reply to its request by the
            # (kept-alive) connection: client>server.
            messages.append(Message(ts, src, dst, "http", label, connection))
    return messages


def the_call(messages: list[Message], caller: str, callee_extension: str) -> list[Message]:
    """The messages of the first call the caller placed: its SIP, ng and route lookups."""
    invite = next(
        m for m in messages if m.kind == "sip" and m.src == caller and m.label.startswith("INVITE")
    )
    call_id = invite.call_id
    end = max(m.time for m in messages if m.call_id == call_id)
    flow = []
    ours: dict[str, bool] = {}  # connection -> whether its latest request was this call's
    for m in messages:
        if m.kind == "http":
            if m.label.startswith("route?"):
                ours[m.call_id] = invite.time <= m.time <= end and m.label.endswith(
                    f" {callee_extension}"
                )
            if ours.get(m.call_id):
                flow.append(m)
        elif m.call_id == call_id:
            flow.append(m)
    return flow


def participants() -> dict[str, str]:
    """Address -> name ("ber sip-proxy-1") of every lab container, on each of its networks."""
    names = {}
    label = f"label=pbx.platform={PLATFORM.name}"
    ids = docker("ps", "-q", "--filter", label, check=True).stdout.split()
    for info in json.loads(docker("inspect", *ids, check=True).stdout):
        name = info["Name"].lstrip("/").removeprefix(f"{PLATFORM.name}-")
        site, _, service = name.partition("-")
        for net in info["NetworkSettings"]["Networks"].values():
            if net.get("IPAddress"):
                names[net["IPAddress"]] = f"{site} {service}"
    return names


# ---- one traced call --------------------------------------------------------------------------


def trace(
    devices: Devices, tenant: dict[str, Any], callee_dev: Device, caller_dev: Device
) -> Trace:
    """Register the callee at fra, call it from ber with every proxy capturing; return the call."""
    callee_user, callee_pw = device_creds(tenant, DEVICES["callee"])
    caller_user, caller_pw = device_creds(tenant, DEVICES["caller"])
    extension = extension_of(tenant, DEVICES["callee"])
    with tempfile.TemporaryDirectory(prefix="pbx-callflow-") as tmp:
        directory = Path(tmp)
        captures = start_captures(devices, directory)
        try:
            # Drop a cached routing decision, so the picture shows the app being asked.
            cache_key = f"{caller_user}>{extension}"
            kamcmd(CALLER_PROXY_CONTAINER, "htable.delete", "approute", cache_key, check=False)
            registered = callee_dev.register(callee_user, callee_pw, CALLEE_PROXY, port=5070)
            assert registered.startswith("200"), f"REGISTER {callee_user}: {registered}"
            callee_dev.answer(port=5070)
            status = caller_dev.call(extension, caller_user, caller_pw, CALLER_PROXY, hold_ms=500)
        finally:
            for name in captures:
                docker("stop", "-t", "5", name)
            callee_dev.register(callee_user, callee_pw, CALLEE_PROXY, port=5070, expires=0)
        packets = [p for pcap in sorted(directory.glob("*.pcap")) for p in read_pcap(pcap)]
    names = participants() | {caller_dev.ip: "phone (ber)", callee_dev.ip: "phone (fra)"}
    flow = the_call(decode(packets), caller_dev.ip, extension)
    return Trace(flow, names, caller_dev.ip, callee_dev.ip, status, site_order=("ber", "fra"))


# ---- the picture ------------------------------------------------------------------------------


def main(out: str) -> int:
    tenant = load_tenant()
    devices = Devices()
    try:
        callee_dev = devices.start("flow-fra", "fra")
        caller_dev = devices.start("flow-ber", "ber")
        t = trace(devices, tenant, callee_dev, caller_dev)
    finally:
        devices.remove_all()
    if not t.status.startswith("200"):
        print(f"the call failed: {t.status}", file=sys.stderr)
        return 1
    render(t, Path(out), "A call from a phone at ber to a colleague's phone at fra")
    print(f"{out}: {len(t.messages)} messages, {t.messages[-1].time - t.messages[0].time:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/call-flow.svg"))
