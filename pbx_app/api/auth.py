"""Login (e-mail + password only, R6), logout, password-set links, API tokens, "me"."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import Field
from sqlalchemy import RowMapping

from pbx_app import errors
from pbx_app.api.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Ctx,
    CurrentActor,
    EmailText,
    Id,
    Name,
    PasswordText,
    SafeText,
    now,
    require_csrf_token,
)
from pbx_app.api.errors import AUTHENTICATED, JSON_BODY, NOT_FOUND, error_responses
from pbx_app.api.models import ApiToken, Body, Items, LoginResult, Me, NewApiToken, UserEnvelope
from pbx_app.repositories import user_extensions as user_extensions_repo
from pbx_app.repositories import users as users_repo
from pbx_app.security import csrf_token, hashing
from pbx_app.services import users as service

router = APIRouter(tags=["auth"])


def came_over_https(request: Request) -> bool:
    """Cookies are Secure when their request came over HTTPS (the people's port): the plain
    port inside the platform must keep working for clients that log in over http."""
    return request.url.scheme == "https"


class LoginRequest(Body):
    email: EmailText
    password: PasswordText


class SetPasswordRequest(Body):
    token: Annotated[
        str,
        Field(strict=True, min_length=10, max_length=200, description="From the e-mailed link."),
        SafeText,
    ]
    password: Annotated[
        PasswordText,
        Field(description="12-128 characters, at least 5 different (422 password_too_weak)."),
    ]


class TokenRequest(Body):
    name: Name
    expires_in_days: Annotated[int, Field(strict=True, ge=1, le=730)] = 365


@router.post(
    "/auth/login",
    response_model=LoginResult,
    responses={
        **error_responses(
            JSON_BODY,
            {
                401: "invalid_credentials: the e-mail or the password is wrong",
                429: "login_throttled: too many failed logins from this client or for this "
                "account; retry after Retry-After seconds",
            },
        ),
        200: {
            "description": "Logged in: the portal session is in the pbx_session cookie, its "
            "CSRF token in the body and in the pbx_csrf cookie",
            "headers": {
                "Set-Cookie": {
                    "description": "pbx_session=<token>; HttpOnly; SameSite=Strict, and "
                    "pbx_csrf=<csrf_token>; SameSite=Strict (Secure when the request came "
                    "over https)",
                    "required": True,
                    "schema": {"type": "string"},
                }
            },
        },
    },
)
async def login(
    body: LoginRequest, request: Request, ctx: Ctx, response: Response
) -> dict[str, Any]:
    """Three short steps, the password check between them in no transaction: a login flood
    then holds no lock and no request thread that other tenants need."""
    address = request.client.host if request.client else ""
    started = now()

    def begin() -> service.LoginAttempt:
        with ctx.db.snapshot() as conn:
            return service.begin_login(conn, body.email, address, started)

    attempt = await run_in_threadpool(begin)
    stored = attempt.user["password_hash"] if attempt.user else None
    password_ok = await hashing.verify(stored, body.password)

    def finish() -> str | None:
        with ctx.db.transaction() as conn:
            return service.finish_login(
                conn,
                attempt,
                password_ok,
                ctx.settings.secret_key,
                timedelta(hours=ctx.settings.session_ttl_hours),
                now(),
            )

    token = await run_in_threadpool(finish)
    if token is None or attempt.user is None:
        raise errors.InvalidCredentials("e-mail or password is wrong")
    csrf = csrf_token(ctx.settings.secret_key, token)
    for name, value, httponly in ((SESSION_COOKIE, token, True), (CSRF_COOKIE, csrf, False)):
        response.set_cookie(
            name,
            value,
            max_age=ctx.settings.session_ttl_hours * 3600,
            httponly=httponly,
            samesite="strict",
            secure=came_over_https(request),
        )
    return {"user": service.public(attempt.user), "csrf_token": csrf}


@router.post(
    "/auth/logout",
    status_code=204,
    response_model=None,
    description="Ends the session of the pbx_session cookie, if one is sent (with its "
    "X-CSRF-Token header).",
    responses=error_responses({403: "csrf_failed: the X-CSRF-Token header is missing or wrong"}),
)
def logout(request: Request, ctx: Ctx, response: Response) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if token and len(token) <= 200 and token.isascii():
        require_csrf_token(request, ctx.settings.secret_key, token)
        with ctx.db.transaction() as conn:
            service.logout(conn, ctx.settings.secret_key, token, now())
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, secure=came_over_https(request), samesite="strict")


@router.post(
    "/auth/set-password",
    response_model=UserEnvelope,
    responses=error_responses(
        JSON_BODY,
        {
            410: "password_link_invalid: the link is unknown, used already or expired",
            422: "validation_failed, or password_too_weak",
        },
    ),
)
async def set_password(body: SetPasswordRequest, ctx: Ctx) -> dict[str, Any]:
    service.check_password_policy(body.password)

    def usable() -> bool:
        with ctx.db.snapshot() as conn:
            return service.password_link_usable(conn, ctx.settings.secret_key, body.token, now())

    if not await run_in_threadpool(usable):
        raise service.link_invalid()
    password_hash = await hashing.hash(body.password)

    def store() -> RowMapping:
        with ctx.db.transaction() as conn:
            return service.set_password_with_link(
                conn, ctx.settings.secret_key, body.token, password_hash, now()
            )

    return {"user": service.public(await run_in_threadpool(store))}


@router.get("/me", response_model=Me, responses=error_responses(AUTHENTICATED))
def me(actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        user = users_repo.get(conn, actor.user_id) if actor.user_id else None
        linked = user_extensions_repo.extension_ids(conn, actor.user_id) if actor.user_id else []
    return {
        "user": service.public(user) if user else None,
        "role": actor.role.value,
        "extension_ids": linked,
    }


@router.post(
    "/tokens",
    status_code=201,
    response_model=NewApiToken,
    responses=error_responses(AUTHENTICATED, JSON_BODY),
)
def create_token(body: TokenRequest, actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    with ctx.db.transaction() as conn:
        token, token_id = service.create_api_token(
            conn,
            actor,
            ctx.settings.secret_key,
            body.name,
            timedelta(days=body.expires_in_days),
            now(),
        )
    return {"id": token_id, "token": token, "name": body.name}


@router.get("/tokens", response_model=Items[ApiToken], responses=error_responses(AUTHENTICATED))
def list_tokens(actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        rows = users_repo.list_api_tokens(conn, actor.user_id or 0, now())
    return {"items": [{"id": r["id"], "name": r["name"]} for r in rows]}


@router.delete(
    "/tokens/{token_id}",
    status_code=204,
    response_model=None,
    responses=error_responses(AUTHENTICATED, NOT_FOUND),
)
def revoke_token(token_id: Id, actor: CurrentActor, ctx: Ctx) -> None:
    with ctx.db.transaction() as conn:
        service.revoke_api_token(conn, actor, token_id, now())
