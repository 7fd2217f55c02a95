"""Webhooks (CTI Premium): every call event of a customer, POSTed as JSON to the URLs its admin
registered, signed, retried, and logged per delivery.

Signature: ``X-PBX-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``
with the webhook's secret (shown once, when the webhook is created). A receiver recomputes it
over the raw body, compares in constant time and refuses a ``t`` older than a few minutes (a
replayed delivery). ``X-PBX-Delivery`` names the delivery (retries of one delivery share it);
the body's ``seq`` orders events, which retries can bring out of order.

A delivery is tried at once, then after 5 s, 10 s, 20 s ... (doubling, at most an hour), up to
MAX_ATTEMPTS; a 2xx answer is success, anything else (also a redirect: never followed) a
failure. Deliveries live in the database (the retry queue and the log in one table), so a node
that dies leaves its claims to the others when they expire.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import RowMapping
from sqlalchemy.exc import SQLAlchemyError

from pbx_app import outbound
from pbx_app.db import Database, utcnow
from pbx_app.errors import DatabaseUnavailable
from pbx_app.repositories import call_events as repo
from pbx_app.services.call_events import public

log = logging.getLogger("pbx_app.webhooks")

SIGNATURE_HEADER = "X-PBX-Signature"
MAX_ATTEMPTS = 10
FIRST_RETRY = timedelta(seconds=5)
LONGEST_RETRY = timedelta(hours=1)
TIMEOUT = 5.0
CLAIM = timedelta(seconds=60)  # longer than a round of BATCH sends at TIMEOUT each, in parallel
BATCH = 20

Post = Callable[[str, bytes, dict[str, str]], int]


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, body: bytes, at: int) -> str:
    mac = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def verify(secret: str, body: bytes, header: str, now: float, tolerance: float = 300) -> bool:
    """What a receiver does (and the tests): the signature matches and is recent."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        at = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = signature(secret, body, at)
    return abs(now - at) <= tolerance and hmac.compare_digest(expected, header)


def retry_after(attempts: int) -> timedelta:
    delay: timedelta = FIRST_RETRY * 2 ** min(attempts - 1, 20)
    return min(delay, LONGEST_RETRY)


def body_of(row: RowMapping) -> bytes:
    event = {"type": "call_event", **public(row)}
    return json.dumps(event, separators=(",", ":"), sort_keys=True).encode()


class WebhookSender:
    """Sends due deliveries from a daemon thread: when woken (events were stored) and every
    ``poll`` seconds (retries, other nodes' events)."""

    def __init__(
        self,
        db: Database,
        deny: Sequence[outbound.Network] = (),
        poll: float = 1.0,
        post: Post | None = None,
    ) -> None:
        self.db, self.deny, self.poll = db, tuple(deny), poll
        self._post = post or self._http_post
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pbx-webhooks", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                while not self._stop.is_set() and self.send_due():
                    pass
            except (DatabaseUnavailable, SQLAlchemyError) as exc:
                # A failover: the next round reconnects.
                log.warning("webhook round failed: %s", str(exc).splitlines()[0])
            except Exception:
                log.exception("webhook round failed")
            self._wake.wait(self.poll)
            self._wake.clear()

    def _http_post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        outbound.check(url, self.deny)
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client:
            return client.post(url, content=body, headers=headers).status_code

    def send_due(self) -> int:
        """Sends one batch of due deliveries; how many there were."""
        now = utcnow()
        with self.db.transaction() as conn:
            batch = repo.claim_due(conn, now, now + CLAIM, BATCH)
        for row in batch:
            self._send(row)
        return len(batch)

    def _send(self, row: RowMapping) -> None:
        body = body_of(row)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "pbx-webhooks/1",
            "X-PBX-Delivery": str(row["id"]),
            SIGNATURE_HEADER: signature(row["secret"], body, int(time.time())),
        }
        code: int | None = None
        try:
            code = self._post(row["url"], body, headers)
            error = "" if 200 <= code < 300 else f"HTTP {code}"
        except outbound.UrlRefused as exc:
            error = f"refused: {exc}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        attempts = int(row["attempts"]) + 1
        now = utcnow()
        values: dict[str, Any] = {"attempts": attempts, "last_code": code, "last_error": error}
        if not error:
            values.update(status="delivered", delivered_at=now)
        elif attempts >= MAX_ATTEMPTS:
            values["status"] = "failed"
            log.warning("webhook delivery %s given up: %s", row["id"], error)
        else:
            values["next_attempt_at"] = now + retry_after(attempts)
        with self.db.transaction() as conn:
            repo.delivery_done(conn, int(row["id"]), values)


def public_delivery(row: RowMapping) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat(timespec="seconds") + "Z"

    return {
        "id": int(row["id"]),
        "event_seq": int(row["event_seq"]),
        "status": row["status"],
        "attempts": int(row["attempts"]),
        "last_code": row["last_code"],
        "last_error": row["last_error"],
        "delivered_at": iso(row["delivered_at"]),
        "next_attempt_at": iso(row["next_attempt_at"]) if row["status"] == "pending" else None,
    }
