"""Call events (CTI): what the proxies report about a call, as each customer involved sees it.

The proxy where a call entered the platform reports it (kamailio.cfg, "CTI events"): ringing
(the first 18x), answered (the first 2xx), held and resumed (a re-INVITE's SDP direction),
transferred (a REFER) and ended (BYE, dialog timeout, or the call's final failure). A report
names the call's parties the way the proxy knows them: the calling device's username (or the
carrier's From number), the customers of both sides from the app's own routing decision, the
AORs the plan rang and the contact that answered. Here each report becomes one event per
customer that has CTI booked, with the direction from that customer's side and its own
extensions only: a customer never learns another's extension ids.

Order and resume: events are stored in one platform-wide ``seq`` order, written under a lock
(pbx_app.repositories.call_events.insert), so a client that saw seq N and asks for what came
after N misses nothing; the same report arriving twice (a resent batch, a second proxy) is
stored once (``event_key``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, RowMapping

from pbx_app.repositories import call_events as repo
from pbx_app.repositories import routing as routing_repo
from pbx_app.services.call_plan import outside_number
from pbx_app.services.devices import AOR
from pbx_app.services.numbering import dialled_to_e164

KINDS = ("ringing", "answered", "held", "resumed", "transferred", "ended")
# Kinds that happen more than once per call: one event per request (its CSeq).
REPEATING = frozenset({"held", "resumed", "transferred"})
CTI_LEVELS = ("none", "standard", "premium")
MAX_TEXT = 255
_CONTACT_USER = re.compile(r"^([^@:;]{1,64})@")


class ReportInvalid(ValueError):
    """A proxy report that cannot be an event (a field missing or malformed)."""


@dataclass(frozen=True)
class Report:
    """One proxy report, validated."""

    kind: str
    call_id: str
    occurred_at: datetime
    source: str  # "device" or "trunk"
    caller: str  # the calling device's username, or the carrier's From user
    caller_id: str  # the number the callee was shown
    customer: int | None  # the calling device's customer
    callee_customer: int | None  # the called customer of a local plan
    dialled: str
    resolved: tuple[str, ...] = ()  # the AORs the current plan step rings
    answered_by: str = ""
    code: int = 0
    reason: str = ""
    refer_to: str = ""
    cseq: str = ""
    node: str = ""

    @property
    def key(self) -> str:
        if self.kind in REPEATING:
            return f"{self.call_id}:{self.kind}:{self.cseq}"
        return f"{self.call_id}:{self.kind}"


def _text(raw: dict[str, Any], name: str, required: bool = False) -> str:
    value = raw.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str | int | float):
        raise ReportInvalid(f"{name}: expected text")
    text = str(value).strip()
    if required and not text:
        raise ReportInvalid(f"{name}: missing")
    if len(text) > MAX_TEXT:
        raise ReportInvalid(f"{name}: longer than {MAX_TEXT} characters")
    return text


def _customer(raw: dict[str, Any], name: str) -> int | None:
    text = _text(raw, name)
    if not text or text == "<null>":
        return None
    if not text.isdigit() or len(text) > 9:
        raise ReportInvalid(f"{name}: expected a customer id")
    return int(text)


def parse(raw: Any) -> Report:
    """A proxy's JSON object as a Report; ReportInvalid names the field at fault."""
    if not isinstance(raw, dict):
        raise ReportInvalid("expected an object")
    kind = _text(raw, "kind", required=True)
    if kind not in KINDS:
        raise ReportInvalid(f"kind: one of {', '.join(KINDS)}")
    source = _text(raw, "source", required=True)
    if source not in ("device", "trunk"):
        raise ReportInvalid("source: device or trunk")
    ts = _text(raw, "ts", required=True)
    try:
        occurred_at = datetime.fromtimestamp(float(ts), UTC).replace(tzinfo=None)
    except (ValueError, OverflowError, OSError):
        raise ReportInvalid("ts: expected seconds since the epoch") from None
    code = _text(raw, "code")
    return Report(
        kind=kind,
        call_id=_text(raw, "call_id", required=True),
        occurred_at=occurred_at,
        source=source,
        caller=_text(raw, "caller"),
        caller_id=_text(raw, "caller_id"),
        customer=_customer(raw, "customer"),
        callee_customer=_customer(raw, "callee_customer"),
        dialled=_text(raw, "dialled"),
        resolved=tuple(a for a in _text(raw, "resolved").split(",") if AOR.fullmatch(a)),
        answered_by=_text(raw, "answered_by"),
        code=int(code) if code.isdigit() and len(code) == 3 else 0,
        reason=_text(raw, "reason")[:128],
        refer_to=_text(raw, "refer_to"),
        cseq=_text(raw, "cseq")[:20],
        node=_text(raw, "node")[:64],
    )


@dataclass
class Party:
    customer_id: int | None
    extension_id: int | None = None
    extension: str = ""


@dataclass
class Event:
    """One customer's event, before it is stored (no seq yet)."""

    customer_id: int
    event_key: str
    kind: str
    call_id: str
    direction: str
    from_number: str
    to_number: str
    caller_extension_id: int | None
    callee_extension_id: int | None
    occurred_at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    crm_number: str = ""  # the number to look up in the customer's CRM (inbound ringing)

    def row(self, now: datetime) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "event_key": self.event_key[:300],
            "kind": self.kind,
            "call_id": self.call_id,
            "direction": self.direction,
            "from_number": self.from_number[:128],
            "to_number": self.to_number[:128],
            "caller_extension_id": self.caller_extension_id,
            "callee_extension_id": self.callee_extension_id,
            "data": json.dumps(self.data, separators=(",", ":"), sort_keys=True),
            "occurred_at": self.occurred_at,
            "created_at": now,
        }


def _caller(conn: Connection, report: Report) -> Party:
    if report.source == "trunk":
        return Party(customer_id=None)
    row = repo.device_extension(conn, report.caller)
    if row is None:
        return Party(customer_id=report.customer)
    return Party(int(row["customer_id"]), int(row["id"]), str(row["number"]))


def _callee(conn: Connection, report: Report) -> Party:
    """The answering device's extension once answered, else the first AOR the plan rings."""
    match = _CONTACT_USER.match(report.answered_by)
    if match:
        row = repo.device_extension(conn, match.group(1))
        if row is not None:
            return Party(int(row["customer_id"]), int(row["id"]), str(row["number"]))
    for aor in report.resolved:
        m = AOR.fullmatch(aor)
        assert m is not None  # parse() kept AORs only
        row = repo.extension(conn, int(m.group(1)), m.group(2))
        if row is not None:
            return Party(int(row["customer_id"]), int(row["id"]), str(row["number"]))
    return Party(customer_id=report.callee_customer)


def _outside_number(conn: Connection, username: str) -> str:
    me = routing_repo.caller(conn, username)
    return outside_number(conn, me) if me is not None else ""


def events_for(conn: Connection, report: Report) -> list[Event]:
    """The report as the events of each customer involved that has CTI booked."""
    caller, callee = _caller(conn, report), _callee(conn, report)
    if callee.customer_id is None:
        callee.customer_id = report.callee_customer
    customers = {c for c in (caller.customer_id, callee.customer_id) if c is not None}
    levels = repo.cti_levels(conn, customers)
    events = []
    for customer_id in sorted(customers):
        if levels.get(customer_id, "none") == "none":
            continue
        if caller.customer_id == callee.customer_id:
            direction = "internal"
        elif customer_id == caller.customer_id:
            direction = "outbound"
        else:
            direction = "inbound"
        if direction == "internal":
            from_number = caller.extension or report.caller_id
        elif report.source == "trunk":
            from_number = dialled_to_e164(report.caller) or report.caller_id or report.caller
        elif direction == "inbound":
            # Another customer's phone: its public number, never its internal username.
            from_number = _outside_number(conn, report.caller) or "anonymous"
        else:
            from_number = report.caller_id or caller.extension
        to_number = callee.extension if direction == "internal" else report.dialled
        data: dict[str, Any] = {}
        if report.kind == "ended" and report.code:
            data.update(code=report.code, reason=report.reason)
        if report.kind == "transferred":
            data["refer_to"] = report.refer_to
        events.append(
            Event(
                customer_id=customer_id,
                event_key=report.key,
                kind=report.kind,
                call_id=report.call_id,
                direction=direction,
                from_number=from_number,
                to_number=to_number,
                caller_extension_id=caller.extension_id
                if caller.customer_id == customer_id
                else None,
                callee_extension_id=callee.extension_id
                if callee.customer_id == customer_id
                else None,
                occurred_at=report.occurred_at,
                data=data,
                crm_number=from_number
                if direction == "inbound" and report.kind == "ringing"
                else "",
            )
        )
    return events


def public(row: RowMapping) -> dict[str, Any]:
    """An event as clients get it (WebSocket, HTTP, webhooks)."""
    data = json.loads(row["data"] or "{}")
    return {
        "seq": int(row["seq"]),
        "kind": row["kind"],
        "call_id": row["call_id"],
        "direction": row["direction"],
        "from_number": row["from_number"],
        "to_number": row["to_number"],
        "caller_extension_id": row["caller_extension_id"],
        "callee_extension_id": row["callee_extension_id"],
        "customer_id": int(row["customer_id"]),
        "occurred_at": row["occurred_at"].isoformat(timespec="milliseconds") + "Z",
        "crm": data.get("crm"),
        "code": data.get("code"),
        "reason": data.get("reason"),
        "refer_to": data.get("refer_to"),
    }


@dataclass(frozen=True)
class Scope:
    """Whose events a reader sees: a customer's, or only those of some of its extensions."""

    customer_id: int
    extension_ids: frozenset[int] | None = None  # None: all of the customer's

    def sees(self, row: RowMapping | dict[str, Any]) -> bool:
        if int(row["customer_id"]) != self.customer_id:
            return False
        if self.extension_ids is None:
            return True
        return (
            row["caller_extension_id"] in self.extension_ids
            or row["callee_extension_id"] in self.extension_ids
        )
