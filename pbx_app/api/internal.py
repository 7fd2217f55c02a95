"""Internal API for the platform's own services (Kamailio): /internal/v1, shared token.

Kamailio asks ``GET /internal/v1/route?caller=<device username>&target=<R-URI user>`` (and
``from=<From user>`` for carrier calls, ``div=<Diversion entries on the request>``) with header
``X-PBX-Internal-Token``. Every caller/target text gets a 200 with a decision
(pbx_app.services.routing); only a missing/wrong token (401) or a disabled API (503) do not.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import APIKeyHeader
from sqlalchemy.exc import SQLAlchemyError

from pbx_app import errors, metrics
from pbx_app.api.deps import AppContext, Ctx, now
from pbx_app.api.errors import EVERY_OPERATION, error_responses
from pbx_app.repositories import routing as routing_repo
from pbx_app.services import call_events, call_plan, routing

TOKEN_HEADER = "X-PBX-Internal-Token"  # noqa: S105 - a header name
MAX_TEXT = 256
log = logging.getLogger("pbx_app.api.internal")
INTERNAL_TOKEN = APIKeyHeader(
    name=TOKEN_HEADER,
    auto_error=False,  # answered below: 401 internal_token_invalid or 503 internal_api_disabled
    scheme_name="internalToken",
    description="The platform's shared secret (PBX_INTERNAL_TOKEN), for Kamailio only.",
)


def require_internal_token(ctx: Ctx, token: Annotated[str | None, Depends(INTERNAL_TOKEN)]) -> None:
    expected = ctx.settings.internal_token
    if not expected:
        raise errors.InternalApiDisabled(
            "the internal API is disabled: PBX_INTERNAL_TOKEN is unset"
        )
    given = (token or "").encode("utf-8", "surrogateescape")
    if not hmac.compare_digest(given, expected.encode("utf-8", "surrogateescape")):
        raise errors.InternalTokenInvalid(f"send the internal token in {TOKEN_HEADER}")


# What every internal route may answer (the fax gateways' routes too: pbx_app.api.faxes).
INTERNAL_RESPONSES = error_responses(
    EVERY_OPERATION,
    {
        401: "internal_token_invalid: X-PBX-Internal-Token is missing or wrong",
        503: "internal_api_disabled: PBX_INTERNAL_TOKEN is unset; or database_unavailable: "
        "the local database member does not answer (Retry-After)",
    },
)
router = APIRouter(
    prefix="/internal/v1",
    tags=["internal"],
    dependencies=[Depends(require_internal_token)],
    responses=INTERNAL_RESPONSES,
)


@router.get("/route")
def route(
    ctx: Ctx,
    caller: Annotated[str, Query()] = "",
    target: Annotated[str, Query()] = "",
    from_user: Annotated[
        str, Query(alias="from", description="the From user of a call from the carrier")
    ] = "",
    div: Annotated[
        str, Query(description="how many Diversion entries the request carries (default 0)")
    ] = "0",
) -> dict[str, Any]:
    # Over-long text cannot be a username or number; decide without touching the database.
    if len(caller) > MAX_TEXT or len(target) > MAX_TEXT:
        answer = dict(routing.FORBIDDEN if len(caller) > MAX_TEXT else routing.NOT_FOUND)
        return {**answer, "ttl": ctx.settings.route_ttl_seconds}
    decision = routing.Context(
        now=now(),
        domain=ctx.settings.sip_domain,
        ttl=ctx.settings.route_ttl_seconds,
        div=_count(div),
        rotate=lambda group_id, members: _rotate(ctx, group_id, members),
    )
    with ctx.db.read_snapshot() as conn:
        answer = routing.decide(conn, caller, target, decision, from_user[:MAX_TEXT])
    metrics.decided(answer)
    prefetch = answer.pop(routing.CRM_PREFETCH, None)
    if prefetch is not None and prefetch[1] and ctx.cti is not None:
        ctx.cti.crm.prefetch(*prefetch)
    return answer


MAX_EVENT_BATCH = 1_000


@router.post(
    "/call-events",
    responses=error_responses(
        {
            422: "validation_failed: the body is not a JSON array of objects",
            503: "cti_unavailable: this node's event queue is full; send the rest again",
        }
    ),
)
async def ingest_call_events(request: Request, ctx: Ctx) -> dict[str, Any]:
    """The proxies' CTI reports (kamailio.cfg route[CTI_SEND]): a JSON array, queued for the
    event ingest (pbx_app.event_ingest) and answered at once. A malformed report is skipped and
    named in ``rejected``; it never holds back the others."""
    try:
        raw = json.loads(await request.body())
    except ValueError:
        raise errors.ReportBatchInvalid("the body is not JSON") from None
    if not isinstance(raw, list) or len(raw) > MAX_EVENT_BATCH:
        raise errors.ReportBatchInvalid(
            f"expected a JSON array of at most {MAX_EVENT_BATCH} reports"
        )
    reports, rejected = [], []
    for i, item in enumerate(raw):
        try:
            reports.append(call_events.parse(item))
        except call_events.ReportInvalid as exc:
            rejected.append({"index": i, "reason": str(exc)})
    if rejected:
        log.warning("call events rejected: %s", rejected[:5])
    if ctx.cti is None:
        raise errors.CtiUnavailable("CTI is not running on this node")
    queued = ctx.cti.ingestor.submit(reports)
    if queued < len(reports):
        raise errors.CtiUnavailable(f"event queue full: {len(reports) - queued} reports refused")
    return {"received": len(raw), "queued": queued, "rejected": rejected}


def _count(text: str) -> int:
    """Anything but a count of digits counts as none; a huge count stays above the limit."""
    return int(text[:4]) if text.isascii() and text.isdigit() else 0


def _rotate(ctx: AppContext, group_id: int, members: int) -> int:
    """The one write of a routing decision: a round robin group's next start. Without a
    writable database the group starts with its first member (the call still rings)."""
    try:
        with ctx.db.transaction() as conn:
            return routing_repo.advance_round_robin(conn, group_id, members)
    except (errors.DatabaseUnavailable, SQLAlchemyError) as exc:
        log.warning("round robin of group %s not advanced: %s", group_id, type(exc).__name__)
        return call_plan.no_rotation(group_id, members)
