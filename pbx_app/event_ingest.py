"""From the proxies' reports to stored call events, off the request path.

POST /internal/v1/call-events hands the reports over and answers at once: the proxy's reporting
process never waits for the database or a customer's CRM. One thread per app node turns them
into events in arrival order (each proxy reports to one app node at a time, so a call's
events keep their order), asks the CRM of an incoming call's customer (all of a batch's
lookups at once, each waiting at most crm.TIMEOUT), stores them with their webhook deliveries
in one transaction, and wakes the event hub and the webhook sender. While the database cannot
take them, the batch waits and is tried again; what arrives meanwhile queues up to MAX_QUEUED.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from pbx_app.crm import CrmLookup
from pbx_app.db import Database, utcnow
from pbx_app.errors import DatabaseUnavailable
from pbx_app.repositories import call_events as repo
from pbx_app.services.call_events import Event, Report, events_for

log = logging.getLogger("pbx_app.event_ingest")

MAX_QUEUED = 100_000
BATCH = 200
STORE_RETRY = 1.0
STORE_PATIENCE = 60.0  # a batch the database refused this long is dropped (and logged)


class Ingestor:
    def __init__(
        self, db: Database, crm: CrmLookup, on_stored: Callable[[], None] = lambda: None
    ) -> None:
        self.db, self.crm, self.on_stored = db, crm, on_stored
        self._queue: queue.Queue[Report | None] = queue.Queue(MAX_QUEUED)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pbx-event-ingest", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def submit(self, reports: list[Report]) -> int:
        """Queues the reports; how many fitted (the rest are refused: the queue is full)."""
        for i, report in enumerate(reports):
            try:
                self._queue.put_nowait(report)
            except queue.Full:
                return i
        return len(reports)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._process(batch)
                    return
                batch.append(nxt)
            self._process(batch)

    def _process(self, batch: list[Report]) -> None:
        since = time.monotonic()
        while True:
            try:
                self.process(batch)
                return
            except (DatabaseUnavailable, SQLAlchemyError) as exc:
                if time.monotonic() - since > STORE_PATIENCE:
                    log.error("%d call events dropped: %s", len(batch), exc)
                    return
                time.sleep(STORE_RETRY)
            except Exception:
                log.exception("%d call events dropped", len(batch))
                return

    def process(self, batch: list[Report]) -> int:
        """Stores the batch's events; how many were new."""
        with self.db.snapshot() as conn:
            events = [e for r in batch for e in events_for(conn, r)]
            customers = {e.customer_id for e in events if e.crm_number}
            templates = {c: repo.crm_template(conn, c) for c in customers}
        self._crm(events, templates)
        now = utcnow()
        with self.db.transaction() as conn:
            rows = repo.insert(conn, [e.row(now) for e in events])
            repo.queue_deliveries(conn, rows, now)
        if rows:
            self.on_stored()
        return len(rows)

    def _crm(self, events: list[Event], templates: dict[int, str | None]) -> None:
        wanted = [(e, templates.get(e.customer_id)) for e in events if e.crm_number]
        lookups = [(e, t) for e, t in wanted if t]
        for e, template in lookups:  # all started before any is waited for
            assert template is not None
            self.crm.prefetch(template, e.crm_number)
        deadline = time.monotonic() + self.crm.timeout
        for e, template in lookups:
            assert template is not None
            e.data["crm"] = self.crm.lookup(template, e.crm_number, deadline - time.monotonic())
