"""Users: e-mail + password login only (R6); an admin creates a user and the app e-mails a
single-use, expiring link to set the initial password. Sessions and API tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping

from pbx_app import errors, outbox
from pbx_app.repositories import audit as audit_repo
from pbx_app.repositories import browser_phones as browser_phones_repo
from pbx_app.repositories import extensions as extensions_repo
from pbx_app.repositories import users as repo
from pbx_app.security import hash_password, new_token, token_hash
from pbx_app.services import login_throttle
from pbx_app.services.access import Actor, Role, authorize, require_operator

EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
MIN_PASSWORD = 12
MAX_PASSWORD = 128


def normalise_email(email: str) -> str:
    value = email.strip().lower()
    if len(value) > 254 or not EMAIL.fullmatch(value):
        raise errors.InvalidEmail("not a valid e-mail address")
    return value


def public(row: RowMapping) -> dict[str, Any]:
    return {
        "id": row["id"],
        "customer_id": row["customer_id"],
        "email": row["email"],
        "display_name": row["display_name"],
        "role": row["role"],
        "password_set": row["password_hash"] is not None,
    }


@dataclass(frozen=True)
class Links:
    public_url: str
    secret_key: str
    ttl: timedelta


def _send_password_link(
    conn: Connection, links: Links, user_id: int, email: str, now: datetime
) -> None:
    token = new_token()
    repo.insert_token(
        conn,
        {
            "user_id": user_id,
            "kind": "password_set",
            "token_hash": token_hash(links.secret_key, token),
            "name": "initial password",
            "expires_at": now + links.ttl,
            "created_at": now,
        },
    )
    hours = int(links.ttl.total_seconds() // 3600)
    # Queued in the user's transaction, sent after it (pbx_app.outbox): both or neither exist,
    # and a slow relay delays the mail, not the request.
    outbox.enqueue(
        conn,
        email,
        "Your PBX account: set your password",
        "An administrator created a PBX account for you.\n\n"
        f"Set your password here (the link works once and expires in {hours} hours):\n"
        f"{links.public_url}/set-password?token={token}\n\n"
        "You log in with this e-mail address and your password.\n",
        now,
    )


def create(
    conn: Connection,
    actor: Actor,
    customer_id: int | None,
    email: str,
    role: Role,
    display_name: str,
    links: Links,
    now: datetime,
) -> RowMapping:
    if customer_id is None or role is Role.OPERATOR:
        require_operator(actor)
        if customer_id is not None:
            raise errors.PermissionDenied("operators belong to no customer")
    else:
        authorize(conn, actor, customer_id, now, write=True)
    email = normalise_email(email)
    if repo.get_by_email(conn, email) is not None:
        raise errors.EmailInUse(f"{email} has an account already (the e-mail is the login, R6)")
    user_id = repo.insert(
        conn,
        {
            "customer_id": customer_id,
            "email": email,
            "display_name": display_name,
            "role": role.value,
            "password_hash": None,
            "created_at": now,
        },
    )
    _send_password_link(conn, links, user_id, email, now)
    row = repo.get(conn, user_id)
    assert row is not None
    return row


def check_password_policy(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise errors.PasswordTooWeak(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    if len(set(password)) < 5:
        raise errors.PasswordTooWeak("a password needs at least 5 different characters")


def password_link_usable(conn: Connection, secret_key: str, token: str, now: datetime) -> bool:
    """Asked before the new password is hashed, so that made-up links cost no argon2 work."""
    digest = token_hash(secret_key, token)
    return repo.find_valid_token(conn, "password_set", digest, now) is not None


def set_password_with_link(
    conn: Connection, secret_key: str, token: str, password_hash: str, now: datetime
) -> RowMapping:
    """``password_hash``: the new password, policy-checked and hashed outside the transaction."""
    user_id = repo.consume_token(conn, "password_set", token_hash(secret_key, token), now)
    if user_id is None:
        raise link_invalid()
    repo.update_fields(conn, user_id, {"password_hash": password_hash, "password_set_at": now})
    row = repo.get(conn, user_id)
    assert row is not None
    return row


def link_invalid() -> errors.PasswordLinkInvalid:
    return errors.PasswordLinkInvalid(
        "this password link is unknown, used already or expired; ask your admin for a new one"
    )


def set_password_directly(conn: Connection, user_id: int, password: str, now: datetime) -> None:
    """For the operator CLI and the demo seed only."""
    repo.update_fields(
        conn, user_id, {"password_hash": hash_password(password), "password_set_at": now}
    )


@dataclass(frozen=True)
class LoginAttempt:
    """One login, read before the password is checked (outside any transaction)."""

    email: str  # normalised; "" when what was typed is not an address
    source: str
    user: RowMapping | None
    keys: dict[str, login_throttle.Rule]


def begin_login(conn: Connection, email: str, address: str, now: datetime) -> LoginAttempt:
    """Raises errors.LoginThrottled while this account or source is blocked."""
    try:
        email = normalise_email(email)
    except errors.InvalidEmail:  # at login: just a wrong e-mail, answered like any other
        email = ""
    source = login_throttle.source_of(address)
    keys = login_throttle.keys(email, source)
    wait = login_throttle.retry_after(conn, keys, now)
    if wait:
        raise errors.LoginThrottled(
            f"too many failed logins for this account or from this address; retry in {wait} s",
            retry_after=wait,
        )
    user = repo.get_by_email(conn, email) if email else None
    return LoginAttempt(email=email, source=source, user=user, keys=keys)


def finish_login(
    conn: Connection,
    attempt: LoginAttempt,
    password_ok: bool,
    secret_key: str,
    ttl: timedelta,
    now: datetime,
) -> str | None:
    """Records the outcome (throttle, audit trail) and returns a session token, or None for a
    failed login: the caller commits that too, then answers errors.InvalidCredentials."""
    user = attempt.user
    event = {
        "customer_id": user["customer_id"] if user else None,
        "user_id": user["id"] if user else None,
        "email": attempt.email,
        "source": attempt.source,
        "at": now,
    }
    if not password_ok or user is None:
        blocked = login_throttle.record_failure(conn, attempt.keys, now)
        audit_repo.insert(conn, {**event, "kind": "login_failed"})
        if blocked:
            audit_repo.insert(conn, {**event, "kind": "login_throttled"})
        return None
    login_throttle.record_success(conn, attempt.keys)
    audit_repo.insert(conn, {**event, "kind": "login"})
    token = new_token()
    repo.insert_token(
        conn,
        {
            "user_id": user["id"],
            "kind": "session",
            "token_hash": token_hash(secret_key, token),
            "name": "portal session",
            "expires_at": now + ttl,
            "created_at": now,
        },
    )
    return token


def logout(conn: Connection, secret_key: str, token: str, now: datetime) -> None:
    repo.revoke_by_hash(conn, token_hash(secret_key, token), now)


def authenticate(
    conn: Connection, secret_key: str, token: str, kinds: tuple[str, ...], now: datetime
) -> Actor:
    digest = token_hash(secret_key, token)
    for kind in kinds:
        found = repo.find_valid_token(conn, kind, digest, now)
        if found is not None:
            user = repo.get(conn, found["user_id"])
            if user is not None and user["password_hash"] is not None:
                return Actor(
                    user_id=user["id"], customer_id=user["customer_id"], role=Role(user["role"])
                )
    raise errors.NotAuthenticated("log in, or send a valid bearer token")


def create_api_token(
    conn: Connection, actor: Actor, secret_key: str, name: str, ttl: timedelta, now: datetime
) -> tuple[str, int]:
    if actor.user_id is None:
        raise errors.PermissionDenied("API tokens belong to a user")
    if actor.role is Role.USER:
        raise errors.PermissionDenied("only a customer admin or an operator may create API tokens")
    token = new_token()
    token_id = repo.insert_token(
        conn,
        {
            "user_id": actor.user_id,
            "kind": "api",
            "token_hash": token_hash(secret_key, token),
            "name": name,
            "expires_at": now + ttl,
            "created_at": now,
        },
    )
    return token, token_id


def revoke_api_token(conn: Connection, actor: Actor, token_id: int, now: datetime) -> None:
    if actor.user_id is None or not repo.revoke_token(conn, actor.user_id, token_id, now):
        raise errors.NotFound(f"token {token_id} not found")


def list_(conn: Connection, actor: Actor, customer_id: int, now: datetime) -> list[RowMapping]:
    authorize(conn, actor, customer_id, now)
    return repo.list_for_customer(conn, customer_id)


def delete(conn: Connection, actor: Actor, customer_id: int, user_id: int, now: datetime) -> None:
    authorize(conn, actor, customer_id, now, write=True)
    user = repo.get(conn, user_id)
    if user is None or user["customer_id"] != customer_id:
        raise errors.NotFound(f"user {user_id} not found")
    if user_id == actor.user_id:
        raise errors.Conflict("you cannot delete yourself")
    # The user's browser phones go with the user (FK cascade); the extensions' device counters
    # (R4) follow here. Their bindings at the proxies simply expire.
    for extension_id in browser_phones_repo.extension_ids_of_user(conn, user_id):
        extensions_repo.add_device_count(conn, extension_id, -1)
    repo.delete_one(conn, user_id)
