"""The audit trail: logins and failed logins, per customer and for the platform itself."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from pbx_app.api.deps import Ctx, CurrentActor, Id, Limit, Offset, now
from pbx_app.api.errors import AUTHENTICATED, NOT_FOUND, error_responses
from pbx_app.api.models import AuditEvent, Items
from pbx_app.services import audit as service

router = APIRouter(tags=["audit"], responses=error_responses(AUTHENTICATED))


@router.get(
    "/customers/{customer_id}/audit-events",
    response_model=Items[AuditEvent],
    responses=error_responses(NOT_FOUND),
)
def list_customer_events(
    customer_id: Id, actor: CurrentActor, ctx: Ctx, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        rows = service.list_for_customer(conn, actor, customer_id, now(), limit, offset)
    return {"items": [service.public(r) for r in rows]}


@router.get("/audit-events", response_model=Items[AuditEvent])
def list_platform_events(
    actor: CurrentActor, ctx: Ctx, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        rows = service.list_platform(conn, actor, limit, offset)
    return {"items": [service.public(r) for r in rows]}
