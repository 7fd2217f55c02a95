"""Shared request plumbing: application context, authentication, common parameter types."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from fastapi.dependencies.utils import get_flat_dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BeforeValidator, Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from pbx_app import errors
from pbx_app.addressing import (
    EMERGENCY_NUMBERS,
    EXTENSION_NUMBER_PATTERN,
    GERMAN_E164_PATTERN,
    alternatives,
    anchored,
)
from pbx_app.cti import Cti
from pbx_app.db import Database, utcnow
from pbx_app.outbox import OutboxSender
from pbx_app.porting_scheduler import PortingScheduler
from pbx_app.security import csrf_token_valid
from pbx_app.services import users as users_service
from pbx_app.services.access import Actor
from pbx_app.settings import Settings
from pbx_app.text import require_no_control, require_printable
from pbx_app.vault import Vault

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
    porting: PortingScheduler | None = None
    cti: Cti | None = None
    vault: Vault | None = None


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def now() -> datetime:
    return utcnow()


# Declared as security schemes, so the OpenAPI document tells clients how to authenticate.
# auto_error=False: a missing credential is answered below, as not_authenticated (401, JSON).
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearerToken",
    description="An API token for integrations (POST /api/v1/tokens): "
    "`Authorization: Bearer <token>`.",
)
SESSION = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    scheme_name="sessionCookie",
    description="The portal's session, set by POST /api/v1/auth/login.",
)


def current_actor(
    request: Request,
    ctx: Annotated[AppContext, Depends(context)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    session: Annotated[str | None, Depends(SESSION)],
) -> Actor:
    """Bearer tokens for integrations, the session cookie for the portal."""
    token = bearer.credentials.strip() if bearer else ""
    kinds: tuple[str, ...] = ("api", "session")
    if not token:
        token = session or ""
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


def no_unknown_query_parameters(request: Request) -> None:
    """A misspelt parameter (``?limt=5``) is a mistake to report, not one to ignore silently."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    unknown = sorted(set(request.query_params) - _query_parameters(route))
    if unknown:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", name),
                    "msg": "unknown query parameter",
                    "type": "extra_forbidden",
                }
                for name in unknown[:20]
            ]
        )


def _query_parameters(route: APIRoute) -> frozenset[str]:
    # A walk over a handful of dependencies; routes are unhashable, so not cached.
    return frozenset(p.alias for p in get_flat_dependant(route.dependant).query_params)


Ctx = Annotated[AppContext, Depends(context)]
CurrentActor = Annotated[Actor, Depends(current_actor)]

# Path and query parameters bounded to what the database can hold.
Id = Annotated[int, Path(ge=1, le=2_147_483_647)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]


class _TextRule:
    """Validates with a rule of pbx_app.text and says so in the JSON Schema: a pattern cannot
    name Unicode categories (unassigned code points depend on the Unicode version)."""

    def __init__(self, check: Callable[[str], str], description: str) -> None:
        self.check, self.description = check, description

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["description"] = self.description
        return json_schema


# Secrets (passwords, tokens), which nobody displays: no control characters.
SafeText = _TextRule(
    require_no_control,
    "Text without control characters (Unicode Cc), surrogates, private-use or unassigned "
    "code points.",
)
# Names people see: printable only.
Printable = _TextRule(
    require_printable,
    "Printable text: no control, format (bidirectional overrides, zero-width characters), "
    "line or paragraph separator, or unassigned characters; the plain space is fine.",
)
Name = Annotated[str, Field(strict=True, min_length=1, max_length=100), Printable]
LongName = Annotated[str, Field(strict=True, min_length=1, max_length=200), Printable]
OptionalName = Annotated[str, Field(strict=True, min_length=0, max_length=100), Printable]
StrictId = Annotated[int, Field(strict=True, ge=1, le=2_147_483_647)]
E164 = Annotated[str, Field(strict=True, pattern=anchored(GERMAN_E164_PATTERN))]
EmailText = Annotated[
    str,
    Field(
        strict=True,
        min_length=3,
        max_length=254,
        description="An e-mail address, local@domain with a dotted domain (checked by the "
        "server), compared case-insensitively.",
    ),
    Printable,
]
PasswordText = Annotated[str, Field(strict=True, min_length=1, max_length=128), SafeText]
ExtensionNumber = Annotated[
    str,
    Field(
        strict=True,
        pattern=anchored(EXTENSION_NUMBER_PATTERN),
        description=f"2-8 digits, no leading 0; not {alternatives(EMERGENCY_NUMBERS)} (emergency "
        "numbers: 422 extension_number_reserved).",
    ),
]


# Lax validation converts between JSON types (0 to false, true to 1, a number to a date as Unix
# time); the published schema does not, so neither does the API.
def exactly(json_type: type, what: str) -> BeforeValidator:
    def check(value: Any) -> Any:
        if type(value) is not json_type:
            raise ValueError(f"expected {what}")
        return value

    return BeforeValidator(check)


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date_text(value: Any) -> Any:
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("expected a date as YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date_text)]
