"""Internal API for the platform's own services (Kamailio): /internal/v1, shared token.

Kamailio asks ``GET /internal/v1/route?caller=<device username>&target=<R-URI user>`` with
header ``X-PBX-Internal-Token``. Every caller/target text gets a 200 with a decision
(pbx_app.services.routing); only a missing/wrong token (401) or a disabled API (503) do not.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.security import APIKeyHeader

from pbx_app import errors
from pbx_app.api.deps import Ctx, now
from pbx_app.api.errors import EVERY_OPERATION, error_responses
from pbx_app.services import routing

TOKEN_HEADER = "X-PBX-Internal-Token"  # noqa: S105 - a header name
MAX_TEXT = 256
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


router = APIRouter(
    prefix="/internal/v1",
    tags=["internal"],
    dependencies=[Depends(require_internal_token)],
    responses=error_responses(
        EVERY_OPERATION,
        {
            401: "internal_token_invalid: X-PBX-Internal-Token is missing or wrong",
            503: "internal_api_disabled: PBX_INTERNAL_TOKEN is unset; or database_unavailable: "
            "the local database member does not answer (Retry-After)",
        },
    ),
)


@router.get("/route")
def route(
    ctx: Ctx,
    caller: Annotated[str, Query()] = "",
    target: Annotated[str, Query()] = "",
    # Kamailio's executor (issue 13) sends these; accepted until the rules side decides on them.
    div: Annotated[int, Query(ge=0)] = 0,
    from_: Annotated[str, Query(alias="from")] = "",
) -> dict[str, Any]:
    # Over-long text cannot be a username or number; decide without touching the database.
    if len(caller) > MAX_TEXT or len(target) > MAX_TEXT:
        return dict(routing.FORBIDDEN if len(caller) > MAX_TEXT else routing.NOT_FOUND)
    with ctx.db.read() as conn:
        return routing.decide(conn, caller, target, now())
