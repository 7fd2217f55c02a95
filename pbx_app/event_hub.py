"""Live call events for the WebSocket clients of this app node.

One thread per node follows the events table in seq order (every node's, written on either
site) and hands each event to the subscribers whose scope sees it. A subscriber is one
WebSocket; its queue is bounded, and a client too slow to keep up is told to reconnect and
resume (it misses nothing: the table keeps the events, and resume reads them from there).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pbx_app.db import Database, utcnow
from pbx_app.repositories import call_events as repo
from pbx_app.services.call_events import Scope, public

log = logging.getLogger("pbx_app.event_hub")

POLL = 0.25
PRUNE_EVERY = 3600.0
QUEUE = 1_000


@dataclass(eq=False)
class Subscriber:
    scope: Scope
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[dict[str, Any] | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE + 1)
    )
    overflowed: bool = False

    def offer(self, event: dict[str, Any]) -> None:
        """In the subscriber's loop: queue the event, or end the stream when full."""
        if self.overflowed:
            return
        if self.queue.qsize() >= QUEUE:
            self.overflowed = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(event)


class EventHub:
    def __init__(self, db: Database, poll: float = POLL, retention_days: int = 7) -> None:
        self.db, self.poll = db, poll
        self.retention = timedelta(days=retention_days)
        self._pruned_at = 0.0
        self._subscribers: set[Subscriber] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_seq = 0

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pbx-event-hub", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        self._wake.set()

    def subscribe(self, scope: Scope) -> Subscriber:
        sub = Subscriber(scope, asyncio.get_running_loop())
        with self._lock:
            self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(sub)

    def _run(self) -> None:
        started = False
        while not self._stop.is_set():
            try:
                if not started:
                    with self.db.read() as conn:
                        self.last_seq = repo.last_seq(conn)
                    started = True
                self._round()
                self._prune()
            except Exception as exc:
                log.warning("event hub round failed: %s", str(exc).splitlines()[0])
            self._wake.wait(self.poll)
            self._wake.clear()

    def _prune(self) -> None:
        """Events older than the retention go (hourly; every node may, the result is one)."""
        if time.monotonic() - self._pruned_at < PRUNE_EVERY:
            return
        with self.db.transaction() as conn:
            gone = repo.prune(conn, utcnow() - self.retention)
        self._pruned_at = time.monotonic()
        if gone:
            log.info("%d call events older than %s pruned", gone, self.retention)

    def _round(self) -> None:
        while True:
            with self.db.read() as conn:
                rows = repo.after(conn, self.last_seq, 500)
            if not rows:
                return
            with self._lock:
                subscribers = list(self._subscribers)
            for row in rows:
                event = None
                for sub in subscribers:
                    if sub.scope.sees(row):
                        event = event or public(row)
                        sub.loop.call_soon_threadsafe(sub.offer, event)
            self.last_seq = int(rows[-1]["seq"])
