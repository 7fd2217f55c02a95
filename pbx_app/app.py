"""The FastAPI application: routers under /api/v1, /healthz, the password-set page."""

from __future__ import annotations

import html
import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pbx_app import __version__
from pbx_app.api import (
    auth,
    customers,
    devices,
    extensions,
    head_numbers,
    internal,
    locations,
    porting,
    users,
)
from pbx_app.api import errors as api_errors
from pbx_app.api.deps import AppContext
from pbx_app.api.models import Health
from pbx_app.db import Database
from pbx_app.mail import Mailer, SmtpMailer
from pbx_app.settings import Settings

API_PREFIX = "/api/v1"


class BodySizeLimit:
    """Refuses bodies above the limit with 413 before they reach parsing or memory."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._reject(send)
            return
        received = 0
        too_large = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, limited_receive, send)

    @staticmethod
    async def _reject(send: Send) -> None:
        body = b'{"error":{"code":"payload_too_large","message":"request body too large"}}'
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class RedactSecretsInAccessLog(logging.Filter):
    """The access log names every request's path and query; a set-password link carries its
    single-use token there. Whoever reads the log must not be able to use it."""

    _SECRET = re.compile(r"((?:^|[?&])token=)[^&\s]*")

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn.access: (client, method, full path, HTTP version, status)
        if isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            if isinstance(args[2], str) and "token=" in args[2]:
                args[2] = self._SECRET.sub(r"\1[redacted]", args[2])
                record.args = tuple(args)
        return True


def _redact_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactSecretsInAccessLog) for f in access.filters):
        access.addFilter(RedactSecretsInAccessLog())


ONBOARDING_PAGE_HTML = """<!doctype html><html><head><meta charset="utf-8">
<title>Set password</title></head><body><h1>Set your PBX password</h1>
<form id="f"><input type="hidden" id="token" value="{token}">
<label>New password <input type="password" id="pw" minlength="12" required></label>
<button>Set password</button></form><p id="out"></p>
<script>
document.getElementById('f').onsubmit = async (e) => {{
  e.preventDefault();
  const r = await fetch('{prefix}/auth/set-password', {{method: 'POST',
    headers: {{'content-type': 'application/json'}},
    body: JSON.stringify({{token: document.getElementById('token').value,
                          password: document.getElementById('pw').value}})}});
  const j = await r.json();
  document.getElementById('out').textContent = r.ok ? 'Password set. You can log in now.'
    : j.error.message;
}};
</script></body></html>"""


def create_app(
    settings: Settings | None = None, db: Database | None = None, mailer: Mailer | None = None
) -> FastAPI:
    settings = settings or Settings.from_env()
    db = db or Database(settings.database_url, settings.database_read_url)
    mailer = mailer or SmtpMailer(settings.smtp_host, settings.smtp_port, settings.mail_from)
    _redact_access_log()
    app = FastAPI(
        # No redirect from "/path/" to "/path": Starlette builds its Location from the request's
        # Host header, so a forged Host would come back as a redirect to anywhere.
        redirect_slashes=False,
        title="pbx_app",
        version=__version__,
        description="Hosted PBX: customers, locations, numbers, extensions, users, devices.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.ctx = AppContext(settings=settings, db=db, mailer=mailer)
    api_errors.install(app)
    every_operation = api_errors.error_responses(api_errors.EVERY_OPERATION)
    for module in (auth, customers, locations, head_numbers, extensions, devices, users, porting):
        app.include_router(module.router, prefix=API_PREFIX, responses=every_operation)
    app.include_router(internal.router)

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

    @app.get("/set-password", response_class=HTMLResponse, include_in_schema=False)
    def set_password_page(request: Request) -> HTMLResponse:
        token = html.escape(request.query_params.get("token", "")[:200], quote=True)
        return HTMLResponse(ONBOARDING_PAGE_HTML.format(token=token, prefix=API_PREFIX))

    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app
