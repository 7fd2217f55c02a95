"""Login (e-mail + password only, R6), logout, password-set links, API tokens, "me"."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import Field

from pbx_app.api.deps import (
    SESSION_COOKIE,
    Ctx,
    CurrentActor,
    EmailText,
    Id,
    Name,
    PasswordText,
    SafeText,
    now,
)
from pbx_app.api.errors import AUTHENTICATED, JSON_BODY, NOT_FOUND, error_responses
from pbx_app.api.models import ApiToken, Body, Items, Me, NewApiToken, UserEnvelope
from pbx_app.repositories import users as users_repo
from pbx_app.services import users as service

router = APIRouter(tags=["auth"])


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
    response_model=UserEnvelope,
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
            "description": "Logged in: the portal session is in the pbx_session cookie",
            "headers": {
                "Set-Cookie": {
                    "description": "pbx_session=<token>; HttpOnly; SameSite=Strict",
                    "required": True,
                    "schema": {"type": "string"},
                }
            },
        },
    },
)
def login(body: LoginRequest, ctx: Ctx, response: Response) -> dict[str, Any]:
    with ctx.db.transaction() as conn:
        token, user = service.login(
            conn,
            ctx.settings.secret_key,
            body.email,
            body.password,
            timedelta(hours=ctx.settings.session_ttl_hours),
            now(),
        )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=ctx.settings.session_ttl_hours * 3600,
        httponly=True,
        samesite="strict",
        secure=ctx.settings.effective_public_url.startswith("https://"),
    )
    return {"user": service.public(user)}


@router.post(
    "/auth/logout",
    status_code=204,
    response_model=None,
    description="Ends the session of the pbx_session cookie, if one is sent; always 204.",
)
def logout(request: Request, ctx: Ctx, response: Response) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if token and len(token) <= 200 and token.isascii():
        with ctx.db.transaction() as conn:
            service.logout(conn, ctx.settings.secret_key, token, now())
    response.delete_cookie(SESSION_COOKIE)


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
def set_password(body: SetPasswordRequest, ctx: Ctx) -> dict[str, Any]:
    with ctx.db.transaction() as conn:
        user = service.set_password_with_link(
            conn, ctx.settings.secret_key, body.token, body.password, now()
        )
    return {"user": service.public(user)}


@router.get("/me", response_model=Me, responses=error_responses(AUTHENTICATED))
def me(actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        user = users_repo.get(conn, actor.user_id) if actor.user_id else None
    return {"user": service.public(user) if user else None, "role": actor.role.value}


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
