"""Routing decisions for Kamailio (GET /internal/v1/route): where may this device's call go?

Decisions (always an answer, never an error, for any caller/target text; each with ``ttl``,
the seconds Kamailio may cache it, 0 for anything that depends on rules, time, rotation or an
emergency, or on Diversions the request arrived with):

- ``local``: the target is an extension of the caller's own customer (by extension number, by
  its address of record ``c<customer>x<extension>``, or by one of its device usernames), or a
  public number (DID) of ANY customer on the platform that maps to an extension. The answer
  carries the extension's AOR, the owning customer, its SRTP policy (R2), ``privacy`` (the
  caller withholds the number) and the ``steps`` of its call plan (its rules applied:
  pbx_app.services.call_plan).
- ``external``: a public number (national ``0...``, international ``00...`` or E.164 ``+...``)
  that is not in any head number block of the platform: to the carrier, with a caller ID the
  customer holds (pbx_app.services.call_plan.outside_number) and ``privacy``.
- ``external`` with ``emergency: true``: 110 (police) and 112 (fire, ambulance) from any known
  device, whatever its customer's state, numbers, rules or CLIR, and ahead of any extension of
  that number: to the carrier, with the caller's own DID if it has one (else ""), the area code
  and the address of the caller's location, so the carrier reaches the responsible centre.
- ``reject 403``: the caller is not an active device, or the target is another customer's
  internal address (its AOR, a device username). Tenant isolation: another customer's
  extensions are reachable only through their public numbers. Also an external call of a
  customer without any number of its own, and a call to a service number (a zone of the price
  list refused unless allowed) of a customer that has not allowed them.
- inbound (caller ``carrier``, the trunk): a platform DID gets the same plan as an internal call
  to its extension (caller rules see the carrier's From, ``from``); a number in a platform block
  that no extension answers is 404, anything else 403 (no transit via the PBX).
- ``local`` with ``fax`` steps: the target is a fax number of a customer with eFax (from the
  carrier, a device or a fax gateway): the site's fax gateways answer it, the proxy's own
  site's first (steps ``{"fax_number": N, "gateway": 0}``, then ``"gateway": 1``: indexes into
  the proxy's gateway list, PBX_EFAX_GATEWAYS, so the app need not know which proxy asks).
- a fax gateway's outgoing call (caller ``fax:<fax number>``): out to the carrier with that
  number as caller ID, or to the platform number it dials as a carrier call would reach it.
- ``reject 404``: no such extension of the caller's customer; a number inside a platform block
  that no extension answers; a customer whose trial or contract has ended; anything that is not
  a number.
- ``reject 482 Loop Detected``: the request arrived diverted more than MAX_DIVERSIONS times, or
  the plan's first step would loop.

The prefix ``#31#`` before the target withholds the caller's number for this call (CLIR); an
extension's ``clir`` withholds it on calls that leave the customer. Never for emergency calls.

DID rule (R13): a public number N reaches extension X of customer C if
  1. N is X's geo_number (assigned explicitly; the app keeps it inside one of C's head number
     blocks in the area of X's location), or else
  2. N = H + S for a head number H of C whose block has 10**k numbers, S has exactly k digits,
     S is the number of an extension X at H's location, and X has no geo_number of its own.
     Example: head number +496912345 (069 1234 5) with a 1,000 block and extension 100 give
     DID +496912345100, dialled nationally as 06912345100.
The caller ID of an outgoing call is the extension's caller_id, else the customer's
default_caller_id, else its DID by the same rule, else the customer's first head number (one at
the extension's location first): the first of these the customer still holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, RowMapping

from pbx_app.addressing import (
    CARRIER_CALLER,
    EMERGENCY_NUMBERS,
    FAX_CALLER_PREFIX,
    PRIVACY_PREFIX,
    aor,
)
from pbx_app.billing_time import local_day
from pbx_app.repositories import routing as repo
from pbx_app.services.access import trial_expired
from pbx_app.services.call_plan import (
    Caller,
    Planner,
    Rotate,
    no_rotation,
    outside_number,
    zone_refused,
)
from pbx_app.services.devices import AOR, SIP_USERNAME
from pbx_app.services.extensions import EXTENSION_NUMBER
from pbx_app.services.locations import address
from pbx_app.services.numbering import dialled_to_e164

FORBIDDEN: dict[str, Any] = {"action": "reject", "code": 403, "reason": "Forbidden"}
NOT_FOUND: dict[str, Any] = {"action": "reject", "code": 404, "reason": "Not Found"}
DEFAULT_TTL = 2
# A decision's member the internal API takes out before answering: (CRM URL template, number).
CRM_PREFETCH = "_crm_prefetch"


@dataclass(frozen=True)
class Context:
    """What a decision needs besides the database: the time, the SIP domain (Diversion
    headers), the cache time of decisions that may be cached, the round robin counter."""

    now: datetime
    domain: str = "pbx.lab"
    ttl: int = DEFAULT_TTL
    div: int = 0
    rotate: Rotate = no_rotation


def _active(row: RowMapping, now: datetime) -> bool:
    """Neither an expired trial (R19) nor a contract that ended after a notice (R18)."""
    ended = row["contract_ends_on"]
    return not trial_expired(row, now) and (ended is None or local_day(now) <= ended)


def _local(
    conn: Connection, row: RowMapping | None, caller: Caller, ctx: Context
) -> dict[str, Any]:
    if row is None or row["number"] is None or not _active(row, ctx.now):
        return dict(NOT_FOUND)
    planner = Planner(conn, caller, ctx.now, ctx.domain, ctx.div, ctx.rotate)
    steps = planner.build(row)
    ttl = 0 if planner.dynamic or ctx.div else ctx.ttl
    first = steps[0]
    if "reject" in first:  # a loop, or a rule that rejects at once: no plan to carry out
        return {"action": "reject", "code": first["reject"], "reason": first["reason"], "ttl": 0}
    customer_id = int(row["customer_id"])
    answer = {
        "action": "local",
        "aor": aor(customer_id, str(row["number"])),
        "customer_id": customer_id,
        "srtp_required": bool(row["srtp_required"]),
        "ttl": ttl,
        "privacy": caller.privacy(customer_id),
        "steps": steps,
    }
    if row["cti"] != "none":
        answer["cti"] = 1
        # An outside caller: the callee's CRM is asked now, before the phone rings (the
        # internal API starts it; pbx_app.crm).
        if (
            row["cti"] == "premium"
            and row["crm_url_template"]
            and caller.customer_id != customer_id
        ):
            answer[CRM_PREFETCH] = (row["crm_url_template"], caller.number())
    return answer


def _from_carrier(from_user: str) -> Caller:
    number = dialled_to_e164(from_user) or ""
    return Caller(customer_id=None, extension=None, number=lambda: number)


# How long a fax gateway may take to answer before the other site's is tried.
FAX_ANSWER_S = 8


def _fax(conn: Connection, number: str, ctx: Context) -> dict[str, Any] | None:
    """The plan for a call to a fax number: the proxy's own site's gateway, then the other's.
    None when ``number`` is no fax number; 404 while its customer has no eFax or no contract."""
    row = repo.fax_number(conn, number)
    if row is None:
        return None
    if not row["efax"] or not _active(row, ctx.now):
        return dict(NOT_FOUND)
    # relay_t38: the relay turns the caller's G.711 into T.38 towards the gateway.
    relay = {"relay_t38": 1} if row["relay_t38"] else {}
    first = {"fax_number": number, "gateway": 0, "timeout": FAX_ANSWER_S, **relay}
    first.update(busy=1, noanswer=1, unavailable=1)
    return {
        "action": "local",
        "aor": "fax",
        "customer_id": int(row["customer_id"]),
        "srtp_required": False,
        "privacy": False,
        "ttl": ctx.ttl,
        "steps": [
            first,
            {"fax_number": number, "gateway": 1, "timeout": FAX_ANSWER_S, **relay},
        ],
    }


def from_fax_gateway(
    conn: Connection, our_number: str, target: str, ctx: Context
) -> dict[str, Any]:
    """A fax gateway calls out for the customer of fax number ``our_number``: a platform
    number is reached as a carrier's call would reach it, anything else goes to the carrier
    with that number as the caller ID."""
    row = repo.fax_number(conn, our_number)
    if row is None or not row["efax"] or not _active(row, ctx.now):
        return dict(FORBIDDEN)
    number = dialled_to_e164(target) or (target if target.startswith("+") else None)
    if number is None:
        return dict(NOT_FOUND)
    if repo.public_number(conn, number) or repo.fax_number(conn, number):
        return inbound(conn, number, our_number, ctx)
    return {"action": "external", "number": number, "caller_id": our_number, "privacy": False}


def inbound(conn: Connection, target: str, from_user: str, ctx: Context) -> dict[str, Any]:
    """A call from the carrier: a platform DID reaches its extension, a fax number the fax
    gateways; nothing else transits."""
    number = dialled_to_e164(target) or (target if target.startswith("+") else None)
    if number is None:
        return dict(NOT_FOUND)
    fax = _fax(conn, number, ctx)
    if fax is not None:
        return fax
    rows = repo.public_number(conn, number)
    owner = repo.did_owner(rows)
    if owner is not None:
        return _local(conn, repo.extension_by_id(conn, owner), _from_carrier(from_user), ctx)
    return dict(NOT_FOUND) if rows else dict(FORBIDDEN)


def emergency(conn: Connection, me: RowMapping, number: str) -> dict[str, Any]:
    """Out to the carrier whatever else holds; the caller's own DID if it has one, and always
    the area and address of its location."""
    return {
        "action": "external",
        "number": number,
        "emergency": True,
        "caller_id": outside_number(conn, me, emergency=True),
        "area_code": str(me["area_code"]),
        "location": address(me),
        "privacy": False,
        "ttl": 0,
    }


def decide(
    conn: Connection, caller: str, target: str, ctx: Context, from_user: str = ""
) -> dict[str, Any]:
    """``from_user``: the From user of a carrier call (caller rules match it). Every answer
    carries ``ttl``."""
    if caller == CARRIER_CALLER:
        answer = inbound(conn, target, from_user, ctx)
    elif caller.startswith(FAX_CALLER_PREFIX):
        answer = from_fax_gateway(conn, caller[len(FAX_CALLER_PREFIX) :], target, ctx)
    else:
        me = repo.caller(conn, caller) if SIP_USERNAME.fullmatch(caller) else None
        answer = _from_device(conn, me, caller, target, ctx)
        if me is not None and me["cti"] != "none" and answer.get("action") != "reject":
            answer["cti"] = 1
    answer.setdefault("ttl", 0 if ctx.div else ctx.ttl)
    return answer


def _from_device(
    conn: Connection, me: RowMapping | None, caller: str, target: str, ctx: Context
) -> dict[str, Any]:
    if not SIP_USERNAME.fullmatch(caller):
        return dict(FORBIDDEN)
    private = target.startswith(PRIVACY_PREFIX)
    if private:
        target = target[len(PRIVACY_PREFIX) :]
    if me is not None and target in EMERGENCY_NUMBERS:
        return emergency(conn, me, target)
    if me is None or not _active(me, ctx.now):
        return dict(FORBIDDEN)
    customer_id = int(me["customer_id"])

    @cache
    def my_number() -> str:
        return outside_number(conn, me)

    who = Caller(customer_id, str(me["number"]), my_number, private, bool(me["clir"]))

    # 1. an extension number of the caller's own customer
    if EXTENSION_NUMBER.fullmatch(target):
        return _local(conn, repo.extension(conn, customer_id, target), who, ctx)

    # 2. a public number: some customer's DID, a platform number nobody answers, or the carrier
    number = dialled_to_e164(target)
    if number is not None:
        fax = _fax(conn, number, ctx)
        if fax is not None:  # a fax machine on an ATA sends to a fax number of the platform
            return fax
        rows = repo.public_number(conn, number)
        owner = repo.did_owner(rows)
        if owner is not None:
            return _local(conn, repo.extension_by_id(conn, owner), who, ctx)
        if rows:  # inside a head number block of the platform, but no extension answers
            return dict(NOT_FOUND)
        if not my_number():  # a customer without any number cannot call out
            return dict(FORBIDDEN)
        if zone_refused(conn, me, number, ctx.now):
            return dict(FORBIDDEN)
        return {
            "action": "external",
            "number": number,
            "caller_id": my_number(),
            "privacy": private or bool(me["clir"]),
        }

    # 3. an internal address: an AOR or a device username; only within the own customer
    match = AOR.fullmatch(target)
    if match:
        if int(match.group(1)) != customer_id:
            return dict(FORBIDDEN)
        return _local(conn, repo.extension(conn, customer_id, match.group(2)), who, ctx)
    if SIP_USERNAME.fullmatch(target):
        row = repo.device_extension(conn, target)
        if row is None:
            return dict(NOT_FOUND)
        if int(row["customer_id"]) != customer_id:
            return dict(FORBIDDEN)
        return _local(conn, row, who, ctx)
    return dict(NOT_FOUND)
