"""Who may do what: roles, customer scope and the trial period (R6, R19)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection, RowMapping

from pbx_app import errors
from pbx_app.billing_time import local_day
from pbx_app.limits import TRIAL_PERIOD
from pbx_app.repositories import customers as customers_repo


class Role(StrEnum):
    OPERATOR = "operator"
    CUSTOMER_ADMIN = "customer_admin"
    USER = "user"


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    customer_id: int | None
    role: Role

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR


# The operator CLI (import-extensions, seed-demo) acts as this.
SYSTEM = Actor(user_id=None, customer_id=None, role=Role.OPERATOR)


def trial_expired(customer: RowMapping, now: datetime) -> bool:
    ends = customer["trial_ends_at"]
    return ends is not None and now >= ends


def authorize(
    conn: Connection,
    actor: Actor,
    customer_id: int,
    now: datetime,
    *,
    write: bool = False,
    lock: bool = True,
) -> RowMapping:
    """Returns the customer row if ``actor`` may read (or write) it.

    Writes lock the customer row for the rest of the transaction: every limit check of that
    customer (R4, R13-R15) then counts and inserts without another writer in between.
    ``lock=False`` asks whether a write would be allowed without locking (in a read-only
    snapshot, ahead of the write transaction that asks again with the lock).
    """
    if not actor.is_operator and actor.customer_id != customer_id:
        raise errors.CustomerScopeViolation(
            "this resource belongs to another customer; access is limited to your own customer"
        )
    if write and actor.role is Role.USER:
        raise errors.PermissionDenied("only a customer admin or an operator may change this")
    customer = customers_repo.get(conn, customer_id, for_update=write and lock)
    if customer is None:
        raise errors.NotFound(f"customer {customer_id} not found")
    if trial_expired(customer, now) and (write or not actor.is_operator):
        raise errors.TrialExpired(
            f"the {TRIAL_PERIOD.days}-day trial of this customer has ended (R19); book a contract "
            "to continue"
        )
    ended = customer["contract_ends_on"]
    if ended is not None and local_day(now) > ended and not actor.is_operator:
        raise errors.ContractEnded(f"this customer's contract ended on {ended} (R18)")
    return customer


def require_operator(actor: Actor) -> None:
    if not actor.is_operator:
        raise errors.PermissionDenied("only an operator may do this")
