"""Find calls in the sites' SIP capture and draw one as a ladder (for SREs: `make capture`).

Each site's monitor stores every SIP message its proxies sent or received (HEP to Kamailio's
sipcapture, monitor/capture.cfg), for `monitoring.capture_hours`. This asks both sites (a dead
one is skipped and named), merges what they saw (a message from one proxy to another is seen
leaving one and entering the other: it counts once, at the earlier time) and prints the call's
messages, or draws them (pbx_infra.ladder).

    python -m pbx_infra.capture --stack lab --call-id ID [--svg call.svg]
    python -m pbx_infra.capture --stack lab --number 4969... [--since 2026-12-03T10:00]

The sites are reached through their Docker hosts (the stack config's docker_host, ssh:// in
production), where `pbx-capture` in the monitor container reads the store.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .lab.declared import stack_config
from .ladder import Message, Trace, render, sip_message
from .platform import LOCAL_DOCKER
from .topology import Platform, ServiceKind, load

TIMEOUT_S = 30


@dataclass(frozen=True)
class Captured:
    """One message as one collector stored it."""

    time: float
    src: str
    sport: int
    dst: str
    dport: int
    text: str

    @classmethod
    def of(cls, row: dict[str, Any]) -> Captured:
        return cls(
            row["micro_ts"] / 1e6,
            row["source_ip"],
            int(row["source_port"]),
            row["destination_ip"],
            int(row["destination_port"]),
            row["msg"],
        )


class CaptureUnavailable(RuntimeError):
    pass


def query(platform: Platform, site: str, *args: str) -> list[dict[str, Any]]:
    """`pbx-capture <args>` in the site's monitor: one dict per JSON line."""
    monitor = platform.instances(ServiceKind.MONITOR, site)[0]
    host = platform.site(site).docker_host or LOCAL_DOCKER
    command = ["docker", "-H", host, "exec", monitor.container_name(platform), "pbx-capture"]
    try:
        done = subprocess.run(
            [*command, *args], capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise CaptureUnavailable(f"{site}: no answer within {TIMEOUT_S} s") from None
    if done.returncode != 0:
        raise CaptureUnavailable(f"{site}: {done.stderr.strip() or done.stdout.strip()}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def gather(platform: Platform, *args: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows from every site that answers, and a note for each that does not."""
    rows, missing = [], []
    for site in platform.sites:
        try:
            rows += query(platform, site.name, *args)
        except CaptureUnavailable as exc:
            missing.append(str(exc))
    return rows, missing


def merge(rows: list[dict[str, Any]]) -> list[Message]:
    """Each message once, at the first time any collector saw it, in time order."""
    first: dict[tuple[str, int, str, int, str], float] = {}
    for c in map(Captured.of, rows):
        key = (c.src, c.sport, c.dst, c.dport, c.text)
        first[key] = min(c.time, first.get(key, c.time))
    messages = []
    for (src, _, dst, _, text), when in sorted(first.items(), key=lambda item: item[1]):
        label, call_id, sdp = sip_message(text)
        messages.append(Message(when, src, dst, "sip", label, call_id, sdp))
    return messages


def names(platform: Platform) -> dict[str, str]:
    """Address -> participant, for every address the platform's nodes hold."""
    found = {}
    for inst in platform.instances():
        name = f"{inst.site} {inst.name.removeprefix(inst.site + '-')}"
        for address in {inst.address, inst.reach, *(a for _, a in inst.networks)}:
            found[str(address)] = name
    for site in platform.sites:
        found[str(platform.sip_vip(site.name))] = f"{site.name} SIP address"
    return found


def ladder(platform: Platform, messages: list[Message]) -> Trace:
    """The call as a ladder: the caller is whoever sent the first INVITE, the callee whoever
    answered it from outside the platform."""
    known = names(platform)
    invites = [m for m in messages if m.label.startswith("INVITE")]
    caller = invites[0].src if invites else (messages[0].src if messages else "")
    # The callee: who answered the INVITE from outside the platform, else where an INVITE left
    # the platform (a call nobody answered).
    answers = [m.src for m in messages if m.label.endswith("(INVITE)") and m.src not in known]
    answers = [a for a in answers if a != caller]
    outside = answers or [m.dst for m in invites if m.dst not in known]
    callee = outside[-1] if outside else ""
    finals = [
        m.label
        for m in messages
        if m.dst == caller and m.label.endswith("(INVITE)") and m.label[:1] in "23456"
    ] or ["(no final answer)"]
    first_site = known.get(invites[0].dst, "").split(" ")[0] if invites else ""
    sites = [s.name for s in platform.sites]
    order = tuple(sorted(sites, key=lambda s: s != first_site))
    participants = known | {caller: "caller"} | ({callee: "callee"} if callee else {})
    return Trace(messages, participants, caller, callee, finals[-1], site_order=order)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pbx_infra.capture", description=__doc__)
    parser.add_argument("--stack", default="lab")
    parser.add_argument("--call-id")
    parser.add_argument("--number", help="from, to or for this number (suffix match)")
    parser.add_argument("--since", help="epoch seconds or ISO 8601 (UTC unless zoned)")
    parser.add_argument("--until")
    parser.add_argument("--svg", type=Path, help="draw the call's ladder here")
    args = parser.parse_args(argv)
    if not (args.call_id or args.number):
        parser.error("give --call-id or --number")
    platform = load(json.loads(stack_config(args.stack)["pbx:platform"]))
    window = [
        a
        for flag in ("since", "until")
        if getattr(args, flag)
        for a in (f"--{flag}", getattr(args, flag))
    ]
    if not args.call_id:
        rows, missing = gather(platform, "calls", "--number", args.number, *window)
        for note in missing:
            print(f"not searched: {note}", file=sys.stderr)
        calls: dict[str, dict[str, Any]] = {}
        for row in rows:  # a call between the sites is in both stores
            calls.setdefault(row["callid"], row)
        for row in sorted(calls.values(), key=lambda r: r["first_ts"]):
            when, who = row["first_ts"] / 1e6, f"{row['from_user']} -> {row['to_user']}"
            print(f"{when:.3f}  {row['callid']}  {who}")
        return 0 if calls else 1
    rows, missing = gather(platform, "search", "--call-id", args.call_id, *window)
    for note in missing:
        print(f"not searched: {note}", file=sys.stderr)
    messages = merge(rows)
    if not messages:
        print(f"no messages of call {args.call_id}", file=sys.stderr)
        return 1
    trace = ladder(platform, messages)
    start = messages[0].time
    for m in messages:
        src, dst = trace.names.get(m.src, m.src), trace.names.get(m.dst, m.dst)
        print(f"{(m.time - start) * 1000:9.1f} ms  {src:>22} -> {dst:<22} {m.label}")
    if args.svg:
        render(trace, args.svg, f"Call {args.call_id}")
        print(f"{args.svg}: {len(messages)} messages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
