"""The audit trail a customer's admins (and operators) read: logins and failed logins, numbers
ported in and out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping

from pbx_app import errors
from pbx_app.repositories import audit as repo
from pbx_app.services.access import Actor, Role, authorize, require_operator


def public(row: RowMapping) -> dict[str, Any]:
    return {
        "id": row["id"],
        "kind": row["kind"],
        "user_id": row["user_id"],
        "email": row["email"],
        "source": row["source"],
        "at": row["at"].isoformat() + "Z",
        "detail": row["detail"],
    }


def list_for_customer(
    conn: Connection, actor: Actor, customer_id: int, now: datetime, limit: int, offset: int
) -> list[RowMapping]:
    authorize(conn, actor, customer_id, now)
    if actor.role is Role.USER:
        raise errors.PermissionDenied(
            "only a customer admin or an operator may read the audit trail"
        )
    return repo.list_for_customer(conn, customer_id, limit, offset)


def list_platform(conn: Connection, actor: Actor, limit: int, offset: int) -> list[RowMapping]:
    """Events of no customer: operators' logins and logins with unknown e-mails."""
    require_operator(actor)
    return repo.list_for_customer(conn, None, limit, offset)
