"""Users and their extensions (issue 13): a user manages the call rules of the extensions linked
to them, an admin those of every extension of the customer, an operator all."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, RowMapping

from pbx_app import errors
from pbx_app.repositories import browser_phones as browser_phones_repo
from pbx_app.repositories import customers as customers_repo
from pbx_app.repositories import extensions as extensions_repo
from pbx_app.repositories import user_extensions as repo
from pbx_app.repositories import users as users_repo
from pbx_app.services import extensions as extensions_service
from pbx_app.services.access import Actor, Role, authorize

MAX_LINKS = 1000


def _user_of(conn: Connection, customer_id: int, user_id: int) -> RowMapping:
    user = users_repo.get(conn, user_id)
    if user is None or user["customer_id"] != customer_id:
        raise errors.NotFound(f"user {user_id} not found")
    return user


def get(conn: Connection, actor: Actor, customer_id: int, user_id: int, now: datetime) -> list[int]:
    """An admin (or operator) sees anyone's links, a user their own."""
    authorize(conn, actor, customer_id, now)
    _user_of(conn, customer_id, user_id)
    if actor.role is Role.USER and actor.user_id != user_id:
        raise errors.PermissionDenied("a user sees only their own extensions")
    return repo.extension_ids(conn, user_id)


def put(
    conn: Connection,
    actor: Actor,
    customer_id: int,
    user_id: int,
    extension_ids: list[int],
    now: datetime,
) -> list[int]:
    """Replaces the user's extensions; every one must be an extension of the customer."""
    authorize(conn, actor, customer_id, now, write=True)
    _user_of(conn, customer_id, user_id)
    wanted = sorted(set(extension_ids))  # at most MAX_LINKS: the API bounds the list
    missing = sorted(set(wanted) - repo.existing_extensions(conn, customer_id, wanted))
    if missing:
        shown = ", ".join(str(i) for i in missing[:10])
        raise errors.NotFound(f"extension(s) {shown} not found")
    # A browser phone is the user's on that extension: unlinked, it goes (its bindings expire),
    # and with it the device it counted as (R4).
    gone = sorted(set(browser_phones_repo.extension_ids_of_user(conn, user_id)) - set(wanted))
    if gone:
        # Under the customer row lock, as browser phones are made (device counters, R4).
        customers_repo.get(conn, customer_id, for_update=True)
        browser_phones_repo.delete_of_user(conn, user_id, gone)
        for extension_id in gone:
            extensions_repo.add_device_count(conn, extension_id, -1)
    repo.replace(conn, user_id, wanted)
    return wanted


def manageable_extension(
    conn: Connection,
    actor: Actor,
    customer_id: int,
    extension_id: int,
    now: datetime,
    *,
    write: bool,
) -> RowMapping:
    """The extension, if ``actor`` may read (or change) its call rules: an operator any, an
    admin those of their customer, a user only their own (403 otherwise; another customer's:
    customer_scope_violation, as everywhere). A write locks the customer row, so that rule
    changes of one customer are validated (loops) one after another."""
    if write and actor.role is Role.USER:
        authorize(conn, actor, customer_id, now)  # scope and trial, as for any write
        customers_repo.get(conn, customer_id, for_update=True)
    else:
        authorize(conn, actor, customer_id, now, write=write)
    extension = extensions_service.get_owned(conn, customer_id, extension_id)
    if actor.role is Role.USER and not repo.linked(conn, actor.user_id or 0, extension_id):
        raise errors.PermissionDenied(
            "a user manages the call rules of their own extensions only; ask an admin"
        )
    return extension
