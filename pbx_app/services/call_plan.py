"""The plan Kamailio carries out for a call to an extension (issue 13): its call rules applied,
chained through further extensions, ring groups and platform numbers, as a list of steps.

Step kinds (the routing contract, GET /internal/v1/route):
- ring: ``{"ring": [aor, ...], "timeout": s, "busy": i, "noanswer": i, "unavailable": i,
  "diversion": "..."}``: fork to every device of the AORs for ``timeout`` seconds (0: the
  platform default); on failure go to step i for its cause, -1 ends with the failure.
- external: ``{"external": "+49...", "caller_id": "+49...", "privacy": bool, "diversion": "..."}``
- reject: ``{"reject": code, "reason": "..."}``

Step 0 is where Kamailio starts. A forwarded step carries the Diversion header value of every
diversion the call took to get there (RFC 5806, newest first, ``counter`` = diversions so
far, counting those the request arrived with, ``div``).

Rules: the entry rules (caller, schedule, unconditional) are tried in order and the first that
applies forwards at once; otherwise the extension rings and its busy, noanswer and unavailable
rules continue. A ring group's members ring their devices (parallel: all in one step; hunt and
round robin: one step each, round robin starting one further per call), then the group's final
target. An external target that is a platform number rings that extension (its own rules apply)
instead of leaving through the trunk.

Loops: a target already on the way to it (an extension or group met again, also through other
customers' numbers) or a diversion beyond MAX_DIVERSIONS becomes a ``reject 482 Loop
Detected`` step; MAX_STEPS bounds a plan whose branches fan out.

Everything is read (one snapshot); only a round robin group's counter is written, through
``rotate``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping

from pbx_app.addressing import aor
from pbx_app.billing_time import local_day
from pbx_app.repositories import head_numbers as head_numbers_repo
from pbx_app.repositories import price_lists as price_lists_repo
from pbx_app.repositories import routing as repo
from pbx_app.services import calendar
from pbx_app.services.access import trial_expired
from pbx_app.services.call_rules import ENTRY_KINDS, REJECT_CODES, caller_matches


def zone_refused(conn: Connection, customer: RowMapping, number: str, now: datetime) -> bool:
    """A service number (a zone of the price list refused unless allowed, R16) for a customer
    that has not allowed them: refused for its callers and for its forwardings alike."""
    if customer["service_numbers_allowed"]:
        return False
    zone = price_lists_repo.in_force_cached(conn, local_day(now)).doc.zone_of(number)
    return zone is not None and zone.refused_unless_allowed


MAX_DIVERSIONS = 5
MAX_STEPS = 64
END = -1
LOOP_DETECTED = 482
REASON_PHRASES = {**REJECT_CODES, LOOP_DETECTED: "Loop Detected"}
# RFC 5806 reasons, per rule kind (a group's final target: no-answer).
DIVERSION_REASONS = {
    "caller": "follow-me",
    "schedule": "time-of-day",
    "unconditional": "unconditional",
    "busy": "user-busy",
    "noanswer": "no-answer",
    "unavailable": "unavailable",
}
CONTINUATIONS = ("busy", "noanswer", "unavailable")

Rotate = Callable[[int, int], int]  # (group id, member count) -> index of the first member
Node = tuple[str, int]


def reject(code: int) -> dict[str, Any]:
    return {"reject": code, "reason": REASON_PHRASES.get(code, "Rejected")}


def no_rotation(group_id: int, members: int) -> int:
    """Round robin without a writable database: every call starts with the first member."""
    return 0


def outside_number(conn: Connection, ext: RowMapping, *, emergency: bool = False) -> str:
    """The number an extension shows outside: its caller_id, else the customer's default, else
    its own DID; the first the customer still holds (a number ported away no longer counts).
    For an emergency call its own DID (in the area of its location) comes first. "" if none."""
    own = (ext["own_caller_id"], ext["default_caller_id"])
    candidates = (ext["did"], *own) if emergency else (*own, ext["did"])
    for number in candidates:
        if number and head_numbers_repo.holding(conn, int(ext["customer_id"]), number):
            return str(number)
    return ""


@dataclass(frozen=True)
class Caller:
    """Who calls. ``customer_id`` None: the carrier (an inbound call, ``number`` its From)."""

    customer_id: int | None
    extension: str | None
    number: Callable[[], str]  # E.164 as shown outside, "" if none (asked only when needed)
    prefix_privacy: bool = False  # #31#: withheld on this call, from everyone
    clir: bool = False  # withheld from other customers

    def privacy(self, customer_id: int) -> bool:
        return self.prefix_privacy or (self.clir and customer_id != self.customer_id)

    def seen_by(self, customer_id: int) -> str:
        """The caller's number as that customer sees it: the extension number inside the own
        customer, else the public number; "" when withheld."""
        if self.privacy(customer_id):
            return ""
        if customer_id == self.customer_id and self.extension:
            return self.extension
        return self.number()


@dataclass(frozen=True)
class Diversion:
    number: str
    reason: str
    counter: int

    def header(self, domain: str) -> str:
        return f"<sip:{self.number}@{domain}>;reason={self.reason};counter={self.counter}"


Chain = tuple[Diversion, ...]  # newest first


@dataclass
class Planner:
    conn: Connection
    caller: Caller
    now: datetime
    domain: str
    div: int = 0
    rotate: Rotate = no_rotation
    steps: list[dict[str, Any]] = field(default_factory=list)
    # The plan depends on rules, the time or a rotation: Kamailio may not cache it.
    dynamic: bool = False
    _numbers: dict[int, str] = field(default_factory=dict)

    # --- entry ----------------------------------------------------------------------------------
    def build(self, ext: RowMapping) -> list[dict[str, Any]]:
        """The steps for a call to ``ext``; step 0 is where the call starts."""
        if self.div > MAX_DIVERSIONS:
            self._add(reject(LOOP_DETECTED))
        else:
            self._extension(ext, (), ())
        return self.steps

    # --- targets --------------------------------------------------------------------------------
    def _extension(self, ext: RowMapping | None, chain: Chain, path: tuple[Node, ...]) -> int:
        if ext is None or trial_expired(ext, self.now):
            return self._add(reject(404))
        node = ("extension", int(ext["id"]))
        if node in path:
            return self._add(reject(LOOP_DETECTED))
        path = (*path, node)
        rules = repo.rules(self.conn, int(ext["id"]))
        if rules:
            self.dynamic = True
        for rule in rules:
            if rule["kind"] in ENTRY_KINDS and self._applies(rule, ext):
                return self._forward(rule, ext, rule["kind"], chain, path)
        later = {r["kind"]: r for r in rules if r["kind"] in CONTINUATIONS}
        noanswer = later.get("noanswer")
        ring = {
            "ring": [aor(int(ext["customer_id"]), str(ext["number"]))],
            "timeout": int(noanswer["timeout_s"]) if noanswer else 0,
            "busy": END,
            "noanswer": END,
            "unavailable": END,
            "diversion": self._diversion(chain),
        }
        index = self._add(ring)
        for kind in CONTINUATIONS:
            if kind in later:
                ring[kind] = self._forward(later[kind], ext, kind, chain, path)
        return index

    def _applies(self, rule: RowMapping, ext: RowMapping) -> bool:
        if rule["kind"] == "caller":
            return caller_matches(str(rule["match"]), self.caller.seen_by(int(ext["customer_id"])))
        if rule["kind"] == "schedule":
            hours = calendar.loads(ext["opening_hours"])
            return not calendar.is_open(hours, ext["state"], self.now)
        return True  # unconditional

    def _forward(
        self,
        target: RowMapping | dict[str, Any],
        diverter: RowMapping,
        kind: str,
        chain: Chain,
        path: tuple[Node, ...],
        prefix: str = "target",
    ) -> int:
        """A diversion by ``diverter`` to the rule's (or group's final) target."""
        counter = self.div + len(chain) + 1
        if counter > MAX_DIVERSIONS or len(self.steps) >= MAX_STEPS:
            return self._add(reject(LOOP_DETECTED))
        reason = DIVERSION_REASONS.get(kind, "no-answer")
        chain = (Diversion(self._number_of(diverter), reason, counter), *chain)
        target_kind = target[f"{prefix}_kind"]
        if target_kind == "extension" and target[f"{prefix}_extension_id"] is not None:
            ext = repo.extension_by_id(self.conn, int(target[f"{prefix}_extension_id"]))
            return self._extension(ext, chain, path)
        if target_kind == "group" and target[f"{prefix}_group_id"] is not None:
            return self._group(int(target[f"{prefix}_group_id"]), diverter, chain, path)
        if target_kind == "external":
            return self._external(str(target[f"{prefix}_value"]), diverter, chain, path)
        if target_kind == "reject":
            return self._add(reject(int(target[f"{prefix}_value"])))
        return self._add(reject(480))  # a group's final extension that is gone

    def _external(
        self, number: str, diverter: RowMapping, chain: Chain, path: tuple[Node, ...]
    ) -> int:
        rows = repo.public_number(self.conn, number)
        owner = repo.did_owner(rows)
        if owner is not None:  # on the platform: that extension's plan, its rules included
            return self._extension(repo.extension_by_id(self.conn, owner), chain, path)
        if rows:
            return self._add(reject(404))  # a platform number that no extension answers
        caller_id = outside_number(self.conn, diverter)
        if not caller_id:
            return self._add(reject(403))  # a customer without numbers cannot call out
        if zone_refused(self.conn, diverter, number, self.now):
            return self._add(reject(403))  # a service number its customer has not allowed
        return self._add(
            {
                "external": number,
                "caller_id": caller_id,
                "privacy": bool(diverter["clir"]),
                "diversion": self._diversion(chain),
            }
        )

    def _group(
        self, group_id: int, diverter: RowMapping, chain: Chain, path: tuple[Node, ...]
    ) -> int:
        node = ("group", group_id)
        group = repo.group(self.conn, group_id)
        if group is None or node in path:
            return self._add(reject(LOOP_DETECTED if group else 480))
        path = (*path, node)
        self.dynamic = True
        rows = repo.group_members(self.conn, group_id)
        members = [aor(int(m["customer_id"]), str(m["number"])) for m in rows]
        rings: list[dict[str, Any]] = []
        if members and group["strategy"] == "parallel":
            rings.append(self._ring(members, group, chain))
        elif members:
            start = 0
            if group["strategy"] == "roundrobin":
                start = self.rotate(group_id, len(members)) % len(members)
            ordered = members[start:] + members[:start]
            rings = [self._ring([m], group, chain) for m in ordered]
        first = len(self.steps)
        for ring in rings:
            index = self._add(ring)
            for cause in CONTINUATIONS:
                ring[cause] = index + 1  # the next member; after the last: the final target
        final = self._forward(group, diverter, "noanswer", chain, path, prefix="final")
        if rings:
            for cause in CONTINUATIONS:
                rings[-1][cause] = final
            return first
        return final

    def _ring(self, aors: list[str], group: RowMapping, chain: Chain) -> dict[str, Any]:
        return {
            "ring": aors,
            "timeout": int(group["member_timeout_s"]),
            "busy": END,
            "noanswer": END,
            "unavailable": END,
            "diversion": self._diversion(chain),
        }

    # --- helpers --------------------------------------------------------------------------------
    def _add(self, step: dict[str, Any]) -> int:
        self.steps.append(step)
        return len(self.steps) - 1

    def _diversion(self, chain: Chain) -> str:
        return ", ".join(d.header(self.domain) for d in chain)

    def _number_of(self, ext: RowMapping) -> str:
        """Who diverted, for the Diversion header: the extension's public number, else its
        extension number."""
        key = int(ext["id"])
        if key not in self._numbers:
            self._numbers[key] = outside_number(self.conn, ext) or str(ext["number"])
        return self._numbers[key]
