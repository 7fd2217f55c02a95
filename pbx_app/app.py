"""The FastAPI application: routers under /api/v1, /healthz, the portal (pbx_app.web)."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pbx_app import __version__, web
from pbx_app.api import (
    audit,
    auth,
    browser_phone,
    call_records,
    call_rules,
    cti,
    customers,
    devices,
    extensions,
    faxes,
    head_numbers,
    internal,
    invoices,
    locations,
    porting,
    price_lists,
    provisioning,
    users,
)
from pbx_app.api import errors as api_errors
from pbx_app.api.deps import AppContext, no_unknown_query_parameters
from pbx_app.api.models import Health
from pbx_app.cti import Cti
from pbx_app.db import Database
from pbx_app.mail import Mailer, SmtpMailer
from pbx_app.metrics import RequestMetrics
from pbx_app.outbox import OutboxSender, Retry
from pbx_app.porting_scheduler import PortingScheduler
from pbx_app.services import faxes as faxes_service
from pbx_app.settings import Settings
from pbx_app.vault import Vault

API_PREFIX = "/api/v1"
# Routes that stream their request body to disk: their limit is PBX_MAX_IMPORT_BYTES.
STREAMED_BODY_PATHS = (re.compile(rf"{API_PREFIX}/customers/[^/]+/extensions/import"),)
# Fax documents (pbx_app.services.faxes.MAX_DOCUMENT_BYTES) and the multipart around them.
FAX_BODY_PATHS = (
    re.compile(rf"{API_PREFIX}/customers/[^/]+/faxes"),
    re.compile(r"/internal/v1/fax/(received|mail)"),
)
FAX_BODY_BYTES = faxes_service.MAX_DOCUMENT_BYTES + 64 * 1024


class BodySizeLimit:
    """Refuses request bodies above the limit with JSON 413 before they reach parsing or memory:
    at once when Content-Length says so, else (chunked) as soon as the bytes received pass it.
    Paths matching an entry of ``larger`` (routes that stream their body to disk) have that
    entry's limit instead."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        larger: Sequence[tuple[re.Pattern[str], int]] = (),
    ) -> None:
        self.app, self.max_bytes, self.larger = app, max_bytes, larger

    def limit_for(self, path: str) -> int:
        return next((limit for p, limit in self.larger if p.fullmatch(path)), self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await self._refuse(limit, scope, receive, send)
            return
        received = 0
        refused = started = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    # An HTTPException, so that FastAPI's body parsing passes it on as it is.
                    raise HTTPException(413, _too_large(limit))
            return message

        async def send_unless_refused(message: Message) -> None:
            nonlocal started
            if refused and not started:
                return  # the app's answer to a body it could not read: the 413 below replaces it
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, send_unless_refused)
        except Exception:
            if not refused:
                raise
            # The app gave up on the body that was cut off; that is answered below.
        if refused and not started:
            await self._refuse(limit, scope, receive, send)
        # A response that had started before the body ran over just ends where it stopped.

    @staticmethod
    async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        body = api_errors.error_body("payload_too_large", _too_large(limit))
        await JSONResponse(body, status_code=413)(scope, receive, send)


def _too_large(limit: int) -> str:
    return f"request body larger than {limit} bytes"


class RedactSecretsInAccessLog(logging.Filter):
    """The access log names every request's path and query; a set-password link carries its
    single-use token there. Whoever reads the log must not be able to use it."""

    _SECRET = re.compile(r"((?:^|[?&])token=|/prov/t/)[^&/\s]*")

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn.access: (client, method, full path, HTTP version, status)
        if isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            if isinstance(args[2], str) and ("token=" in args[2] or "/prov/t/" in args[2]):
                args[2] = self._SECRET.sub(r"\1[redacted]", args[2])
                record.args = tuple(args)
        return True


def _redact_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactSecretsInAccessLog) for f in access.filters):
        access.addFilter(RedactSecretsInAccessLog())


# Pages carry no third-party content and are never framed; scripts, styles, fetches and forms
# stay on this origin; the browser phone may also open WebSockets to the proxies (wss_urls).
def html_csp(wss_urls: Sequence[str] = ()) -> str:
    connect = " ".join(["'self'", *wss_urls])
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        f"connect-src {connect}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )


class SecurityHeaders:
    """Headers every response gets: no MIME sniffing, no referrer (a set-password link's token
    must not travel to another site), nothing cached (API answers carry SIP passwords and
    tokens); HTML also a CSP that forbids framing and foreign scripts; HSTS on answers over
    https (the plain port inside the platform has none: HSTS there would be a lie)."""

    def __init__(self, app: ASGIApp, wss_urls: Sequence[str] = ()) -> None:
        self.app, self.csp = app, html_csp(wss_urls)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["x-content-type-options"] = "nosniff"
                headers["referrer-policy"] = "no-referrer"
                headers.setdefault("cache-control", "no-store")
                if headers.get("content-type", "").startswith("text/html"):
                    headers["content-security-policy"] = self.csp
                    headers["x-frame-options"] = "DENY"
                if scope.get("scheme") == "https":
                    headers["strict-transport-security"] = "max-age=31536000"
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(
    settings: Settings | None = None, db: Database | None = None, mailer: Mailer | None = None
) -> FastAPI:
    settings = settings or Settings.from_env()
    db = db or Database(settings.database_url, settings.database_read_url)
    mailer = mailer or SmtpMailer(settings.smtp_host, settings.smtp_port, settings.mail_from)
    _redact_access_log()
    sender = OutboxSender(db, mailer, Retry(first=timedelta(seconds=settings.mail_retry_seconds)))
    scheduler = PortingScheduler(
        db,
        settings.node_name,
        poll=settings.porting_poll_seconds,
        retry=timedelta(seconds=settings.porting_retry_seconds),
    )

    cti_runtime = Cti.create(settings, db)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        sender.wake()  # mail queued before a restart, or by a node that is gone
        scheduler.start()  # on every node: ports due while no node ran complete at once
        await cti_runtime.start()
        yield
        cti_runtime.stop()
        scheduler.stop()
        sender.stop()

    app = FastAPI(
        lifespan=lifespan,
        # No redirect from "/path/" to "/path": Starlette builds its Location from the request's
        # Host header, so a forged Host would come back as a redirect to anywhere.
        redirect_slashes=False,
        title="pbx_app",
        version=__version__,
        description="Hosted PBX: customers, locations, numbers, extensions, users, devices.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        # No Swagger UI: it loads scripts from a CDN into the portal's origin. The document
        # itself is served; any OpenAPI viewer reads it.
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = AppContext(
        settings=settings,
        db=db,
        outbox=sender,
        porting=scheduler,
        cti=cti_runtime,
        vault=Vault.from_setting(settings.effective_credential_keys),
    )
    api_errors.install(app)
    every_operation = api_errors.error_responses(api_errors.EVERY_OPERATION)
    for module in (
        auth,
        customers,
        locations,
        head_numbers,
        extensions,
        devices,
        users,
        call_rules,
        porting,
        audit,
        call_records,
        browser_phone,
        price_lists,
        invoices,
        cti,
        provisioning,
        faxes,
    ):
        app.include_router(
            module.router,
            prefix=API_PREFIX,
            responses=every_operation,
            dependencies=[Depends(no_unknown_query_parameters)],
        )
    # Phones fetching their configuration: their firmware may add query parameters of its own.
    app.include_router(provisioning.phone_router)
    # WebSocket routes: no HTTP dependencies (they read the Request); they check their own.
    app.include_router(cti.ws_router, prefix=API_PREFIX)
    app.include_router(internal.router, dependencies=[Depends(no_unknown_query_parameters)])
    app.include_router(
        call_records.internal_router, dependencies=[Depends(no_unknown_query_parameters)]
    )
    app.include_router(faxes.internal_router, dependencies=[Depends(no_unknown_query_parameters)])

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_root() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get(
        "/healthz",
        tags=["health"],
        response_model=Health,
        responses={
            503: {"model": Health, "description": "degraded: the local database does not answer"},
            **api_errors.error_responses({413: api_errors.EVERY_OPERATION[413]}),
        },
    )
    def healthz() -> JSONResponse:
        # 200 while the read engine (the local member) answers: a site cut off from the leader
        # still routes calls. "writable": whether a leader is reachable for writes right now.
        health = db.health()
        ok = health.readable
        body: dict[str, Any] = {
            "status": "ok" if ok else "degraded",
            "database": "ok" if ok else "unreachable",
            "writable": health.writable,
            "node": settings.node_name,
            "site": settings.site,
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    # The portal (pbx_app.web): its shell at / and /set-password, its bundle under /static.
    # (Pages take no API query parameters: a mail client may append its own to the link.)
    app.include_router(web.router)
    app.mount("/static", web.static_files(), name="static")

    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        larger=[(path, settings.max_import_bytes) for path in STREAMED_BODY_PATHS]
        + [(path, FAX_BODY_BYTES) for path in FAX_BODY_PATHS],
    )
    app.add_middleware(SecurityHeaders, wss_urls=settings.wss_urls)
    app.add_middleware(RequestMetrics)  # outermost: times everything, refusals included
    return app
