"""The one place where violated rules become HTTP answers.

Body: {"error": {"code", "message", "rule"}}.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from pbx_app import errors

log = logging.getLogger("pbx_app.api")

STATUS: dict[type[errors.DomainError], int] = {
    errors.InvalidCredentials: 401,
    errors.NotAuthenticated: 401,
    errors.PermissionDenied: 403,
    errors.CsrfFailed: 403,
    errors.CustomerScopeViolation: 403,
    errors.TrialExpired: 403,
    errors.NotFound: 404,
    errors.PasswordLinkInvalid: 410,
    errors.EmailInUse: 409,
    errors.ExtensionNumberInUse: 409,
    errors.NumberInUse: 409,
    errors.LocationNameInUse: 409,
    errors.SipUsernameInUse: 409,
    errors.MacInUse: 409,
    errors.LocationInUse: 409,
    errors.Conflict: 409,
    errors.ExtensionLimitReached: 409,
    errors.ExtensionLicencesExhausted: 409,
    errors.HeadNumberLimitReached: 409,
    errors.DeviceLimitReached: 409,
    errors.PortingTransitionInvalid: 409,
    errors.LicenceCountInvalid: 409,
    errors.DeviceNotCertified: 409,
    errors.NumberAreaMismatch: 422,
    errors.NumberNotOwned: 422,
    errors.InvalidAreaCode: 422,
    errors.ExtensionNumberReserved: 422,
    errors.InvalidNumberFormat: 422,
    errors.InvalidEmail: 422,
    errors.PasswordTooWeak: 422,
    errors.ImportInvalid: 422,
    errors.LoginThrottled: 429,
    errors.ServiceBusy: 503,
    errors.InternalTokenInvalid: 401,
    errors.InternalApiDisabled: 503,
    errors.DatabaseUnavailable: 503,
}


def _printable(value: object, limit: int = 200) -> str:
    # Hostile input may carry lone surrogates or control characters; never echo them raw.
    text = str(value).encode("utf-8", "replace").decode("utf-8")
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:limit]


def error_body(code: str, message: str, rule: str = "", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if rule:
        body["rule"] = rule
    body.update(extra)
    return {"error": body}


def status_for(exc: errors.DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.DomainError)
    async def _domain(_: Request, exc: errors.DomainError) -> JSONResponse:
        extra: dict[str, Any] = {}
        headers: dict[str, str] = {}
        if isinstance(exc, errors.ImportInvalid):
            extra["rows"] = exc.rows
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return JSONResponse(
            error_body(exc.code, exc.message, exc.rule, **extra),
            status_code=status_for(exc),
            headers=headers or None,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {
                "location": [_printable(p, 60) for p in e.get("loc", ())],
                "message": _printable(e.get("msg", "")),
                "type": _printable(e.get("type", "")),
            }
            for e in exc.errors()[:20]
        ]
        first = details[0] if details else {"location": [], "message": "invalid request"}
        message = f"invalid request: {'.'.join(first['location'])}: {first['message']}"
        return JSONResponse(
            error_body("validation_failed", message, details=details), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            400: "bad_request",
            404: "not_found",
            405: "method_not_allowed",
            413: "payload_too_large",
            415: "unsupported_media_type",
        }.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, _printable(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        # A uniqueness race the services' pre-checks could not see; nothing was written.
        log.info("integrity conflict: %s", exc.orig)
        return JSONResponse(
            error_body("conflict", "the change conflicts with existing data"), status_code=409
        )
