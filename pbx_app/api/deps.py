"""Shared request plumbing: application context, authentication, common parameter types."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from pydantic import AfterValidator, Field

from pbx_app import errors
from pbx_app.db import Database, utcnow
from pbx_app.outbox import OutboxSender
from pbx_app.security import csrf_token_valid
from pbx_app.services import users as users_service
from pbx_app.services.access import Actor
from pbx_app.settings import Settings
from pbx_app.text import require_no_control, require_printable

SESSION_COOKIE = "pbx_session"
# Readable by the portal's script (not HttpOnly), sent back as the X-CSRF-Token header.
CSRF_COOKIE = "pbx_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class AppContext:
    settings: Settings
    db: Database
    outbox: OutboxSender


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def now() -> datetime:
    return utcnow()


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def current_actor(request: Request, ctx: Annotated[AppContext, Depends(context)]) -> Actor:
    """Bearer tokens for integrations, the session cookie for the portal."""
    token = _bearer(request)
    kinds: tuple[str, ...] = ("api", "session")
    if token is None:
        token = request.cookies.get(SESSION_COOKIE)
        kinds = ("session",)
    if not token or len(token) > 200 or not token.isascii():
        raise errors.NotAuthenticated("log in, or send a valid bearer token")
    if kinds == ("session",):
        require_csrf_token(request, ctx.settings.secret_key, token)
    with ctx.db.snapshot() as conn:
        return users_service.authenticate(conn, ctx.settings.secret_key, token, kinds, now())


def require_csrf_token(request: Request, secret_key: str, session_token: str) -> None:
    """Cookie-authenticated writes need the session's CSRF token in a header, which a page on
    another origin cannot set (SameSite=Strict on the cookie is the first line, this the
    second). Bearer-token requests carry no ambient credential and need none."""
    if request.method in SAFE_METHODS:
        return
    presented = request.headers.get(CSRF_HEADER, "")
    if not (presented.isascii() and csrf_token_valid(secret_key, session_token, presented)):
        raise errors.CsrfFailed(
            f"a write with the session cookie needs the {CSRF_HEADER} header from the login"
        )


Ctx = Annotated[AppContext, Depends(context)]
CurrentActor = Annotated[Actor, Depends(current_actor)]

# Path and query parameters bounded to what the database can hold.
Id = Annotated[int, Path(ge=1, le=2_147_483_647)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]


# Secrets (passwords, tokens): no control characters. Names people see: printable only.
SafeText = AfterValidator(require_no_control)
Printable = AfterValidator(require_printable)
Name = Annotated[str, Field(strict=True, min_length=1, max_length=100), Printable]
LongName = Annotated[str, Field(strict=True, min_length=1, max_length=200), Printable]
OptionalName = Annotated[str, Field(strict=True, min_length=0, max_length=100), Printable]
StrictId = Annotated[int, Field(strict=True, ge=1, le=2_147_483_647)]
E164 = Annotated[str, Field(strict=True, pattern=r"^\+49[1-9][0-9]{4,12}$")]
EmailText = Annotated[str, Field(strict=True, min_length=3, max_length=254), Printable]
PasswordText = Annotated[str, Field(strict=True, min_length=1, max_length=128), SafeText]
ExtensionNumber = Annotated[str, Field(strict=True, pattern=r"^[1-9][0-9]{1,7}$")]
