"""Porting requests (R12) as a state machine with an audit trail."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, RowMapping

from pbx_app import errors
from pbx_app.repositories import porting as repo
from pbx_app.services import head_numbers as head_numbers_service
from pbx_app.services import locations as locations_service
from pbx_app.services.access import Actor, Role, authorize
from pbx_app.services.numbering import require_in_area

DRAFT, SUBMITTED, CONFIRMED, COMPLETED, REJECTED, CANCELLED = (
    "draft",
    "submitted",
    "confirmed",
    "completed",
    "rejected",
    "cancelled",
)
STATES = (DRAFT, SUBMITTED, CONFIRMED, COMPLETED, REJECTED, CANCELLED)

# (from, to) -> who may take the step. The donor carrier's answer (confirm/reject) and the
# switch-over are the operator's; the customer drafts, submits and may withdraw before the date.
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


@dataclass(frozen=True)
class NewPortingRequest:
    location_id: int
    numbers: list[str]
    donor_carrier: str
    requested_date: date


def public(row: RowMapping, events: list[RowMapping] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row["id"],
        "location_id": row["location_id"],
        "numbers": json.loads(row["numbers"]),
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
    authorize(conn, actor, customer_id, now, write=True)
    location = locations_service.get_owned(conn, customer_id, new.location_id)
    if len(set(new.numbers)) != len(new.numbers):
        raise errors.Conflict("a number appears twice in this porting request")
    for number in new.numbers:
        require_in_area(number, location["area_code"], location["name"])
    _require_portable(conn, customer_id, new.numbers)
    request_id = repo.insert(
        conn,
        {
            "customer_id": customer_id,
            "location_id": location["id"],
            "numbers": json.dumps(new.numbers),
            "donor_carrier": new.donor_carrier,
            "requested_date": new.requested_date,
            "state": DRAFT,
            "created_at": now,
            "updated_at": now,
        },
    )
    repo.insert_event(
        conn,
        {
            "porting_request_id": request_id,
            "from_state": None,
            "to_state": DRAFT,
            "actor_user_id": actor.user_id,
            "note": "created",
            "at": now,
        },
    )
    row = repo.get(conn, customer_id, request_id)
    assert row is not None
    return row


def _require_portable(conn: Connection, customer_id: int, numbers: list[str]) -> None:
    """A number someone holds on this platform is not ported in (nor one of the customer's
    own: it is theirs already)."""
    head_numbers_service.require_disjoint(numbers)
    for number in numbers:
        head_numbers_service.require_free(conn, customer_id, number)


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
    customer = authorize(conn, actor, customer_id, now, write=True)
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
        # The switch-over: the numbers become the customer's, under the same ownership rules
        # (and the same database constraint) as a booked head number.
        location = locations_service.get_owned(conn, customer_id, row["location_id"])
        head_numbers_service.book_ported(conn, customer, location, json.loads(row["numbers"]), now)
    repo.update_fields(conn, request_id, {"state": to_state, "updated_at": now})
    repo.insert_event(
        conn,
        {
            "porting_request_id": request_id,
            "from_state": row["state"],
            "to_state": to_state,
            "actor_user_id": actor.user_id,
            "note": note,
            "at": now,
        },
    )
    return _owned(conn, customer_id, request_id)


def get(
    conn: Connection, actor: Actor, customer_id: int, request_id: int, now: datetime
) -> tuple[RowMapping, list[RowMapping]]:
    authorize(conn, actor, customer_id, now)
    row = _owned(conn, customer_id, request_id)
    return row, repo.events(conn, request_id)


def list_(conn: Connection, actor: Actor, customer_id: int, now: datetime) -> list[RowMapping]:
    authorize(conn, actor, customer_id, now)
    return repo.list_for_customer(conn, customer_id)
