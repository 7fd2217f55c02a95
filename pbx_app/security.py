"""Password hashing (argon2), opaque tokens stored hashed, and SIP digest HA1 values."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
import string
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHash, VerificationError

from pbx_app import errors

# RFC 9106's memory-constrained profile: 64 MiB keeps a burst of logins affordable on a 2-core node.
_hasher = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4)
# Verified against when the e-mail is unknown, so the response time does not reveal accounts.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))

_ALPHABET = string.ascii_letters + string.digits


def hash_password(password: str) -> str:
    return str(_hasher.hash(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHash):
        return False


T = TypeVar("T")


class PasswordHashing:
    """Argon2 on a small pool of its own, never on the request threads: a login flood then queues
    here (awaited, holding no thread) instead of taking every worker thread and the CPU from
    other tenants' requests; past ``max_waiting`` it is refused at once (errors.ServiceBusy)."""

    def __init__(self, workers: int, max_waiting: int) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="pbx-argon2")
        self._max_pending = workers + max_waiting
        self._pending = 0
        self._lock = threading.Lock()

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        with self._lock:
            if self._pending >= self._max_pending:
                raise errors.ServiceBusy("too many logins at once on this node; retry shortly")
            self._pending += 1
        try:
            return await asyncio.wrap_future(self._pool.submit(fn, *args))
        finally:
            with self._lock:
                self._pending -= 1

    async def hash(self, password: str) -> str:
        return await self.run(hash_password, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return await self.run(verify_password, password_hash, password)


# One hash uses `parallelism` threads; half the cores keeps the rest of the node responsive.
hashing = PasswordHashing(workers=max(1, (os.cpu_count() or 2) // 2), max_waiting=32)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(secret_key: str, token: str) -> str:
    """Tokens are stored only as a keyed hash: a database dump alone cannot replay them."""
    return hmac.new(secret_key.encode(), token.encode(), hashlib.sha256).hexdigest()


def csrf_token(secret_key: str, session_token: str) -> str:
    """The portal's CSRF token, bound to its session: nothing to store, useless with another
    session, and a page on another origin can read neither."""
    return hmac.new(
        secret_key.encode(), b"csrf:" + session_token.encode(), hashlib.sha256
    ).hexdigest()


def csrf_token_valid(secret_key: str, session_token: str, presented: str) -> bool:
    return hmac.compare_digest(csrf_token(secret_key, session_token), presented)


def generate_password(length: int = 20) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def sip_ha1(username: str, realm: str, password: str) -> str:
    """HA1 as Kamailio's auth_db expects it: md5(username:realm:password)."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode(), usedforsecurity=False).hexdigest()


def sip_ha1b(username: str, domain: str, realm: str, password: str) -> str:
    """HA1 for clients that send user@domain as the digest username."""
    raw = f"{username}@{domain}:{realm}:{password}"
    return hashlib.md5(raw.encode(), usedforsecurity=False).hexdigest()
