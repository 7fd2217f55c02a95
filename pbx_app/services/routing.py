"""Routing decisions for Kamailio (GET /internal/v1/route): where may this device's call go?

Decisions (always an answer, never an error, for any caller/target text):

- ``local``: the target is an extension of the caller's own customer (by extension number, by
  its address of record ``c<customer>x<extension>``, or by one of its device usernames), or a
  public number (DID) of ANY customer on the platform that maps to an extension. The answer
  carries the extension's AOR (the user part Kamailio's ``lookup`` uses), the owning customer and
  its SRTP policy (R2).
- ``external``: a public number (national ``0...``, international ``00...`` or E.164 ``+...``)
  that is not in any head number block of the platform: to the carrier, from the caller's DID.
- ``external`` with ``emergency: true``: 110 (police) and 112 (fire, ambulance) from any known
  device, whatever its customer's state or numbers, and ahead of any extension of that number:
  to the carrier, from the caller's DID, which lies in the area of the caller's location (R13),
  so the carrier can route the call to the responsible emergency centre.
- ``reject 403``: the caller is not an active device, or the target is another customer's
  internal address (its AOR, a device username). Tenant isolation: another customer's
  extensions are reachable only through their public numbers.
- inbound (caller ``carrier``, the trunk): a platform DID reaches its extension, a number in a
  platform block that no extension answers is 404, anything else 403 (no transit via the PBX).
- ``reject 404``: no such extension of the caller's customer; a number inside a platform block
  that no extension answers; a customer whose trial has ended; anything that is not a number.

DID rule (R13): a public number N reaches extension X of customer C if
  1. N is X's geo_number (assigned explicitly; the app keeps it inside one of C's head number
     blocks in the area of X's location), or else
  2. N = H + S for a head number H of C whose block has 10**k numbers, S has exactly k digits,
     S is the number of an extension X at H's location, and X has no geo_number of its own.
     Example: head number +496912345 (069 1234 5) with a 1,000 block and extension 100 give
     DID +496912345100, dialled nationally as 06912345100.
The caller ID of an outgoing call is the caller extension's DID by the same rule, else the
customer's first head number (one at the extension's location first).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping

from pbx_app.addressing import CARRIER_CALLER, EMERGENCY_NUMBERS, aor
from pbx_app.repositories import routing as repo
from pbx_app.services.access import trial_expired
from pbx_app.services.devices import AOR, SIP_USERNAME
from pbx_app.services.extensions import EXTENSION_NUMBER
from pbx_app.services.numbering import dialled_to_e164

FORBIDDEN: dict[str, Any] = {"action": "reject", "code": 403, "reason": "Forbidden"}
NOT_FOUND: dict[str, Any] = {"action": "reject", "code": 404, "reason": "Not Found"}


def _active(row: RowMapping, now: datetime) -> bool:
    return not trial_expired(row, now)


def _local(row: RowMapping | None, now: datetime) -> dict[str, Any]:
    if row is None or row["number"] is None or not _active(row, now):
        return dict(NOT_FOUND)
    return {
        "action": "local",
        "aor": aor(int(row["customer_id"]), str(row["number"])),
        "customer_id": int(row["customer_id"]),
        "srtp_required": bool(row["srtp_required"]),
    }


def inbound(conn: Connection, target: str, now: datetime) -> dict[str, Any]:
    """A call from the carrier: a platform DID reaches its extension; nothing else transits."""
    number = dialled_to_e164(target) or (target if target.startswith("+") else None)
    if number is None:
        return dict(NOT_FOUND)
    rows = repo.public_number(conn, number)
    explicit = [r for r in rows if r["tier"] == 1]
    in_block = [r for r in rows if r["tier"] == 2 and r["number"] is not None]
    if explicit or in_block:
        return _local((explicit or in_block)[0], now)
    return dict(NOT_FOUND) if rows else dict(FORBIDDEN)


def decide(conn: Connection, caller: str, target: str, now: datetime) -> dict[str, Any]:
    if caller == CARRIER_CALLER:
        return inbound(conn, target, now)
    if not SIP_USERNAME.fullmatch(caller):
        return dict(FORBIDDEN)
    me = repo.caller(conn, caller)
    if me is not None and target in EMERGENCY_NUMBERS:
        return {
            "action": "external",
            "number": target,
            "caller_id": str(me["caller_id"] or ""),
            "emergency": True,
        }
    if me is None or not _active(me, now):
        return dict(FORBIDDEN)
    customer_id = int(me["customer_id"])

    # 1. an extension number of the caller's own customer
    if EXTENSION_NUMBER.fullmatch(target):
        return _local(repo.extension(conn, customer_id, target), now)

    # 2. a public number: some customer's DID, a platform number nobody answers, or the carrier
    number = dialled_to_e164(target)
    if number is not None:
        rows = repo.public_number(conn, number)
        explicit = [r for r in rows if r["tier"] == 1]
        in_block = [r for r in rows if r["tier"] == 2 and r["number"] is not None]
        if explicit or in_block:
            return _local((explicit or in_block)[0], now)
        if rows:  # inside a head number block of the platform, but no extension answers
            return dict(NOT_FOUND)
        if not me["caller_id"]:  # a customer without any number cannot call out
            return dict(FORBIDDEN)
        return {"action": "external", "number": number, "caller_id": str(me["caller_id"])}

    # 3. an internal address: an AOR or a device username; only within the own customer
    match = AOR.fullmatch(target)
    if match:
        if int(match.group(1)) != customer_id:
            return dict(FORBIDDEN)
        return _local(repo.extension(conn, customer_id, match.group(2)), now)
    if SIP_USERNAME.fullmatch(target):
        row = repo.device_extension(conn, target)
        if row is None:
            return dict(NOT_FOUND)
        if int(row["customer_id"]) != customer_id:
            return dict(FORBIDDEN)
        return _local(row, now)
    return dict(NOT_FOUND)
