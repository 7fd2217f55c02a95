"""Password hashing (argon2), opaque tokens stored hashed, and SIP digest HA1 values."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHash, VerificationError

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


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(secret_key: str, token: str) -> str:
    """Tokens are stored only as a keyed hash: a database dump alone cannot replay them."""
    return hmac.new(secret_key.encode(), token.encode(), hashlib.sha256).hexdigest()


def generate_password(length: int = 20) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def sip_ha1(username: str, realm: str, password: str) -> str:
    """HA1 as Kamailio's auth_db expects it: md5(username:realm:password)."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode(), usedforsecurity=False).hexdigest()


def sip_ha1b(username: str, domain: str, realm: str, password: str) -> str:
    """HA1 for clients that send user@domain as the digest username."""
    raw = f"{username}@{domain}:{realm}:{password}"
    return hashlib.md5(raw.encode(), usedforsecurity=False).hexdigest()
