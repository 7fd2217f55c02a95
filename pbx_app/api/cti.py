"""CTI (issue 17): click-to-dial, call events (HTTP and WebSocket), CRM template, webhooks.

Call events, in the customer's own view (pbx_app.services.call_events.public):
- ``GET /api/v1/call-events?after=<seq>``: the next events after ``seq`` (oldest first);
- ``GET /api/v1/call-events/ws?after=<seq>`` (WebSocket): first ``{"type": "hello",
  "last_seq": N}``, then the events after ``seq`` and every new one as ``{"type": "event",
  ...}``. The client may acknowledge with ``{"ack": seq}``; to resume (another site's node,
  after a reconnect) it connects again with ``after=`` its last acknowledged seq and misses
  nothing. Close codes: 4401 not authenticated, 4403 CTI not booked or another customer,
  4008 too slow (resume from the last seq seen).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from pbx_app import errors
from pbx_app.api.deps import SESSION_COOKIE, AppContext, Ctx, CurrentActor, Id, now
from pbx_app.api.errors import AUTHENTICATED, JSON_BODY, NOT_FOUND, error_responses
from pbx_app.api.models import Items
from pbx_app.repositories import call_events as repo
from pbx_app.services import call_events
from pbx_app.services import cti as service
from pbx_app.services import users as users_service
from pbx_app.services.access import Actor
from pbx_app.services.call_events import Scope
from pbx_app.webhooks import new_secret, public_delivery

router = APIRouter(tags=["cti"], responses=error_responses(AUTHENTICATED))
ws_router = APIRouter(tags=["cti"])

After = Annotated[int, Query(ge=0, le=2**62, description="the last seq seen (0: from the start)")]
CustomerParam = Annotated[
    int | None, Query(ge=1, le=2_147_483_647, description="operators: whose events")
]
BATCH = 500


class CallEvent(BaseModel):
    seq: int
    kind: str = Field(description="ringing, answered, held, resumed, transferred or ended")
    call_id: str
    direction: str = Field(description="inbound, outbound or internal (the customer's view)")
    from_number: str
    to_number: str
    caller_extension_id: int | None
    callee_extension_id: int | None
    customer_id: int
    occurred_at: str
    crm: dict[str, str] | None = Field(description="CTI Premium: the caller's CRM record")
    code: int | None
    reason: str | None
    refer_to: str | None


class CallEvents(BaseModel):
    items: list[CallEvent]
    last_seq: int = Field(description="resume after this")


@router.get("/call-events", response_model=CallEvents, responses=error_responses(NOT_FOUND))
def list_events(
    actor: CurrentActor, ctx: Ctx, after: After = 0, customer_id: CustomerParam = None
) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        scope = service.scope(conn, actor, customer_id, now())
        rows = repo.after(conn, after, BATCH, scope.customer_id, scope.extension_ids)
    items = [call_events.public(r) for r in rows]
    return {"items": items, "last_seq": items[-1]["seq"] if items else after}


# --- WebSocket ---------------------------------------------------------------------------------
def _ws_actor(ws: WebSocket, ctx: AppContext) -> Actor:
    """Bearer token (desktop clients) or the portal's session cookie; a cookie only from a page
    of this origin (a WebSocket has no CSRF token: the Origin header stands in)."""
    auth = ws.headers.get("authorization", "")
    token = ""
    kinds: tuple[str, ...] = ("api", "session")
    if auth.lower().startswith("bearer "):
        token = auth[7:].strip()
    else:
        token, kinds = ws.cookies.get(SESSION_COOKIE, ""), ("session",)
        origin = ws.headers.get("origin", "")
        if not origin or urlsplit(origin).netloc != ws.headers.get("host", ""):
            raise errors.NotAuthenticated("a session cookie from another origin")
    if not token or len(token) > 200 or not token.isascii():
        raise errors.NotAuthenticated("log in, or send a valid bearer token")
    with ctx.db.snapshot() as conn:
        return users_service.authenticate(conn, ctx.settings.secret_key, token, kinds, now())


def _ws_scope(ws: WebSocket, ctx: AppContext, customer_id: int | None) -> Scope:
    actor = _ws_actor(ws, ctx)
    with ctx.db.snapshot() as conn:
        return service.scope(conn, actor, customer_id, now())


def _backlog(ctx: AppContext, scope: Scope, after: int) -> list[dict[str, Any]]:
    with ctx.db.read() as conn:
        rows = repo.after(conn, after, BATCH, scope.customer_id, scope.extension_ids)
    return [call_events.public(r) for r in rows]


def _int_param(ws: WebSocket, name: str) -> int | None:
    value = ws.query_params.get(name)
    if value is None:
        return None
    if not value.isdigit() or len(value) > 18:
        raise errors.TargetInvalid(f"{name}: a whole number")
    return int(value)


@ws_router.websocket("/call-events/ws")
async def events_ws(ws: WebSocket) -> None:
    ctx: AppContext = ws.app.state.ctx
    # Refusals are close codes after the handshake: a browser never sees a refused handshake's
    # status, only a close with its code and reason (the error code).
    await ws.accept()
    if ctx.cti is None:
        await ws.close(code=1013, reason="cti_unavailable")
        return
    try:
        after = _int_param(ws, "after") or 0
        scope = await run_in_threadpool(_ws_scope, ws, ctx, _int_param(ws, "customer_id"))
    except errors.NotAuthenticated as exc:
        await ws.close(code=4401, reason=exc.code)
        return
    except errors.TargetInvalid as exc:
        await ws.close(code=4400, reason=exc.code)
        return
    except errors.DatabaseUnavailable as exc:
        # No leader for a moment (a failover): 1013 "try again later", which clients retry;
        # a 44xx would tell them to give up.
        await ws.close(code=1013, reason=exc.code)
        return
    except errors.DomainError as exc:
        await ws.close(code=4403, reason=exc.code)
        return
    hub = ctx.cti.hub
    sub = hub.subscribe(scope)  # first: nothing stored meanwhile falls between backlog and live
    try:
        await ws.send_json({"type": "hello", "last_seq": hub.last_seq})
        sent = after
        while True:  # the backlog, in batches, until it is caught up
            backlog = await run_in_threadpool(_backlog, ctx, scope, sent)
            for event in backlog:
                await ws.send_json({"type": "event", **event})
                sent = event["seq"]
            if len(backlog) < BATCH:
                break
        reader = asyncio.create_task(_read_acks(ws))
        try:
            while True:
                getter = asyncio.create_task(sub.queue.get())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if reader in done:
                    getter.cancel()
                    return
                item = getter.result()
                if item is None:
                    await ws.close(code=4008, reason="too slow: resume with after=<last seq>")
                    return
                if item["seq"] > sent:
                    await ws.send_json({"type": "event", **item})
                    sent = item["seq"]
        finally:
            reader.cancel()
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        hub.unsubscribe(sub)


async def _read_acks(ws: WebSocket) -> None:
    """Acknowledgements ({"ack": seq}) and pings; returns when the client goes."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            text = await ws.receive_text()
            if len(text) > 200:
                await ws.close(code=1009, reason='messages are {"ack": seq}')
                return
            with contextlib.suppress(ValueError):
                json.loads(text)


# --- click-to-dial -----------------------------------------------------------------------------
class ClickToDialIn(BaseModel):
    target: str = Field(max_length=64, description="the number to call, as dialled on a phone")
    extension_id: int | None = Field(
        default=None, ge=1, le=2_147_483_647, description="whose devices ring first"
    )


class ClickToDial(BaseModel):
    id: int
    status: str = Field(description="calling_you, connecting, connected or failed")
    cause: str
    target: str
    extension_id: int
    created_at: str
    updated_at: str


@router.post(
    "/click-to-dial",
    status_code=202,
    response_model=ClickToDial,
    responses=error_responses(
        JSON_BODY,
        NOT_FOUND,
        {
            403: "cti_not_booked; permission_denied (not your extension)",
            409: "no_device: the extension has no device; click_to_dial_in_progress",
            422: "target_invalid, extension_required",
            503: "cti_unavailable: click-to-dial is not running on this node",
        },
    ),
)
async def start_click_to_dial(body: ClickToDialIn, actor: CurrentActor, ctx: Ctx) -> JSONResponse:
    """Rings the user's own devices; the one that answers is asked (REFER) to call the target,
    as if the user had dialled it. Follow the state with GET /click-to-dial/{id}."""
    cti = ctx.cti

    def record() -> tuple[Any, Any]:
        with ctx.db.transaction() as conn:
            row = service.start_click_to_dial(conn, actor, body.target, body.extension_id, now())
            if cti is None or cti.dialer is None:  # checked last: the request's own faults first
                raise errors.CtiUnavailable("click-to-dial is not running on this node")
            return row, repo.extension_row(conn, int(row["extension_id"]))

    row, ext = await run_in_threadpool(record)
    assert cti is not None
    cti.click_to_dial(int(row["id"]), int(ext["customer_id"]), str(ext["number"]), row["target"])
    return JSONResponse(service.public_ctd(row), status_code=202)


@router.get(
    "/click-to-dial/{ctd_id}", response_model=ClickToDial, responses=error_responses(NOT_FOUND)
)
def get_click_to_dial(ctd_id: Id, actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        return service.public_ctd(service.get_click_to_dial(conn, actor, ctd_id, now()))


# --- CTI settings and webhooks -----------------------------------------------------------------
class CtiSettings(BaseModel):
    cti: str = Field(description="none, standard or premium (booked with the customer's plan)")
    crm_url_template: str | None


class CtiSettingsIn(BaseModel):
    crm_url_template: str | None = Field(
        default=None,
        max_length=2000,
        description="http(s) URL with {number}; answered with JSON name, company, link",
    )


@router.get(
    "/customers/{customer_id}/cti", response_model=CtiSettings, responses=error_responses(NOT_FOUND)
)
def get_settings(customer_id: Id, actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        return service.settings(conn, actor, customer_id, now())


@router.put(
    "/customers/{customer_id}/cti",
    response_model=CtiSettings,
    responses=error_responses(
        JSON_BODY, NOT_FOUND, {403: "cti_premium_required", 422: "url_refused"}
    ),
)
def put_settings(
    customer_id: Id, body: CtiSettingsIn, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    deny = ctx.cti.deny if ctx.cti is not None else ()
    with ctx.db.transaction() as conn:
        return service.set_crm(conn, actor, customer_id, body.crm_url_template or None, deny, now())


class WebhookIn(BaseModel):
    url: str = Field(max_length=2000, description="http(s); gets every call event, signed")


class Webhook(BaseModel):
    id: int
    url: str
    active: bool
    created_at: str


class NewWebhook(Webhook):
    secret: str = Field(description="signs every delivery (X-PBX-Signature); shown only now")


def _webhook(row: Any) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "url": row["url"],
        "active": bool(row["active"]),
        "created_at": row["created_at"].isoformat(timespec="seconds") + "Z",
    }


@router.get(
    "/customers/{customer_id}/webhooks",
    response_model=Items[Webhook],
    responses=error_responses(NOT_FOUND),
)
def list_webhooks(customer_id: Id, actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        return {"items": [_webhook(r) for r in service.webhooks(conn, actor, customer_id, now())]}


@router.post(
    "/customers/{customer_id}/webhooks",
    status_code=201,
    response_model=NewWebhook,
    responses=error_responses(
        JSON_BODY,
        NOT_FOUND,
        {403: "cti_premium_required", 409: "conflict: 10 webhooks", 422: "url_refused"},
    ),
)
def add_webhook(customer_id: Id, body: WebhookIn, actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    deny = ctx.cti.deny if ctx.cti is not None else ()
    secret = new_secret()
    with ctx.db.transaction() as conn:
        row = service.add_webhook(conn, actor, customer_id, body.url, secret, deny, now())
    return {**_webhook(row), "secret": secret}


@router.delete(
    "/customers/{customer_id}/webhooks/{webhook_id}",
    status_code=204,
    response_model=None,
    responses=error_responses(NOT_FOUND),
)
def delete_webhook(customer_id: Id, webhook_id: Id, actor: CurrentActor, ctx: Ctx) -> None:
    with ctx.db.transaction() as conn:
        service.delete_webhook(conn, actor, customer_id, webhook_id, now())


class Delivery(BaseModel):
    id: int
    event_seq: int
    status: str = Field(description="pending, delivered or failed")
    attempts: int
    last_code: int | None
    last_error: str
    delivered_at: str | None
    next_attempt_at: str | None


@router.get(
    "/customers/{customer_id}/webhooks/{webhook_id}/deliveries",
    response_model=Items[Delivery],
    responses=error_responses(NOT_FOUND),
)
def list_deliveries(
    customer_id: Id, webhook_id: Id, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        rows = service.deliveries(conn, actor, customer_id, webhook_id, now())
    return {"items": [public_delivery(r) for r in rows]}
