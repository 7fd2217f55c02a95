"""Porting requests (R12): a state machine with an audit trail, completed on its date.

What a request ports is fixed per number when it is made (``Target``):

- A number no one on the platform holds comes from another carrier (the donor named in the
  request). It becomes the customer's single number: a head number with a block of 1.
- A number another customer of this platform holds is an intra-platform port: this platform is
  the donor. The request names the holding itself: a single number, or the head number of a
  block, and the holding moves whole. A number inside such a block (but not its head) is refused
  with 409 ``porting_partial_block``: a block is never split. Splitting would leave the holder a
  ragged set of single numbers whose extensions no longer get their DIDs by the block rule
  (head number + extension number), and the carriers port the block as one anyway.
- A number that overlaps one of the customer's own holdings is theirs already (409
  ``number_in_use``), as is a number that would cover another customer's numbers.

Which extension a ported number rings (routing, pbx_app.services.routing, is unchanged):

- A single number rings the extension the request names for it (``extensions``: number ->
  extension number), which must be at the request's location and must not have an explicit
  public number yet. On completion the ported number becomes that extension's ``geo_number``:
  its DID, and the caller ID its calls show outside (R13's tier 1). This is what a tenant admin
  porting "our main number to reception" expects; guessing an extension from the last digits of
  a single number would ring whoever happens to have those digits. An extension has one
  explicit public number, so one ported number per extension (422 ``porting_target_invalid``
  otherwise, also when the name is missing, unknown or at another location).
- A whole block rings like any head number block: head number + extension number reaches the
  extension with that number at the block's location (the request's location), so the block's
  DIDs keep their last digits. It takes no ``extensions`` entry.

Completion is one transaction, by the operator's manual step (confirmed -> completed) or by the
scheduler (``complete_next_due``, run by pbx_app.porting_scheduler on every app node) once the
requested date has begun in Germany (Europe/Berlin). It releases each moved holding from its
old holder (whose extensions lose the explicit numbers inside it), books every number for the
new customer under the database's overlap constraint, assigns the single numbers to their
extensions, records the step in the request's events and both customers' audit trails
(``ported_in``, ``ported_out``), and marks the request completed; anything that fails undoes all
of it. An intra-platform port thereby moves the numbers at one instant: a call routed before the
commit reaches the old holder, one after it the new one.

Locks, always in this order, so that two completions never wait for each other in a circle: the
porting request row, then the customer rows involved (the new customer and every old holder) by
id. The scheduler claims a due request with ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL
(nodes take different requests, never wait) and a conditional ``UPDATE ... WHERE state =
'confirmed'`` on both backends (on SQLite every write transaction holds the database's single
write lock, so the update decides): a request completes exactly once, whoever tries.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, RowMapping

from pbx_app import errors
from pbx_app.db import is_unavailable
from pbx_app.repositories import audit as audit_repo
from pbx_app.repositories import customers as customers_repo
from pbx_app.repositories import extensions as extensions_repo
from pbx_app.repositories import head_numbers as head_numbers_repo
from pbx_app.repositories import porting as repo
from pbx_app.services import head_numbers as head_numbers_service
from pbx_app.services import locations as locations_service
from pbx_app.services.access import SYSTEM, Actor, Role, authorize
from pbx_app.services.numbering import require_in_area

log = logging.getLogger("pbx_app.porting")

DRAFT, SUBMITTED, CONFIRMED, COMPLETED, REJECTED, CANCELLED = (
    "draft",
    "submitted",
    "confirmed",
    "completed",
    "rejected",
    "cancelled",
)
STATES = (DRAFT, SUBMITTED, CONFIRMED, COMPLETED, REJECTED, CANCELLED)
OPEN_STATES = (DRAFT, SUBMITTED, CONFIRMED)

# (from, to) -> who may take the step. The donor carrier's answer (confirm/reject) and the
# switch-over are the operator's; the customer drafts, submits and may withdraw before the date.
# For an intra-platform port the platform is the donor: the operator's confirmation stands for
# the old holder's consent.
TRANSITIONS: dict[tuple[str, str], frozenset[Role]] = {
    (DRAFT, SUBMITTED): frozenset({Role.CUSTOMER_ADMIN, Role.OPERATOR}),
    (DRAFT, CANCELLED): frozenset({Role.CUSTOMER_ADMIN, Role.OPERATOR}),
    (SUBMITTED, CONFIRMED): frozenset({Role.OPERATOR}),
    (SUBMITTED, REJECTED): frozenset({Role.OPERATOR}),
    (SUBMITTED, CANCELLED): frozenset({Role.CUSTOMER_ADMIN, Role.OPERATOR}),
    (CONFIRMED, COMPLETED): frozenset({Role.OPERATOR}),
    (CONFIRMED, CANCELLED): frozenset({Role.OPERATOR}),
    (REJECTED, DRAFT): frozenset({Role.CUSTOMER_ADMIN, Role.OPERATOR}),
}

# Porting dates are German calendar dates: a request for 2027-01-15 is due from 00:00 that day
# in Berlin (23:00 UTC the day before in winter, 22:00 in summer).
PORTING_TIME_ZONE = ZoneInfo("Europe/Berlin")
NOTE_LENGTH = 500  # porting_events.note, audit_events.detail
ERROR_LENGTH = 300  # porting_requests.last_error


@dataclass(frozen=True)
class NewPortingRequest:
    location_id: int
    numbers: list[str]
    donor_carrier: str
    requested_date: date
    # number -> extension number at the location (each single number needs one)
    extensions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """What one number of a request becomes on completion."""

    extension: str | None  # a single number: the extension it rings; a block: None
    block_size: int = 1  # 1: a single number; else a whole block moved from ``donor``
    donor: int | None = None  # the customer of this platform that held it when requested

    def as_json(self) -> dict[str, Any]:
        return {"extension": self.extension, "block_size": self.block_size, "donor": self.donor}


def local_date(now: datetime) -> date:
    """The German calendar date at ``now`` (naive UTC, as everywhere in the app)."""
    return now.replace(tzinfo=UTC).astimezone(PORTING_TIME_ZONE).date()


def targets_of(row: RowMapping) -> dict[str, Target]:
    """The request's targets, number by number. A request made before targets existed
    (migration 0006) ports single numbers from other carriers that ring no extension."""
    stored = json.loads(row["targets"] or "{}")
    out: dict[str, Target] = {}
    for number in json.loads(row["numbers"]):
        t = stored.get(number) or {}
        out[number] = Target(t.get("extension"), int(t.get("block_size", 1)), t.get("donor"))
    return out


def public(row: RowMapping, events: list[RowMapping] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row["id"],
        "location_id": row["location_id"],
        "numbers": json.loads(row["numbers"]),
        "extensions": {n: t.extension for n, t in targets_of(row).items() if t.extension},
        "donor_carrier": row["donor_carrier"],
        "requested_date": row["requested_date"].isoformat(),
        "state": row["state"],
    }
    if events is not None:
        out["events"] = [
            {
                "from_state": e["from_state"],
                "to_state": e["to_state"],
                "actor_user_id": e["actor_user_id"],
                "note": e["note"],
                "at": e["at"].isoformat() + "Z",
            }
            for e in events
        ]
    return out


def create(
    conn: Connection, actor: Actor, customer_id: int, new: NewPortingRequest, now: datetime
) -> RowMapping:
    customer = authorize(conn, actor, customer_id, now, write=True)
    location = locations_service.get_owned(conn, customer_id, new.location_id)
    if len(set(new.numbers)) != len(new.numbers):
        raise errors.Conflict("a number appears twice in this porting request")
    for number in new.numbers:
        require_in_area(number, location["area_code"], location["name"])
    head_numbers_service.require_disjoint(new.numbers)
    stray = sorted(set(new.extensions) - set(new.numbers))
    if stray:
        raise errors.PortingTargetInvalid(
            f"extensions names {stray[0]}, which is not a number of this request"
        )
    holdings = {n: _holding_to_port(conn, customer_id, n) for n in new.numbers}
    # Known now, so refused now rather than on the porting date (the booking checks it again).
    head_numbers_service.check_limit(customer["head_number_count"], len(new.numbers))
    targets = _targets(conn, customer_id, location, holdings, new.extensions)
    request_id = repo.insert(
        conn,
        {
            "customer_id": customer_id,
            "location_id": location["id"],
            "numbers": json.dumps(new.numbers),
            "targets": json.dumps({n: t.as_json() for n, t in targets.items()}),
            "donor_carrier": new.donor_carrier,
            "requested_date": new.requested_date,
            "state": DRAFT,
            "created_at": now,
            "updated_at": now,
            "last_error": "",
        },
    )
    _event(conn, request_id, None, DRAFT, actor, "created", now)
    row = repo.get(conn, customer_id, request_id)
    assert row is not None
    return row


def _holding_to_port(conn: Connection, customer_id: int, number: str) -> tuple[int, int | None]:
    """(block size, donor customer) for a number to port in: (1, None) from another carrier, or
    the holding of another customer of this platform that the number names exactly."""
    held = head_numbers_repo.overlapping_all(conn, number)
    if not held:
        return 1, None
    for h in held:
        if h["customer_id"] == customer_id:
            raise errors.NumberInUse(
                f"{number} overlaps your head number {h['number']} (block of "
                f"{h['block_size']}): it is yours already"
            )
    exact = next((h for h in held if h["number"] == number), None)
    if exact is not None:
        return int(exact["block_size"]), int(exact["customer_id"])
    _refuse_overlap(number, held)
    raise AssertionError("unreachable")


def _refuse_overlap(number: str, held: list[RowMapping]) -> None:
    """Another customer's holdings overlap ``number`` without being it. Who holds them and
    which head number is not said (who holds what is theirs)."""
    if any(number.startswith(h["number"]) for h in held):
        raise errors.PortingPartialBlock(
            f"{number} lies inside a number block held by another customer of this platform; "
            "a block is ported whole, never split: request its head number instead"
        )
    raise errors.NumberInUse(f"{number} is taken: it covers numbers held by another customer")


def _targets(
    conn: Connection,
    customer_id: int,
    location: RowMapping,
    holdings: dict[str, tuple[int, int | None]],
    wanted: dict[str, str],
) -> dict[str, Target]:
    busy = _extensions_of_open_requests(conn, customer_id)
    chosen: dict[str, str] = {}  # extension number -> ported number
    out: dict[str, Target] = {}
    for number, (block_size, donor) in holdings.items():
        extension = wanted.get(number)
        if block_size > 1:
            if extension is not None:
                raise errors.PortingTargetInvalid(
                    f"{number} heads a block of {block_size} numbers, which ring the extensions "
                    "at the location by their numbers (head number + extension number); name "
                    "no extension for it"
                )
            out[number] = Target(None, block_size, donor)
            continue
        if extension is None:
            raise errors.PortingTargetInvalid(
                f"name the extension {number} is to ring: extensions "
                f'{{"{number}": "<extension number>"}}'
            )
        ext = extensions_repo.get_by_number(conn, customer_id, extension)
        if ext is None or ext["location_id"] != location["id"]:
            raise errors.PortingTargetInvalid(
                f"no extension {extension} at location {location['name']!r}; a ported number "
                "rings an extension at the location of the request"
            )
        if ext["geo_number"] is not None:
            raise errors.PortingTargetInvalid(
                f"extension {extension} has the public number {ext['geo_number']} already; an "
                "extension has one: clear it, or choose another extension"
            )
        if extension in chosen:
            raise errors.PortingTargetInvalid(
                f"{chosen[extension]} and {number} both name extension {extension}; an "
                "extension takes one ported number"
            )
        if extension in busy:
            raise errors.PortingTargetInvalid(
                f"extension {extension} is the target of porting request {busy[extension]} "
                "already; an extension takes one ported number"
            )
        chosen[extension] = number
        out[number] = Target(extension, 1, donor)
    return out


def _extensions_of_open_requests(conn: Connection, customer_id: int) -> dict[str, int]:
    return {
        t.extension: row["id"]
        for row in repo.list_for_customer(conn, customer_id)
        if row["state"] in OPEN_STATES
        for t in targets_of(row).values()
        if t.extension
    }


def _owned(
    conn: Connection, customer_id: int, request_id: int, *, for_update: bool = False
) -> RowMapping:
    row = repo.get(conn, customer_id, request_id, for_update=for_update)
    if row is None:
        raise errors.NotFound(f"porting request {request_id} not found")
    return row


def transition(
    conn: Connection,
    actor: Actor,
    customer_id: int,
    request_id: int,
    to_state: str,
    note: str,
    now: datetime,
) -> RowMapping:
    # Who may, without a lock yet: the request row is locked first, then the customers.
    authorize(conn, actor, customer_id, now, write=True, lock=False)
    row = _owned(conn, customer_id, request_id, for_update=True)
    allowed = TRANSITIONS.get((row["state"], to_state))
    if allowed is None:
        raise errors.PortingTransitionInvalid(
            f"a porting request cannot go from {row['state']} to {to_state} (R12)"
        )
    if actor.role not in allowed:
        raise errors.PermissionDenied(
            f"{row['state']} -> {to_state} is a step for: {', '.join(sorted(allowed))}"
        )
    if to_state == COMPLETED:
        # The switch-over, the same as the scheduler's on the date (the operator may take it
        # earlier, or take it after the scheduler could not).
        done = _complete(conn, actor, row, now)
        note = f"{note}; {done}" if note else done
    else:
        authorize(conn, actor, customer_id, now, write=True)
    _set_state(conn, row, to_state, now)
    _event(conn, request_id, row["state"], to_state, actor, note, now)
    return _owned(conn, customer_id, request_id)


def _set_state(conn: Connection, row: RowMapping, to_state: str, now: datetime) -> None:
    """The state changes only from the state the caller read (under its row lock); a second
    completion, whoever tries it, finds nothing to change and undoes its own work."""
    values: dict[str, Any] = {"state": to_state, "updated_at": now}
    if to_state != CONFIRMED:
        values.update(next_attempt_at=None, last_error="")
    if not repo.update_state(conn, row["id"], row["state"], values):
        raise errors.PortingTransitionInvalid(
            f"porting request {row['id']} is no longer {row['state']}: another step came first"
        )


def _event(
    conn: Connection,
    request_id: int,
    from_state: str | None,
    to_state: str,
    actor: Actor,
    note: str,
    now: datetime,
) -> None:
    repo.insert_event(
        conn,
        {
            "porting_request_id": request_id,
            "from_state": from_state,
            "to_state": to_state,
            "actor_user_id": actor.user_id,
            "note": _shorten(note, NOTE_LENGTH),
            "at": now,
        },
    )


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _lock_customers(conn: Connection, customer_ids: set[int]) -> None:
    for customer_id in sorted(customer_ids):
        customers_repo.get(conn, customer_id, for_update=True)


def _describe(number: str, block_size: int) -> str:
    return number if block_size == 1 else f"{number} (block of {block_size})"


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:10])
    return shown + (f" and {len(items) - 10} more" if len(items) > 10 else "")


def _complete(conn: Connection, actor: Actor, row: RowMapping, now: datetime) -> str:
    """The switch-over of a request whose row the caller has locked; returns what happened, for
    the completion event. Raises (and the caller's transaction undoes everything) if any number
    cannot be the customer's."""
    customer_id = int(row["customer_id"])
    targets = targets_of(row)
    before = {n: head_numbers_repo.overlapping_all(conn, n) for n in targets}
    holders = {int(h["customer_id"]) for held in before.values() for h in held}
    locked = holders | {customer_id}
    _lock_customers(conn, locked)
    customer = authorize(conn, actor, customer_id, now, write=True, lock=False)  # locked above
    location = locations_service.get_owned(conn, customer_id, row["location_id"])

    moving: list[RowMapping] = []
    booking: list[tuple[str, int]] = []
    for number, target in targets.items():
        # Read again under the locks: a locked holder's holdings stay as they are now.
        held = head_numbers_repo.overlapping_all(conn, number)
        if not held:
            booking.append((number, target.block_size))
            continue
        _require_movable(number, target, held, customer_id, locked)
        moving.append(held[0])
        booking.append((number, int(held[0]["block_size"])))

    released: dict[int, list[str]] = {}
    taken: list[str] = []
    for head in moving:
        taken += head_numbers_service.release_ported_out(conn, head)
        released.setdefault(int(head["customer_id"]), []).append(
            _describe(head["number"], head["block_size"])
        )
    head_numbers_service.book_ported(conn, customer, location, booking, now)
    unassigned = _assign(conn, customer_id, location, targets)

    ported = [_describe(n, size) for n, size in booking]
    parts = [f"ported in: {_listed(ported)}"]
    if released:
        moved = [d for ds in released.values() for d in ds]
        parts.append(f"moved from another customer of this platform: {_listed(moved)}")
    rung = [
        f"{n} -> {t.extension}" for n, t in targets.items() if t.extension and n not in unassigned
    ]
    if rung:
        parts.append(f"ringing: {_listed(rung)}")
    if unassigned:
        parts.append(
            f"rings no extension yet (its extension is gone, moved or has another public "
            f"number; assign it as an extension's geo_number): {_listed(unassigned)}"
        )
    detail = "; ".join(parts)
    _audit(conn, customer_id, actor, "ported_in", f"porting request {row['id']}: {detail}", now)
    for holder, numbers in released.items():
        out = f"ported to another customer of this platform: {_listed(numbers)}"
        if taken:
            out += f"; extensions' public numbers released: {_listed(taken)}"
        _audit(conn, holder, actor, "ported_out", out, now)
    return detail


def _require_movable(
    number: str, target: Target, held: list[RowMapping], customer_id: int, locked: set[int]
) -> None:
    """``held`` overlaps ``number`` now: the port goes on only if it is the very holding of the
    customer the request was made to take it from, and that customer's row is locked."""
    head = held[0]
    if len(held) == 1 and head["number"] == number and head["customer_id"] == target.donor:
        if int(head["customer_id"]) in locked:
            return
        raise errors.NumberInUse(f"{number} changed hands while this port was completing")
    if any(h["customer_id"] == customer_id for h in held):
        raise errors.NumberInUse(f"{number} overlaps a head number of this customer already")
    if len(held) == 1 and head["number"] == number:
        raise errors.NumberInUse(
            f"{number} is held by a customer of this platform that did not hold it when the "
            "request was made; this request does not take it from them"
        )
    _refuse_overlap(number, held)


def _assign(
    conn: Connection, customer_id: int, location: RowMapping, targets: dict[str, Target]
) -> list[str]:
    """Each single number becomes its extension's public number (geo_number); returns the
    numbers whose extension is gone, at another location or has a public number by now: they
    are the customer's, and an admin assigns them."""
    unassigned: list[str] = []
    for number, target in targets.items():
        if target.extension is None:
            continue
        ext = extensions_repo.get_by_number(conn, customer_id, target.extension, for_update=True)
        if ext is None or ext["location_id"] != location["id"] or ext["geo_number"] is not None:
            unassigned.append(number)
            continue
        extensions_repo.update_fields(conn, ext["id"], {"geo_number": number})
    return unassigned


def _audit(
    conn: Connection, customer_id: int, actor: Actor, kind: str, detail: str, now: datetime
) -> None:
    audit_repo.insert(
        conn,
        {
            "customer_id": customer_id,
            "user_id": actor.user_id,
            "kind": kind,
            "email": "",
            "source": "porting",
            "detail": _shorten(detail, NOTE_LENGTH),
            "at": now,
        },
    )


# --- the scheduler's steps (pbx_app.porting_scheduler runs them) --------------------------------
class CompletionFailed(Exception):
    """A due request could not be completed; nothing of it was written."""

    def __init__(self, request_id: int, reason: str) -> None:
        super().__init__(reason)
        self.request_id, self.reason = request_id, reason


def complete_next_due(conn: Connection, now: datetime, by: str) -> int | None:
    """Completes the next confirmed request whose date has begun (Europe/Berlin) and that is
    not waiting for a retry, in the caller's transaction; returns its id, or None if there is
    none (or another node took it). Raises CompletionFailed, after which the caller rolls back
    and records the failure with ``record_failure``."""
    row = repo.next_due(conn, local_date(now), now)
    if row is None:
        return None
    try:
        # The claim: only one completion changes the state, on any backend.
        _set_state(conn, row, COMPLETED, now)
    except errors.PortingTransitionInvalid:
        return None
    try:
        done = _complete(conn, SYSTEM, row, now)
    except errors.DomainError as exc:
        if isinstance(exc, errors.DatabaseUnavailable):
            raise
        raise CompletionFailed(row["id"], f"{exc.code}: {exc.message}") from exc
    except Exception as exc:
        if is_unavailable(exc):
            raise
        log.exception("porting request %s: completion failed", row["id"])
        raise CompletionFailed(row["id"], f"internal error: {type(exc).__name__}") from exc
    note = f"completed on its date ({row['requested_date'].isoformat()}) by the scheduler on {by}"
    _event(conn, row["id"], CONFIRMED, COMPLETED, SYSTEM, f"{note}; {done}", now)
    return int(row["id"])


def record_failure(
    conn: Connection, request_id: int, reason: str, now: datetime, retry: timedelta
) -> None:
    """The request stays confirmed and is tried again after ``retry`` (an operator may complete
    it by hand meanwhile). A new reason is written to its events once, not every retry."""
    row = repo.get_any(conn, request_id, for_update=True)
    if row is None or row["state"] != CONFIRMED:
        return
    reason = _shorten(reason, ERROR_LENGTH)
    repo.update_fields(conn, request_id, {"next_attempt_at": now + retry, "last_error": reason})
    if reason != row["last_error"]:
        note = f"not completed on its date: {reason}; retried every {_duration(retry)}"
        _event(conn, request_id, CONFIRMED, CONFIRMED, SYSTEM, note, now)


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def get(
    conn: Connection, actor: Actor, customer_id: int, request_id: int, now: datetime
) -> tuple[RowMapping, list[RowMapping]]:
    authorize(conn, actor, customer_id, now)
    row = _owned(conn, customer_id, request_id)
    return row, repo.events(conn, request_id)


def list_(conn: Connection, actor: Actor, customer_id: int, now: datetime) -> list[RowMapping]:
    authorize(conn, actor, customer_id, now)
    return repo.list_for_customer(conn, customer_id)
