"""Secrets the platform must hand out again, kept encrypted at rest: a device's SIP password and
its provisioning password (a phone re-provisioned gets the same ones; rotating is an action).

AES-256-GCM under the stack's credential keys (`PBX_CREDENTIAL_KEYS`, the stack secret
`pbx:credentialKeys`): "k2:<secret>,k1:<secret>", the first encrypts, every one listed decrypts.
A stored value names its key ("k2$<base64 nonce+ciphertext>"), so the keys rotate without a
flag day: put a new key first, `python -m pbx_app rekey`, then drop the old one. The associated
data binds a value to its row and purpose: copied into another device's row it does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_KEY_ID = re.compile(r"[a-z0-9]{1,16}")
_MIN_SECRET = 32  # characters of the configured secret; the AES key is derived from it
_NONCE = 12


class VaultError(ValueError):
    """A stored value that cannot be opened (unknown key, tampered, another row's)."""


def _derive(secret: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"pbx credential key v1")
    return hkdf.derive(secret.encode())


@dataclass(frozen=True)
class Vault:
    keys: tuple[tuple[str, bytes], ...]  # (id, AES key); the first one encrypts

    @classmethod
    def from_setting(cls, value: str, name: str = "PBX_CREDENTIAL_KEYS") -> Vault:
        keys: list[tuple[str, bytes]] = []
        for item in (x.strip() for x in value.split(",") if x.strip()):
            key_id, sep, secret = item.partition(":")
            if not sep or not _KEY_ID.fullmatch(key_id):
                raise ValueError(
                    f"{name}: each key is <id>:<secret>, id of a-z 0-9 (got {key_id!r})"
                )
            if len(secret) < _MIN_SECRET:
                raise ValueError(f"{name}: key {key_id!r} needs a secret of {_MIN_SECRET}+ chars")
            if key_id in (k for k, _ in keys):
                raise ValueError(f"{name}: key {key_id!r} is listed twice")
            keys.append((key_id, _derive(secret)))
        if not keys:
            raise ValueError(f"{name}: no key")
        return cls(tuple(keys))

    @property
    def current(self) -> str:
        return self.keys[0][0]

    def seal(self, plaintext: str, context: str) -> str:
        key_id, key = self.keys[0]
        nonce = os.urandom(_NONCE)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), context.encode())
        return f"{key_id}${base64.b64encode(nonce + sealed).decode()}"

    def open(self, stored: str, context: str) -> str:
        key_id, sep, body = stored.partition("$")
        key = dict(self.keys).get(key_id)
        if not sep or key is None:
            raise VaultError(f"sealed with key {key_id!r}, which is not configured")
        try:
            raw = base64.b64decode(body, validate=True)
            return AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], context.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError) as e:
            raise VaultError("a sealed value does not open (altered, or another row's)") from e

    def needs_rekey(self, stored: str) -> bool:
        return stored.partition("$")[0] != self.current
