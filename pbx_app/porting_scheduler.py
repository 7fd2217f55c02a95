"""The porting scheduler: completes confirmed porting requests on their date (R12).

Every app node runs one (started by the app's lifespan, like the outbox sender). Each round it
completes every due request, one transaction each (pbx_app.services.porting.complete_next_due:
claimed with SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL, a conditional UPDATE on both
backends), so any number of nodes may run it at once: a request completes exactly once. A
request that cannot complete (a number taken meanwhile, the customer's trial over, ...) stays
confirmed, its reason goes into its events, and it is tried again after ``retry``; the other due
requests go on. Rounds come every ``poll`` seconds, and at once when woken (an operator just
confirmed a request whose date has come).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import text

from pbx_app import credential_changes
from pbx_app.billing_time import local_day
from pbx_app.db import Database, utcnow
from pbx_app.errors import DatabaseUnavailable
from pbx_app.invoicing import previous_month
from pbx_app.services import invoices, porting
from pbx_app.services.access import SYSTEM

log = logging.getLogger("pbx_app.porting_scheduler")

# A round stops after this many completions and lets the next one go on (a poll later, or
# at once when woken), so that stop() is never kept waiting long.
ROUND_LIMIT = 1000


def complete_due(
    db: Database, now: datetime, by: str, retry: timedelta, limit: int = ROUND_LIMIT
) -> list[int]:
    """Completes the requests due at ``now`` (naive UTC), each in a transaction of its own;
    returns the ids this call completed. Failures are recorded, not raised (a database that
    cannot be reached is: DatabaseUnavailable)."""
    done: list[int] = []
    failed: set[int] = set()
    while len(done) + len(failed) < limit:
        try:
            with db.transaction() as conn:
                request_id = porting.complete_next_due(conn, now, by)
        except porting.CompletionFailed as exc:
            # Rolled back; the failure and its retry time in a transaction of their own.
            failed.add(exc.request_id)
            with db.transaction() as conn:
                porting.record_failure(conn, exc.request_id, exc.reason, now, retry)
            log.warning("porting request %s not completed: %s", exc.request_id, exc.reason)
            continue
        if request_id is None:
            break
        done.append(request_id)
        log.info("porting request %s completed on its date", request_id)
    return done


# pg_try_advisory_xact_lock key of the monthly invoice run: one node runs it, the others skip.
INVOICE_RUN_LOCK = 0x70627869  # "pbxi"


def invoice_last_month(db: Database, now: datetime) -> str | None:
    """Issues last month's invoices (R16) for customers that have none yet; returns the month,
    or None when another node is running it (try again next round). Without the lock (SQLite)
    racing nodes are still held by the invoices' unique key: one transaction wins."""
    period = previous_month(local_day(now))
    with db.transaction() as conn:
        if conn.dialect.name == "postgresql":
            lock = text("SELECT pg_try_advisory_xact_lock(:key)")
            if not conn.execute(lock, {"key": INVOICE_RUN_LOCK}).scalar_one():
                return None
        result = invoices.run(conn, SYSTEM, period, now)
    if result.issued:
        log.info("invoices for %s: %s", result.period, result)
    return result.period


class PortingScheduler:
    """Runs ``complete_due`` in a daemon thread: every ``poll`` seconds, and when woken. Each
    round also prunes the credential change log (pbx_app.credential_changes.prune) and, once a
    month per node, issues last month's invoices: the app's one periodic job on every node."""

    def __init__(
        self,
        db: Database,
        node: str,
        poll: float = 60.0,
        retry: timedelta = timedelta(minutes=15),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db, self.node, self.poll, self.retry, self.clock = db, node, poll, retry, clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._invoiced = ""  # the month this node last saw fully invoiced

    @property
    def enabled(self) -> bool:
        return self.poll > 0

    def start(self) -> None:
        if not self.enabled or (self._thread is not None and self._thread.is_alive()):
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pbx-porting", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """A nudge for a running scheduler; never starts one (only the lifespan does)."""
        self._wake.set()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                now = self.clock()
                complete_due(self.db, now, self.node, self.retry)
                credential_changes.prune(self.db, now)
                month = f"{local_day(now):%Y-%m}"
                if self._invoiced != month and invoice_last_month(self.db, now) is not None:
                    self._invoiced = month
            except DatabaseUnavailable:
                pass  # a failover or a site cut off from the leader: the next round retries
            except Exception:
                log.exception("porting round failed")
            self._wake.wait(self.poll)
            self._wake.clear()
