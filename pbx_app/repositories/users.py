"""SQL for users and their tokens (sessions, API tokens, password-set links)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, select, update

from pbx_app.schema import auth_tokens, users


def insert(conn: Connection, values: dict[str, Any]) -> int:
    return int(conn.execute(users.insert().values(**values)).inserted_primary_key[0])


def get(conn: Connection, user_id: int) -> RowMapping | None:
    return conn.execute(select(users).where(users.c.id == user_id)).mappings().first()


def get_by_email(conn: Connection, email: str) -> RowMapping | None:
    return conn.execute(select(users).where(users.c.email == email)).mappings().first()


def list_for_customer(conn: Connection, customer_id: int | None) -> list[RowMapping]:
    q = select(users).where(users.c.customer_id == customer_id).order_by(users.c.id)
    if customer_id is None:
        q = select(users).where(users.c.customer_id.is_(None)).order_by(users.c.id)
    return list(conn.execute(q).mappings())


def update_fields(conn: Connection, user_id: int, values: dict[str, Any]) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(**values))


def delete_one(conn: Connection, user_id: int) -> None:
    conn.execute(delete(users).where(users.c.id == user_id))


def insert_token(conn: Connection, values: dict[str, Any]) -> int:
    return int(conn.execute(auth_tokens.insert().values(**values)).inserted_primary_key[0])


def find_valid_token(
    conn: Connection, kind: str, token_hash: str, now: datetime
) -> RowMapping | None:
    q = select(auth_tokens).where(
        auth_tokens.c.kind == kind,
        auth_tokens.c.token_hash == token_hash,
        auth_tokens.c.used_at.is_(None),
        auth_tokens.c.expires_at > now,
    )
    return conn.execute(q).mappings().first()


def consume_token(conn: Connection, kind: str, token_hash: str, now: datetime) -> int | None:
    """Marks a single-use token used; the guarded UPDATE makes a second use fail even when two
    requests race. Returns the user id, or None if the token is unknown, used or expired."""
    q = (
        update(auth_tokens)
        .where(
            auth_tokens.c.kind == kind,
            auth_tokens.c.token_hash == token_hash,
            auth_tokens.c.used_at.is_(None),
            auth_tokens.c.expires_at > now,
        )
        .values(used_at=now)
        .returning(auth_tokens.c.user_id)
    )
    row = conn.execute(q).first()
    return None if row is None else int(row[0])


def revoke_token(conn: Connection, user_id: int, token_id: int, now: datetime) -> bool:
    q = (
        update(auth_tokens)
        .where(
            auth_tokens.c.id == token_id,
            auth_tokens.c.user_id == user_id,
            auth_tokens.c.kind == "api",  # DELETE /tokens/{id}: API tokens, not sessions
            auth_tokens.c.used_at.is_(None),
        )
        .values(used_at=now)
    )
    return conn.execute(q).rowcount > 0


def revoke_by_hash(conn: Connection, token_hash: str, now: datetime) -> None:
    conn.execute(
        update(auth_tokens).where(auth_tokens.c.token_hash == token_hash).values(used_at=now)
    )


def list_api_tokens(conn: Connection, user_id: int, now: datetime) -> list[RowMapping]:
    q = select(
        auth_tokens.c.id, auth_tokens.c.name, auth_tokens.c.expires_at, auth_tokens.c.created_at
    ).where(
        auth_tokens.c.user_id == user_id,
        auth_tokens.c.kind == "api",
        auth_tokens.c.used_at.is_(None),
        auth_tokens.c.expires_at > now,
    )
    return list(conn.execute(q).mappings())
