"""The mail outbox: mail is written to a table in the transaction of the change it reports and
sent by a sender thread outside any transaction, so a slow or broken relay delays mail and
never holds the database or a request.

Each app node runs a sender; a claim (``claimed_until``) keeps two nodes from sending the same
mail at once, and a node that dies mid-send leaves a claim that expires, so the mail goes out
later (at least once). A failed send is retried with a doubling delay; after MAX_ATTEMPTS the
mail is marked failed and its body (a password link) dropped.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, RowMapping, delete, or_, select, update

from pbx_app.db import Database, is_postgresql, utcnow
from pbx_app.errors import DatabaseUnavailable
from pbx_app.mail import Attachment, Mailer, MailNotSent
from pbx_app.schema import faxes, mail_outbox

log = logging.getLogger("pbx_app.outbox")

MAX_ATTEMPTS = 12  # with the default delays: about a day of retries
# Longer than the SMTP timeout: a claim outlives the send it covers.
CLAIM = timedelta(minutes=2)


def enqueue(
    conn: Connection,
    recipient: str,
    subject: str,
    body: str,
    now: datetime,
    fax_id: int | None = None,
) -> None:
    """Queues a mail; with `fax_id`, that fax's PDF goes along as its attachment."""
    conn.execute(
        mail_outbox.insert().values(
            recipient=recipient,
            subject=subject,
            body=body,
            attempts=0,
            next_attempt_at=now,
            last_error="",
            created_at=now,
            fax_id=fax_id,
        )
    )


def _attachment(conn: Connection, fax_id: int | None) -> Attachment | None:
    if fax_id is None:
        return None
    row = conn.execute(
        select(faxes.c.document, faxes.c.document_name).where(faxes.c.id == fax_id)
    ).first()
    if row is None or row.document is None:
        return None
    return (row.document_name or f"fax-{fax_id}.pdf", "application/pdf", bytes(row.document))


@dataclass(frozen=True)
class Retry:
    first: timedelta = timedelta(seconds=30)
    longest: timedelta = timedelta(hours=4)

    def after(self, attempts: int) -> timedelta:
        delay: timedelta = self.first * 2 ** (attempts - 1)
        return min(delay, self.longest)


def claim_next(conn: Connection, now: datetime) -> RowMapping | None:
    q = (
        select(mail_outbox)
        .where(
            mail_outbox.c.failed_at.is_(None),
            mail_outbox.c.next_attempt_at <= now,
            or_(mail_outbox.c.claimed_until.is_(None), mail_outbox.c.claimed_until < now),
        )
        .order_by(mail_outbox.c.id)
        .limit(1)
    )
    if is_postgresql(conn):
        q = q.with_for_update(skip_locked=True)  # nodes take different mails, never wait
    row = conn.execute(q).mappings().first()
    if row is not None:
        conn.execute(
            update(mail_outbox)
            .where(mail_outbox.c.id == row["id"])
            .values(claimed_until=now + CLAIM, attempts=row["attempts"] + 1)
        )
    return row


class OutboxSender:
    """Sends due mail in a daemon thread: at once when woken (after a commit that queued
    mail), else every ``poll`` seconds (mail queued by another node, retries)."""

    def __init__(
        self, db: Database, mailer: Mailer, retry: Retry | None = None, poll: float = 2.0
    ) -> None:
        self.db, self.mailer = db, mailer
        self.retry = retry or Retry()
        self.poll = poll
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def wake(self) -> None:
        """Starts the sender on first use, then nudges it."""
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="pbx-outbox", daemon=True)
                self._thread.start()
        self._wake.set()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                while not self._stop.is_set() and self.send_one():
                    pass
            except DatabaseUnavailable:
                pass  # a failover: the next round reconnects
            except Exception:
                log.exception("outbox round failed")
            self._wake.wait(self.poll)
            self._wake.clear()

    def send_one(self) -> bool:
        """Sends the oldest due mail, if any; whether there was one."""
        with self.db.transaction() as conn:
            mail = claim_next(conn, utcnow())
            attachment = _attachment(conn, mail["fax_id"]) if mail is not None else None
        if mail is None:
            return False
        try:
            if attachment is None:
                self.mailer.send(mail["recipient"], mail["subject"], mail["body"])
            else:
                self.mailer.send(mail["recipient"], mail["subject"], mail["body"], attachment)
        except MailNotSent as exc:
            self._failed(mail, str(exc))
        else:
            with self.db.transaction() as conn:
                conn.execute(delete(mail_outbox).where(mail_outbox.c.id == mail["id"]))
        return True

    def _failed(self, mail: RowMapping, error: str) -> None:
        attempts = mail["attempts"] + 1
        now = utcnow()
        values: dict[str, object] = {"claimed_until": None, "last_error": error[:300]}
        if attempts >= MAX_ATTEMPTS:
            values.update(failed_at=now, body="")
            log.error("mail %s to %s given up: %s", mail["id"], mail["recipient"], error)
        else:
            values["next_attempt_at"] = now + self.retry.after(attempts)
            log.warning(
                "mail %s to %s not sent (%s); retrying", mail["id"], mail["recipient"], error
            )
        with self.db.transaction() as conn:
            conn.execute(update(mail_outbox).where(mail_outbox.c.id == mail["id"]).values(**values))
