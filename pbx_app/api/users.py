"""Users of a customer (R6): created by an admin, onboarded by an e-mailed password link."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import Field

from pbx_app.api.deps import Ctx, CurrentActor, EmailText, Id, OptionalName, StrictId, now
from pbx_app.api.errors import AUTHENTICATED, EVERY_OPERATION, JSON_BODY, NOT_FOUND, error_responses
from pbx_app.api.models import Body, Items, User, UserExtensions
from pbx_app.services import user_extensions
from pbx_app.services import users as service
from pbx_app.services.access import Role

router = APIRouter(tags=["users"], responses=error_responses(AUTHENTICATED, NOT_FOUND))


class UserCreate(Body):
    email: EmailText
    role: Literal["customer_admin", "user"] = "user"
    display_name: OptionalName = ""


def links(ctx: Ctx) -> service.Links:
    return service.Links(
        public_url=ctx.settings.effective_public_url,
        secret_key=ctx.settings.secret_key,
        ttl=timedelta(hours=ctx.settings.password_link_ttl_hours),
    )


@router.post(
    "/customers/{customer_id}/users",
    status_code=201,
    response_model=User,
    responses=error_responses(
        JSON_BODY,
        {
            409: "email_in_use: the e-mail is another account's login (R6)",
            422: "validation_failed, or invalid_email",
            503: f"{EVERY_OPERATION[503]}; or mail_delivery_failed: the e-mail with the "
            "password link could not be sent, nothing was saved",
        },
    ),
)
def create_user(customer_id: Id, body: UserCreate, actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    with ctx.db.transaction() as conn:
        row = service.create(
            conn,
            actor,
            customer_id,
            body.email,
            Role(body.role),
            body.display_name,
            links(ctx),
            now(),
        )
    ctx.outbox.wake()  # committed: the onboarding mail may go
    return service.public(row)


@router.get("/customers/{customer_id}/users", response_model=Items[User])
def list_users(customer_id: Id, actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        rows = service.list_(conn, actor, customer_id, now())
    return {"items": [service.public(r) for r in rows]}


@router.delete(
    "/customers/{customer_id}/users/{user_id}",
    status_code=204,
    response_model=None,
    responses=error_responses({409: "conflict: you cannot delete yourself"}),
)
def delete_user(customer_id: Id, user_id: Id, actor: CurrentActor, ctx: Ctx) -> None:
    with ctx.db.transaction() as conn:
        service.delete(conn, actor, customer_id, user_id, now())


class UserExtensionsUpdate(Body):
    extension_ids: Annotated[
        list[StrictId],
        Field(
            max_length=user_extensions.MAX_LINKS,
            description="the user's extensions (replaces the list); each one of the customer's",
        ),
    ]


@router.get("/customers/{customer_id}/users/{user_id}/extensions", response_model=UserExtensions)
def get_user_extensions(
    customer_id: Id, user_id: Id, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        ids = user_extensions.get(conn, actor, customer_id, user_id, now())
    return {"user_id": user_id, "extension_ids": ids}


@router.put(
    "/customers/{customer_id}/users/{user_id}/extensions",
    response_model=UserExtensions,
    responses=error_responses(JSON_BODY),
)
def put_user_extensions(
    customer_id: Id, user_id: Id, body: UserExtensionsUpdate, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    with ctx.db.transaction() as conn:
        ids = user_extensions.put(conn, actor, customer_id, user_id, body.extension_ids, now())
    return {"user_id": user_id, "extension_ids": ids}
