"""The one place where violated rules become HTTP answers, and where the OpenAPI document
learns which of them an operation can give.

Body: {"error": {"code", "message", "rule"}} (pbx_app.api.models.ErrorResponse).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from pbx_app import errors, metrics
from pbx_app.api.models import ErrorResponse

log = logging.getLogger("pbx_app.api")

STATUS: dict[type[errors.DomainError], int] = {
    errors.InvalidCredentials: 401,
    errors.NotAuthenticated: 401,
    errors.PermissionDenied: 403,
    errors.CsrfFailed: 403,
    errors.CustomerScopeViolation: 403,
    errors.TrialExpired: 403,
    errors.BusinessOptionRequired: 403,
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
    errors.PortingPartialBlock: 409,
    errors.LicenceCountInvalid: 409,
    errors.NoticeAlreadyGiven: 409,
    errors.NoticeDateInvalid: 422,
    errors.ContractEnded: 403,
    errors.PriceListInForce: 409,
    errors.OptionUnknown: 422,
    errors.InvoicePeriodOpen: 409,
    errors.DeviceNotCertified: 409,
    errors.DeviceHasNoMac: 409,
    errors.DeviceModelInUse: 409,
    errors.NumberAreaMismatch: 422,
    errors.NumberNotOwned: 422,
    errors.InvalidAreaCode: 422,
    errors.ExtensionNumberReserved: 422,
    errors.InvalidNumberFormat: 422,
    errors.InvalidEmail: 422,
    errors.PasswordTooWeak: 422,
    errors.ImportInvalid: 422,
    errors.PortingTargetInvalid: 422,
    errors.InvalidSchedule: 422,
    errors.InvalidCallRule: 422,
    errors.CallerIdNotHeld: 422,
    errors.RuleLoop: 409,
    errors.RingGroupInUse: 409,
    errors.RingGroupNameInUse: 409,
    errors.LoginThrottled: 429,
    errors.ServiceBusy: 503,
    errors.InternalTokenInvalid: 401,
    errors.InternalApiDisabled: 503,
    errors.DatabaseUnavailable: 503,
    errors.CtiNotBooked: 403,
    errors.CtiPremiumRequired: 403,
    errors.CtiUnavailable: 503,
    errors.ReportBatchInvalid: 422,
    errors.UrlRefused: 422,
    errors.EfaxNotBooked: 403,
    errors.DocumentTypeUnsupported: 415,
    errors.DocumentTooLarge: 413,
    errors.TooManyAddresses: 422,
    errors.SenderNotAllowed: 403,
    errors.LeaseLost: 409,
    errors.FaxReportInvalid: 422,
    errors.FormInvalid: 400,
    errors.TargetInvalid: 422,
    errors.ExtensionRequired: 422,
    errors.NoDevice: 409,
    errors.ClickToDialBusy: 409,
}


# --- the OpenAPI side: status -> what it means for the operation, naming the error codes ------
ErrorStatuses = Mapping[int, str]

# Under /api/v1 (app.include_router): any body may be too large, any input invalid, and every
# operation reads or writes the database.
EVERY_OPERATION: ErrorStatuses = {
    413: "payload_too_large: the request body exceeds the server's limit",
    422: "validation_failed (details lists the problems), or a value breaks a product rule "
    "(code and rule say which)",
    503: "database_unavailable: no database can serve the request right now; nothing was "
    "written; retry after Retry-After seconds",
}
AUTHENTICATED: ErrorStatuses = {
    401: "not_authenticated: no valid bearer token or session cookie",
    403: "permission_denied (the role may not do this; a cookie-authenticated write without "
    "the X-CSRF-Token header: csrf_failed), customer_scope_violation (another customer's "
    "resource), trial_expired (the customer's trial has ended, R19), contract_ended (the "
    "contract ended after a notice, R18)",
}
NOT_FOUND: ErrorStatuses = {
    404: "not_found: a resource named in the path or the body does not exist for this customer",
}
JSON_BODY: ErrorStatuses = {
    400: "bad_request: the JSON body is not valid UTF-8",
}

# Statuses whose answer says when to try again; 429 always does, 503 for database_unavailable.
_RETRY_AFTER_REQUIRED = {429: True, 503: False}


def error_responses(*groups: ErrorStatuses) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=`` for routers and routes: each status with the error body, its
    description and the headers it carries. A later group's description wins."""
    merged = {status: text for group in groups for status, text in group.items()}
    return {status: _error_response(status, merged[status]) for status in sorted(merged)}


def _error_response(status: int, description: str) -> dict[str, Any]:
    response: dict[str, Any] = {"model": ErrorResponse, "description": description}
    if status in _RETRY_AFTER_REQUIRED:
        response["headers"] = {
            "Retry-After": {
                "description": "seconds to wait before trying again",
                "required": _RETRY_AFTER_REQUIRED[status],
                "schema": {"type": "integer"},
            }
        }
    return response


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
        metrics.refused(exc)
        extra: dict[str, Any] = dict(exc.extra)
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
